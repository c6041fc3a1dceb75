"""The study's records: its settings, the pairs, the SQLite file and each judgment (see the
package docstring for the protocol)."""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from motive.log import logger

OUTCOMES = ("A", "tie", "B")  # a judgment's outcome: model A chosen, a tie, model B chosen


@dataclass
class StudyConfig:
    """How a study is served (host, port, question) and randomised (seed, fixed at creation)."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on (0.0.0.0: all)"})
    port: int = field(default=8765, metadata={"help": "port to listen on (0: any free port)"})
    question: str = field(
        default="Which video shows better motion?", metadata={"help": "the question shown above each pair"}
    )
    seed: int = field(
        default=0,
        metadata={"help": "seed of each rater's pair order and left/right sides (stored with the study)"},
    )
    names: list[str] = field(
        default_factory=lambda: ["A", "B"],
        metadata={"help": "the two models' names in the report, comma-separated (stored with the study)"},
    )


@dataclass(frozen=True)
class Study:
    """A study as stored: its token, randomisation seed, model names and pair ids."""

    token: str
    seed: int
    names: tuple[str, str]
    pair_ids: tuple[int, ...]


# --------------------------------------------------------------------------------------------- storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS study (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL,
    seed INTEGER NOT NULL,
    name_a TEXT NOT NULL,
    name_b TEXT NOT NULL,
    inputs TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
    id INTEGER PRIMARY KEY,
    idx INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    category TEXT NOT NULL,
    video_a TEXT NOT NULL,
    video_b TEXT NOT NULL,
    UNIQUE (idx, seed)
);
CREATE TABLE IF NOT EXISTS judgments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rater TEXT NOT NULL,
    pair_id INTEGER NOT NULL REFERENCES pairs (id),
    left_model TEXT NOT NULL CHECK (left_model IN ('A', 'B')),
    clicked TEXT NOT NULL CHECK (clicked IN ('left', 'tie', 'right')),
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie')),
    created TEXT NOT NULL,
    UNIQUE (rater, pair_id)
);
"""


@contextmanager
def connect(db: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection to the study database (one per thread and request: sqlite3 connections are not
    shared), in WAL mode with full syncs, committed when the block ends without an error."""
    with closing(sqlite3.connect(str(db), timeout=30)) as conn:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{db} is not a study database ({exc})") from exc
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        with conn:
            yield conn


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _pair_rows(
    videos_a: str | Path, videos_b: str | Path, prompts: str | Path | None
) -> list[tuple[int, int, str, str, str, str]]:
    """The pairs ``(index, seed, prompt, category, video_a, video_b)`` of two generated folders,
    sorted by index and seed; errors name what is unpaired, duplicated or missing."""
    from motive.generate import read_prompts, read_videos

    tables = {}
    for label, folder in (("A", videos_a), ("B", videos_b)):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"model {label}'s video folder {folder} does not exist")
        table = read_videos(folder.resolve())
        keys = [(int(i), int(s)) for i, s in zip(table["index"], table["seed"])]
        dups = sorted(k for k, c in Counter(keys).items() if c > 1)
        if dups:
            raise ValueError(f"{folder}: more than one video for (index, seed) {dups[:5]}")
        missing = [v for v in table["video"] if not Path(v).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder}: {len(missing)} listed video(s) missing, e.g. {missing[0]}")
        tables[label] = {k: row for k, (_, row) in zip(keys, table.iterrows())}
    a, b = tables["A"], tables["B"]
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        raise ValueError(
            f"the two folders' videos do not pair by (prompt index, seed): {len(only_a)} only in "
            f"{videos_a} (e.g. {only_a[:3]}), {len(only_b)} only in {videos_b} (e.g. {only_b[:3]}); "
            "generate both with the same prompt list, per_prompt and seed"
        )
    listed = read_prompts(prompts) if prompts is not None else None
    rows = []
    for index, seed in sorted(a):
        ra, rb = a[(index, seed)], b[(index, seed)]
        if listed is not None:
            if not 0 <= index < len(listed):
                raise ValueError(f"{prompts} has {len(listed)} prompts; the videos need index {index}")
            text, category = listed[index].prompt, listed[index].category
        else:
            if ra["prompt"] and rb["prompt"] and ra["prompt"] != rb["prompt"]:
                raise ValueError(
                    f"prompt {index} differs between the folders ({ra['prompt']!r} vs {rb['prompt']!r}); "
                    "they were generated from different prompt lists"
                )
            text, category = ra["prompt"] or rb["prompt"], ra["category"] or rb["category"]
        rows.append((index, seed, str(text), str(category), str(ra["video"]), str(rb["video"])))
    if not rows:
        raise ValueError(f"no videos to pair in {videos_a} and {videos_b}")
    return rows


def create_study(
    db: str | Path,
    videos_a: str | Path,
    videos_b: str | Path,
    prompts: str | Path | None = None,
    names: tuple[str, str] | list[str] = ("A", "B"),
    seed: int = 0,
) -> Study:
    """Create the study in ``db`` from two generated folders (paired by prompt index and seed; prompt
    text and category from ``prompts`` by index when given, else from the folders' ``videos.csv``),
    or reuse the one already there when it was made from the same inputs; other inputs are refused."""
    names = tuple(str(n) for n in names)
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise ValueError(f"a study needs two different model names, got {list(names)}")
    rows = _pair_rows(videos_a, videos_b, prompts)
    inputs = json.dumps({"names": names, "seed": seed, "pairs": rows}, sort_keys=True)
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    with connect(db) as conn:
        conn.executescript(SCHEMA)
        old = conn.execute("SELECT inputs FROM study").fetchone()
        if old is None:
            conn.execute(
                "INSERT INTO study VALUES (1, ?, ?, ?, ?, ?, ?)",
                (secrets.token_urlsafe(24), seed, names[0], names[1], inputs, _now()),
            )
            conn.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?)", [(i + 1, *r) for i, r in enumerate(rows)]
            )
            logger.info("%s: new study of %d pairs", db, len(rows))
        elif old[0] != inputs:
            raise ValueError(
                f"{db} holds a study of other inputs ({_difference(json.loads(old[0]), rows, names, seed)}); "
                "use another --db for a new study"
            )
    return load_study(db)


def _difference(old: dict, rows: list, names: tuple[str, str], seed: int) -> str:
    """What differs between a stored study's inputs and new ones, in words."""
    if tuple(old["names"]) != names:
        return f"model names {old['names']} vs {list(names)}"
    if old["seed"] != seed:
        return f"seed {old['seed']} vs {seed}"
    if len(old["pairs"]) != len(rows):
        return f"{len(old['pairs'])} pairs vs {len(rows)}"
    for was, now in zip(old["pairs"], rows):
        if list(was) != list(now):
            return f"pair (index {now[0]}, seed {now[1]}): {was[2:]} vs {list(now[2:])}"
    return "unknown difference"


def load_study(db: str | Path) -> Study:
    """The study stored in ``db``."""
    if not Path(db).is_file():
        raise FileNotFoundError(f"study database {db} does not exist; `motive study serve` creates it")
    with connect(db) as conn:
        try:
            row = conn.execute("SELECT token, seed, name_a, name_b FROM study").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None:
            raise ValueError(f"{db} holds no study")
        ids = tuple(r[0] for r in conn.execute("SELECT id FROM pairs ORDER BY id"))
    return Study(token=row[0], seed=row[1], names=(row[2], row[3]), pair_ids=ids)


def rater_plan(seed: int, rater: str, pair_ids: tuple[int, ...] | list[int]) -> list[tuple[int, str]]:
    """A rater's ``(pair id, model shown left)`` in the order they see them: shuffled, with each model
    on the left for half the pairs, from a generator seeded by the study seed and the rater's id (a
    string seed is hashed with SHA-512, so the plan is the same in every process)."""
    rng = random.Random(f"motive-study:{seed}:{rater}")
    order = sorted(pair_ids)
    rng.shuffle(order)
    lefts = (["A", "B"] * (len(order) // 2 + 1))[: len(order)]
    rng.shuffle(lefts)
    return list(zip(order, lefts))


def record_judgment(db: str | Path, study: Study, rater: str, pair_id: int, clicked: str) -> bool:
    """Store a rater's judgment of a pair (``clicked``: left, tie or right, mapped to model A/B/tie
    through the rater's plan) and commit it; False when the rater had already judged the pair."""
    if clicked not in ("left", "tie", "right"):
        raise ValueError(f"a judgment is left, tie or right, got {clicked!r}")
    lefts = dict(rater_plan(study.seed, rater, study.pair_ids))
    if pair_id not in lefts:
        raise ValueError(f"the study has no pair {pair_id}")
    left = lefts[pair_id]
    right = "B" if left == "A" else "A"
    choice = {"left": left, "right": right, "tie": "tie"}[clicked]
    with connect(db) as conn:
        cur = conn.execute(
            "INSERT OR IGNORE INTO judgments (rater, pair_id, left_model, clicked, choice, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (rater, pair_id, left, clicked, choice, _now()),
        )
        return cur.rowcount == 1


def judged_pairs(db: str | Path, rater: str) -> set[int]:
    """The pair ids ``rater`` has judged."""
    with connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT pair_id FROM judgments WHERE rater = ?", (rater,))}
