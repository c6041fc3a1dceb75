"""``motive report``: one HTML page that shows what an attribution found, for any dataset.

Reads an attribution folder (``scores.parquet``, ``ranking.csv``, ``bottom.csv``, ``attribution.json``)
and the feature store it names, and writes ``report/index.html`` beside them with its pictures in
``report/assets/``: the settings, matplotlib plots of the votes, the score distributions and each
query's share of the selection, the selected and the most negative clips, per query its top and
bottom clips, and the clips worth a second look (decode errors, camera-only motion, cuts, no motion).
Each clip is an animated thumbnail of its first frames with the motion mask over them. Thumbnails are
made only for the clips shown, in parallel, and kept (keyed by file, size and time) for the next run.
The HTML comes from jinja2 templates with autoescaping on, so a prompt is always text, never markup.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from motive.data.dataset import load_dataset
from motive.data.video import read_video, write_video
from motive.flags import clip_flags
from motive.motion.flow import resize_frames, work_shape
from motive.motion.mask import MaskConfig, compute_motion
from motive.motion.preview import overlay
from motive.parallel import exit_with_parent, forkserver_context
from motive.scoring import top_k
from motive.store.format import Store, is_store

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class ReportConfig:
    """What the report shows."""

    top_k: int = field(default=8, metadata={"help": "top and bottom clips shown per query"})
    max_queries: int = field(default=20, metadata={"help": "queries that get a section of their own"})
    shown: int = field(default=24, metadata={"help": "selected and negative-influence clips shown"})
    thumb_size: int = 144  # long side of a thumbnail, pixels
    thumb_frames: int = 16  # first frames of a clip in its thumbnail
    workers: int | None = field(
        default=None, metadata={"help": "thumbnail processes (default: cores, at most 4)"}
    )


def _thumb_key(path: Path, config: ReportConfig) -> str:
    st = path.stat()
    raw = json.dumps(
        [str(path.resolve()), st.st_size, st.st_mtime_ns, config.thumb_size, config.thumb_frames]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def make_thumbnail(src: str, dst: str, size: int, frames: int) -> bool:
    """An animated GIF of ``src``'s first ``frames`` frames with its motion mask over them; False when
    the clip cannot be read (the page then says so instead of showing a picture)."""
    try:
        video = read_video(src, max_frames=frames)
        small = resize_frames(video.frames, work_shape(video.height, video.width, size))  # [F, h, w, 3]
        weights = compute_motion(small, MaskConfig(work_size=None)).weights if len(small) > 1 else None
        shown = overlay(small, weights) if weights is not None else small
        write_video(dst, shown, min(video.fps, 16.0))
        return True
    except Exception:  # a clip that cannot be shown must not stop the report
        return False


def _thumbnails(paths: list[Path], assets: Path, config: ReportConfig) -> dict[Path, str | None]:
    """Thumbnail of every path (relative URL from the page, None when unreadable), cached in ``assets``."""
    out: dict[Path, str | None] = {}
    todo = []
    for path in dict.fromkeys(paths):
        if not path.is_file() and not path.is_dir():
            out[path] = None
            continue
        name = f"thumbs/{_thumb_key(path, config)}.gif"
        out[path] = name if (assets / name).is_file() else None
        if out[path] is None:
            todo.append((path, name))
    (assets / "thumbs").mkdir(parents=True, exist_ok=True)
    args = [(str(p), str(assets / n), config.thumb_size, config.thumb_frames) for p, n in todo]
    workers = min(4, os.cpu_count() or 1) if config.workers is None else config.workers
    if workers > 1 and len(args) >= 8:
        with ProcessPoolExecutor(
            workers, mp_context=forkserver_context(), initializer=exit_with_parent, initargs=(os.getpid(),)
        ) as pool:
            made = list(pool.map(make_thumbnail, *zip(*args)))
    else:
        made = [make_thumbnail(*a) for a in args]
    for (path, name), ok in zip(todo, made):
        out[path] = name if ok else None
    return {p: (f"assets/{n}" if n else None) for p, n in out.items()}


def _plots(
    ranking: pd.DataFrame, scores: pd.DataFrame, thresholds: list[float], selected: set, assets: Path
) -> list:
    """Vote histogram, score distribution per query and each query's votes for the selection (PNGs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    columns = [c for c in scores.columns if c != "video"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(ranking["votes"], bins=np.arange(ranking["votes"].max() + 2) - 0.5, color="#4a7")
    ax.set(xlabel="votes (queries whose top-τ a clip is in)", ylabel="clips", title="Votes per training clip")
    plots.append(_save(fig, assets / "votes.png", "vote histogram"))
    shown = columns[:30]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.boxplot([scores[c].replace(-np.inf, np.nan).dropna() for c in shown], showfliers=False)
    ax.set(
        xlabel="query",
        ylabel="score",
        title="Score distribution per query" + (" (first 30)" if len(columns) > 30 else ""),
    )
    ax.set_xticks(range(1, len(shown) + 1), [str(i) for i in range(len(shown))], fontsize=6)
    plots.append(_save(fig, assets / "scores.png", "score distributions"))
    if len(columns) > 1 and len(thresholds) == len(columns):
        chosen = scores["video"].isin(selected).to_numpy()
        share = [  # a query left out of the vote (threshold null) contributed nothing
            0 if t is None else (scores.loc[chosen, c].to_numpy() > t).sum()
            for c, t in zip(columns, thresholds)
        ]
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.bar(range(len(share)), share, color="#47a")
        ax.set(xlabel="query", ylabel="selected clips it voted for", title="How much each query contributed")
        plots.append(_save(fig, assets / "contribution.png", "votes per query for the selection"))
    return plots


def _save(fig, path: Path, alt: str) -> dict:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"src": f"assets/{path.name}", "alt": alt}


def _settings(meta: dict, summary: dict) -> list[tuple[str, str]]:
    c, g, p, m = summary["config"], meta["gradient"], meta["projection"], meta["gradient"]["mask"]
    return [
        ("method", f"{c['method']} (vote percentile {c['percentile']}, top {c['fraction']:.0%})"),
        (
            "model",
            f"{meta['model']['source']} (fingerprint {meta['model']['fingerprint']}, {meta['model']['parameters']:,} parameters)",
        ),
        ("noise", f"σ = {g['sigma']}, seed {g['noise_seed']}, {g['noise_draws']} draw(s), {g['precision']}"),
        (
            "motion mask",
            f"{'on' if g['use_mask'] else 'off (w/o MM)'}: {m['flow']}/{m['preset']}, work size {m['work_size']}, camera compensation {m['camera_compensation']}, cut detection {m['cut_detection']}",
        ),
        ("projection", f"Fastfood D' = {p['d_out']}, seed {p['seed']}, blocks of {p['max_block']}"),
        (
            "clips",
            f"{meta['standardise']['frames']} frames at {meta['standardise']['fps']} fps, {meta['standardise']['height']}×{meta['standardise']['width']}",
        ),
        ("store", str(summary["store"])),
    ]


def _flags(index: pd.DataFrame, root: Path, out: Path, excluded: list[str]) -> list[dict]:
    """Every flagged or failed clip of the store, for the report's table (``excluded``: the flags the
    attribution kept out of the selection)."""
    flagged = []
    for (_, r), flags in zip(index.iterrows(), clip_flags(index)):
        if r["status"] != "ok":
            flagged.append((r["video"], "decode error", r["error"]))
        for name, detail in flags.items():
            kept_out = " (kept out of the selection)" if name in excluded else ""
            flagged.append((r["video"], name + kept_out, detail))
    return [
        {"video": v, "flag": f, "detail": d, "href": os.path.relpath(root / v, out)} for v, f, d in flagged
    ]


def write_report(attribution: str | Path, config: ReportConfig | None = None) -> Path:
    """Write ``attribution/report/index.html`` (and its assets) for an attribution folder; returns it."""
    config = config or ReportConfig()
    attribution = Path(attribution)
    if not (attribution / "attribution.json").is_file():
        raise FileNotFoundError(f"{attribution}: not an attribution folder (no attribution.json)")
    summary = json.loads((attribution / "attribution.json").read_text())
    store = Store.open(summary["store"])
    train_root = Path(store.meta["data"])
    queries = summary["queries"]
    query_set = load_dataset(Store.open(queries).meta["data"] if is_store(queries) else queries)
    scores = pd.read_parquet(attribution / "scores.parquet")
    ranking = pd.read_csv(attribution / "ranking.csv", keep_default_na=False)
    bottom = pd.read_csv(attribution / "bottom.csv", keep_default_na=False)
    out = attribution / "report"
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)

    by_video = ranking.drop_duplicates("video").set_index("video")
    selected_rows = ranking.head(summary["selected"])
    per_query = [c for c in scores.columns if c != "video"]
    per_query = per_query if len(per_query) == len(query_set) else []  # a query-independent baseline
    queries_shown = list(zip(per_query, query_set.clips))[: config.max_queries]
    tops = {}
    for name, _ in queries_shown:
        values = scores[name].to_numpy(np.float64)
        tops[name] = (scores.iloc[top_k(values, config.top_k)], scores.iloc[top_k(-values, config.top_k)])

    wanted = [train_root / v for v in selected_rows["video"].head(config.shown)]
    wanted += [train_root / v for v in bottom["video"].head(config.shown)]
    wanted += [c.video for _, c in queries_shown]
    for top, low in tops.values():
        wanted += [train_root / v for v in (*top["video"], *low["video"])]
    thumbs = _thumbnails(wanted, assets, config)

    def clip(video: str, root: Path, score=None, prompt: str | None = None) -> dict:
        path = root / video
        row = by_video.loc[video] if video in by_video.index and root == train_root else None
        return {
            "video": video,
            "href": os.path.relpath(path, out),
            "thumb": thumbs.get(path),
            "score": score if score is not None else (float(row["score"]) if row is not None else None),
            "votes": int(row["votes"]) if row is not None else None,
            "prompt": prompt if prompt is not None else (str(row["prompt"]) if row is not None else ""),
        }

    def listed(table: pd.DataFrame, name: str) -> list[dict]:
        return [clip(v, train_root, float(s)) for v, s in zip(table["video"], table[name])]

    sections = [
        {
            "query": clip(q.relpath, query_set.root, prompt=q.prompt),
            "top": listed(tops[name][0], name),
            "bottom": listed(tops[name][1], name),
        }
        for name, q in queries_shown
    ]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = env.get_template("attribution.html.j2").render(
        title=f"Motive attribution: {attribution.name}",
        summary={**summary, "method": summary["config"]["method"]},
        settings=_settings(store.meta, summary),
        plots=_plots(ranking, scores, summary.get("thresholds", []), set(selected_rows["video"]), assets),
        selected=[clip(v, train_root) for v in selected_rows["video"].head(config.shown)],
        negative=[clip(v, train_root) for v in bottom["video"].head(config.shown)],
        queries=sections,
        flagged=_flags(store.index, train_root, out, summary["config"].get("exclude", [])),
        n_queries=len(query_set),
    )
    (out / "index.html").write_text(html)
    return out / "index.html"
