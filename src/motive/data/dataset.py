"""Dataset folders: ``metadata.csv`` (or ``metadata.jsonl``) with ``video`` and ``prompt`` columns.

This is the DiffSynth-Studio convention users already have. Paths are relative to the folder and must
stay inside it. A scan collects every problem (missing file, undecodable, zero frames, missing prompt,
path escaping the folder) and reports them together instead of stopping at the first. An optional
``keep`` column drops the rows where it is 0/false/no (e.g. generated queries that were screened out).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from motive.data.video import VideoError, read_video

METADATA_FILES = ("metadata.csv", "metadata.jsonl")
DROPPED = {"0", "false", "no", "n", "0.0"}  # values of an optional ``keep`` column that leave a row out


@dataclass
class Clip:
    """One dataset row: ``video`` is the resolved path, ``extra`` the other columns (labels etc.)."""

    index: int
    video: Path
    prompt: str
    relpath: str
    extra: dict = field(default_factory=dict)


@dataclass
class Problem:
    """One bad row: where it is and why it is bad."""

    row: int | None  # the line of the metadata file (1 = a CSV's header), None: the whole dataset
    file: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.row}" if self.row is not None else "dataset"
        return f"{where}: {self.file}: {self.reason}"


class DatasetError(ValueError):
    """A dataset has problems; ``problems`` lists all of them."""

    def __init__(self, root: Path, problems: list[Problem]):
        self.root = root
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"dataset {root} has {len(problems)} problem(s):\n{lines}{more}")


@dataclass
class Dataset:
    """A dataset folder: its root, the metadata table and the parsed clips."""

    root: Path
    table: pd.DataFrame
    clips: list[Clip]

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)


def metadata_path(root: str | Path) -> Path:
    """The metadata file of a dataset folder (csv preferred over jsonl)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, [Problem(None, str(root), "dataset folder not found")])
    for name in METADATA_FILES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(root, [Problem(None, str(root), "no metadata.csv or metadata.jsonl in the folder")])


def read_table(path: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Read metadata.csv / metadata.jsonl as a strings-preserving table, with a problem for each line
    that cannot be read (the others are kept, so every bad line is reported at once)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return pd.DataFrame(), [
            Problem(None, str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8")
        ]
    if path.suffix == ".jsonl":
        rows, problems, lines = [], [], []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(None, f"{path}:{n}", f"not valid JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict):
                problems.append(Problem(None, f"{path}:{n}", "not a JSON object"))
                continue
            rows.append(row)
            lines.append(n)
        table = pd.DataFrame(rows)
        table.attrs["lines"] = lines
        return table, problems
    try:
        table = pd.read_csv(io.StringIO(text), keep_default_na=False, dtype={"video": str, "prompt": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return pd.DataFrame(), [Problem(None, str(path), f"not a readable CSV table ({str(exc).strip()})")]
    table.attrs["lines"] = [i + 2 for i in range(len(table))]  # line 1 is the header
    return table, []


def _line(table: pd.DataFrame, i: int) -> int:
    """The metadata file's line of table row ``i`` (rows of a CSV holding quoted line breaks: their
    first line counts as one)."""
    lines = table.attrs.get("lines") or []
    return lines[i] if i < len(lines) else i + 2


def scan_dataset(
    root: str | Path, decode: bool = True, table_path: str | Path | None = None
) -> tuple[Dataset, list[Problem]]:
    """Parse a dataset folder and check every row; returns the good clips and all problems found.

    ``decode=True`` also opens each clip and decodes its first frame (catching undecodable files and
    clips with zero frames); ``decode=False`` only checks paths and prompts. ``table_path`` reads the
    rows from another table (e.g. a ``selection.csv``) while resolving videos inside ``root``.
    """
    root = Path(root).resolve()
    meta = Path(table_path) if table_path is not None else metadata_path(root)
    if not meta.is_file():
        return Dataset(root, pd.DataFrame(), []), [Problem(None, str(meta), "table not found")]
    table, problems = read_table(meta)
    missing = [c for c in ("video", "prompt") if c not in table.columns]
    if table.empty and not problems:
        problems.append(Problem(None, str(meta), "no rows: the table lists no clips"))
    elif not table.empty:
        problems += [Problem(None, str(meta), f"missing required column {c!r}") for c in missing]
    if missing or table.empty:
        return Dataset(root, table, []), problems
    clips: list[Clip] = []
    extra_cols = [c for c in table.columns if c not in ("video", "prompt")]
    if "keep" in table.columns and not table.empty:  # rows the user dropped are left out (row numbers stay)
        table = table[~table["keep"].astype(str).str.strip().str.lower().isin(DROPPED)]
        if table.empty:
            problems.append(Problem(None, str(meta), "every row has keep = 0: no clips left"))
            return Dataset(root, table, []), problems
    for i, row in table.iterrows():
        rel = "" if _missing(row["video"]) else str(row["video"]).strip()
        prompt = row["prompt"]
        bad = _check_row(root, rel, prompt, decode)
        if bad:
            problems.append(Problem(_line(table, int(i)), rel or "<empty>", bad))
            continue
        extra = {c: row[c] for c in extra_cols}
        clips.append(Clip(int(i), _inside(root, rel), str(prompt).strip(), rel, extra))
    return Dataset(root, table, clips), problems


def _inside(root: Path, rel: str) -> Path:
    """``root/rel`` normalised lexically: ``..`` cannot climb out, but symlinks the user placed inside
    the folder are followed (resolving them would wrongly call a linked video folder an escape)."""
    return Path(os.path.normpath(root / rel))


def _missing(value: object) -> bool:
    """A cell with no value (JSON null, or a column a JSONL row leaves out)."""
    return value is None or (isinstance(value, float) and pd.isna(value))


def _check_row(root: Path, rel: str, prompt: object, decode: bool) -> str | None:
    """Reason this row is unusable, or None."""
    if not rel:
        return "empty video path"
    path = _inside(root, rel)
    if not path.is_relative_to(root):
        return "path escapes the dataset folder"
    if _missing(prompt) or not str(prompt).strip():
        return "missing prompt"
    if not path.exists():
        return "file not found"
    if not (path.is_file() or path.is_dir()):  # never opened: reading a named pipe would block forever
        return "not a regular file or a folder of frames (a pipe, socket or device)"
    if decode:
        try:
            read_video(path, max_frames=1)
        except VideoError as exc:
            return exc.reason
    return None


def load_dataset(root: str | Path, decode: bool = False, table_path: str | Path | None = None) -> Dataset:
    """Parse a dataset folder (or another table of its clips); raise ``DatasetError`` listing every
    problem if there is any."""
    dataset, problems = scan_dataset(root, decode=decode, table_path=table_path)
    if problems:
        raise DatasetError(dataset.root, problems)
    return dataset


def first_per_label(clips: list[Clip], key: str, per_label: int, exclude: tuple[str, ...] = ()) -> list[Clip]:
    """The first ``per_label`` clips (dataset order) of every value of label ``key`` in ``clip.extra``,
    skipping clips without that label and the values in ``exclude``."""
    taken: dict[str, int] = {}
    chosen = []
    for c in clips:
        value = c.extra.get(key)
        if value is None or value in exclude or taken.get(value, 0) >= per_label:
            continue
        taken[value] = taken.get(value, 0) + 1
        chosen.append(c)
    return chosen


def read_prompt_table(path: str | Path) -> pd.DataFrame:
    """A prompts table (csv or jsonl, like a dataset's metadata: a ``prompt`` column, other columns
    kept); one row per prompt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prompts file not found")
    table, problems = read_table(path)
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    if "prompt" not in table.columns or table.empty:
        raise ValueError(f"{path}: needs a 'prompt' column and at least one row")
    if (table["prompt"].astype(str).str.strip() == "").any():
        raise ValueError(f"{path}: a row has an empty prompt")
    return table
