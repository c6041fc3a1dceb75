"""The ``motive`` subcommands: their options (generated from the config dataclasses by
``motive.cli.options``, plus the few that belong to a command) and their handlers, which call the
Python API. Imported only once a subcommand is chosen: the configs pull in torch and diffusers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from motive.attribute import AttributionConfig
from motive.cli.options import add_options, from_args
from motive.compare import CompareConfig
from motive.data.standardise import StandardiseTarget
from motive.demo.config import DemoConfig
from motive.demo.pretrain import PretrainConfig
from motive.demo.world import WorldConfig
from motive.evaluate import EvalConfig
from motive.export import ExportConfig
from motive.finetune import FinetuneConfig
from motive.generate import GenerateConfig
from motive.gradients import GradientConfig
from motive.motion.export import RunOptions
from motive.motion.mask import MaskConfig
from motive.queries import QueriesConfig
from motive.report import ReportConfig
from motive.store import FeaturizeOptions
from motive.study import StudyConfig


def quiet_libraries() -> None:
    """Keep diffusers/transformers from printing per-load progress bars; their warnings still show."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_warning()
    dlog.disable_progress_bar()
    tlog.set_verbosity_warning()
    tlog.disable_progress_bar()


def _load_model(path: str, device: str, sigma: float | None = None, weights: str = "fp32"):
    """The model at ``path`` on ``device`` (``auto``: CUDA when present). With ``sigma``, only the
    expert of a two-expert pipeline that denoises at σ is loaded; ``weights``: the transformer's dtype
    (a key of ``motive.gradients.WEIGHTS``)."""
    from motive.gradients import WEIGHTS
    from motive.models.wan import VideoModel

    return VideoModel.from_pretrained(path, device=device, sigma=sigma, transformer_dtype=WEIGHTS[weights])


def _torchrun_group(device: str) -> str:
    """Under torchrun (WORLD_SIZE > 1), start the process group (NCCL for CUDA tensors with gloo for CPU
    ones on GPUs, gloo on the CPU: ``motive.parallel.group_backend``) and
    return this rank's device (``cuda:LOCAL_RANK``); else ``device`` as is. Warns once when several
    ranks share a CPU."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device
    if device == "cpu" and int(os.environ.get("RANK", "0")) == 0:
        from motive.log import logger

        logger.warning(
            "%d ranks on the CPU share its %d cores: each runs slower; on one machine, one process "
            "with all cores is usually as fast",
            world,
            os.cpu_count() or 1,
        )
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        from motive.parallel import group_backend

        dist.init_process_group(group_backend(device))
    return device


def _end_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _ranks(args: argparse.Namespace):
    """This process's rank: torchrun's process group (started here when WORLD_SIZE > 1), the
    ``--rank/--world-size`` flags of separately launched jobs, or a single process."""
    from motive.models.wan import resolve_device
    from motive.store import Ranks

    args.device = _torchrun_group(resolve_device(args.device))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return Ranks.current()
    if args.world_size > 1:
        if not 0 <= args.rank < args.world_size:
            raise ValueError(f"--rank must be in [0, {args.world_size}), got {args.rank}")
        return Ranks(args.rank, args.world_size)
    return Ranks()


def _mask_plugins(args: argparse.Namespace) -> tuple[str, ...]:
    """Import the ``--plugin`` modules (they register flow back-ends) before a mask config is checked."""
    from motive.motion.flow import load_plugins

    load_plugins(args.plugin)
    return tuple(args.plugin)


def _cmd_world(args: argparse.Namespace) -> int:
    from motive.demo.world import generate_world

    paths = generate_world(from_args(WorldConfig(), args), args.out, progress=not args.quiet)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from motive.demo.pretrain import is_pretrained, pretrain

    config = from_args(PretrainConfig(), args)
    config = replace(config, train=replace(config.train, seed=config.seed))
    if is_pretrained(config.out) and not args.force:
        print(f"{config.out} already holds a pretrained model; use --force to retrain")
        return 0
    summary = pretrain(config, eval_data=args.eval_data, progress=not args.quiet)
    summary.pop("config")
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_featurize(args: argparse.Namespace) -> int:
    from motive.inputs import default_target
    from motive.store import featurize

    plugins = _mask_plugins(args)
    config = from_args(GradientConfig(), args)
    options = replace(from_args(FeaturizeOptions(), args), plugins=plugins)
    ranks = _ranks(args)
    try:
        model = _load_model(args.model, args.device, sigma=config.sigma, weights=config.weights)
        target = from_args(default_target(model), args)  # the model's clip format, flags override it
        store = featurize(
            model,
            args.data,
            args.out,
            config,
            target,
            options=options,
            progress=not args.quiet,
            ranks=ranks,
        )
    finally:
        _end_group()
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
        if ok == 0 and len(store.index):
            print(f"motive featurize: error: no clip of {args.data} could be featurized", file=sys.stderr)
            return 1
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


def _cmd_queries(args: argparse.Namespace) -> int:
    from motive.queries import generate_queries

    table = generate_queries(
        _load_model(args.model, args.device), from_args(QueriesConfig(), args), args.out, not args.quiet
    )
    print(
        f"{args.out}: {len(table)} query clips, contact sheets in {Path(args.out) / 'sheets'}; set keep=0 in "
        "metadata.csv for clips that do not show the motion, then `motive attribute --queries` this folder"
    )
    return 0


def _cmd_attribute(args: argparse.Namespace) -> int:
    from motive.attribute import attribute
    from motive.store.format import read_meta

    config = from_args(AttributionConfig(), args)
    stored = GradientConfig.from_meta(read_meta(Path(args.store[0])))  # the store's expert (A14B), weights
    model = _load_model(args.model, args.device, sigma=stored.sigma, weights=stored.weights)
    result = attribute(model, args.store, args.queries, args.out, config, progress=not args.quiet)
    sel = result["selection"]
    print(f"selected {len(sel.top)} of {len(result['train'])} clips -> {result['paths']['selection']}")
    print(f"scores -> {result['paths']['scores']}; negative influence -> {result['paths']['bottom']}")
    if "report" in result["paths"]:
        print(f"report -> {result['paths']['report']}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from motive.report import write_report

    print(f"report -> {write_report(args.attribution, from_args(ReportConfig(), args))}")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from motive.finetune import finetune
    from motive.models.wan import resolve_device

    config = from_args(FinetuneConfig(), args)
    config = replace(config, device=_torchrun_group(resolve_device(config.device)))
    try:
        summary = finetune(config, progress=not args.quiet)
    finally:
        _end_group()
    if summary is not None:  # rank 0
        print(f"fine-tuned on {summary['clips']} clips for {summary['steps']} steps -> {config.out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from motive.export import export_selection

    summary = export_selection(
        args.selection, args.out, from_args(ExportConfig(), args), args.data, progress=not args.quiet
    )
    print(f"{args.out}: {summary['clips']} clips for {summary['config']['format']}; its flags:")
    print(f"  {summary['trainer_flags']}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from motive.compare import compare
    from motive.data.dataset import load_dataset
    from motive.evaluate import evaluate, target_specificity

    _mask_plugins(args)  # flow back-ends and interpolators registered by plug-ins
    if not (args.data or args.videos or args.prompt_list):
        raise ValueError("nothing to evaluate: give --data (held-out loss), --prompt-list or --videos")
    if (args.data or args.prompt_list) and not args.model:
        raise ValueError("--data and --prompt-list need --model")
    config = from_args(EvalConfig(), args)
    results: dict = {}
    if args.data:
        dataset = load_dataset(args.data)
        wanted = set(args.motions.split(",")) if args.motions else None
        clips = [c for c in dataset if wanted is None or str(c.extra.get("motion")) in wanted]
        other = [c for c in dataset if wanted is not None and str(c.extra.get("motion")) not in wanted]
        prompts = [c.prompt for c in clips][: args.prompts]
        for m in args.model:
            results[m] = evaluate(_load_model(m, args.device), clips, prompts, config, other)
        if other:  # specificity of every model against the first (the base model)
            base = results[args.model[0]]
            for result in results.values():
                result["target_specificity"] = target_specificity(result, base)
    if args.videos or args.prompt_list:  # VBench-style: a prompt list's videos, or folders of videos
        entries = [*(args.model if args.prompt_list else []), *(args.videos or [])]
        table = compare(entries, args.prompt_list, args.video_out, config.videos, args.device, not args.quiet)
        results["videos"] = {
            name: {d: {**v, "backend": table["backends"][d]} for d, v in dims.items()}
            for name, dims in table["summary"].items()
        }
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from motive.generate import generate_videos, read_prompts

    prompts = read_prompts(args.prompts)
    model = _load_model(args.model, args.device)
    config = from_args(GenerateConfig(), args)
    table = generate_videos(model, prompts, args.out, config, args.model, progress=not args.quiet)
    print(f"{args.out}: {len(table)} videos of {len(prompts)} prompts (videos.csv, generation.json)")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from motive.compare import compare

    _mask_plugins(args)  # flow back-ends and interpolators registered by plug-ins
    config = from_args(CompareConfig(), args)
    compare(args.models, args.prompts, args.out, config, args.device, progress=not args.quiet)
    print((Path(args.out) / "comparison.md").read_text(), end="")
    print(f"{args.out}: comparison.json, comparison.png, scores.csv, index.html")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from motive.demo import run_demo

    base = DemoConfig.quick(getattr(args, "out", DemoConfig.out)) if args.quick else DemoConfig()
    run_demo(from_args(base, args), progress=not args.quiet)
    return 0


def _cmd_motion(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from motive.motion.export import run_motion, strides_from_model

    plugins = _mask_plugins(args)
    config = from_args(MaskConfig(), args)
    options = from_args(RunOptions(), args)
    if args.model:
        spatial, temporal = strides_from_model(args.model)
        options = replace(options, spatial_stride=spatial, temporal_stride=temporal)
    if args.standardise:
        options = replace(options, standardise=asdict(from_args(StandardiseTarget(), args)))
    table = run_motion(
        args.inputs,
        args.out,
        config,
        options,
        workers=args.workers,
        plugins=plugins,
        force=args.force,
        progress=not args.quiet,
    )
    done = table["status"] != "error"
    print(f"{args.out}: {int(done.sum())}/{len(table)} clips -> mask.npy, stats.json, previews; summary.csv")
    for _, row in table[~done].iterrows():
        print(f"  failed: {row['source']}: {row['error']}")
    return 0 if done.any() or table.empty else 1


def _cmd_study(args: argparse.Namespace) -> int:
    from motive.study import create_study, report_markdown, serve, study_report

    if args.action == "serve":
        config = from_args(StudyConfig(), args)
        study = create_study(
            args.db, *args.videos, prompts=args.prompts, names=config.names, seed=config.seed
        )
        print(f"{args.db}: {len(study.pair_ids)} pairs of {study.names[0]} (A) vs {study.names[1]} (B)")
        serve(
            args.db, config, on_ready=lambda link: print(f"invite link: {link}\n(Ctrl-C stops)", flush=True)
        )
        return 0
    report = study_report(args.db)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    print(report_markdown(report), end="")
    return 0


def _finish(p: argparse.ArgumentParser, func, device: bool = False) -> None:
    """The options every long-running subcommand shares, and its handler."""
    if device:
        p.add_argument(
            "--device", default="auto", help="torch device (auto: cuda when present, else cpu; cuda:1, ...)"
        )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars; warnings and errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (each stage's steps)")
    p.set_defaults(func=func)


def _add_plugin_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="module to import first; it registers a flow back-end with motive.motion.register_flow",
    )


def options_world(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", required=True, help="output folder; one dataset folder per split is written inside"
    )
    add_options(p, WorldConfig)
    _finish(p, _cmd_world)


def options_pretrain(p: argparse.ArgumentParser) -> None:
    add_options(p, PretrainConfig)
    p.add_argument("--eval-data", default=None, help="held-out labelled dataset for the motion-word check")
    p.add_argument("--force", action="store_true", help="retrain even if --out holds a finished model")
    _finish(p, _cmd_pretrain)


def options_featurize(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="diffusers WanPipeline folder (or cached hub id)")
    p.add_argument("--data", required=True, help="dataset folder with metadata.csv")
    p.add_argument("--out", required=True, help="feature store folder to write")
    add_options(p, GradientConfig)
    add_options(p, FeaturizeOptions)
    add_options(p, StandardiseTarget, help_suffix=" (default: the model's native format)")
    _add_plugin_option(p)
    p.add_argument("--rank", type=int, default=0, help="this job's rank, for jobs launched without torchrun")
    p.add_argument("--world-size", type=int, default=1, help="number of such jobs (torchrun sets it itself)")
    _finish(p, _cmd_featurize, device=True)


def options_store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=["info", "merge"], help="info: what the store holds; merge: join rank shards"
    )
    p.add_argument("store", help="feature store folder")
    p.add_argument("--json", action="store_true", help="info as JSON")
    p.set_defaults(func=_cmd_store)


def options_queries(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the model to generate with (the one you attribute)")
    p.add_argument("--out", required=True, help="dataset folder to write (queries/, sheets/, metadata.csv)")
    add_options(p, QueriesConfig)
    _finish(p, _cmd_queries, device=True)


def options_attribute(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the model the store was built with")
    p.add_argument(
        "--store",
        required=True,
        nargs="+",
        help="feature store of the training clips; several stores of the same clips (e.g. other "
        "attribution seeds) average their scores, an ensemble",
    )
    p.add_argument(
        "--queries",
        required=True,
        help="dataset folder of query clips, or a feature store of them (reused: no gradients computed)",
    )
    p.add_argument("--out", required=True, help="output folder (scores.parquet, selection.csv, bottom.csv)")
    add_options(p, AttributionConfig)
    _finish(p, _cmd_attribute, device=True)


def options_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("attribution", help="folder written by `motive attribute`")
    add_options(p, ReportConfig)
    _finish(p, _cmd_report)


def options_finetune(p: argparse.ArgumentParser) -> None:
    add_options(p, FinetuneConfig)
    _finish(p, _cmd_finetune)


def options_export(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "selection", help="selection.csv from `motive attribute` (or any metadata.csv with --data)"
    )
    p.add_argument("--out", required=True, help="folder to write (videos/ plus the trainer's index files)")
    p.add_argument("--data", default=None, help="dataset folder of the clips (default: the store's)")
    add_options(p, ExportConfig)
    _finish(p, _cmd_export)


def options_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", nargs="+", default=[], help="model folder(s), compared on the same (σ, ε) grid")
    p.add_argument("--data", default=None, help="held-out dataset (e.g. the world's eval split)")
    p.add_argument(
        "--motions",
        default="",
        help="comma-separated target motions (needs a 'motion' column); the other motions' clips give "
        "other_motion_loss and, against the first --model, target_specificity",
    )
    p.add_argument(
        "--prompts", type=int, default=10, help="--data's prompts to generate videos from for the dimensions"
    )
    p.add_argument(
        "--prompt-list",
        default=None,
        help="VBench-style: generate --per-prompt videos of each prompt of this list (.txt/.csv) with every "
        "--model and score them (mean, 95%% CI; videos and comparison in --video-out)",
    )
    p.add_argument("--videos", nargs="+", default=[], help="folders of videos to score (no model needed)")
    p.add_argument(
        "--video-out", default="runs/evaluate", help="folder for generated videos and their scores"
    )
    p.add_argument("--out", default=None, help="write the JSON results here too")
    add_options(p, EvalConfig)
    _add_plugin_option(p)
    _finish(p, _cmd_evaluate, device=True)


def options_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder (or hub id in the local cache)")
    p.add_argument(
        "--prompts", required=True, help="prompt list: .txt (one per line) or .csv (prompt, category)"
    )
    p.add_argument("--out", required=True, help="output folder (videos/, videos.csv, generation.json)")
    add_options(p, GenerateConfig)
    _finish(p, _cmd_generate, device=True)


def options_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "models",
        nargs="+",
        help="models (their videos are generated from --prompts) or folders of generated videos; the "
        "first is the base every other is compared with",
    )
    p.add_argument("--prompts", default=None, help="prompt list: .txt or .csv (prompt, category)")
    p.add_argument("--out", required=True, help="output folder")
    add_options(p, CompareConfig)
    _add_plugin_option(p)
    _finish(p, _cmd_compare, device=True)


def options_demo(p: argparse.ArgumentParser) -> None:
    add_options(p, DemoConfig)
    p.add_argument(
        "--quick", action="store_true", help="a seconds-long miniature (for tests and smoke checks)"
    )
    _finish(p, _cmd_demo)


def options_motion(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO_OR_DATASET",
        help="video files, folders of frames (sorted images) or dataset folders with metadata.csv",
    )
    p.add_argument("--out", required=True, help="output folder: one folder per clip plus summary.csv")
    add_options(p, MaskConfig)
    _add_plugin_option(p)
    add_options(p, RunOptions)
    p.add_argument("--model", default=None, help="take both strides from this diffusers pipeline folder")
    p.add_argument(
        "--standardise",
        action="store_true",
        help="first bring each clip to --frames/--fps/--height/--width, as featurize does",
    )
    add_options(p, StandardiseTarget)
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="recompute clips whose outputs are up to date")
    _finish(p, _cmd_motion)


def options_study(p: argparse.ArgumentParser) -> None:
    p.description = (
        "A blind pairwise preference study of two models' videos of the same prompts and seeds: "
        "`serve` the rating page, then `report` wins/ties/losses with 95% Wilson intervals (Table 2)."
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser(
        "serve",
        help="create (or reuse) the study in --db and serve its rating page",
        description="Pairs the two folders' videos by prompt index and seed, prints the invite link (it "
        "carries the study's token) and serves until Ctrl-C. Example: motive study serve --videos "
        "runs/base runs/tuned --names base,tuned --db study.db",
    )
    s.add_argument(
        "--videos",
        nargs=2,
        required=True,
        metavar=("A", "B"),
        help="the two models' `motive generate` folders",
    )
    s.add_argument(
        "--prompts", default=None, help="prompt list (.txt/.csv) for the text and category by index"
    )
    s.add_argument(
        "--db", required=True, help="SQLite file of the study (created, or reused with the same inputs)"
    )
    add_options(s, StudyConfig)
    _finish(s, _cmd_study)
    r = sub.add_parser("report", help="wins/ties/losses of A vs B per category and overall, rater agreement")
    r.add_argument("--db", required=True, help="SQLite file of the study")
    r.add_argument("--out", default=None, help="write the report as JSON here too")
    _finish(r, _cmd_study)
