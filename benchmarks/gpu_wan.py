"""Real-scale gradient featurization on a GPU: the Wan2.1-T2V-1.3B transformer (random init, no
weights needed) on one 81×480×832 clip's latent (16×21×60×104), bf16 autocast, streaming Fastfood.

Reports seconds per clip for forward + backward alone (``bare``) and with streaming projection
(``feature``), the projection of one flat 1.42-billion-long gradient in milliseconds, the one-off
time to build the projection's randomness, and peak GPU memory. Targets: ≤ 5 s per clip
(paper: 54 s on an A100), projection ≤ 50 ms (paper: 1.97 s).

    python benchmarks/gpu_wan.py                 # on a CUDA machine
    python benchmarks/gpu_wan.py --smoke         # 1 layer, small latent, CPU: checks the script runs

Prints a table and, as its last line, one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

WAN_T2V_1_3B = {  # transformer/config.json of Wan-AI/Wan2.1-T2V-1.3B-Diffusers
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
LATENT = (16, 21, 60, 104)  # [C, f, h, w] of an 81×480×832 clip
TEXT = (512, 4096)  # UMT5-XXL embeddings [L, D]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def main(smoke: bool, repeats: int, checkpointing: bool, max_block: int) -> dict:
    from diffusers import WanTransformer3DModel

    from motive.gradients import GradientConfig, GradientFeaturizer
    from motive.models.tiny import build_tiny_model

    device = torch.device("cpu" if smoke or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not smoke:
        raise SystemExit("no CUDA device: run with --smoke to check the script on CPU")
    config = dict(WAN_T2V_1_3B, num_layers=1) if smoke else WAN_T2V_1_3B
    latent = (16, 5, 8, 8) if smoke else LATENT
    model = build_tiny_model()  # VAE / text encoder unused: latents and text embeddings are given
    torch.manual_seed(0)
    model.pipe.transformer = WanTransformer3DModel(**config).to(device).eval()
    if checkpointing:
        model.transformer.enable_gradient_checkpointing()
    gcfg = GradientConfig(precision="bf16", max_block=max_block)
    t = time.perf_counter()
    feat = GradientFeaturizer(model, gcfg, latent, frames=4 * (latent[1] - 1) + 1)
    feat.projection.prepare_all()
    randomness_s = time.perf_counter() - t
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(1, *latent, generator=gen).to(device)  # [1, C, f, h, w]
    w = torch.rand(1, *latent[1:], generator=gen).to(device)  # [1, f, h, w]
    text = torch.randn(1, *TEXT, generator=gen).to(device)  # [1, L, D]

    def bare() -> None:
        for _, p in feat.params:
            p.grad = None
        feat.loss(h, text, w).backward()

    feature = lambda: feat.feature(h, text, w)  # noqa: E731
    feature()  # warm-up (kernels, allocator)
    bare()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bare_s, feature_s = [], []
    for _ in range(repeats):
        bare_s.append(_timed(bare, device))
        feature_s.append(_timed(feature, device))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    bare()  # leaves every gradient in .grad (feature() frees them)
    flat = torch.cat([p.grad.reshape(-1).float() for _, p in feat.params if p.grad is not None])[None]
    if flat.shape[1] != feat.dim:
        raise RuntimeError("missing gradients")
    feat.projection(flat)
    proj_s = statistics.median(_timed(lambda: feat.projection(flat), device) for _ in range(repeats))
    figures = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)",
        "parameters": feat.dim,
        "latent": list(latent),
        "precision": "bf16 autocast, fp32 projection",
        "max_block": max_block,
        "gradient_checkpointing": checkpointing,
        "bare_s": statistics.median(bare_s),
        "feature_s": statistics.median(feature_s),
        "projection_ms": 1000 * proj_s,
        "randomness_setup_s": randomness_s,
        "randomness_gib": feat.projection.nbytes / 2**30,
        "peak_gpu_gib": peak,
        "paper_s_per_clip": 54.0,
        "paper_projection_s": 1.97,
    }
    for key in ("parameters", "bare_s", "feature_s", "projection_ms", "randomness_setup_s", "peak_gpu_gib"):
        print(f"{key:>20}: {figures[key]}")
    return figures


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="1 layer, small latent, on CPU")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--checkpointing", action="store_true", help="gradient checkpointing (if memory is short)"
    )
    ap.add_argument("--max-block", type=int, default=2**16)
    a = ap.parse_args()
    print(json.dumps(main(a.smoke, a.repeats, a.checkpointing, a.max_block)))
