"""The study's rating page: a small threaded HTTP server, token-checked, that shows one pair at a
time and records each click before it answers."""

from __future__ import annotations

import hmac
import mimetypes
import socket
import sqlite3
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2

from motive.log import logger
from motive.study.records import StudyConfig, connect, judged_pairs, load_study, rater_plan, record_judgment

TEMPLATES = Path(__file__).parents[1] / "templates"
MAX_RATER = 64  # characters of a rater's name or id
CHUNK = 1 << 16


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
    with connect(db) as conn:
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
