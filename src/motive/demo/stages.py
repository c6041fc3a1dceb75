"""The demo's stages, each a plain function from inputs on disk or in memory to plain results.

``motive.demo.run.run_demo`` calls them in order; docs/demo.md "What `make demo` does" lists
the same steps. The world's labels (``motion``, ``colour``) are read only to measure what was found.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from motive.attribute import AttributionConfig, method_scores, write_selection
from motive.data.dataset import Dataset, first_per_label, load_dataset
from motive.data.video import write_video
from motive.demo.config import DemoConfig
from motive.demo.pretrain import PretrainConfig, VaeConfig, is_pretrained, pretrain
from motive.demo.render import generate_world, world_exists
from motive.demo.track import (
    MotionClassifier,
    draw_track,
    fit_classifier,
    generated_motion,
    world_trajectories,
)
from motive.dimensions import WEIGHT_FREE
from motive.evaluate import evaluate, target_specificity
from motive.finetune import FinetuneConfig, train_on
from motive.gradients import GradientConfig
from motive.inputs import cache_dir, dataset_inputs
from motive.models.tiny import TinyConfig
from motive.models.wan import VideoModel
from motive.parallel import Processes
from motive.scoring import majority_vote
from motive.store import FeaturizeOptions, Store, featurize
from motive.study.statistics import wilson_interval
from motive.training import TrainConfig

# the fine-tuning metrics the harness check compares, each with the sign that makes better larger
CHECKED = {
    "target_motion_loss": -1.0,
    "target_specificity": -1.0,
    "motion_accuracy": 1.0,
    "trajectory_error_px": -1.0,  # first-frame models only
}
# the measures of generated videos from tracking the object (``motive.demo.track.generated_motion``)
GENERATED = ("motion_accuracy", "survival", "trajectory_error_px")
SHOWN = 2  # generated videos per fine-tune kept for the report, with their tracks drawn


def make_world(config: DemoConfig, world_dir: Path, progress: bool, log) -> None:
    """Render the motion world into ``world_dir`` unless a world with the same settings is there."""
    if world_exists(world_dir, config.world):
        log(f"[demo] world: reusing {world_dir}")
        return
    log(f"[demo] world: generating into {world_dir}")
    generate_world(config.world, world_dir, progress)


def make_base_model(config: DemoConfig, world_dir: Path, model_dir: Path, progress: bool, log) -> dict:
    """Pretrain the tiny Wan model on the world's ``base`` split (reused when finished with the same
    settings; a finished model with other settings is refused); its summary."""
    pcfg = PretrainConfig(
        data=str(world_dir / "base"),
        out=str(model_dir),
        seed=config.seed,
        tiny=TinyConfig(tokenizer=config.tokenizer, condition=config.condition),
        vae=VaeConfig(steps=config.vae_steps, source=config.vae_from),
        train=TrainConfig(steps=config.pretrain_steps, seed=config.seed),
    )
    if is_pretrained(model_dir):
        saved = json.loads((model_dir / "pretrain.json").read_text())["config"]
        wanted = json.loads(json.dumps(asdict(pcfg)))
        # a setting the saved model predates had its default then
        default = json.loads(json.dumps(asdict(PretrainConfig())))
        kept = {k: _with(default[k], saved.get(k, default[k])) for k in wanted}
        if differ := [k for k in wanted if k not in ("data", "out") and kept[k] != wanted[k]]:
            raise ValueError(
                f"{model_dir} was pretrained with other settings ({', '.join(differ)}): "
                "give the demo another --out, or delete that folder to pretrain again"
            )
        log(f"[demo] pretrain: reusing {model_dir}")
    else:
        log(f"[demo] pretrain: training the tiny Wan model into {model_dir}")
        pretrain(pcfg, eval_data=str(world_dir / "eval"), progress=progress)
    return json.loads((model_dir / "pretrain.json").read_text())


def _with(default: Any, saved: Any) -> Any:
    """``saved`` (a nested config section) completed with ``default``'s fields it lacks."""
    return {**default, **saved} if isinstance(default, dict) and isinstance(saved, dict) else saved


def pool_scores(
    model: VideoModel,
    pool: Dataset,
    queries: Dataset,
    stores: Path,
    name: str,
    config: GradientConfig,
    progress: bool,
) -> tuple[Store, np.ndarray]:
    """Featurize the pool into ``stores/name`` (a finished store with the same settings and data is
    reused) and score it against the queries (featurized into ``stores/query_name``) → (pool store,
    cosine scores [N_pool, N_query])."""
    # one input cache for every stage of the demo (fine-tunes and evaluation read the same clips)
    options = FeaturizeOptions(overwrite=True, cache_dir=str(cache_dir()))
    store = featurize(model, pool.root, stores / name, config, options=options, progress=progress)
    scores, _ = method_scores("motive", model, store, queries, stores / f"query_{name}", progress=progress)
    return store, scores


def score_all_methods(
    model: VideoModel, pool: Dataset, queries: Dataset, config: DemoConfig, out: Path, progress: bool
) -> tuple[dict[str, list[np.ndarray]], Store]:
    """Scores [N, Q] (or [N, 1]) of every method, one array per seed, and the first seed's Motive store.

    Motive and w/o MM (the same features without the motion mask) for every seed; Motive at the
    paper's σ for the first seed; the baselines through the same dispatch as ``motive attribute``."""
    scores: dict[str, list[np.ndarray]] = {"motive": [], "no_motion_mask": []}
    first: Store | None = None
    for seed in config.seeds:
        for method, use_mask in (("motive", True), ("no_motion_mask", False)):
            g = GradientConfig(
                sigma=config.sigma,
                noise_seed=seed,
                proj_seed=seed,
                noise_draws=config.noise_draws,
                use_mask=use_mask,
                condition=model.settings.condition,  # a first-frame model's own loss
            ).for_model(model)
            store, s = pool_scores(model, pool, queries, out / "stores", f"{method}_seed{seed}", g, progress)
            first = first or store
            scores[method].append(s)
    if config.paper_sigma is not None and config.paper_sigma != config.sigma:
        seed = config.seeds[0]
        g = GradientConfig(
            sigma=config.paper_sigma, noise_seed=seed, proj_seed=seed, condition=model.settings.condition
        ).for_model(model)
        name = f"motive_paper_sigma_seed{seed}"
        scores["motive_paper_sigma"] = [
            pool_scores(model, pool, queries, out / "stores", name, g, progress)[1]
        ]
    assert first is not None
    for method in ("mask_similarity", "motion_magnitude"):
        scores[method] = [method_scores(method, model, first, queries)[0]]
    scores["random"] = [
        method_scores("random", model, first, queries, seed=1000 + s)[0] for s in config.seeds
    ]
    return scores, first


def write_generalist_selections(
    scores: dict[str, list[np.ndarray]],
    pool: Dataset,
    queries: Dataset,
    valid: np.ndarray,
    config: DemoConfig,
    out: Path,
) -> None:
    """The selection from all queries, as a user gets it from ``motive attribute``, for Motive and w/o
    MM (first seed) into ``out/attribution/<method>/``."""
    for method in ("motive", "no_motion_mask"):
        sel = majority_vote(scores[method][0], config.percentile, config.fraction, valid)
        write_selection(
            out / "attribution" / method,
            pool.table,
            scores[method][0],
            [c.relpath for c in queries],
            sel,
            AttributionConfig(method="motive", percentile=config.percentile, fraction=config.fraction),
            {"use_mask": method == "motive", "seed": config.seeds[0]},
        )


_MODELS: dict[str, Any] = {}


def cached_model(path: str) -> VideoModel:
    """The ``VideoModel`` saved at ``path``, loaded once per process. Shared: deep-copy before training."""
    if path not in _MODELS:
        _MODELS[path] = VideoModel.from_pretrained(path)
    return _MODELS[path]


def held_out_clips(eval_set: Dataset, motion: str, config: DemoConfig) -> tuple[list, list[str], list]:
    """(held-out clips of ``motion``, prompts to generate from, held-out clips of the other motions)."""
    held_out = [c for c in eval_set if c.extra.get("motion") == motion]
    other = first_per_label(eval_set.clips, "motion", config.other_clips_per_motion, exclude=(motion,))
    return held_out, [c.prompt for c in held_out][: config.generate_prompts], other


def finetune_and_evaluate(
    model_dir: str,
    pool_root: str,
    chosen: list[int] | None,
    seed: int,
    eval_root: str,
    motion: str,
    config: DemoConfig,
    classifier: MotionClassifier,
) -> dict:
    """Fine-tune a copy of the base model on the pool clips ``chosen`` (None: leave the base as is)
    and evaluate it on ``motion`` (a job: runs in a worker process, gets everything by path): the
    held-out losses, and the videos generated from held-out prompts of ``motion`` scored by tracking
    their object and naming its motion with ``classifier`` (the first ``SHOWN`` keep their frames)."""
    model = cached_model(model_dir)
    if chosen is not None:
        pool = load_dataset(pool_root)
        selected = copy.copy(pool)
        selected.clips = [pool.clips[j] for j in chosen]
        model = copy.deepcopy(model)
        ft = FinetuneConfig(
            lr=config.finetune_lr,
            steps=config.finetune_steps,
            batch_size=config.finetune_batch,
            seed=seed,
            checkpointing=False,  # a 1M-parameter model: recomputing activations only costs time
        )
        train_on(model, selected, ft, progress=False)
    held_out, prompts, other = held_out_clips(load_dataset(eval_root), motion, config)
    colours = [str(c.extra["colour"]) for c in held_out]
    eval_config, firsts, truths = config.eval, None, None
    if model.settings.condition == "first-frame":  # each video continues a held-out clip's first frame
        firsts = [str(c.video) for c in held_out[: len(prompts)]]
        generate = replace(eval_config.videos.generate, first_frame=True)
        eval_config = replace(eval_config, videos=replace(eval_config.videos, generate=generate))
        known = world_trajectories(Path(eval_root).parent, Path(eval_root).name)
        truths = [known[Path(v).name] for v in firsts]

    def tracked(i: int, video: np.ndarray) -> dict:
        truth = truths[i] if truths else None
        return generated_motion(video, colours[i], motion, classifier, truth) | (
            {"frames": video} if i < SHOWN else {}
        )

    return evaluate(model, held_out, prompts, eval_config, other, first_frames=firsts, video_score=tracked)


def finetune_comparison(
    model: VideoModel,
    world_dir: Path,
    model_dir: Path,
    pool: Dataset,
    queries: Dataset,
    scores: dict[str, list[np.ndarray]],
    valid: np.ndarray,
    config: DemoConfig,
    processes: Processes,
    log,
    shown: Path | None = None,
) -> tuple[dict, dict]:
    """Per target motion: fine-tunes on each method's selection from that motion's queries (and on
    oracle and random clips), every seed, each evaluated on held-out clips and on videos generated
    from held-out prompts (tracked, their motion named by a classifier fitted on the world's base
    clips) → (summaries, harness checks). With ``shown``, each method's first videos are written there
    as GIFs with their tracks drawn (``shown/MOTION/METHOD_I.gif``)."""
    pool_motion = pool.table["motion"].to_numpy()
    q_motion = queries.table["motion"].to_numpy()
    eval_set = load_dataset(world_dir / "eval")
    k = max(1, int(round(config.fraction * valid.sum())))
    classifier = fit_classifier(world_dir, "base")
    log("[demo] motion classifier: fitted on the tracks of the base split's clips")
    results: dict[str, dict] = {}
    checks: dict[str, dict] = {}
    for motion in config.target_motions:
        cols = np.flatnonzero(q_motion == motion)
        if len(cols) == 0:
            raise ValueError(f"no query clips of target motion {motion!r}")
        held_out, _, other = held_out_clips(eval_set, motion, config)
        dataset_inputs(model, held_out + other)  # fill the input cache once, before the jobs read it
        oracle_pool = np.flatnonzero((pool_motion == motion) & valid)

        def top(s: np.ndarray) -> np.ndarray:
            return majority_vote(s, config.percentile, config.fraction, valid).top

        jobs: list[tuple[str, int, np.ndarray | None]] = [("base", config.seeds[0], None)]
        for i, seed in enumerate(config.seeds):
            jobs += [
                ("motive", seed, top(scores["motive"][i][:, cols])),
                ("no_motion_mask", seed, top(scores["no_motion_mask"][i][:, cols])),
                ("random", seed, top(scores["random"][i])),
                ("motion_magnitude", seed, top(scores["motion_magnitude"][0])),
                ("mask_similarity", seed, top(scores["mask_similarity"][0][:, cols])),
                ("oracle", seed, np.random.default_rng(seed).permutation(oracle_pool)[:k]),
            ]
        futures = [
            processes.submit(
                finetune_and_evaluate,
                str(model_dir),
                str(world_dir / "pool"),
                None if chosen is None else chosen.tolist(),
                seed,
                str(world_dir / "eval"),
                motion,
                config,
                classifier,
            )
            for _, seed, chosen in jobs
        ]
        rows: dict[str, list[dict]] = {}
        base_eval = futures[0].result()
        rows["base"] = [{**base_eval, "target_fraction": float("nan"), "target_specificity": 0.0}]
        for (method, seed, chosen), future in zip(jobs[1:], futures[1:]):
            result = future.result()
            result["target_fraction"] = float(np.mean(pool_motion[chosen] == motion))
            result["target_specificity"] = target_specificity(result, base_eval)
            rows.setdefault(method, []).append(result)
            log(
                f"[demo] fine-tune {motion}/{method}/seed{seed}: target-motion loss "
                f"{result['target_motion_loss']:.5f}, target fraction {result['target_fraction']:.2f}"
            )
        results[motion] = {m: summarise(r) for m, r in rows.items()}
        checks[motion] = oracle_check(rows)
        if shown is not None:
            write_tracked(rows, shown / motion, fps=model.settings.fps)
    return results, checks


def write_tracked(rows: dict[str, list[dict]], folder: Path, fps: float) -> list[Path]:
    """Each method's first kept generated videos (first seed) as GIFs with their tracks drawn →
    ``folder/METHOD_I.gif``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for method, runs in rows.items():
        for i, v in enumerate(r for r in runs[0].get("videos", []) if "frames" in r):
            path = folder / f"{method}_{i}.gif"
            write_video(path, draw_track(v["frames"], v["track"]), fps)
            paths.append(path)
    return paths


def summarise(runs: list[dict]) -> dict:
    """Mean, spread (std over seeds) and per-seed values of each metric; for the generated videos of
    every seed together, their number, the 95% Wilson interval of the share named the target motion and
    what they were named; the back-ends of the VBench dimensions."""
    out: dict = {"seeds": len(runs)}
    keys = ("target_motion_loss", "target_specificity", "other_motion_loss", "plain_loss", *WEIGHT_FREE)
    for key in (*keys, *GENERATED, "target_fraction"):
        vals = np.array([r.get(key, np.nan) for r in runs], dtype=float)
        out[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        out[f"{key}_std"] = float(np.nanstd(vals)) if np.isfinite(vals).any() else float("nan")
        out[f"{key}_per_seed"] = vals.tolist()
    videos = [v for r in runs for v in r.get("videos", [])]
    correct = int(sum(v["motion_accuracy"] for v in videos))
    out["generated_videos"] = len(videos)
    out["motion_accuracy_interval"] = list(wilson_interval(correct, len(videos))) if videos else [np.nan] * 2
    out["named_motions"] = dict(Counter(v["named_motion"] for v in videos).most_common())
    out["dimension_backends"] = runs[0].get("dimension_backends", {})
    return out


def oracle_check(rows: dict[str, list[dict]]) -> dict:
    """The harness's sanity check: do fine-tunes on exactly the target motion (oracle) score better than
    fine-tunes on random clips, seed for seed, by a clear margin? Per metric of ``CHECKED`` (skipped
    where a run lacks it): the oracle's advantage (random's mean − oracle's for a loss, oracle's −
    random's for an accuracy), that gap over the pooled seed std, and ``separated`` (every oracle seed
    better than every random seed)."""
    out: dict = {"seeds": len(rows["oracle"])}
    for metric, sign in CHECKED.items():
        if not all(metric in r for r in rows["oracle"] + rows["random"]):
            continue
        oracle = sign * np.array([r[metric] for r in rows["oracle"]])
        random = sign * np.array([r[metric] for r in rows["random"]])
        margin = float(oracle.mean() - random.mean())
        spread = float(np.sqrt((oracle.var() + random.var()) / 2))
        out[metric] = {
            "oracle_advantage": margin,
            "margin_in_seed_stds": margin / spread if spread > 0 else float("nan"),
            "separated": bool(oracle.min() > random.max()),
        }
    return out
