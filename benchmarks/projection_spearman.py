"""How well projected cosines keep the exact ranking: Spearman per query for D' ∈ {128, 512, 2048}.

Random-init tiny model, a 200-clip motion-world pool and 20 query clips (64×64×17). Exact unit
gradients (D ≈ 1M, never projected) give the exact cosine matrix; the same gradients projected with
Fastfood at each D' give the projected one; for every query, the Spearman correlation of the two
score columns over the pool. Static queries (no motion, so W̃ ≡ 0 and a zero gradient) are skipped. Prints a table and, as its last line, one JSON object of the figures.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

DIMS = (128, 512, 2048)


def main() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="motive_bench_"))
    os.environ["MOTIVE_CACHE"] = str(tmp / "cache")
    from motive.cli.commands import quiet_libraries
    from motive.data.dataset import load_dataset
    from motive.demo.measures import exact_unit_gradients, spearman
    from motive.demo.render import write_split
    from motive.demo.world import WorldConfig
    from motive.gradients import GradientConfig
    from motive.models.tiny import build_tiny_model
    from motive.projection import Fastfood, l2_normalise

    quiet_libraries()
    write_split(WorldConfig(seed=0, pool_clips=200), "pool", tmp / "pool", progress=False)
    write_split(WorldConfig(seed=0, query_clips=20), "query", tmp / "query", progress=False)
    model = build_tiny_model(seed=0)
    config = GradientConfig().for_model(model)
    pool, queries = load_dataset(tmp / "pool"), load_dataset(tmp / "query")
    gp = exact_unit_gradients(model, pool, config, list(range(len(pool))), progress=False)  # [N, D]
    gq = exact_unit_gradients(model, queries, config, list(range(len(queries))), progress=False)  # [Q, D]
    keep = (gq.abs().sum(dim=1) > 0).numpy()  # a static query (W̃ ≡ 0) has a zero gradient: no ranking
    gq = gq[keep]
    exact = (gp.double() @ gq.double().T).numpy()  # [N, Q]
    figures = {
        "pool": len(pool),
        "queries": int(keep.sum()),
        "static_queries_skipped": int((~keep).sum()),
        "parameters": gp.shape[1],
        "spearman": {},
    }
    for d in DIMS:
        ff = Fastfood(gp.shape[1], d, seed=0)
        proj = (l2_normalise(ff(gp)).double() @ l2_normalise(ff(gq)).double().T).numpy()  # [N, Q]
        rho = np.array([spearman(exact[:, q], proj[:, q]) for q in range(exact.shape[1])])
        figures["spearman"][str(d)] = {"mean": float(rho.mean()), "min": float(rho.min())}
    print(
        f"{'D_prime':>8} {'mean rho':>9} {'min rho':>8}   ({len(pool)} pool clips x {len(queries)} queries)"
    )
    for d, r in figures["spearman"].items():
        print(f"{d:>8} {r['mean']:>9.3f} {r['min']:>8.3f}")
    return figures


if __name__ == "__main__":
    print(json.dumps(main()))
