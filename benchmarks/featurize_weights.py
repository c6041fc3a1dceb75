"""Features with bf16 transformer weights against fp32 ones: cosine per clip, CPU, reduced size.

Runs with no arguments: for the tiny Wan config scaled to ~10M and ~100M parameters (random init, as in
``benchmarks/featurize.py``), featurizes 8 random clip latents of 17×64×64 (80 tokens) three ways:
``fp32`` (fp32 weights and arithmetic, the CPU default), ``autocast`` (fp32 weights under bf16
autocast, the default on CUDA) and ``bf16 weights`` (``--weights bf16``: the transformer held in bf16,
its gradients projected in fp32). Prints the cosine of each clip's unit feature between the ways (min
and median over clips) and, last, one JSON line.

    python benchmarks/featurize_weights.py            # ~10M and ~100M
    python benchmarks/featurize_weights.py --smoke    # the tiny model only
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import warnings
from pathlib import Path

import torch

CLIPS = 8


def features(folder: Path, weights: str, precision: str) -> torch.Tensor:
    """Unit features [CLIPS, D'] of the same latents, text and masks (seeded) with these settings, the
    model loaded from ``folder`` as the command loads it (diffusers keeps Wan's norms, RoPE and time
    embedding in fp32 when the transformer loads in bf16)."""
    from motive.gradients import WEIGHTS, GradientConfig, GradientFeaturizer
    from motive.models.wan import VideoModel

    model = VideoModel.from_pretrained(folder, transformer_dtype=WEIGHTS[weights])
    shape = model.latent_shape(17, 64, 64)
    config = GradientConfig(weights=weights, precision=precision)
    featurizer = GradientFeaturizer(model, config, shape, 17, checkpointing="off")
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(CLIPS, *shape, generator=gen)  # [B, C, f, h, w]
    w = torch.rand(CLIPS, *shape[1:], generator=gen)  # [B, f, h, w]
    text = model.encode_text(["a red ball bouncing on a checkered floor"] * CLIPS)
    rows = [featurizer.feature(h[b : b + 1], text[b : b + 1], w[b : b + 1])[0] for b in range(CLIPS)]
    return torch.stack(rows)


def main() -> dict:
    from featurize import SIZES  # the sizes of benchmarks/featurize.py (this script's folder)

    from motive.cli.commands import quiet_libraries
    from motive.models.tiny import TinyConfig, build_tiny_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    quiet_libraries()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", message="Mismatch dtype between input and weight")
    sizes = {"tiny": SIZES["tiny"]} if args.smoke else {k: SIZES[k] for k in ("10M", "100M")}
    pairs = [("autocast", "fp32"), ("bf16 weights", "fp32"), ("bf16 weights", "autocast")]
    out = {}
    print(f"cosine of unit features per clip ({CLIPS} clips, 17×64×64), min / median")
    print(f"{'model':>6} " + " ".join(f"{f'{a} vs {b}':>26}" for a, b in pairs))
    for name, size in sizes.items():
        folder = build_tiny_model(TinyConfig(**size), seed=0).save_pretrained(Path(tempfile.mkdtemp()) / name)
        v = {
            "fp32": features(folder, "fp32", "fp32"),
            "autocast": features(folder, "fp32", "bf16"),
            "bf16 weights": features(folder, "bf16", "bf16"),
        }
        cos = {f"{a} vs {b}": (v[a] * v[b]).sum(1).tolist() for a, b in pairs}
        out[name] = {k: {"min": min(c), "median": statistics.median(c)} for k, c in cos.items()}
        cells = [f"{r['min']:.4f} / {r['median']:.4f}" for r in out[name].values()]
        print(f"{name:>6} " + " ".join(f"{c:>26}" for c in cells))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
