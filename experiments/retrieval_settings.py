"""Motive's retrieval and LDS under other featurize settings: σ, noise draws and parameter subsets.

For each setting ``SEEDS,DRAWS,SIGMA[,GROUP]`` featurize the pool and the queries of a demo run with its
base model (stores under OUT, reused when present), score by cosine and report, over the queries with
motion, the share of each query's top 10% of the pool that shares its motion (and its colour) — the
demo's retrieval measure — and, when the run has an LDS folder (``experiments/lds.py``), the LDS of the
setting's scores against the fine-tunes already measured there (no new fine-tuning). GROUP names a
parameter subset (``GROUPS``; default ``all``). Each finished setting is appended to
``OUT/settings.jsonl``, so a killed sweep resumes.

Choose settings on one world and report them on another (a second demo run with another world seed
and pretraining seed): a setting picked on the evaluation queries themselves is tuned, not measured.

    python experiments/retrieval_settings.py --run runs/demo --out runs/demo/settings \
        0,1,0.3 0,1,0.1 0,4,0.3 0,1,0.3,cross_attn 0+1+2,1,0.3 0,1,0.3,all,camera
                                            # SEEDS,DRAWS,SIGMA[,GROUP[,camera]]
    python experiments/retrieval_settings.py --smoke     # a mini world, seconds
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from lds import open_run, variant_scores  # experiments/lds.py

from motive.data.dataset import load_dataset
from motive.demo.measures import topk_precision
from motive.demo.stages import pool_scores
from motive.flags import excluded_clips
from motive.gradients import GradientConfig
from motive.lds import lds_table, mean_ci
from motive.models.wan import VideoModel
from motive.motion.mask import MaskConfig

# Parameter subsets of the Wan transformer: for a transformer of L blocks, GradientConfig.params globs
# (None = every parameter).
GROUPS: dict[str, Callable[[int], list[str] | None]] = {
    "all": lambda L: None,
    "self_attn": lambda L: ["blocks.*.attn1.*"],
    "cross_attn": lambda L: ["blocks.*.attn2.*"],
    "attention": lambda L: ["blocks.*.attn1.*", "blocks.*.attn2.*"],
    "ffn": lambda L: ["blocks.*.ffn.*"],
    "first_half": lambda L: [f"blocks.{i}.*" for i in range(L // 2)],
    "second_half": lambda L: [f"blocks.{i}.*" for i in range(L // 2, L)],
}


def group_params(group: str, layers: int) -> list[str] | None:
    """The parameter globs of ``group`` for a transformer with ``layers`` blocks."""
    if group not in GROUPS:
        raise ValueError(f"unknown parameter group {group!r}; choose from {sorted(GROUPS)}")
    return GROUPS[group](layers)


def measure_setting(run: Path, model: VideoModel, out: Path, setting: str) -> dict:
    """Featurize and score one ``SEEDS,DRAWS,SIGMA[,GROUP[,camera]]`` setting on ``run`` → its figures.
    SEEDS is one attribution seed or several joined by ``+`` (an ensemble: the mean of each seed's
    cosine scores, as TRAK averages over projections; each seed's store is featurized once and reused).
    ``camera`` turns the motion mask's camera compensation on. Precision is also reported with the
    pool's camera-only clips kept out of every selection (``motive attribute --exclude camera-only``)."""
    seeds, draws, sigma, *rest = setting.split(",")
    group = rest[0] if rest else "all"
    camera = rest[1:] == ["camera"]
    if rest[1:] and not camera:
        raise ValueError(f"{setting}: the fifth field can only be 'camera'")
    params = group_params(group, model.transformer.config.num_layers)
    pool, queries = load_dataset(run / "world" / "pool"), load_dataset(run / "world" / "query")
    start = time.perf_counter()
    per_seed, ok = [], np.ones(len(pool), bool)
    for seed in map(int, seeds.split("+")):
        g = GradientConfig(
            sigma=float(sigma),
            noise_seed=seed,
            proj_seed=seed,
            noise_draws=int(draws),
            params=params,
            mask=MaskConfig(camera_compensation=camera),
        ).for_model(model)
        name = f"s{seed}_k{draws}_sigma{sigma}_{group}" + ("_camera" if camera else "")
        store, _ = pool_scores(model, pool, queries, out, name, g, False)
        per_seed.append(variant_scores(store.path, queries))  # [N, Q], NaN for a static query
        ok &= store.ok
    scores = np.mean(per_seed, axis=0)  # [N, Q]
    moving = ~np.isnan(scores).all(axis=0)  # [Q]
    row: dict = {"setting": setting, "seed": seeds, "draws": int(draws), "sigma": float(sigma)}
    row |= {"group": group, "camera_compensation": camera, "parameters": store.meta["projection"]["d_in"]}
    row["queries"] = int(moving.sum())
    camera_only, _ = excluded_clips(store.index, ["camera-only"])  # [N]
    row["camera_only_clips"] = int(camera_only.sum())
    for label in ("motion", "colour"):
        train, query = pool.table[label].to_numpy(), queries.table[label].to_numpy()
        prec = topk_precision(scores, train, query, 0.1, ok)[moving]  # [Q']
        row[f"{label}_precision"] = mean_ci(prec)
        kept = topk_precision(scores, train, query, 0.1, ok & ~camera_only)[moving]  # [Q']
        row[f"{label}_precision_without_camera_only"] = mean_ci(kept)
    panned = pool.table["camera"].to_numpy() != "none"  # [N]; the pool's own share is the chance level
    always = np.ones(len(queries), bool)  # [Q]: the share of each selection that is panned
    row["pan_share_of_selections"] = float(topk_precision(scores, panned, always, 0.1, ok)[moving].mean())
    if (run / "lds" / "outcomes.npy").is_file():
        lds = lds_table(run / "lds", {setting: scores})["methods"][setting]
        row["lds"] = (lds["lds"], lds["ci_low"], lds["ci_high"])
    row["seconds"] = time.perf_counter() - start
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/demo", help="a demo run folder (world/, base_model/, lds/)")
    p.add_argument(
        "--out", default=None, help="folder for the stores and settings.jsonl (default: RUN/settings)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--smoke", action="store_true", help="mini world, two settings")
    p.add_argument("settings", nargs="*", help="SEEDS,DRAWS,SIGMA[,GROUP[,camera]]; SEEDS e.g. 0 or 0+1+2")
    args = p.parse_args()

    run, tmp = open_run(args)
    if args.smoke:
        args.settings = ["0,1,0.3", "0,2,0.5,cross_attn", "0+1,1,0.3", "0,1,0.3,all,camera"]
    if not args.settings:
        p.error("give at least one SEEDS,DRAWS,SIGMA[,GROUP] setting")
    out = Path(args.out) if args.out else run / "settings"
    out.mkdir(parents=True, exist_ok=True)
    log = out / "settings.jsonl"
    rows = {r["setting"]: r for r in map(json.loads, log.read_text().splitlines())} if log.is_file() else {}
    model = VideoModel.from_pretrained(run / "base_model")
    for setting in args.settings:
        if setting not in rows:
            rows[setting] = measure_setting(run, model, out, setting)
            with open(log, "a") as fh:
                fh.write(json.dumps(rows[setting]) + "\n")
        r = rows[setting]
        lds = f"  LDS {r['lds'][0]:+.3f} [{r['lds'][1]:+.3f}, {r['lds'][2]:+.3f}]" if "lds" in r else ""
        camera = " camera compensated" if r.get("camera_compensation") else ""
        kept = r.get("motion_precision_without_camera_only", [np.nan])[0]
        print(
            f"seed {r['seed']} draws {r['draws']} σ {r['sigma']} {r['group']}{camera}: precision motion "
            f"{r['motion_precision'][0]:.3f} [{r['motion_precision'][1]:.3f}, {r['motion_precision'][2]:.3f}]"
            f" colour {r['colour_precision'][0]:.3f}{lds}; without camera-only clips {kept:.3f} "
            f"({r.get('camera_only_clips', 0)} flagged); pans in the selections "
            f"{r.get('pan_share_of_selections', np.nan):.3f} ({r['seconds']:.0f} s)",
            flush=True,
        )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
