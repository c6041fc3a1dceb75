"""``motive world``, ``pretrain`` and ``demo``: the built-in motion world and tiny model."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from motive.cli.commands import finish
from motive.cli.options import add_options, from_args
from motive.demo.config import DemoConfig
from motive.demo.pretrain import PretrainConfig
from motive.demo.world import WorldConfig


def run_world(args: argparse.Namespace) -> int:
    from motive.demo.render import generate_world

    paths = generate_world(from_args(WorldConfig(), args), args.out, progress=not args.quiet)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
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


def run_demo(args: argparse.Namespace) -> int:
    from motive.demo import run_demo

    base = DemoConfig.quick(getattr(args, "out", DemoConfig.out)) if args.quick else DemoConfig()
    run_demo(from_args(base, args), progress=not args.quiet)
    return 0


def options_world(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", required=True, help="output folder; one dataset folder per split is written inside"
    )
    add_options(p, WorldConfig)
    finish(p, run_world)


def options_pretrain(p: argparse.ArgumentParser) -> None:
    add_options(p, PretrainConfig)
    p.add_argument("--eval-data", default=None, help="held-out labelled dataset for the motion-word check")
    p.add_argument("--force", action="store_true", help="retrain even if --out holds a finished model")
    finish(p, run_pretrain)


def options_demo(p: argparse.ArgumentParser) -> None:
    add_options(p, DemoConfig)
    p.add_argument(
        "--quick", action="store_true", help="a seconds-long miniature (for tests and smoke checks)"
    )
    finish(p, run_demo)
