"""Same-motion precision@10% of Motive's gradient features under several (seed, noise draws, σ) settings.

The development measurement behind docs/demo.md "The demo's σ" (noise draws). For each setting, featurize
the pool and the queries of a demo world with MODEL (stores under OUT, reused when present), score by
cosine and report the share of each query's top 10% of the pool that shares its motion, averaged over
queries — the demo's retrieval measure.

    python benchmarks/retrieval_settings.py --model runs/demo/base_model --world runs/demo/world \
        --out /tmp/settings 0,1,0.3 0,3,0.3 1,3,0.3     # SEED,DRAWS,SIGMA per setting
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from motive.data.dataset import load_dataset
from motive.demo.measures import topk_precision
from motive.demo.stages import pool_scores
from motive.gradients import GradientConfig
from motive.models.wan import VideoModel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--world", required=True, help="a demo world folder (with pool/ and query/)")
    p.add_argument("--out", required=True, help="folder for the feature stores")
    p.add_argument("settings", nargs="+", help="SEED,DRAWS,SIGMA")
    args = p.parse_args()

    model = VideoModel.from_pretrained(args.model)
    world, out = Path(args.world), Path(args.out)
    pool, queries = load_dataset(world / "pool"), load_dataset(world / "query")
    pool_motion, query_motion = pool.table["motion"].to_numpy(), queries.table["motion"].to_numpy()
    figures = {}
    for setting in args.settings:
        seed, draws, sigma = setting.split(",")
        g = GradientConfig(
            sigma=float(sigma), noise_seed=int(seed), proj_seed=int(seed), noise_draws=int(draws)
        )
        start = time.perf_counter()
        store, scores = pool_scores(
            model, pool, queries, out, setting, g.for_model(model), False
        )  # [N_pool, N_query]
        precision = float(topk_precision(scores, pool_motion, query_motion, 0.1, store.ok).mean())
        figures[setting] = precision
        print(
            f"seed {seed} draws {draws} sigma {sigma}: same-motion precision {precision:.3f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
