"""Featurize overhead and memory as the model grows (tiny → ~10M → ~100M parameters), CPU.

For each model size (the tiny Wan config scaled up; random init), on one clip's latent — the demo's
17×64×64 (80 tokens) and a larger 33×256×256 (2304 tokens):
- ``bare``: forward + backward of the motion-weighted loss, gradients left in ``.grad`` (what any
  training step pays);
- ``feature``: ``GradientFeaturizer.feature`` — the same forward + backward with every parameter's
  gradient projected by streaming Fastfood inside the backward hooks (D' = 512) and freed; the
  projection's randomness kept between clips (5 bytes per parameter, the default);
- ``regen``: the same with the randomness regenerated per block (``keep_tables=False``; memory flat);
- ``ckpt``: ``feature`` with gradient checkpointing on (every block's forward recomputed in backward);
  ``feature`` itself uses the default ``auto``, whose choice the ``auto ckpt`` column shows (off
  whenever the activations fit the machine's free memory, as at these sizes);
- ``store``: wall time per clip of ``motive.store.featurize`` over a 16-clip dataset with cached
  inputs (journal, text encoding and bookkeeping included; tiny and 10M only).
``overhead_ratio`` = feature ÷ bare (median of repeats; the JSON's top-level figure is the worst
case); ``store_overhead_ratio`` = store ÷ bare.
Peak memory runs in separate subprocesses (ru_maxrss above the loaded-model baseline), with the
projection's own bytes (its randomness — kept, or the most generated for one call — plus parked
blocks) as a share of the featurize peak, for both ways of handling the randomness.
Runs with no arguments (``--only 33x256x256``: just the cases of that clip, timings only); prints a
table and, as its last line, one JSON object of the figures.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {  # name → TinyConfig overrides
    "tiny": {},
    "10M": {"dim": 384, "heads": 6, "layers": 6, "ffn": 1024},
    "100M": {"dim": 1024, "heads": 8, "layers": 8, "ffn": 2816},
}
CLIPS = {"17x64x64": (17, 64, 64), "33x256x256": (33, 256, 256)}  # the demo's clips; a larger input
CASES = [
    ("tiny", "17x64x64"),
    ("10M", "17x64x64"),
    ("100M", "17x64x64"),
    ("tiny", "33x256x256"),
    ("10M", "33x256x256"),
]
STORE_CASES = {("tiny", "17x64x64"), ("10M", "17x64x64")}
REPEATS = 5


def _setup(size: str, clip: str = "17x64x64", keep_tables: bool = True):
    import torch

    from motive.cli.commands import quiet_libraries
    from motive.gradients import GradientConfig, GradientFeaturizer
    from motive.models.tiny import TinyConfig, build_tiny_model

    quiet_libraries()
    torch.manual_seed(0)
    model = build_tiny_model(TinyConfig(**SIZES[size]), seed=0)
    frames, height, width = CLIPS[clip]
    shape = model.latent_shape(frames, height, width)
    feat = GradientFeaturizer(model, GradientConfig().for_model(model), shape, frames, keep_tables, "auto")
    h = torch.randn(1, *shape)  # [1, C, f, h, w]
    w = torch.rand(1, *shape[1:])  # [1, f, h, w]
    text = model.encode_text(["a red ball bouncing on a checkered floor"])
    return model, feat, (h, text, w)


def _bare(feat, inputs) -> None:
    for _, p in feat.params:
        p.grad = None
    feat.loss(*inputs).backward()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_case(size: str, kind: str) -> dict:
    """kind: bare | feature (randomness kept) | regen (randomness regenerated per block)."""
    model, feat, inputs = _setup(size, keep_tables=kind != "regen")
    proj = feat.projection
    if kind == "feature":
        proj.prepare_all()  # randomness counts as projection memory
    base = _rss_mb() - proj.nbytes / 2**20
    (_bare if kind == "bare" else lambda f, x: f.feature(*x))(feat, inputs)
    out = {"peak_extra_mb": _rss_mb() - base, "params": model.num_parameters()}
    if kind != "bare":
        parked = feat.stream.peak_pending * proj.spec.block * 4
        out["projection_mb"] = (proj.nbytes + proj.peak_transient_nbytes + parked) / 2**20
    return out


def _timing(size: str, clip: str) -> dict:
    from motive.gradients import GradientFeaturizer

    model, feat, inputs = _setup(size, clip)
    regen = GradientFeaturizer(model, feat.config, feat.latent_shape, feat.frames, keep_tables=False)
    ckpt = GradientFeaturizer(model, feat.config, feat.latent_shape, feat.frames, checkpointing="on")
    runs = {
        "bare": lambda: _bare(feat, inputs),
        "feature": lambda: feat.feature(*inputs),
        "regen": lambda: regen.feature(*inputs),
        "ckpt": lambda: ckpt.feature(*inputs),
    }
    for run in runs.values():  # warm up (and build the projection's randomness)
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEATS):  # interleaved, so load changes hit all alike
        for name, run in runs.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    out = {
        "params": model.num_parameters(),
        "tokens": int(inputs[0][0, 0].numel() // math.prod(model.transformer.config.patch_size)),
        **{f"{name}_s": statistics.median(v) for name, v in times.items()},
        "auto_checkpointing": feat.checkpointing,
    }
    if (size, clip) in STORE_CASES:
        out["store_s_per_clip"] = _store_per_clip(model)
    return out


def _store_per_clip(model) -> float:
    from motive.demo.render import write_split
    from motive.demo.world import WorldConfig
    from motive.gradients import GradientConfig
    from motive.store import FeaturizeOptions, featurize

    tmp = Path(tempfile.mkdtemp(prefix="motive_bench_"))
    os.environ["MOTIVE_CACHE"] = str(tmp / "cache")
    write_split(WorldConfig(seed=0, pool_clips=16), "pool", tmp / "pool", progress=False)
    featurize(model, tmp / "pool", tmp / "warm", GradientConfig(), progress=False)  # fill the input cache
    t = time.perf_counter()
    featurize(
        model,
        tmp / "pool",
        tmp / "timed",
        GradientConfig(),
        options=FeaturizeOptions(workers=0),
        progress=False,
    )
    return (time.perf_counter() - t) / 16


def _sub(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(only: str | None = None) -> dict:
    """``only``: run just the cases whose clip is this (e.g. ``33x256x256``), timings only."""
    rows = {}
    for size, clip in CASES:
        if only and clip != only:
            continue
        r = _sub("--timing", size, clip)
        r["overhead_ratio"] = r["feature_s"] / r["bare_s"]
        r["regen_overhead_ratio"] = r["regen_s"] / r["bare_s"]
        r["ckpt_overhead_ratio"] = r["ckpt_s"] / r["bare_s"]
        if "store_s_per_clip" in r:
            r["store_overhead_ratio"] = r["store_s_per_clip"] / r["bare_s"]
        if clip == "17x64x64" and not only:
            r["bare_peak_extra_mb"] = _sub("--memory", size, "bare")["peak_extra_mb"]
            for kind in ("feature", "regen"):
                m = _sub("--memory", size, kind)
                r[f"{kind}_peak_extra_mb"], r[f"{kind}_projection_mb"] = (
                    m["peak_extra_mb"],
                    m["projection_mb"],
                )
                r[f"{kind}_projection_share"] = m["projection_mb"] / (m["peak_extra_mb"] + m["projection_mb"])
        rows[f"{size}@{clip}"] = r
    print(
        f"{'case':>16} {'params':>12} {'tokens':>6} {'bare s':>7} {'feat s':>7} {'ratio':>6} {'regen':>6}"
        f" {'ckpt':>6} {'auto ckpt':>9}"
        f" {'store':>6} {'bare MB':>8} {'feat MB':>8} {'proj MB':>8} {'share':>6}"
        f" {'regen MB':>9} {'proj MB':>8} {'share':>6}"
    )
    for name, r in rows.items():
        store = f"{r['store_overhead_ratio']:.2f}" if "store_overhead_ratio" in r else "-"
        mem = (
            f" {r['bare_peak_extra_mb']:>8.0f}"
            + "".join(
                f" {r[f'{k}_peak_extra_mb']:>{w}.0f} {r[f'{k}_projection_mb']:>8.0f}"
                f" {r[f'{k}_projection_share']:>6.2f}"
                for k, w in (("feature", 8), ("regen", 9))
            )
            if "bare_peak_extra_mb" in r
            else ""
        )
        print(
            f"{name:>16} {r['params']:>12,} {r['tokens']:>6} {r['bare_s']:>7.3f} {r['feature_s']:>7.3f}"
            f" {r['overhead_ratio']:>6.2f} {r['regen_overhead_ratio']:>6.2f} {r['ckpt_overhead_ratio']:>6.2f}"
            f" {'on' if r['auto_checkpointing'] else 'off':>9} {store:>6}{mem}"
        )
    return {
        "cases": rows,
        "overhead_ratio": max(r["overhead_ratio"] for r in rows.values()),  # the worst case
        "overhead_ratio_by_case": {k: r["overhead_ratio"] for k, r in rows.items()},
        "ckpt_overhead_ratio_by_case": {k: r["ckpt_overhead_ratio"] for k, r in rows.items()},
        "auto_checkpointing_by_case": {k: r["auto_checkpointing"] for k, r in rows.items()},
        "store_overhead_ratio": max(
            (r["store_overhead_ratio"] for r in rows.values() if "store_overhead_ratio" in r), default=None
        ),
        "regen_overhead_ratio_by_case": {k: r["regen_overhead_ratio"] for k, r in rows.items()},
        "projection_share": {
            k: r["feature_projection_share"] for k, r in rows.items() if "feature_projection_share" in r
        },
        "regen_projection_share": {
            k: r["regen_projection_share"] for k, r in rows.items() if "regen_projection_share" in r
        },
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--timing":
        print(json.dumps(_timing(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) == 4 and sys.argv[1] == "--memory":
        print(json.dumps(_memory_case(sys.argv[2], sys.argv[3])))
    else:
        only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
        print(json.dumps(main(only)))
