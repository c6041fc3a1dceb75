"""``motive study``: the blind pairwise human-preference study."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from motive.cli.commands import finish
from motive.cli.options import add_options, from_args
from motive.study import StudyConfig


def run_study(args: argparse.Namespace) -> int:
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
    finish(s, run_study)
    r = sub.add_parser("report", help="wins/ties/losses of A vs B per category and overall, rater agreement")
    r.add_argument("--db", required=True, help="SQLite file of the study")
    r.add_argument("--out", default=None, help="write the report as JSON here too")
    finish(r, run_study)
