"""Command-line options generated from config dataclasses, so each setting is written once.

A dataclass field becomes an option when its metadata has ``help``. The option is ``--field-name``
(or ``metadata["flag"]``); its type comes from the annotation (``int``, ``float``, ``str``, optional
ones, and lists, given comma-separated); ``choices`` and ``required`` come from the metadata. A
``bool`` that defaults to False is a switch that turns it on; one that defaults to True is a switch
``--no-field-name`` that turns it off. A field holding another config dataclass, with
``metadata["nested"]`` = a flag prefix, contributes that dataclass's options.

Options carry no argparse default: a config is built by replacing, on a base instance (the
dataclass's defaults, or e.g. the demo's quick sizes), only the fields given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(element type, is_list) of an annotation, with ``None`` dropped from unions."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    if typing.get_origin(annotation) in (list, tuple):
        return typing.get_args(annotation)[0], True
    return annotation, False


def _csv(kind: Any):
    def parse(text: str) -> list:
        return [kind(x.strip()) for x in text.split(",") if x.strip()]

    parse.__name__ = f"comma-separated {kind.__name__}"
    return parse


def add_options(
    parser: argparse.ArgumentParser,
    cls: type,
    base: Any = None,
    prefix: str = "",
    dest: str = "",
    help_suffix: str | None = None,
) -> None:
    """Add an option for every field of dataclass ``cls`` that has help text (recursing into nested
    configs). ``base`` gives the defaults shown in the help; ``dest`` prefixes the attribute names;
    ``help_suffix`` replaces the shown default (for settings whose default comes from elsewhere)."""
    base = cls() if base is None else base
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta, value = f.metadata, getattr(base, f.name)
        name = dest + f.name
        if "nested" in meta:
            add_options(parser, type(value), value, prefix + meta["nested"], name + ".", help_suffix)
            continue
        if "help" not in meta:
            continue
        kind, is_list = _base_type(hints[f.name])
        if kind is bool:
            flag = meta.get("flag") or f"--{'no-' if value else ''}{prefix}{f.name.replace('_', '-')}"
            action = "store_false" if value else "store_true"
            parser.add_argument(flag, dest=name, action=action, default=argparse.SUPPRESS, help=meta["help"])
            continue
        flag = meta.get("flag") or f"--{prefix}{f.name.replace('_', '-')}"
        shown = ",".join(map(str, value)) if is_list and value is not None else value
        parser.add_argument(
            flag,
            dest=name,
            type=_csv(kind) if is_list else kind,
            choices=meta.get("choices"),
            required=meta.get("required", False),
            default=argparse.SUPPRESS,
            metavar=f.name.upper(),
            help=meta["help"]
            + (
                help_suffix
                if help_suffix is not None
                else ("" if meta.get("required") or value is None else f" (default: {shown})")
            ),
        )


def from_args(base: Any, args: argparse.Namespace, dest: str = "") -> Any:
    """``base`` with every field given on the command line replaced (nested configs too)."""
    changes = {}
    for f in dataclasses.fields(base):
        name = dest + f.name
        if "nested" in f.metadata:
            changes[f.name] = from_args(getattr(base, f.name), args, name + ".")
        elif "help" in f.metadata and hasattr(args, name) and getattr(args, name) != []:
            changes[f.name] = getattr(args, name)  # an empty comma list means: the default
    return dataclasses.replace(base, **changes)
