"""Each command's inputs checked before torch and diffusers are imported or a model is loaded.

Importing diffusers takes seconds and loading a large model minutes, so a missing folder, a dataset
without a ``prompt`` column, an unfinished store or a flag combination that cannot work is reported
at once instead. Only what can be known from the files is checked here (the same functions the
stages call later); what needs the model (its fingerprint against a store's) is checked when it loads.
Positional arguments are left to the full parser: without every option known they are ambiguous.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def check_model(path: str) -> None:
    """A pipeline folder (``model_index.json``), a fine-tune output (``motive.json``), or a hub id that
    is in the local Hugging Face cache (nothing is downloaded)."""
    local = Path(path)
    if local.is_dir():
        if not ((local / "model_index.json").is_file() or (local / "motive.json").is_file()):
            raise ValueError(
                f"{path}: not a diffusers pipeline folder (no model_index.json) nor a Motive fine-tune"
            )
        return
    if local.exists():
        raise ValueError(f"{path}: is a file; expected a diffusers pipeline folder")
    if not HUB_ID.match(path):
        raise FileNotFoundError(f"{path}: model folder not found")
    hub = Path(
        os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub"
    )
    if not (hub.expanduser() / f"models--{path.replace('/', '--')}").is_dir():
        raise FileNotFoundError(f"{path}: no such folder, and not in the local Hugging Face cache ({hub})")


def check_store(path: str) -> None:
    """A finished feature store; an unfinished one says how far it got and how to finish it."""
    store = Path(path)
    if (store / "meta.json").is_file():
        return
    if (store / "work").is_dir():
        from motive.store.featurize import saved_clips  # imports torch; only for this message

        done, total = saved_clips(store)
        raise ValueError(
            f"{path}: not finished ({done} of {total} clips saved): rerun the featurize command that "
            "started it (it resumes)"
        )
    raise FileNotFoundError(f"{path}: not a feature store (no meta.json): run `motive featurize` first")


def check_queries(path: str) -> None:
    """A dataset folder of query clips, or a finished store of them."""
    if Path(path, "meta.json").is_file() or Path(path, "work").is_dir():
        check_store(path)
    else:
        from motive.data.dataset import load_dataset  # pandas: a second; only when a table is read

        load_dataset(path)


def _parser(command: str) -> argparse.ArgumentParser:
    """The options of ``command`` that name its inputs (the rest are left to the full parser)."""
    p = argparse.ArgumentParser(prog=f"motive {command}", add_help=False, allow_abbrev=False)
    many = command == "evaluate"
    p.add_argument("--model", nargs="+" if many else None, default=[] if many else None)
    for flag in ("--data", "--selection", "--queries", "--prompts", "--prompt-list", "--out"):
        p.add_argument(flag, default=None)
    p.add_argument("--store", nargs="+", default=[])
    p.add_argument("--videos", nargs="+", default=[])
    return p


def check_inputs(command: str, argv: list[str]) -> None:
    """Raise ``ValueError`` / ``FileNotFoundError`` on the first input of ``command`` that cannot work."""
    args, _ = _parser(command).parse_known_args(argv[argv.index(command) + 1 :])
    models = args.model if isinstance(args.model, list) else [args.model] if args.model else []
    for m in models:
        check_model(m)
    if command == "evaluate":
        prompt_list = args.prompts or args.prompt_list
        if not (args.data or args.videos or prompt_list):
            raise ValueError("nothing to evaluate: give --data (held-out loss), --prompts or --videos")
        if (args.data or prompt_list) and not models:
            raise ValueError("--data and --prompts need --model")
        for folder in args.videos:
            if not Path(folder).is_dir():
                raise FileNotFoundError(f"{folder}: folder of videos not found")
    if command == "attribute":
        for store in args.store:
            check_store(store)
        if args.queries:
            check_queries(args.queries)
    if args.data and command in ("featurize", "finetune", "evaluate"):
        from motive.data.dataset import load_dataset

        load_dataset(args.data, table_path=args.selection)  # every row's path and prompt, no decoding
    if command == "queries" and args.prompts:
        from motive.data.dataset import read_prompt_table

        read_prompt_table(args.prompts)
    if command in ("generate", "compare") and args.prompts:
        from motive.generate import read_prompts

        read_prompts(args.prompts)
    if command == "featurize" and args.out and Path(args.out).is_file():
        raise ValueError(f"{args.out}: is a file; --out is the store folder to write")
