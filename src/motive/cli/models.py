"""``motive queries``, ``finetune``, ``generate``, ``evaluate`` and ``compare``: the commands that run a
model on clips or prompts besides featurizing."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

from motive.cli.commands import (
    add_format,
    add_plugin_option,
    clip_format,
    describe_format,
    end_group,
    finish,
    format_given,
    generation_format,
    load_model,
    mask_plugins,
    model_format,
    torchrun_group,
)
from motive.cli.options import add_options, from_args
from motive.compare import CompareConfig
from motive.data.standardise import StandardiseTarget
from motive.evaluate import EvalConfig
from motive.finetune import FinetuneConfig
from motive.generate import GenerateConfig
from motive.log import logger
from motive.queries import QueriesConfig


def run_queries(args: argparse.Namespace) -> int:
    from motive.inputs import default_target
    from motive.queries import generate_queries

    model = load_model(args.model, args.device)
    target = clip_format(args, default_target(model))
    table = generate_queries(model, from_args(QueriesConfig(), args), args.out, not args.quiet, target)
    print(
        f"{args.out}: {len(table)} query clips, contact sheets in {Path(args.out) / 'sheets'}; set keep=0 in "
        "metadata.csv for clips that do not show the motion, then `motive attribute --queries` this folder"
    )
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    from motive.finetune import finetune, scored_format
    from motive.models.devices import resolve_device

    config = from_args(FinetuneConfig(), args)
    target = None  # finetune's default: the format the selection was scored at, else the model's
    if format_given(args):
        target = clip_format(args, scored_format(config) or model_format(config.model))
    config = replace(config, device=torchrun_group(resolve_device(config.device)))
    try:
        summary = finetune(config, progress=not args.quiet, target=target)
    finally:
        end_group()
    if summary is not None:  # rank 0
        fmt = describe_format(StandardiseTarget(**summary["format"]))
        print(f"fine-tuned on {summary['clips']} clips at {fmt} for {summary['steps']} steps -> {config.out}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from motive.generate import generate_videos, read_prompts

    prompts = read_prompts(args.prompts)
    config = generation_format(args, from_args(GenerateConfig(), args))
    model = load_model(args.model, args.device)
    table = generate_videos(model, prompts, args.out, config, args.model, progress=not args.quiet)
    print(f"{args.out}: {len(table)} videos of {len(prompts)} prompts (videos.csv, generation.json)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from motive.compare import compare
    from motive.data.dataset import load_dataset
    from motive.evaluate import evaluate, target_specificity
    from motive.inputs import default_target

    mask_plugins(args)  # flow back-ends and interpolators registered by plug-ins
    config = from_args(EvalConfig(), args)
    generate = generation_format(
        argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "fps"}), config.videos.generate
    )
    config = replace(config, videos=replace(config.videos, generate=generate))
    results: dict = {}
    if args.data:
        dataset = load_dataset(args.data)
        wanted = set(args.motions.split(",")) if args.motions else None
        clips = [c for c in dataset if wanted is None or str(c.extra.get("motion")) in wanted]
        other = [c for c in dataset if wanted is not None and str(c.extra.get("motion")) not in wanted]
        prompts = [c.prompt for c in clips][: args.num_prompts]
        firsts = [str(c.video) for c in clips][: len(prompts)]  # prompt i is clip i's (--first-frame)
        tuned = tuned_format(args.model)
        for m in args.model:
            model = load_model(m, args.device)
            target = clip_format(args, tuned or default_target(model))
            logger.info(
                "%s: held-out clips at %s%s",
                m,
                describe_format(target),
                " (the fine-tune's)" if tuned else "",
            )
            results[m] = evaluate(model, clips, prompts, config, other, target, firsts)
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
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(results_table(results), end="")
    if args.out:
        print(f"all figures (and the settings) -> {args.out}")
    return 0


def tuned_format(models: list[str]) -> StandardiseTarget | None:
    """The clip format the first fine-tune among ``models`` was trained at (its ``finetune.json``):
    every model is evaluated at it, so a fine-tune from a reduced-format attribution is compared with
    its base at that format."""
    for m in models:
        summary = Path(m) / "finetune.json"
        if summary.is_file() and "format" in (data := json.loads(summary.read_text())):
            return StandardiseTarget(**data["format"])
    return None


def results_table(results: dict) -> str:
    """``evaluate``'s figures as a Markdown table: one row per model (or video folder), one column per
    figure."""
    rows = {
        m: {k: v for k, v in r.items() if isinstance(v, float)} for m, r in results.items() if m != "videos"
    }
    for name, dims in results.get("videos", {}).items():
        rows[name] = {f"{d} (mean)": v["mean"] for d, v in dims.items()}
    columns = list(dict.fromkeys(k for r in rows.values() for k in r))
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, r in rows.items():
        cells = ["" if k not in r or math.isnan(r[k]) else f"{r[k]:.5g}" for k in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_compare(args: argparse.Namespace) -> int:
    from motive.compare import compare

    mask_plugins(args)  # flow back-ends and interpolators registered by plug-ins
    config = from_args(CompareConfig(), args)
    config = replace(config, generate=generation_format(args, config.generate))
    compare(args.models, args.prompts, args.out, config, args.device, progress=not args.quiet)
    print((Path(args.out) / "comparison.md").read_text(), end="")
    print(f"{args.out}: comparison.json, comparison.png, scores.csv, index.html")
    return 0


def options_queries(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the model to generate with (the one you attribute)")
    p.add_argument("--out", required=True, help="dataset folder to write (queries/, sheets/, metadata.csv)")
    add_options(p, QueriesConfig)
    add_format(p)
    finish(p, run_queries, device=True)


def options_finetune(p: argparse.ArgumentParser) -> None:
    add_options(p, FinetuneConfig)
    add_format(p)
    finish(p, run_finetune)


def options_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder (or hub id in the local cache)")
    p.add_argument(
        "--prompts", required=True, help="prompt list: .txt (one per line) or .csv (prompt, category)"
    )
    p.add_argument("--out", required=True, help="output folder (videos/, videos.csv, generation.json)")
    add_options(p, GenerateConfig)
    add_format(p)
    finish(p, run_generate, device=True)


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
        "--num-prompts",
        type=int,
        default=10,
        help="how many of --data's prompts to generate videos from for the dimensions",
    )
    p.add_argument(
        "--prompts",
        "--prompt-list",
        dest="prompt_list",
        default=None,
        help="VBench-style: generate --per-prompt videos of each prompt of this list (.txt/.csv) with every "
        "--model and score them (mean, 95%% CI; videos and comparison in --video-out)",
    )
    p.add_argument("--videos", nargs="+", default=[], help="folders of videos to score (no model needed)")
    p.add_argument(
        "--video-out", default="runs/evaluate", help="folder for generated videos and their scores"
    )
    p.add_argument("--out", default=None, help="write every figure, with the settings, as JSON here")
    add_options(p, EvalConfig)
    add_format(p)
    add_plugin_option(p)
    finish(p, run_evaluate, device=True)


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
    add_format(p)
    add_plugin_option(p)
    finish(p, run_compare, device=True)
