"""The ``motive`` command: a thin layer that parses arguments and calls the Python API.

Every setting's flag, type, choices, default and help come from its config dataclass
(``motive.cli.options``). The subcommands' options and handlers live in the modules ``COMMANDS``
names, imported only once a subcommand is chosen, so ``motive --help`` answers at once; before that,
``motive.cli.checks`` checks the command's inputs without importing torch or diffusers.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
import time

from motive import __version__

COMMANDS = {  # name: (help, the module that holds its options and handler)
    "world": ("generate the synthetic motion world (base/pool/query/eval datasets)", "demo"),
    "pretrain": ("pretrain the tiny Wan demo model on a dataset (the world's base split)", "demo"),
    "featurize": ("per-clip projected gradients of a dataset into a feature store", "stores"),
    "store": ("inspect a feature store, or merge the shards of a multi-job run", "stores"),
    "queries": (
        "generate query clips from motion prompts with your model (a dataset folder to screen)",
        "models",
    ),
    "attribute": ("score a feature store against query clips and select the top clips", "stores"),
    "report": ("write (again) the HTML report of an attribution folder", "stores"),
    "finetune": ("fine-tune the transformer (full or LoRA) on a selection (or a whole dataset)", "models"),
    "export": ("write a selection as a DiffSynth-Studio or finetrainers dataset folder", "stores"),
    "generate": (
        "videos from a prompt list with a model (N per prompt, fixed seeds), for evaluation and the study",
        "models",
    ),
    "evaluate": ("held-out motion-weighted loss and VBench-rule dimensions of one or more models", "models"),
    "compare": (
        "the paper's Table 1 for any models: VBench-rule dimensions with CIs, a plot, videos side by side",
        "models",
    ),
    "demo": ("run the whole pipeline on the built-in motion world and tiny model", "demo"),
    "motion": (
        "motion masks, camera/cut statistics and previews of videos, frame folders or datasets",
        "motion",
    ),
    "study": (
        "blind pairwise human-preference study of two models' videos: serve the page, report Table 2",
        "study",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the options of ``command`` only (of every subcommand when None)."""
    parser = argparse.ArgumentParser(
        prog="motive", description="Motion attribution for video generation (Motive)."
    )
    parser.add_argument("--version", action="version", version=f"motive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_, module) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if command in (None, name):
            commands = importlib.import_module(f"motive.cli.{module}")
            getattr(commands, f"options_{name}")(p)
    return parser


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((a for a in argv if a in COMMANDS), None)


def _parse(parser: argparse.ArgumentParser, argv: list[str], chosen: str | None) -> argparse.Namespace:
    """``parser.parse_args``, but an unknown option of a subcommand gets that subcommand's usage and the
    nearest option it has (``--lora_rank``: did you mean ``--lora-rank``?)."""
    args, unknown = parser.parse_known_args(argv)
    if not unknown:
        return args
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[chosen]
    flags = [f for a in sub._actions for f in a.option_strings]
    word = unknown[0].split("=")[0]
    near = difflib.get_close_matches(word.replace("_", "-"), flags, n=1, cutoff=0.6)
    sub.error(f"unrecognized argument {unknown[0]}" + (f"; did you mean {near[0]}?" if near else ""))
    raise AssertionError("unreachable")  # argparse's error exits


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = _chosen(argv)
    from motive.log import configure, logger

    configure(-1 if {"-q", "--quiet"} & set(argv) else int(bool({"-v", "--verbose"} & set(argv))))
    if chosen and not {"-h", "--help"} & set(argv):
        from motive.cli.checks import check_inputs

        start = time.perf_counter()
        logger.info("%s: checking the inputs", chosen)
        try:
            check_inputs(chosen, argv)  # before torch and diffusers are imported: a typo costs a second
        except (ValueError, FileNotFoundError) as exc:
            print(f"motive {chosen}: error: {exc}", file=sys.stderr)
            return 2
        logger.debug("%s: inputs checked in %.2f s; loading libraries", chosen, time.perf_counter() - start)
    args = _parse(build_parser(chosen or ""), argv, chosen)
    from motive.cli.commands import quiet_libraries
    from motive.store import StoreError

    quiet_libraries()
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, StoreError) as exc:  # our errors carry the file and the reason
        print(f"motive {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"motive {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
