"""Same-motion and same-colour precision@10% of Motive's scores — cosine (the paper's), centred and
preconditioned — on a finished demo run's feature stores, and of the temporal-difference loss's features.

For every seed's pool store (``motive_seed{S}``, with the motion mask, and ``no_motion_mask_seed{S}``)
and its query store, score by each variant, then measure per query the share of its top 10% of the
pool that shares its motion (colour), averaged over queries and seeds — the demo's retrieval measure.
Query stores whose feature is zero (static queries) are left out, as ``attribute`` leaves them out.
``--temporal-seeds 0,1,2`` first featurizes the pool and queries with the temporal-difference
objective (``motive_temporal_seed{S}``, the demo's σ and mask, reused when present) and scores them too.

    python benchmarks/score_variants.py runs/demo [--damping 0.1,1,10] [--temporal-seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from motive.attribute import store_scores
from motive.data.dataset import load_dataset
from motive.demo.measures import topk_precision
from motive.scoring import static_queries
from motive.store import Store


def featurize_temporal(run: Path, seeds: list[int]) -> None:
    """Pool and query stores of the temporal-difference objective, at the run's σ and with its mask."""
    from motive.demo.stages import pool_scores
    from motive.gradients import GradientConfig
    from motive.models.wan import VideoModel

    sigma = json.loads((run / "results.json").read_text())["config"]["sigma"]
    model = VideoModel.from_pretrained(run / "base_model")
    pool, queries = load_dataset(run / "world" / "pool"), load_dataset(run / "world" / "query")
    for seed in seeds:
        g = GradientConfig(sigma=sigma, noise_seed=seed, proj_seed=seed, objective="temporal").for_model(model)
        pool_scores(model, pool, queries, run / "stores", f"motive_temporal_seed{seed}", g, progress=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a finished demo run folder (world/ and stores/)")
    p.add_argument("--damping", default="0.1,1", help="comma-separated dampings of the preconditioned score")
    p.add_argument("--temporal-seeds", default="", help="featurize the temporal objective for these seeds")
    args = p.parse_args()
    run = Path(args.run)
    if args.temporal_seeds:
        featurize_temporal(run, [int(s) for s in args.temporal_seeds.split(",")])
    pool, queries = load_dataset(run / "world" / "pool"), load_dataset(run / "world" / "query")
    labels = {k: (pool.table[k].to_numpy(), queries.table[k].to_numpy()) for k in ("motion", "colour")}
    variants = [("cosine", 0.0), ("centred", 0.0)] + [
        ("preconditioned", float(d)) for d in args.damping.split(",")
    ]
    table: dict[str, dict[str, float]] = {}
    for features in ("motive", "no_motion_mask", "motive_temporal"):
        stores = sorted((run / "stores").glob(f"{features}_seed*"))
        if not stores and features == "motive_temporal":
            continue
        if not stores:
            raise SystemExit(f"{run / 'stores'}: no {features}_seed* stores (run the demo first)")
        for score, damping in variants:
            per_seed = {k: [] for k in labels}
            for path in stores:
                store, qstore = Store.open(path), Store.open(path.with_name(f"query_{path.name}"))
                keep = ~static_queries(qstore.vectors) & (qstore.index["status"] == "ok").to_numpy()
                scores = store_scores(store, np.asarray(qstore.vectors)[keep], score, damping or 0.1)
                for k, (train, query) in labels.items():
                    prec = topk_precision(scores, train, query[keep], 0.1, store.ok)
                    per_seed[k].append(float(prec.mean()))
            name = f"{features} / {score}" + (f" (damping {damping:g})" if score == "preconditioned" else "")
            table[name] = {
                "motion": float(np.mean(per_seed["motion"])),
                "motion_seeds": per_seed["motion"],
                "colour": float(np.mean(per_seed["colour"])),
            }
            print(
                f"{name:48s} motion {table[name]['motion']:.3f} "
                f"(seeds {', '.join(f'{v:.3f}' for v in per_seed['motion'])})  colour {table[name]['colour']:.3f}",
                flush=True,
            )
    print(json.dumps(table))


if __name__ == "__main__":
    main()
