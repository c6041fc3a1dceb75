"""``motive demo``: the paper's whole method on the built-in motion world and tiny Wan model.

``run_demo`` is the recipe, one numbered step per stage of ``motive.demo.stages``; docs/demo.md
explains what each step measures and why.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from motive.data.dataset import load_dataset
from motive.demo import stages
from motive.demo.config import DemoConfig
from motive.demo.measures import projection_check, retrieval
from motive.demo.report import write_report
from motive.gradients import GradientConfig
from motive.models.wan import VideoModel
from motive.parallel import Processes

CHECKED = stages.CHECKED


def run_demo(config: DemoConfig, progress: bool = True, log=print) -> dict:
    """Run the whole pipeline; returns the results also written to ``OUT/results.json``."""
    with Processes(config.processes) as processes:  # workers start at the first job (after pretraining)
        return _run_demo(config, processes, progress, log)


def _run_demo(config: DemoConfig, processes: Processes, progress: bool, log) -> dict:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    world_dir, model_dir = out / "world", out / "base_model"
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def done(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 1)
        clock[0] = now
        log(f"[demo] {name}: {timings[name]:.0f}s")

    # 1. world: the synthetic motion world (base / pool / query / eval splits)
    stages.make_world(config, world_dir, progress, log)
    done("world")
    # 2. pretrain: the tiny Wan VAE and transformer on the base split
    pretrain_summary = stages.make_base_model(config, world_dir, model_dir, progress, log)
    done("pretrain")
    model = VideoModel.from_pretrained(model_dir)
    pool, queries = load_dataset(world_dir / "pool"), load_dataset(world_dir / "query")
    # 3. featurize + score: pool and queries with and without the motion mask (every seed), baselines
    scores, store = stages.score_all_methods(model, pool, queries, config, out, progress)
    valid = store.ok
    done("featurize")
    # 4. attribute: the majority-vote selection from all queries, as `motive attribute` writes it
    stages.write_generalist_selections(scores, pool, queries, valid, config, out)
    # 5. measure: retrieval against the world's labels, then projected vs exact cosine
    retrieval_results = retrieval(scores, pool, queries, valid, config.fraction)
    done("retrieval")
    g0 = GradientConfig.from_meta(store.meta)
    projection = projection_check(
        model, pool, queries, g0, scores["motive"][0], config.spearman_clips, progress
    )
    done("projection_check")
    # 6. fine-tune + evaluate: every method's selection for the target motion(s), every seed
    finetune, checks = stages.finetune_comparison(
        model, world_dir, model_dir, pool, queries, scores, valid, config, processes, log, out / "generated"
    )
    done("finetune_and_evaluate")
    # 7. report: results.json and report.html
    primary = config.target_motions[0]
    results = {
        "retrieval": retrieval_results,
        "projection_spearman": projection["spearman_mean"],
        "projection": projection,
        "finetune": finetune[primary],
        "finetune_by_motion": finetune,
        "finetune_check": checks,
        "pretrain": {k: v for k, v in pretrain_summary.items() if k != "config"},
        "config": asdict(config),
        "timings_s": timings,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    write_report(out, results, pool, queries, scores["motive"][0], scores["no_motion_mask"][0], valid)
    done("report")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    _print_tables(results, log)
    return results


def _print_tables(results: dict, log) -> None:
    log("\nretrieval (same-motion / same-colour precision@10%):")
    for method, r in results["retrieval"].items():
        log(f"  {method:18s} motion {r['motion_precision']:.3f}  colour {r['colour_precision']:.3f}")
    log(f"projected vs exact cosine, Spearman: {results['projection_spearman']:.3f}")
    log("fine-tuning (held-out target-motion loss, lower is better):")
    for method, r in results["finetune"].items():
        log(
            f"  {method:18s} loss {r['target_motion_loss']:.5f} ± {r['target_motion_loss_std']:.5f}  "
            f"specificity {r['target_specificity']:+.5f} ± {r['target_specificity_std']:.5f}  "
            f"dynamic {r['dynamic_degree']:.2f}  flicker {r['temporal_flickering']:.3f}  "
            f"smooth {r['motion_smoothness']:.3f}  target fraction {r['target_fraction']:.2f}"
        )
    for motion, rows in results["finetune_by_motion"].items():
        log(
            f"generated motion ({motion} prompts, tracked; share named {motion} [95% Wilson interval over "
            "all seeds' videos], per seed; share of frames the object is found in):"
        )
        for method, r in rows.items():
            lo, hi = r["motion_accuracy_interval"]
            per_seed = " ".join(f"{v:.2f}" for v in r["motion_accuracy_per_seed"])
            error = r.get("trajectory_error_px", float("nan"))  # first-frame models only
            log(
                f"  {method:18s} {r['motion_accuracy']:.2f} [{lo:.2f}, {hi:.2f}] of {r['generated_videos']} "
                f"(seeds {per_seed})  found {r['survival']:.2f}"
                + (f"  trajectory error {error:.1f} px" if np.isfinite(error) else "")
            )
    for motion, check in results["finetune_check"].items():
        for metric in CHECKED:
            if metric not in check:
                continue
            c = check[metric]
            log(
                f"harness check ({motion}, {metric}): oracle's advantage over random {c['oracle_advantage']:.5f} "
                f"({c['margin_in_seed_stds']:.1f} seed-stds); every oracle seed better than every random: {c['separated']}"
            )
