"""Same-motion and same-colour precision@10% of Motive's scores — cosine (the paper's), centred and
preconditioned — on a finished demo run's feature stores, and of the featurize options (temporal-difference
loss, appearance deflation).

For every seed's pool store (``motive_seed{S}``, with the motion mask, and ``no_motion_mask_seed{S}``)
and its query store, score by each variant, then measure per query the share of its top 10% of the
pool that shares its motion (colour), averaged over queries and seeds — the demo's retrieval measure.
Query stores whose feature is zero (static queries) are left out, as ``attribute`` leaves them out.
``--featurize temporal,deflated --seeds 0,1,2`` first featurizes the pool and queries with those
options (``motive_<option>_seed{S}``, the demo's σ and mask, reused when present) and scores them too.

    python experiments/score_variants.py runs/demo [--damping 0.1,1,10] [--featurize temporal,deflated]
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

# featurize options measured beside the paper's features: store name suffix → GradientConfig settings
OPTIONS = {"temporal": {"objective": "temporal"}, "deflated": {"deflate_appearance": True}}


def featurize_option(run: Path, option: str, seeds: list[int]) -> None:
    """Pool and query stores ``motive_<option>_seed{S}`` at the run's σ, with its mask."""
    from motive.demo.stages import pool_scores
    from motive.gradients import GradientConfig
    from motive.models.wan import VideoModel

    if option not in OPTIONS:
        raise SystemExit(f"unknown option {option!r}; choose from {', '.join(OPTIONS)}")
    sigma = json.loads((run / "results.json").read_text())["config"]["sigma"]
    model = VideoModel.from_pretrained(run / "base_model")
    pool, queries = load_dataset(run / "world" / "pool"), load_dataset(run / "world" / "query")
    for seed in seeds:
        g = GradientConfig(sigma=sigma, noise_seed=seed, proj_seed=seed, **OPTIONS[option]).for_model(model)
        pool_scores(model, pool, queries, run / "stores", f"motive_{option}_seed{seed}", g, progress=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a finished demo run folder (world/ and stores/)")
    p.add_argument("--damping", default="0.1,1", help="comma-separated dampings of the preconditioned score")
    p.add_argument("--featurize", default="", help=f"featurize these options first: {','.join(OPTIONS)}")
    p.add_argument("--seeds", default="0,1,2", help="attribution seeds of --featurize")
    args = p.parse_args()
    run = Path(args.run)
    for option in filter(None, args.featurize.split(",")):
        featurize_option(run, option, [int(s) for s in args.seeds.split(",")])
    pool, queries = load_dataset(run / "world" / "pool"), load_dataset(run / "world" / "query")
    labels = {k: (pool.table[k].to_numpy(), queries.table[k].to_numpy()) for k in ("motion", "colour")}
    variants = [("cosine", 0.0), ("centred", 0.0)] + [
        ("preconditioned", float(d)) for d in args.damping.split(",")
    ]
    table: dict[str, dict[str, float]] = {}
    for features in ("motive", "no_motion_mask", *(f"motive_{o}" for o in OPTIONS)):
        stores = sorted((run / "stores").glob(f"{features}_seed*"))
        if not stores and features.removeprefix("motive_") in OPTIONS:
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
