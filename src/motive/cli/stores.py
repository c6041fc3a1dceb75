"""``motive featurize``, ``store``, ``attribute``, ``report`` and ``export``: the feature store and
what is read from it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from motive.attribute import AttributionConfig
from motive.cli.commands import (
    add_format,
    add_plugin_option,
    clip_format,
    describe_format,
    end_group,
    finish,
    format_given,
    load_model,
    mask_plugins,
    ranks_of,
)
from motive.cli.options import add_options, from_args
from motive.data.standardise import StandardiseTarget
from motive.export import ExportConfig
from motive.gradients import GradientConfig
from motive.report import ReportConfig
from motive.store import FeaturizeOptions


def run_featurize(args: argparse.Namespace) -> int:
    from motive.inputs import default_target
    from motive.store import featurize
    from motive.store.featurize import saved_clips

    plugins = mask_plugins(args)
    config = from_args(GradientConfig(), args)
    options = replace(from_args(FeaturizeOptions(), args), plugins=plugins)
    ranks = ranks_of(args)
    try:
        model = load_model(args.model, args.device, sigma=config.sigma, weights=config.weights)
        target = clip_format(args, default_target(model))  # the model's clip format, flags override it
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
    except KeyboardInterrupt:
        done, total = saved_clips(Path(args.out))
        print(
            f"motive featurize: interrupted; {done} of {total} clips saved in {args.out}; the same command resumes",
            file=sys.stderr,
        )
        return 130
    finally:
        end_group()
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


def run_store(args: argparse.Namespace) -> int:
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


def run_attribute(args: argparse.Namespace) -> int:
    from motive.attribute import attribute
    from motive.store.format import read_meta

    config = from_args(AttributionConfig(), args)
    meta = read_meta(Path(args.store[0]))
    scored = StandardiseTarget(**meta["standardise"])
    if format_given(args) and clip_format(args, scored) != scored:
        raise ValueError(
            f"{args.store[0]} was scored at {describe_format(scored)}; attribute scores the queries at the "
            "store's format (leave out --frames/--fps/--height/--width, or featurize again at the new format)"
        )
    stored = GradientConfig.from_meta(meta)  # the store's expert (A14B) and transformer weights
    model = load_model(args.model, args.device, sigma=stored.sigma, weights=stored.weights)
    result = attribute(model, args.store, args.queries, args.out, config, progress=not args.quiet)
    sel = result["selection"]
    print(f"selected {len(sel.top)} of {len(result['train'])} clips -> {result['paths']['selection']}")
    print(f"scores -> {result['paths']['scores']}; lowest-scored clips -> {result['paths']['bottom']}")
    if "report" in result["paths"]:
        print(f"report -> {result['paths']['report']}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from motive.report import write_report

    print(f"report -> {write_report(args.attribution, from_args(ReportConfig(), args))}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from motive.export import export_selection, selection_source

    target = None
    if format_given(args):
        scored = selection_source(Path(args.selection))[1]
        if scored is None:
            raise ValueError(
                f"{args.selection}: the clip format flags need a selection made by `motive attribute`"
            )
        target = clip_format(args, scored)
    summary = export_selection(
        args.selection, args.out, from_args(ExportConfig(), args), args.data, target, progress=not args.quiet
    )
    print(f"{args.out}: {summary['clips']} clips for {summary['config']['format']}; its flags:")
    print(f"  {summary['trainer_flags']}")
    if summary.get("note"):
        print(f"  {summary['note']}")
    return 0


def options_featurize(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="diffusers WanPipeline folder (or cached hub id)")
    p.add_argument("--data", required=True, help="dataset folder with metadata.csv")
    p.add_argument("--out", required=True, help="feature store folder to write")
    add_options(p, GradientConfig)
    add_options(p, FeaturizeOptions)
    add_format(p)
    add_plugin_option(p)
    p.add_argument("--rank", type=int, default=0, help="this job's rank, for jobs launched without torchrun")
    p.add_argument("--world-size", type=int, default=1, help="number of such jobs (torchrun sets it itself)")
    finish(p, run_featurize, device=True)


def options_store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=["info", "merge"], help="info: what the store holds; merge: join rank shards"
    )
    p.add_argument("store", help="feature store folder")
    p.add_argument("--json", action="store_true", help="info as JSON")
    p.set_defaults(func=run_store)


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
    add_format(p)
    finish(p, run_attribute, device=True)


def options_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("attribution", help="folder written by `motive attribute`")
    add_options(p, ReportConfig)
    finish(p, run_report)


def options_export(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "selection", help="selection.csv from `motive attribute` (or any metadata.csv with --data)"
    )
    p.add_argument("--out", required=True, help="folder to write (videos/ plus the trainer's index files)")
    p.add_argument("--data", default=None, help="dataset folder of the clips (default: the store's)")
    add_options(p, ExportConfig)
    add_format(p)
    finish(p, run_export)
