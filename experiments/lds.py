"""Linear datamodeling score (LDS) of every method's scores on a demo run: a counterfactual test.

Fine-tunes a fresh copy of the demo's base model on each of M random halves of the pool (the demo's
recipe by default: 150 steps of 8 clips at lr 1e-4, one training seed for all), measures each query
clip's motion-weighted loss on a fixed (σ, ε) grid, and ranks the subsets by their loss decrease
against the summed scores of their clips (``motive.lds``). Methods, from the run folder: Motive and
w/o MM (``attribution/<method>/scores.parquet``, the first seed), Motive's centred and preconditioned
scores and (when ``score_variants.py --featurize`` made their stores) the temporal-difference and
appearance-deflated features', mask similarity (the first Motive
store's mask settings, through the shared input cache), motion magnitude (the store's ``mean_flow``)
and random (seeded as the demo's first random baseline). Resumable: a killed run continues from the
finished subsets in OUT/subsets/.

    python experiments/lds.py --run runs/demo [--out runs/demo/lds --subsets 32 --steps 150]
    python experiments/lds.py --smoke        # a mini world and an untrained tiny model, seconds

Prints a table method × LDS mean [95% t-interval over queries] and writes it to OUT/lds_table.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from score_variants import OPTIONS  # experiments/score_variants.py: the featurize options

from motive.attribute import store_scores
from motive.data.dataset import load_dataset
from motive.data.standardise import StandardiseTarget
from motive.gradients import GradientConfig
from motive.inputs import cache_dir, dataset_inputs
from motive.lds import LDSConfig, LossGrid, lds_table, run_lds
from motive.models.wan import VideoModel
from motive.scoring import mask_similarity, random_scores, static_queries
from motive.store import Store


def method_scores_from_run(run: Path, model: VideoModel, seed: int = 0) -> dict[str, np.ndarray | Path]:
    """Each method's scores for the demo run at ``run``: a scores.parquet path or an array [N, Q] /
    [N, 1] in pool order. Nothing is written into ``run`` (masks go through the shared input cache)."""
    # only the store's index and settings are read (not its vectors), so a store of an older format
    # still gives the baselines' inputs
    store = run / "stores" / f"motive_seed{seed}"
    meta, index = json.loads((store / "meta.json").read_text()), pd.read_parquet(store / "index.parquet")
    pool, queries = load_dataset(run / "world" / "pool"), load_dataset(run / "world" / "query")
    names = [c.relpath for c in pool]
    if index["video"].tolist() != names:
        raise ValueError(f"{store}: its clips are not the pool's, in the pool's order")
    methods: dict[str, np.ndarray | Path] = {}
    for method in ("motive", "no_motion_mask"):
        methods[method] = run / "attribution" / method / "scores.parquet"
    mask = GradientConfig.from_meta(meta).mask
    target = StandardiseTarget(**meta["standardise"])

    def masks(clips) -> np.ndarray:
        inputs = dataset_inputs(model, list(clips), mask, cache=cache_dir() / "inputs", target=target)
        return np.stack([x.mask.numpy().ravel() for x in inputs])  # [n, f·h·w]

    for name, score in (("motive_centred", "centred"), ("motive_preconditioned", "preconditioned")):
        methods[name] = variant_scores(run / "stores" / f"motive_seed{seed}", queries, score)
    for option in OPTIONS:  # featurize options, when score_variants.py made their stores
        if (path := run / "stores" / f"motive_{option}_seed{seed}").joinpath("meta.json").is_file():
            methods[f"motive_{option}"] = variant_scores(path, queries)
    methods["mask_similarity"] = mask_similarity(masks(pool), masks(queries))  # [N, Q]
    methods["motion_magnitude"] = index["mean_flow"].to_numpy(np.float64)[:, None]  # [N, 1]
    methods["random"] = random_scores(len(pool), 1000 + seed)  # [N, 1], the demo's first random seed
    return methods


def variant_scores(store_path: Path, queries, score: str = "cosine", damping: float = 0.1) -> np.ndarray:
    """Scores [N, Q] of a pool store against its query store (``query_<name>``) by ``score``; a static
    query (zero feature) gets NaN, as ``attribute`` leaves it out of the vote."""
    store, qstore = Store.open(store_path), Store.open(store_path.with_name(f"query_{store_path.name}"))
    if qstore.index["video"].tolist() != [c.relpath for c in queries]:
        raise ValueError(f"{qstore.path}: its clips are not the queries, in order")
    vectors = np.asarray(qstore.vectors)  # [Q, D']
    static = static_queries(vectors)
    out = np.full((len(store.index), len(vectors)), np.nan)
    out[:, ~static] = store_scores(store, vectors[~static], score, damping)
    return out


SMOKE_DONE = "smoke_run.done"


def smoke_run(root: Path) -> Path:
    """A run folder laid out as the demo's (world, base_model, stores, attribution) from a mini world
    and an untrained tiny model, scored by the demo's own scoring stage (seconds)."""
    from motive.demo import stages
    from motive.demo.config import DemoConfig
    from motive.demo.render import generate_world
    from motive.demo.world import WorldConfig
    from motive.models.tiny import build_tiny_model

    world = WorldConfig(seed=3, clips=10, query_clips=6, eval_clips=2)
    generate_world(world, root / "world", progress=False)
    model = build_tiny_model(seed=0)
    model.save_pretrained(root / "base_model")
    model = VideoModel.from_pretrained(root / "base_model")
    config = DemoConfig(out=str(root), world=world, seeds=[0], paper_sigma=None)
    pool, queries = load_dataset(root / "world" / "pool"), load_dataset(root / "world" / "query")
    scores, store = stages.score_all_methods(model, pool, queries, config, root, progress=False)
    stages.write_generalist_selections(scores, pool, queries, store.ok, config, root)
    return root


def open_run(args: argparse.Namespace) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """What every run-folder benchmark starts with: quiet the libraries, set torch's threads
    (``args.threads``), and return the run folder, ``args.run`` or, with ``args.smoke``, a mini run in
    a temporary folder (returned too: the caller keeps it alive and cleans it up), or in the folder
    ``$MOTIVE_SMOKE_RUN`` names, made there once and reused."""
    from motive.cli.commands import quiet_libraries

    quiet_libraries()
    torch.set_num_threads(args.threads)
    if not args.smoke:
        return Path(args.run), None
    if shared := os.environ.get("MOTIVE_SMOKE_RUN"):  # one mini run for many smoke runs (the tests')
        root = Path(shared)
        if not (root / SMOKE_DONE).is_file():
            smoke_run(root)
            (root / SMOKE_DONE).touch()
        return root, None
    tmp = tempfile.TemporaryDirectory()
    return smoke_run(Path(tmp.name) / "run"), tmp


def print_table(table: dict) -> None:
    """Method × LDS mean [95% interval], queries with a defined LDS."""
    print(f"\nLDS over {table['subsets']} subsets ({table['interval']}):")
    print(f"{'method':<22} {'LDS':>8}  {'95% CI':<20} queries")
    for name, row in table["methods"].items():
        ci = f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
        print(f"{name:<22} {row['lds']:+8.3f}  {ci:<20} {row['queries']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/demo", help="demo run folder (world, base_model, stores)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/lds)")
    p.add_argument("--subsets", type=int, default=LDSConfig.subsets, help="M")
    p.add_argument("--alpha", type=float, default=LDSConfig.alpha)
    p.add_argument("--steps", type=int, default=LDSConfig.steps)
    p.add_argument("--lr", type=float, default=LDSConfig.lr)
    p.add_argument("--batch-size", type=int, default=LDSConfig.batch_size)
    p.add_argument("--draws", type=int, default=LossGrid.draws_per_sigma, help="ε draws per σ")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset draws")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--smoke", action="store_true", help="mini world, M = 3, 2 steps: seconds")
    args = p.parse_args()

    t0 = time.perf_counter()
    run, tmp = open_run(args)
    if args.smoke:
        config = LDSConfig(subsets=3, steps=2, grid=LossGrid(sigmas=[0.3, 0.7], draws_per_sigma=1))
    else:
        config = LDSConfig(
            subsets=args.subsets,
            alpha=args.alpha,
            seed=args.seed,
            steps=args.steps,
            lr=args.lr,
            batch_size=args.batch_size,
            grid=LossGrid(draws_per_sigma=args.draws),
        )
    out = Path(args.out) if args.out else run / "lds"
    summary = run_lds(run / "base_model", run / "world" / "pool", run / "world" / "query", out, config)
    t_lds = time.perf_counter() - t0
    model = VideoModel.from_pretrained(run / "base_model")
    table = lds_table(out, method_scores_from_run(run, model))
    table["seconds"] = {"total": time.perf_counter() - t0, "run_lds": t_lds, "this_call": summary["seconds"]}
    table["subsets_computed_now"] = summary["computed"]
    table["mean_loss_decrease"] = float(np.mean(summary["mean_loss_decrease"]))
    table["config"] = summary["config"]
    table["run"] = str(run)
    (out / "lds_table.json").write_text(json.dumps(table, indent=2))
    print_table(table)
    done = [f for f in (out / "subsets").glob("*.json")]
    per = [json.loads(f.read_text())["seconds"] for f in done]
    print(
        f"\n{len(done)} subsets of {summary['subset_size']} clips; fine-tune + losses "
        f"{np.mean(per):.1f}s per subset (median {np.median(per):.1f}s); mean loss decrease "
        f"{table['mean_loss_decrease']:+.2e}; this call {time.perf_counter() - t0:.0f}s -> {out}"
    )


if __name__ == "__main__":
    main()
