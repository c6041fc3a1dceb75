"""Self-contained HTML report of a demo run: what attribution found, per query motion, with previews."""

from __future__ import annotations

import base64
import functools
import html
import tempfile
from pathlib import Path

import numpy as np

from motive.data.dataset import Clip, Dataset
from motive.data.video import read_video, write_video
from motive.scoring import majority_vote

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.strip{display:flex;gap:6px;flex-wrap:wrap;margin:4px 0 14px}.clip{font-size:11px;text-align:center;width:104px}
.clip img{width:96px;height:96px;image-rendering:pixelated;border:3px solid #ddd}
.hit img{border-color:#3a3}.miss img{border-color:#c33}h3{margin-bottom:2px}
"""


@functools.lru_cache(maxsize=512)
def _gif_data_uri(path: Path, max_frames: int = 17) -> str:
    video = read_video(path, max_frames=max_frames)
    with tempfile.TemporaryDirectory() as tmp:
        gif = write_video(Path(tmp) / "x.gif", video.frames, video.fps)
        data = base64.b64encode(gif.read_bytes()).decode()
    return f"data:image/gif;base64,{data}"


def _clip_cell(clip: Clip, target_motion: str | None, note: str) -> str:
    motion = str(clip.extra.get("motion", "?"))
    cls = "" if target_motion is None else ("hit" if motion == target_motion else "miss")
    labels = " · ".join(
        str(clip.extra.get(k, "")) for k in ("motion", "colour", "shape", "camera") if k in clip.extra
    )
    return (
        f'<div class="clip {cls}"><img src="{_gif_data_uri(clip.video)}" title="{html.escape(clip.prompt)}">'
        f"<div>{html.escape(labels)}</div><div>{html.escape(note)}</div></div>"
    )


def _table(rows: dict[str, dict], columns: list[tuple[str, str]]) -> str:
    head = "<tr><th>method</th>" + "".join(f"<th>{html.escape(label)}</th>" for _, label in columns) + "</tr>"
    body = ""
    for name, r in rows.items():
        cells = []
        for key, _ in columns:
            v = r.get(key, "")
            std = r.get(f"{key}_std")
            if isinstance(v, float):
                text = f"{v:.4f}" + (f" ± {std:.4f}" if isinstance(std, float) and np.isfinite(std) else "")
            else:
                text = str(v)
            cells.append(f"<td>{text}</td>")
        body += f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>"
    return f"<table>{head}{body}</table>"


def write_report(
    out: Path,
    results: dict,
    pool: Dataset,
    queries: Dataset,
    motive_scores: np.ndarray,
    no_mm_scores: np.ndarray,
    valid: np.ndarray,
    per_side: int = 6,
) -> Path:
    """Write ``out/report.html``: tables, then per query motion its queries, top and bottom pool clips."""
    q_motion = queries.table["motion"].to_numpy()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Motive demo report</title><style>{_CSS}</style></head><body>"
    ]
    parts.append("<h1>Motive demo report</h1>")
    parts.append(
        "<p>Attribution of the motion world's pool to query clips of each motion, with the tiny Wan model. "
        "Green border: the clip has the query's motion; red: it does not. Scores are cosines of projected gradients "
        "of the motion-weighted flow-matching loss (one fixed σ and noise draw).</p>"
    )
    config = results.get("config", {})
    if "sigma" in config:
        paper = (
            f"; <code>motive_paper_sigma</code> is Motive at the paper's σ = {config['paper_sigma']} (one seed)"
            if "motive_paper_sigma" in results["retrieval"]
            else ""
        )
        parts.append(
            f"<p>σ = {config['sigma']} for <code>motive</code> and <code>no_motion_mask</code>{paper}.</p>"
        )
    parts.append("<h2>Retrieval: same-motion and same-colour precision@10%</h2>")
    parts.append(
        _table(
            results["retrieval"],
            [("motion_precision", "same motion"), ("colour_precision", "same colour"), ("seeds", "seeds")],
        )
    )
    proj = results["projection"]
    parts.append(
        f"<p>Projected (D'={proj['dim']}) vs exact cosine: mean Spearman {results['projection_spearman']:.3f} over "
        f"{proj['queries']} queries × {proj['clips']} clips ({proj['queries_without_ranking']} static queries have no ranking).</p>"
    )
    for motion, rows in results["finetune_by_motion"].items():
        parts.append(f"<h2>Fine-tuning toward <em>{html.escape(motion)}</em></h2>")
        parts.append(
            _table(
                rows,
                [
                    ("target_motion_loss", "held-out motion-weighted loss"),
                    ("other_motion_loss", "same, other motions"),
                    ("target_specificity", "specificity (Δtarget − Δother)"),
                    ("plain_loss", "plain loss"),
                    ("dynamic_degree", "dynamic degree"),
                    ("target_fraction", "target fraction"),
                    ("seeds", "seeds"),
                ],
            )
        )
        check = results.get("finetune_check", {}).get(motion, {})
        for metric, c in check.items():
            if isinstance(c, dict):  # one entry per checked metric, beside "seeds"
                parts.append(
                    f"<p>Harness check on {metric}: random − oracle = {c['random_minus_oracle']:.5f} "
                    f"({c['margin_in_seed_stds']:.1f} seed-stds); every oracle seed below every random seed: "
                    f"{'yes' if c['separated'] else 'no'}.</p>"
                )
    parts.append("<h2>Per query motion: what the vote selects (Motive) and what it ranks last</h2>")
    for motion in sorted(set(q_motion)):
        cols = np.flatnonzero(q_motion == motion)
        parts.append(f"<h3>{html.escape(motion)}</h3><div>queries:</div><div class='strip'>")
        parts += [_clip_cell(queries.clips[c], None, "query") for c in cols[:per_side]]
        parts.append("</div>")
        for label, scores in (("Motive", motive_scores), ("w/o motion mask", no_mm_scores)):
            sel = majority_vote(scores[:, cols], fraction=0.1, valid=valid)
            precision = float(np.mean(pool.table["motion"].to_numpy()[sel.top] == motion))
            parts.append(f"<div>{label} top (selection precision {precision:.2f}):</div><div class='strip'>")
            parts += [
                _clip_cell(pool.clips[i], motion, f"votes {sel.votes[i]} · {sel.mean_score[i]:.3f}")
                for i in sel.top[:per_side]
            ]
            parts.append("</div>")
            if label == "Motive":
                parts.append("<div>Motive bottom (most negative influence):</div><div class='strip'>")
                parts += [
                    _clip_cell(pool.clips[i], motion, f"{sel.mean_score[i]:.3f}")
                    for i in sel.bottom[:per_side]
                ]
                parts.append("</div>")
    parts.append(
        "<h2>Timings (s)</h2><pre>" + html.escape(str(results.get("timings_s", {}))) + "</pre></body></html>"
    )
    path = out / "report.html"
    path.write_text("".join(parts))
    return path
