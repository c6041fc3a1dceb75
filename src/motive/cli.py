"""The ``motive`` command: a thin layer that parses arguments and calls the Python API."""

from __future__ import annotations

import argparse
import json
import os
import sys

from motive import __version__


def _quiet_libraries() -> None:
    """Keep diffusers/transformers from printing per-load progress bars and deprecation chatter."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def _cmd_world(args: argparse.Namespace) -> int:
    from motive.data.synthetic import MOTIONS, WorldConfig, generate_world

    motions = args.motions.split(",") if args.motions else list(MOTIONS)
    config = WorldConfig(
        seed=args.seed,
        clips=args.clips,
        base_clips=args.base_clips,
        pool_clips=args.pool_clips,
        query_clips=args.query_clips,
        eval_clips=args.eval_clips,
        height=args.height,
        width=args.width,
        frames=args.frames,
        fps=args.fps,
        variable_length=args.variable_length,
        pan_fraction=args.pan_fraction,
        motions=motions,
    )
    paths = generate_world(config, args.out, progress=not args.quiet)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from motive.models.tiny import TinyConfig
    from motive.pretrain import PretrainConfig, VaeConfig, is_pretrained, pretrain
    from motive.training import TrainConfig

    if is_pretrained(args.out) and not args.force:
        print(f"{args.out} already holds a pretrained model; use --force to retrain")
        return 0
    tiny = TinyConfig(dim=args.dim, heads=args.heads, layers=args.layers, ffn=args.ffn)
    config = PretrainConfig(
        data=args.data,
        out=args.out,
        seed=args.seed,
        tiny=tiny,
        vae=VaeConfig(steps=args.vae_steps),
        train=TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed),
        sample_prompts=args.samples,
    )
    summary = pretrain(config, eval_data=args.eval_data, progress=not args.quiet)
    summary.pop("config")
    print(json.dumps(summary, indent=2))
    return 0


def _load_model(path: str, device: str):
    from motive.models.wan import VideoModel

    return VideoModel.from_pretrained(path, device=device)


def _ranks(args: argparse.Namespace):
    """This process's rank: torchrun's process group (started here when WORLD_SIZE > 1), the
    ``--rank/--world-size`` flags of separately launched jobs, or a single process."""
    import torch
    import torch.distributed as dist

    from motive.store import Ranks

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if args.device.startswith("cuda"):
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(args.device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
        return Ranks.current()
    if args.world_size > 1:
        if not 0 <= args.rank < args.world_size:
            raise ValueError(f"--rank must be in [0, {args.world_size}), got {args.rank}")
        return Ranks(args.rank, args.world_size)
    return Ranks()


def _cmd_featurize(args: argparse.Namespace) -> int:
    from motive.gradients import GradientConfig
    from motive.store import featurize

    config = GradientConfig(
        sigma=args.sigma,
        noise_seed=args.noise_seed,
        noise_draws=args.noise_draws,
        use_mask=not args.no_motion_mask,
        frame_norm=not args.no_frame_norm,
        params=args.params.split(",") if args.params else None,
        proj_dim=args.proj_dim,
        proj_seed=args.proj_seed,
        max_block=args.max_block,
        precision=args.precision,
        mask=_mask_config(args),
    )
    ranks = _ranks(args)
    try:
        store = featurize(
            _load_model(args.model, args.device),
            args.data,
            args.out,
            config,
            use_cache=not args.no_cache,
            progress=not args.quiet,
            batch_size=args.batch_size,
            workers=args.workers,
            ranks=ranks,
            overwrite=args.overwrite,
            plugins=tuple(args.plugin),
            keep_tables=not args.regenerate_projection,
        )
    finally:
        if ranks.group:
            import torch.distributed as dist

            dist.destroy_process_group()
    if store is None:
        print(
            f"{args.out}: rank {ranks.rank} of {ranks.world} done; `motive store merge {args.out}` when all are"
        )
        return 0
    if ranks.rank == 0:
        ok = int(store.ok.sum())
        print(
            f"{args.out}: {ok}/{len(store.index)} clips featurized into {store.vectors.shape[1]}-dim unit vectors"
        )
        for _, row in store.index[~store.ok].iterrows():
            print(f"  failed: {row['video']}: {row['error']}")
    return 0


def _cmd_store(args: argparse.Namespace) -> int:
    from motive.store import info, merge

    if args.action == "merge":
        store = merge(args.store)
        print(f"{args.store}: merged {len(store.shards)} shard(s), {len(store.index)} clips")
        return 0
    summary = info(args.store)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    for key, value in summary.items():
        print(f"{key:>15}: {json.dumps(value, default=str) if isinstance(value, dict | list) else value}")
    return 0


def _cmd_attribute(args: argparse.Namespace) -> int:
    from motive.scoring import AttributionConfig, attribute

    config = AttributionConfig(
        method=args.method, percentile=args.percentile, fraction=args.fraction, seed=args.seed
    )
    result = attribute(
        _load_model(args.model, args.device),
        args.store,
        args.queries,
        args.out,
        config,
        progress=not args.quiet,
    )
    sel = result["selection"]
    print(f"selected {len(sel.top)} of {len(result['train'])} clips -> {result['paths']['selection']}")
    print(f"scores -> {result['paths']['scores']}; negative influence -> {result['paths']['bottom']}")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from motive.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(
        model=args.model,
        data=args.data,
        selection=args.selection,
        out=args.out,
        lr=args.lr,
        repeat=args.repeat,
        batch_size=args.batch_size,
        steps=args.steps,
        seed=args.seed,
    )
    summary = finetune(config, progress=not args.quiet)
    print(f"fine-tuned on {summary['clips']} clips for {summary['steps']} steps -> {args.out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from motive.data.dataset import load_dataset
    from motive.evaluate import EvalConfig, evaluate, target_specificity

    dataset = load_dataset(args.data)
    wanted = set(args.motions.split(",")) if args.motions else None
    clips = [c for c in dataset if wanted is None or str(c.extra.get("motion")) in wanted]
    other = [c for c in dataset if wanted is not None and str(c.extra.get("motion")) not in wanted]
    prompts = [c.prompt for c in clips][: args.prompts]
    config = EvalConfig(generate_steps=args.steps)
    results = {m: evaluate(_load_model(m, args.device), clips, prompts, config, other) for m in args.model}
    if other:  # specificity of every model against the first (the base model)
        base = results[args.model[0]]
        for result in results.values():
            result["target_specificity"] = target_specificity(result, base)
    text = json.dumps(results, indent=2)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text)
    print(text)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from motive.demo import DemoConfig, run_demo

    config = DemoConfig.quick(args.out) if args.quick else DemoConfig(out=args.out, seed=args.seed)
    if args.steps is not None:
        config.pretrain_steps = args.steps
    if args.processes is not None:
        config.processes = args.processes
    run_demo(config, progress=not args.quiet)
    return 0


def _cmd_motion(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from motive.data.standardise import StandardiseTarget
    from motive.motion.run import RunOptions, run_motion, strides_from_model

    config = _mask_config(args)
    spatial, temporal = (
        strides_from_model(args.model) if args.model else (args.latent_stride, args.temporal_stride)
    )
    target = None
    if args.standardise:
        target = asdict(StandardiseTarget(args.fps, args.frames, args.height, args.width))
    options = RunOptions(spatial, temporal, target, args.save_flow, not args.no_preview)
    table = run_motion(
        args.inputs,
        args.out,
        config,
        options,
        workers=args.workers,
        plugins=tuple(args.plugin),
        force=args.force,
        progress=not args.quiet,
    )
    done = table["status"] != "error"
    print(f"{args.out}: {int(done.sum())}/{len(table)} clips -> mask.npy, stats.json, previews; summary.csv")
    for _, row in table[~done].iterrows():
        print(f"  failed: {row['source']}: {row['error']}")
    return 0 if done.any() or table.empty else 1


def _finish(p: argparse.ArgumentParser, func, device: bool = False) -> None:
    """The options every long-running subcommand shares, and its handler."""
    if device:
        p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=func)


def _add_mask_args(p: argparse.ArgumentParser) -> None:
    """Motion-mask settings shared by ``motion`` and ``featurize`` (motive.motion.MaskConfig)."""
    p.add_argument("--flow", default="dis", help="flow back-end: dis, farneback or a registered name")
    p.add_argument(
        "--preset", default="balanced", help="back-end preset (dis: ultrafast/fast/medium/balanced/fine)"
    )
    p.add_argument(
        "--work-size", type=int, default=256, help="long side flow is estimated at; 0 = full resolution"
    )
    p.add_argument(
        "--mode",
        default="consecutive",
        choices=["consecutive", "anchor"],
        help="flow f-1 -> f, or from the first frame of the shot (AllTracker-style)",
    )
    p.add_argument(
        "--camera-compensation",
        action="store_true",
        help="subtract the fitted camera motion before taking magnitudes (off = the paper)",
    )
    p.add_argument("--camera-model", default="homography", choices=["homography", "affine"])
    p.add_argument("--no-cut-detection", action="store_true", help="read flow across hard cuts as motion")
    p.add_argument("--cut-threshold", type=float, default=1.0, help="lower finds more (softer) cuts")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="module to import first; it registers a flow back-end with motive.motion.register_flow",
    )


def _mask_config(args: argparse.Namespace):
    from motive.motion.mask import MaskConfig
    from motive.motion.run import load_plugins

    load_plugins(args.plugin)
    return MaskConfig(
        flow=args.flow,
        preset=args.preset,
        work_size=args.work_size or None,
        mode=args.mode,
        camera_compensation=args.camera_compensation,
        camera_model=args.camera_model,
        cut_detection=not args.no_cut_detection,
        cut_threshold=args.cut_threshold,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motive", description="Motion attribution for video generation (Motive)."
    )
    parser.add_argument("--version", action="version", version=f"motive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("world", help="generate the synthetic motion world (base/pool/query/eval datasets)")
    p.add_argument(
        "--out", required=True, help="output folder; one dataset folder per split is written inside"
    )
    p.add_argument("--seed", type=int, default=0, help="world seed (same seed, same clips)")
    p.add_argument("--clips", type=int, default=200, help="clips per split (default 200)")
    for split in ("base", "pool", "query", "eval"):
        p.add_argument(
            f"--{split}-clips", type=int, default=None, help=f"clips in the {split} split (overrides --clips)"
        )
    p.add_argument("--height", type=int, default=64, help="frame height, multiple of 16")
    p.add_argument("--width", type=int, default=64, help="frame width, multiple of 16")
    p.add_argument("--frames", type=int, default=17, help="frames per clip, 4n+1")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the written clips")
    p.add_argument(
        "--variable-length", action="store_true", help="vary clip length around --frames (4n+1 values)"
    )
    p.add_argument(
        "--pan-fraction", type=float, default=0.15, help="share of base/pool clips with an added camera pan"
    )
    p.add_argument("--motions", default="", help="comma-separated subset of motions (default: all ten)")
    _finish(p, _cmd_world)

    p = sub.add_parser(
        "pretrain", help="pretrain the tiny Wan demo model on a dataset (the world's base split)"
    )
    p.add_argument("--data", required=True, help="dataset folder with metadata.csv")
    p.add_argument("--out", required=True, help="model folder to write (a diffusers WanPipeline)")
    p.add_argument("--steps", type=int, default=2500, help="transformer training steps (default 2500)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per step")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of the transformer")
    p.add_argument("--vae-steps", type=int, default=300, help="autoencoder steps of the tiny VAE")
    p.add_argument("--dim", type=int, default=128, help="transformer hidden size")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--layers", type=int, default=4, help="transformer blocks")
    p.add_argument("--ffn", type=int, default=256, help="feed-forward size")
    p.add_argument("--samples", type=int, default=4, help="sample videos to generate at the end")
    p.add_argument("--eval-data", default=None, help="held-out labelled dataset for the motion-word check")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--force", action="store_true", help="retrain even if --out holds a finished model")
    _finish(p, _cmd_pretrain)

    p = sub.add_parser("featurize", help="per-clip projected gradients of a dataset into a feature store")
    p.add_argument("--model", required=True, help="diffusers WanPipeline folder (or cached hub id)")
    p.add_argument("--data", required=True, help="dataset folder with metadata.csv")
    p.add_argument("--out", required=True, help="feature store folder to write")
    p.add_argument("--sigma", type=float, default=0.751, help="fixed noise level σ (paper: t = 751)")
    p.add_argument("--noise-seed", type=int, default=0, help="seed of the shared noise tensor(s) ε")
    p.add_argument(
        "--noise-draws", type=int, default=1, help="K shared (σ, ε) pairs to average over (paper: 1)"
    )
    p.add_argument("--no-motion-mask", action="store_true", help="W ≡ 1: the paper's 'w/o MM' ablation")
    p.add_argument("--no-frame-norm", action="store_true", help="drop the 1/F frame-length factor")
    p.add_argument(
        "--params", default="", help="comma-separated globs of transformer parameters (default: all)"
    )
    p.add_argument("--proj-dim", type=int, default=512, help="Fastfood output dimension D'")
    p.add_argument("--proj-seed", type=int, default=0, help="Fastfood seed")
    p.add_argument("--max-block", type=int, default=2**16, help="Fastfood block length (a power of two)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16"],
        help="forward/backward precision (paper: bf16)",
    )
    p.add_argument(
        "--regenerate-projection",
        action="store_true",
        help="regenerate the Fastfood randomness per block instead of keeping 5 bytes per parameter "
        "(same vectors; memory flat in model size, ≈2 ms per 65,536 parameters per clip on CPU)",
    )
    _add_mask_args(p)
    p.add_argument("--no-cache", action="store_true", help="do not read/write the per-clip input cache")
    p.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="clips per chunk (VAE batch, vectorised gradient batch, resume unit)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="data-loading processes (default: spare cores, ≤ 4)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a store with other settings at --out")
    p.add_argument("--rank", type=int, default=0, help="this job's rank, for jobs launched without torchrun")
    p.add_argument("--world-size", type=int, default=1, help="number of such jobs (torchrun sets it itself)")
    _finish(p, _cmd_featurize, device=True)

    p = sub.add_parser("store", help="inspect a feature store, or merge the shards of a multi-job run")
    p.add_argument(
        "action", choices=["info", "merge"], help="info: what the store holds; merge: join rank shards"
    )
    p.add_argument("store", help="feature store folder")
    p.add_argument("--json", action="store_true", help="info as JSON")
    p.set_defaults(func=_cmd_store)

    p = sub.add_parser("attribute", help="score a feature store against query clips and select the top clips")
    p.add_argument("--model", required=True, help="the model the store was built with")
    p.add_argument("--store", required=True, help="feature store of the training clips")
    p.add_argument("--queries", required=True, help="dataset folder of query clips")
    p.add_argument("--out", required=True, help="output folder (scores.parquet, selection.csv, bottom.csv)")
    p.add_argument(
        "--method",
        default="motive",
        choices=["motive", "random", "motion_magnitude", "mask_similarity"],
        help="scoring method",
    )
    p.add_argument("--percentile", type=float, default=90.0, help="per-query vote threshold percentile τ_q")
    p.add_argument("--fraction", type=float, default=0.1, help="share of the pool to select")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    _finish(p, _cmd_attribute, device=True)

    p = sub.add_parser("finetune", help="fully fine-tune the transformer on a selection (or a whole dataset)")
    p.add_argument("--model", required=True, help="base model folder")
    p.add_argument("--data", required=True, help="dataset folder the selection's videos live in")
    p.add_argument(
        "--selection", default=None, help="selection.csv from `motive attribute` (default: all clips)"
    )
    p.add_argument("--out", required=True, help="output model folder")
    p.add_argument("--lr", type=float, default=1e-5, help="AdamW learning rate (paper: 1e-5)")
    p.add_argument("--repeat", type=int, default=50, help="times the subset is repeated (paper: 50)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per step")
    p.add_argument("--steps", type=int, default=None, help="exact optimiser steps (overrides --repeat)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    _finish(p, _cmd_finetune)

    p = sub.add_parser(
        "evaluate", help="held-out motion-weighted loss and dynamic degree of one or more models"
    )
    p.add_argument(
        "--model", required=True, nargs="+", help="model folder(s) to compare on the same (σ, ε) grid"
    )
    p.add_argument("--data", required=True, help="held-out dataset (e.g. the world's eval split)")
    p.add_argument(
        "--motions",
        default="",
        help="comma-separated target motions (needs a 'motion' column); the other motions' clips give "
        "other_motion_loss and, against the first --model, target_specificity",
    )
    p.add_argument(
        "--prompts", type=int, default=10, help="prompts to generate videos from for dynamic degree"
    )
    p.add_argument("--steps", type=int, default=25, help="sampling steps")
    p.add_argument("--out", default=None, help="write the JSON results here too")
    _finish(p, _cmd_evaluate, device=True)

    p = sub.add_parser("demo", help="run the whole pipeline on the built-in motion world and tiny model")
    p.add_argument("--out", default="runs/demo", help="run folder (reused between runs)")
    p.add_argument("--seed", type=int, default=0, help="seed of training")
    p.add_argument("--steps", type=int, default=None, help="override pretraining steps")
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="single-threaded worker processes for the fine-tunes and their evaluations (default: one "
        "per core, ≤ 8; 1 = all in this process)",
    )
    p.add_argument(
        "--quick", action="store_true", help="a seconds-long miniature (for tests and smoke checks)"
    )
    _finish(p, _cmd_demo)

    p = sub.add_parser(
        "motion", help="motion masks, camera/cut statistics and previews of videos, frame folders or datasets"
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO_OR_DATASET",
        help="video files, folders of frames (sorted images) or dataset folders with metadata.csv",
    )
    p.add_argument("--out", required=True, help="output folder: one folder per clip plus summary.csv")
    _add_mask_args(p)
    p.add_argument("--latent-stride", type=int, default=8, help="spatial VAE compression of mask.npy")
    p.add_argument("--temporal-stride", type=int, default=4, help="temporal VAE compression of mask.npy")
    p.add_argument("--model", default=None, help="take both strides from this diffusers pipeline folder")
    p.add_argument(
        "--standardise",
        action="store_true",
        help="first bring each clip to --frames/--fps/--height/--width, as featurize does",
    )
    p.add_argument("--frames", type=int, default=81, help="standardised frame count (4n+1)")
    p.add_argument("--fps", type=float, default=16.0, help="standardised frame rate")
    p.add_argument("--height", type=int, default=480, help="standardised height (multiple of 16)")
    p.add_argument("--width", type=int, default=832, help="standardised width (multiple of 16)")
    p.add_argument("--save-flow", action="store_true", help="also write flow.npy [pairs, H, W, 2] float32")
    p.add_argument("--no-preview", action="store_true", help="skip preview.mp4 and contact_sheet.png")
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="recompute clips whose outputs are up to date")
    _finish(p, _cmd_motion)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    from motive.store import StoreError

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, StoreError) as exc:  # our errors carry the file and the reason
        print(f"motive {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
