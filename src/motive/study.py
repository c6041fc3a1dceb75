"""A pairwise human-preference study of two models' videos (the paper's Table 2).

Protocol. Two generated folders (``motive.generate``'s layout) are paired by (prompt index, seed):
the same prompt and the same noise seed, so a pair differs only in the model. A rater opens the
invite link (it carries the study's random token; every request without it is refused with 403),
gives a name or id, and sees one pair at a time: the prompt as text, the two videos side by side
(looping, muted), and three buttons: left better, about the same, right better.

What is randomised, per rater and reproducibly from the study seed and the rater's id (so a reload,
or a restarted server, shows the same next pair): the order of the pairs, and which model is shown
on the left, balanced so that each model is on the left for half of the rater's pairs (±1). The
page never names the models; videos are fetched by pair id and screen side only, and the server
maps the side to the model.

What is stored (SQLite, WAL, each judgment committed before the next page is sent, so killing the
server loses nothing): the pairs (index, seed, prompt, category, both video paths), the study's
token, seed and model names, and one row per (rater, pair): the model shown on the left, the side
clicked, the choice mapped back to model A, model B or a tie, and the UTC time. A rater's first
judgment of a pair stands; a resubmission is ignored. A rater who comes back continues at their
first unjudged pair.

The report counts judgments (rater × pair) from model A's point of view: wins (A chosen), ties and
losses (B chosen), per prompt category and overall, each with its percentage and a 95% Wilson score
interval for that proportion (judgments treated as independent Bernoulli trials):
``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with z = 1.95996. Rater agreement uses
the pairs judged by two or more raters: pairwise percent agreement (per pair, the share of rater
pairs that gave the same outcome, averaged over pairs) and Fleiss' kappa over the three outcomes
(with per-pair rater counts allowed to differ: outcome shares pooled over all their judgments).
"""

from __future__ import annotations

import hmac
import json
import math
import mimetypes
import random
import secrets
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2

from motive.log import logger

TEMPLATES = Path(__file__).parent / "templates"
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
OUTCOMES = ("A", "tie", "B")  # a judgment's outcome: model A chosen, a tie, model B chosen
MAX_RATER = 64  # characters of a rater's name or id
CHUNK = 1 << 16


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
def _connect(db: str | Path) -> Iterator[sqlite3.Connection]:
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
    with _connect(db) as conn:
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
    with _connect(db) as conn:
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
    with _connect(db) as conn:
        cur = conn.execute(
            "INSERT OR IGNORE INTO judgments (rater, pair_id, left_model, clicked, choice, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (rater, pair_id, left, clicked, choice, _now()),
        )
        return cur.rowcount == 1


def judged_pairs(db: str | Path, rater: str) -> set[int]:
    """The pair ids ``rater`` has judged."""
    with _connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT pair_id FROM judgments WHERE rater = ?", (rater,))}


# ---------------------------------------------------------------------------------------------- report


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``k / n`` (default: 95%); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def fleiss_kappa(counts: list[list[int]]) -> float | None:
    """Fleiss' kappa of per-item outcome counts (``counts[i][j]``: raters who put item i in outcome j;
    items need two or more raters, not necessarily the same number). None when it is undefined: no
    items, or every judgment in one outcome (chance agreement 1)."""
    items = [row for row in counts if sum(row) >= 2]
    if not items:
        return None
    total = sum(sum(row) for row in items)
    shares = [sum(row[j] for row in items) / total for j in range(len(items[0]))]
    expected = sum(p * p for p in shares)
    observed = _mean_agreement(items)
    if expected >= 1 - 1e-12:
        return None
    return (observed - expected) / (1 - expected)


def _mean_agreement(items: list[list[int]]) -> float:
    """Per item, the share of rater pairs that agree, averaged over items (Fleiss' P-bar)."""
    return sum((sum(c * c for c in row) - sum(row)) / (sum(row) * (sum(row) - 1)) for row in items) / len(
        items
    )


def _cell(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(k, n)
    return {
        "count": k,
        "pct": 100 * k / n if n else None,
        "ci95_pct": [100 * lo, 100 * hi] if n else None,
    }


def _row(outcomes: list[str]) -> dict[str, Any]:
    n = len(outcomes)
    return {
        "n": n,
        "wins": _cell(outcomes.count("A"), n),
        "ties": _cell(outcomes.count("tie"), n),
        "losses": _cell(outcomes.count("B"), n),
    }


def study_report(db: str | Path) -> dict[str, Any]:
    """Table 2: model A against model B from A's point of view (wins, ties, losses with percentages
    and 95% Wilson intervals) per category and overall, plus rater agreement on multiply judged pairs."""
    study = load_study(db)
    with _connect(db) as conn:
        rows = conn.execute(
            "SELECT j.pair_id, j.rater, j.choice, p.category FROM judgments j JOIN pairs p ON p.id = j.pair_id "
            "ORDER BY j.id"
        ).fetchall()
    by_category: dict[str, list[str]] = {}
    by_pair: dict[int, list[str]] = {}
    for pair_id, _rater, choice, category in rows:
        by_category.setdefault(category, []).append(choice)
        by_pair.setdefault(pair_id, []).append(choice)
    multi = [[outs.count(o) for o in OUTCOMES] for outs in by_pair.values() if len(outs) >= 2]
    categories = {}  # none when no pair has a category; else every category, "(none)" for the rest
    if any(by_category):
        categories = {c or "(none)": _row(by_category[c]) for c in sorted(by_category)}
    return {
        "models": {"A": study.names[0], "B": study.names[1]},
        "pairs": len(study.pair_ids),
        "pairs_judged": len(by_pair),
        "raters": len({r[1] for r in rows}),
        "judgments": len(rows),
        "interval": "95% Wilson score interval of each proportion, judgments as independent trials",
        "overall": _row([r[2] for r in rows]),
        "categories": categories,
        "agreement": {
            "pairs": len(multi),
            "percent_agreement": 100 * _mean_agreement(multi) if multi else None,
            "fleiss_kappa": fleiss_kappa(multi),
            "outcomes": list(OUTCOMES),
        },
    }


def _fmt(cell: dict[str, Any]) -> str:
    if cell["pct"] is None:
        return "0"
    lo, hi = cell["ci95_pct"]
    return f"{cell['count']} ({cell['pct']:.1f}% [{lo:.1f}, {hi:.1f}])"


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table (one row per category, then overall) and an agreement line."""
    a, b = report["models"]["A"], report["models"]["B"]
    lines = [
        f"**{a}** vs **{b}**: {report['judgments']} judgments by {report['raters']} rater(s) of "
        f"{report['pairs_judged']}/{report['pairs']} pairs; count (% [95% Wilson CI])",
        "",
        f"| category | n | {a} wins | tie | {b} wins |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows = [*report["categories"].items(), ("**overall**", report["overall"])]
    for name, row in rows:
        cells = " | ".join(_fmt(row[k]) for k in ("wins", "ties", "losses"))
        lines.append(f"| {name} | {row['n']} | {cells} |")
    agree = report["agreement"]
    if agree["pairs"]:
        kappa = "n/a" if agree["fleiss_kappa"] is None else f"{agree['fleiss_kappa']:.3f}"
        lines.append(
            f"\nRater agreement on {agree['pairs']} pair(s) judged by 2+ raters: "
            f"{agree['percent_agreement']:.1f}% pairwise agreement, Fleiss' kappa {kappa} (3 outcomes)"
        )
    else:
        lines.append("\nRater agreement: n/a (no pair judged by 2+ raters)")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- server


class StudyServer(ThreadingHTTPServer):
    """The rating page's HTTP server: the study, its database and templates."""

    daemon_threads = True

    def __init__(self, db: str | Path, config: StudyConfig):
        self.db = Path(db)
        self.config = config
        self.study = load_study(db)
        self.pairs = _load_pairs(self.db)
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        self._plans: dict[str, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()
        super().__init__((config.host, config.port), StudyHandler)

    def plan(self, rater: str) -> list[tuple[int, str]]:
        """The rater's plan (cached)."""
        with self._lock:
            if rater not in self._plans:
                self._plans[rater] = rater_plan(self.study.seed, rater, self.study.pair_ids)
            return self._plans[rater]

    def link(self) -> str:
        """The invite link (with the token)."""
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = socket.getfqdn()
        return f"http://{host}:{self.server_address[1]}/?{urlencode({'token': self.study.token})}"


def _load_pairs(db: Path) -> dict[int, dict[str, Any]]:
    with _connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in conn.execute("SELECT * FROM pairs")}


def _clean_rater(text: str) -> str | None:
    """A rater id as given (trimmed), or None when empty, too long or holding control characters."""
    text = text.strip()
    if not text or len(text) > MAX_RATER or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return text


class StudyHandler(BaseHTTPRequestHandler):
    """Routes: ``/`` (first screen), ``/rate`` (the next pair, or the end), ``POST /judge``, and
    ``/video/<pair>/<left|right>``; every one needs the study token in the query string."""

    server: StudyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("study %s: " + format, self.client_address[0], *args)

    # --- plumbing

    def _query(self) -> tuple[str, dict[str, str]]:
        url = urlsplit(self.path)
        return url.path, {k: v[0] for k, v in parse_qs(url.query).items()}

    def _authorised(self, query: dict[str, str]) -> bool:
        given = query.get("token", "")
        if hmac.compare_digest(given.encode(), self.server.study.token.encode()):
            return True
        self._send(403, "forbidden: this study needs its invite link (with the token)\n", "text/plain")
        return False

    def _send(
        self, status: int, body: str | bytes, kind: str = "text/html", headers: dict | None = None
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; form-action 'self'",
        )
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _redirect(self, path: str, **query: str) -> None:
        self._send(303, "", "text/plain", {"Location": f"{path}?{urlencode(query)}"})

    def _page(self, template: str, **values: Any) -> None:
        values.setdefault("question", self.server.config.question)
        self._send(200, self.server.templates.get_template(template).render(**values))

    # --- routes

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path, query = self._query()
        if not self._authorised(query):
            return
        token = query["token"]
        if path == "/":
            self._page("study_start.html.j2", token=token, error="")
        elif path == "/rate":
            rater = _clean_rater(query.get("rater", ""))
            if rater is None:
                error = f"Please give a name or id (1 to {MAX_RATER} characters)."
                self._page("study_start.html.j2", token=token, error=error)
                return
            self._rate(token, rater)
        elif path.startswith("/video/"):
            self._video(path, query)
        else:
            self._send(404, "not found\n", "text/plain")

    def do_POST(self) -> None:
        path, query = self._query()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 4096)).decode("utf-8", "replace")
        if not self._authorised(query):
            return
        rater = _clean_rater(query.get("rater", ""))
        form = {k: v[0] for k, v in parse_qs(body).items()}
        if path != "/judge" or rater is None:
            self._send(400, "bad request\n", "text/plain")
            return
        try:
            record_judgment(
                self.server.db, self.server.study, rater, int(form.get("pair", "")), form.get("choice", "")
            )
        except ValueError as exc:
            self._send(400, f"bad judgment: {exc}\n", "text/plain")
            return
        self._redirect(
            "/rate", token=query["token"], rater=rater
        )  # POST/redirect/GET: a reload re-posts nothing

    def _rate(self, token: str, rater: str) -> None:
        plan = self.server.plan(rater)
        done = judged_pairs(self.server.db, rater)
        todo = [(pair, left) for pair, left in plan if pair not in done]
        if not todo:
            self._page("study_done.html.j2", rater=rater, judged=len(plan))
            return
        pair_id, _left = todo[0]
        pair = self.server.pairs[pair_id]
        link = {"token": token, "rater": rater}
        self._page(
            "study_pair.html.j2",
            token=token,
            rater=rater,
            pair_id=pair_id,
            position=len(plan) - len(todo) + 1,
            total=len(plan),
            prompt=pair["prompt"],
            category=pair["category"],
            left_src=f"/video/{pair_id}/left?{urlencode(link)}",
            right_src=f"/video/{pair_id}/right?{urlencode(link)}",
            action=f"/judge?{urlencode(link)}",
        )

    def _video(self, path: str, query: dict[str, str]) -> None:
        """A pair's video on one side of the rater's screen, from the paths stored with the pair only
        (nothing in the URL becomes a path); with single byte ranges, for the video element's seeks."""
        parts = path.split("/")
        rater = _clean_rater(query.get("rater", ""))
        if len(parts) != 4 or not parts[2].isdigit() or parts[3] not in ("left", "right") or rater is None:
            self._send(404, "not found\n", "text/plain")
            return
        pair_id = int(parts[2])
        lefts = dict(self.server.plan(rater))
        if pair_id not in lefts:
            self._send(404, "not found\n", "text/plain")
            return
        model = lefts[pair_id] if parts[3] == "left" else ("B" if lefts[pair_id] == "A" else "A")
        file = Path(self.server.pairs[pair_id]["video_a" if model == "A" else "video_b"])
        if not file.is_file():
            self._send(404, "video file missing\n", "text/plain")
            return
        size = file.stat().st_size
        start, end, status = 0, size - 1, 200
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and "," not in wanted:
            first, _, last = wanted[6:].partition("-")
            try:
                if first:
                    start, end = int(first), min(int(last) if last else size - 1, size - 1)
                else:
                    start = max(0, size - int(last))
            except ValueError:
                start, end = 0, size - 1
            if start > end or start >= size:
                self._send(416, "", "text/plain", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", mimetypes.guess_type(file.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "private, max-age=3600")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            with open(file, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the browser dropped a media request: normal
            pass


def make_server(db: str | Path, config: StudyConfig | None = None) -> StudyServer:
    """The study's HTTP server, bound to ``config.host:config.port`` (not yet serving)."""
    return StudyServer(db, config or StudyConfig())


def serve(
    db: str | Path, config: StudyConfig | None = None, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve the study in ``db`` until Ctrl-C; ``on_ready`` gets the invite link once it listens
    (default: printed)."""
    server = make_server(db, config)
    (on_ready or (lambda link: print(link, flush=True)))(server.link())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
