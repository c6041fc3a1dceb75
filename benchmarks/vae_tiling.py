"""The Wan2.1 VAE's encoder tiled and untiled: latent error and peak memory per pixel.

Runs with no arguments: a randomly initialised VAE of the released Wan2.1 shape (base width 96, fp32,
CPU) encodes a real clip (``../shared/data/videos/cotracker__paragliding-launch.mp4``, standardised)
in separate processes: untiled at two sizes (the memory per pixel and that it scales with height ×
width) and tiled (diffusers' ``enable_tiling``: 256-pixel tiles, stride 192) at the larger one. Memory:
the process's peak RSS above the built VAE. Prints a table and, last, one JSON line.

    python benchmarks/vae_tiling.py            # 9 frames at 160×256 and 320×512
    python benchmarks/vae_tiling.py --smoke    # 5 frames at 64×96 and 128×288: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import torch

CLIP = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "videos"
    / "cotracker__paragliding-launch.mp4"
)


def _encode(frames: int, height: int, width: int, tiled: bool, out: str) -> None:
    """Child process: build the VAE, encode the clip once, save the latent and the peak above the build."""
    from diffusers import AutoencoderKLWan

    from motive.data.standardise import StandardiseTarget, read_standardised
    from motive.models.pixels import frames_to_tensor
    from motive.models.shapes import WAN21_VAE

    torch.set_num_threads(2)
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**WAN21_VAE).eval()
    video, _ = read_standardised(CLIP, StandardiseTarget(frames=frames, height=height, width=width))
    x = frames_to_tensor(video.frames)[None].contiguous(
        memory_format=torch.channels_last_3d
    )  # [1, 3, F, H, W]
    if tiled:
        vae.enable_tiling()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    with torch.no_grad():
        latent = vae.encode(x).latent_dist.mode()  # [1, C, f, h, w]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    torch.save({"latent": latent, "peak": peak, "seconds": seconds}, out)


def run(frames: int, height: int, width: int, tiled: bool, folder: Path) -> dict:
    out = folder / f"{height}x{width}{'-tiled' if tiled else ''}.pt"
    child = multiprocessing.get_context("spawn").Process(
        target=_encode, args=(frames, height, width, tiled, str(out))
    )
    child.start()
    child.join()
    if child.exitcode:
        raise RuntimeError(f"the encode at {height}×{width} (tiled: {tiled}) failed")
    return torch.load(out, weights_only=True)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    frames, small, large = (5, (64, 96), (128, 288)) if args.smoke else (9, (160, 256), (320, 512))
    folder = Path(tempfile.mkdtemp(prefix="motive_vae_tiling_"))
    runs = {
        "untiled small": run(frames, *small, False, folder),
        "untiled": run(frames, *large, False, folder),
        "tiled": run(frames, *large, True, folder),
    }
    a, b = runs["untiled"]["latent"], runs["tiled"]["latent"]
    rel = float((a - b).pow(2).mean().sqrt() / a.pow(2).mean().sqrt())
    cos = float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
    sizes = {"untiled small": small, "untiled": large, "tiled": large}
    print(f"Wan2.1 VAE (random init, fp32, CPU), {frames} frames of {CLIP.name}")
    print(f"{'encode':<14} {'size':>9} {'seconds':>8} {'peak MiB':>9} {'bytes per pixel':>16}")
    per_pixel = {}
    for name, r in runs.items():
        h, w = sizes[name]
        per_pixel[name] = r["peak"] / (h * w)
        print(
            f"{name:<14} {f'{h}×{w}':>9} {r['seconds']:>8.1f} {r['peak'] / 2**20:>9.0f} {per_pixel[name]:>16,.0f}"
        )
    print(
        f"tiled vs untiled latent: relative RMS error {rel:.2e}, cosine {cos:.6f}, max |diff| {float((a - b).abs().max()):.3g}"
    )
    figures = {
        "frames": frames,
        "bytes_per_pixel": {k: round(v) for k, v in per_pixel.items()},
        "seconds": {k: round(r["seconds"], 2) for k, r in runs.items()},
        "tiled_rel_rms_error": rel,
        "tiled_cosine": cos,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
