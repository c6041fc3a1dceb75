"""The demo VAE on CPU with its Conv3d weights in plain vs channels-last-3d layout, side by side.

Runs with no arguments: builds the random-init tiny model, then times (medians of 5, alternating)
VAE-encoding a batch of 16 clips of 17×64×64, decoding their latents, and one VAE training step on a 9-frame window (batch 1,
encode + decode + backward), in the plain layout (straight through diffusers) and inside
``VideoModel.vae_channels_last()`` (what ``encode_video`` and pretraining use). Also reports the
largest difference between the two layouts' latents. Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time

import torch


def main() -> dict:
    from motive.cli.commands import quiet_libraries
    from motive.models.tiny import build_tiny_model

    quiet_libraries()
    model = build_tiny_model(seed=0)
    vae = model.vae
    gen = torch.Generator().manual_seed(0)
    clips = torch.rand(16, 3, 17, 64, 64, generator=gen) * 2 - 1  # [B, 3, F, H, W]
    window = torch.rand(1, 3, 9, 64, 64, generator=gen) * 2 - 1

    def layout(channels_last: bool):
        return model.vae_channels_last() if channels_last else contextlib.nullcontext()

    def fmt(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
        return x.contiguous(
            memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format
        )

    def encode(channels_last: bool) -> torch.Tensor:
        with torch.no_grad(), layout(channels_last):
            return vae.encode(fmt(clips, channels_last)).latent_dist.mode().contiguous()

    latents = encode(False)

    def decode(channels_last: bool) -> None:
        with torch.no_grad(), layout(channels_last):
            vae.decode(fmt(latents, channels_last))

    def train_step(channels_last: bool) -> None:
        with layout(channels_last):
            x = fmt(window, channels_last)
            post = vae.encode(x).latent_dist
            (vae.decode(post.mode()).sample - x).pow(2).mean().backward()
        vae.zero_grad(set_to_none=True)

    diff = float((encode(True) - encode(False)).abs().max())
    cases = {"encode": encode, "decode": decode, "train": train_step}
    times: dict[str, list[float]] = {f"{c} {k}": [] for c in cases for k in ("plain", "cl")}
    for _ in range(5):
        for cl in (False, True):
            for name, fn in cases.items():
                t = time.perf_counter()
                fn(cl)
                times[f"{name} {'cl' if cl else 'plain'}"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'case':>12} {'s':>8}   (tiny VAE, {sum(p.numel() for p in vae.parameters()):,} parameters)")
    for k, v in med.items():
        print(f"{k:>12} {v:>8.3f}")
    figures = {
        "encode16_plain_s": med["encode plain"],
        "encode16_channels_last_s": med["encode cl"],
        "encode_speedup": med["encode plain"] / med["encode cl"],
        "decode16_plain_s": med["decode plain"],
        "decode16_channels_last_s": med["decode cl"],
        "decode_speedup": med["decode plain"] / med["decode cl"],
        "train_step_plain_s": med["train plain"],
        "train_step_channels_last_s": med["train cl"],
        "train_speedup": med["train plain"] / med["train cl"],
        "max_abs_latent_diff": diff,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
