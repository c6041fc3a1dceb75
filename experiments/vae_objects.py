"""Does a model's VAE keep the world's object? Held-out clips encoded, decoded and tracked.

For each model folder, the first ``--per-motion`` clips of each motion of the world's eval split are
standardised to the model's clip format, encoded to latents and decoded back (``VideoModel.encode_video``
/ ``decode_latents``, the path every stage uses), and the object is tracked in the true clip and in
its reconstruction with the tracker that scores generated videos (``motive.demo.track``): the share of
frames the object is found in the reconstruction (survival), the distance between the two tracked
centroids where both are found, and the reconstruction's MSE (pixels on [−1, 1]) over the object's
pixels of the true clip against the whole frame's. A VAE that drops the object leaves a transformer
nothing to learn its motion from.

    python experiments/vae_objects.py MODEL [MODEL ...] --world runs/w0/world   # → MODEL/vae_objects.json
    python experiments/vae_objects.py --smoke       # the mini run's untrained model: seconds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from lds import open_run  # experiments/lds.py

from motive.data.dataset import first_per_label, load_dataset
from motive.data.standardise import read_standardised
from motive.demo.track import object_pixels, survival, track_clip
from motive.inputs import default_target
from motive.models.pixels import frames_to_tensor, tensor_to_frames
from motive.models.wan import VideoModel


def _mean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none, without numpy's warning)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def vae_objects(model: VideoModel, world: Path, per_motion: int) -> dict:
    """Survival, centroid distance (px) and object / whole-frame MSE of the reconstructions of the
    first ``per_motion`` eval clips of each motion (means over clips, per motion and by frame), and
    survival and the object's mean RGB, true and reconstructed, per colour."""
    clips = first_per_label(load_dataset(world / "eval").clips, "motion", per_motion)
    target = default_target(model)
    rows, found, frame_err = [], [], []  # per clip: [F] found in the reconstruction, [F] MSE
    for clip in clips:
        colour = str(clip.extra["colour"])
        true = read_standardised(clip.video, target)[0].frames  # [F, H, W, 3]
        latents = model.encode_video(frames_to_tensor(true)[None])  # [1, C, f, h, w]
        rec = tensor_to_frames(model.decode_latents(latents)[0])  # [F, H, W, 3]
        a, b = track_clip(true, colour), track_clip(rec, colour)
        both = a.found & b.found
        dist = np.hypot(a.x - b.x, a.y - b.y)[both]
        body = object_pixels(true, colour)  # [F, H, W]
        err = ((rec.astype(np.float64) - true.astype(np.float64)) / 127.5) ** 2  # [F, H, W, 3]
        found.append(b.found)
        frame_err.append(err.mean(axis=(1, 2, 3)))
        rows.append(
            {
                "motion": str(clip.extra["motion"]),
                "colour": colour,
                "true_rgb": true[body].mean(axis=0) if body.any() else np.full(3, np.nan),  # [3]
                "rec_rgb": rec[body].mean(axis=0) if body.any() else np.full(3, np.nan),  # [3]
                "survival": survival(b),
                "true_survival": survival(a),
                "centroid_px": float(dist.mean()) if len(dist) else float("nan"),
                "object_mse": float(err[body].mean()) if body.any() else float("nan"),
                "frame_mse": float(err.mean()),
                "object_share": float(body.mean()),  # of a true frame's pixels
            }
        )
    keys = ("survival", "true_survival", "centroid_px", "object_mse", "frame_mse", "object_share")
    out: dict = {"clips": len(rows)} | {k: _mean([r[k] for r in rows]) for k in keys}
    # by frame index: a causal VAE fitted on short windows may hold the early frames only
    out["survival_by_frame"] = np.mean(found, axis=0).round(3).tolist()  # [F]
    out["frame_mse_by_frame"] = np.mean(frame_err, axis=0).round(4).tolist()  # [F]
    out["per_motion"] = {
        m: {k: _mean([r[k] for r in rows if r["motion"] == m]) for k in keys}
        for m in sorted({r["motion"] for r in rows})
    }
    # by colour: a VAE that has not learned hue returns every object in one grey
    out["per_colour"] = {
        c: {
            "clips": len(mine),
            "survival": _mean([r["survival"] for r in mine]),
            "true_rgb": np.nanmean([r["true_rgb"] for r in mine], axis=0).round(1).tolist(),
            "reconstructed_rgb": np.nanmean([r["rec_rgb"] for r in mine], axis=0).round(1).tolist(),
        }
        for c in sorted({r["colour"] for r in rows})
        for mine in [[r for r in rows if r["colour"] == c]]
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="model folders (diffusers WanPipeline)")
    p.add_argument("--world", default=None, help="world folder (world.json, eval/)")
    p.add_argument("--per-motion", type=int, default=10, help="eval clips per motion")
    p.add_argument("--run", default="runs/demo", help="with --smoke: unused (the mini run)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--smoke", action="store_true", help="the mini run's world and untrained model")
    args = p.parse_args()
    run, tmp = open_run(args)
    if args.smoke:
        args.models, args.world, args.per_motion = [str(run / "base_model")], str(run / "world"), 1
    if not args.models or not args.world:
        raise SystemExit("give model folders and --world (or --smoke)")
    torch.set_num_threads(args.threads)
    for folder in map(Path, args.models):
        result = vae_objects(VideoModel.from_pretrained(folder), Path(args.world), args.per_motion)
        (folder / "vae_objects.json").write_text(json.dumps(result, indent=2))
        print(
            f"{folder}: {result['clips']} clips, object found in {result['survival']:.0%} of reconstructed "
            f"frames ({result['true_survival']:.0%} of true ones), centroid {result['centroid_px']:.2f} px, "
            f"MSE object {result['object_mse']:.4f} / frame {result['frame_mse']:.4f}; the object covers "
            f"{result['object_share']:.1%} of a true frame"
        )
        print("  survival by frame:", " ".join(f"{v:.2f}" for v in result["survival_by_frame"]))
        for colour, r in result["per_colour"].items():
            print(
                f"  {colour:8s} ({r['clips']} clips) survival {r['survival']:.2f}, RGB "
                f"{' '.join(f'{v:.0f}' for v in r['true_rgb'])} → {' '.join(f'{v:.0f}' for v in r['reconstructed_rgb'])}"
            )
        for motion, r in result["per_motion"].items():
            print(f"  {motion:14s} survival {r['survival']:.2f}  object MSE {r['object_mse']:.4f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
