"""The ``motive`` command: a thin layer that parses arguments and calls the Python API.

Every setting's flag, type, choices, default and help come from its config dataclass
(``motive.cli.options``). The subcommands' options and handlers live in ``motive.cli.commands``,
imported only once a subcommand is chosen, so ``motive --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from motive import __version__

COMMANDS = {
    "world": "generate the synthetic motion world (base/pool/query/eval datasets)",
    "pretrain": "pretrain the tiny Wan demo model on a dataset (the world's base split)",
    "featurize": "per-clip projected gradients of a dataset into a feature store",
    "store": "inspect a feature store, or merge the shards of a multi-job run",
    "queries": "generate query clips from motion prompts with your model (a dataset folder to screen)",
    "attribute": "score a feature store against query clips and select the top clips",
    "report": "write (again) the HTML report of an attribution folder",
    "finetune": "fine-tune the transformer (full or LoRA) on a selection (or a whole dataset)",
    "export": "write a selection as a DiffSynth-Studio or finetrainers dataset folder",
    "generate": "videos from a prompt list with a model (N per prompt, fixed seeds), for evaluation and the study",
    "evaluate": "held-out motion-weighted loss and VBench-rule dimensions of one or more models",
    "compare": "the paper's Table 1 for any models: VBench-rule dimensions with CIs, a plot, videos side by side",
    "demo": "run the whole pipeline on the built-in motion world and tiny model",
    "motion": "motion masks, camera/cut statistics and previews of videos, frame folders or datasets",
    "study": "blind pairwise human-preference study of two models' videos: serve the page, report Table 2",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the options of ``command`` only (of every subcommand when None)."""
    parser = argparse.ArgumentParser(
        prog="motive", description="Motion attribution for video generation (Motive)."
    )
    parser.add_argument("--version", action="version", version=f"motive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_ in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if command in (None, name):
            commands = importlib.import_module("motive.cli.commands")
            getattr(commands, f"options_{name}")(p)
    return parser


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((a for a in argv if a in COMMANDS), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = _chosen(argv)
    args = build_parser(chosen or "").parse_args(argv)
    from motive.cli.commands import quiet_libraries
    from motive.log import configure
    from motive.store import StoreError

    quiet_libraries()
    configure(-1 if getattr(args, "quiet", False) else int(getattr(args, "verbose", False)))
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, StoreError) as exc:  # our errors carry the file and the reason
        print(f"motive {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
