"""``motive motion``: motion masks, statistics and previews of real footage."""

from __future__ import annotations

import argparse
from dataclasses import replace

from motive.cli.commands import add_format, add_plugin_option, finish, format_given, mask_plugins
from motive.cli.options import add_options, from_args
from motive.data.standardise import StandardiseTarget
from motive.motion.export import RunOptions
from motive.motion.mask import MaskConfig


def run_motion(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from motive.motion.export import run_motion, strides_from_model

    plugins = mask_plugins(args)
    config = from_args(MaskConfig(), args)
    options = from_args(RunOptions(), args)
    if args.model:
        spatial, temporal = strides_from_model(args.model)
        options = replace(options, spatial_stride=spatial, temporal_stride=temporal)
    if args.standardise or format_given(args):  # a format flag means: mask the clip in that format
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


def options_motion(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO_OR_DATASET",
        help="video files, folders of frames (sorted images) or dataset folders with metadata.csv",
    )
    p.add_argument("--out", required=True, help="output folder: one folder per clip plus summary.csv")
    add_options(p, MaskConfig)
    add_plugin_option(p)
    add_options(p, RunOptions)
    p.add_argument("--model", default=None, help="take both strides from this diffusers pipeline folder")
    p.add_argument(
        "--standardise",
        action="store_true",
        help="first bring each clip to the clip format, as featurize does (81×480×832 at 16 fps unless "
        "--frames/--fps/--height/--width say otherwise; giving any of them implies --standardise)",
    )
    add_format(p)
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="recompute clips whose outputs are up to date")
    finish(p, run_motion)
