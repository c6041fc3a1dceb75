"""Self-contained HTML report of a demo run: what attribution found, per query motion, with previews.

Rendered from the same jinja2 templates as ``motive report`` (autoescaping on); the clips are GIFs
inlined as data URIs, so ``report.html`` is one file.
"""

from __future__ import annotations

import base64
import functools
import tempfile
from pathlib import Path

import jinja2
import numpy as np

from motive.data.dataset import Clip, Dataset
from motive.data.video import read_video, write_video
from motive.report import TEMPLATES
from motive.scoring import majority_vote

FINETUNE_COLUMNS = [
    ("target_motion_loss", "held-out motion-weighted loss"),
    ("other_motion_loss", "same, other motions"),
    ("target_specificity", "specificity (Δtarget − Δother)"),
    ("plain_loss", "plain loss"),
    ("dynamic_degree", "dynamic degree"),
    ("temporal_flickering", "temporal flickering"),
    ("motion_smoothness", "motion smoothness"),
    ("motion_accuracy", "generated: motion named right"),
    ("survival", "generated: object found"),
    ("trajectory_error_px", "generated: trajectory error (px)"),
    ("target_fraction", "target fraction"),
    ("seeds", "seeds"),
]


@functools.lru_cache(maxsize=512)
def _gif_data_uri(path: Path, max_frames: int = 17) -> str:
    video = read_video(path, max_frames=max_frames)
    with tempfile.TemporaryDirectory() as tmp:
        gif = write_video(Path(tmp) / "x.gif", video.frames, video.fps)
        data = base64.b64encode(gif.read_bytes()).decode()
    return f"data:image/gif;base64,{data}"


def _dimension_backends(results: dict) -> dict[str, str]:
    """{dimension: back-end} of the VBench dimensions in the fine-tuning tables (the first found)."""
    for rows in results.get("finetune_by_motion", {}).values():
        for r in rows.values():
            if r.get("dimension_backends"):
                return r["dimension_backends"]
    return {}


def _cell(value, std=None) -> str:
    """A table cell: floats to 4 decimals, with ± their seed std when there is one."""
    if isinstance(value, float):
        spread = f" ± {std:.4f}" if isinstance(std, float) and np.isfinite(std) else ""
        return f"{value:.4f}{spread}"
    return str(value)


def _clip(clip: Clip, target_motion: str | None, note: str) -> dict:
    motion = str(clip.extra.get("motion", "?"))
    return {
        "src": _gif_data_uri(clip.video),
        "prompt": clip.prompt,
        "cls": "" if target_motion is None else ("hit" if motion == target_motion else "miss"),
        "labels": " · ".join(
            str(clip.extra[k]) for k in ("motion", "colour", "shape", "camera") if k in clip.extra
        ),
        "note": note,
    }


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
    """Write ``out/report.html``: tables, the generated videos of ``out/generated`` with their tracks,
    then per query motion its queries, top and bottom pool clips."""
    q_motion = queries.table["motion"].to_numpy()
    pool_motion = pool.table["motion"].to_numpy()
    motions = []
    for motion in sorted(set(q_motion)):
        cols = np.flatnonzero(q_motion == motion)
        strips = []
        for label, scores in (("Motive", motive_scores), ("w/o motion mask", no_mm_scores)):
            sel = majority_vote(scores[:, cols], fraction=0.1, valid=valid)
            precision = float(np.mean(pool_motion[sel.top] == motion))
            top = [
                _clip(pool.clips[i], motion, f"votes {sel.votes[i]} · {sel.mean_score[i]:.3f}")
                for i in sel.top[:per_side]
            ]
            strips.append({"label": f"{label} top (selection precision {precision:.2f}):", "clips": top})
            if label == "Motive":
                bottom = [
                    _clip(pool.clips[i], motion, f"{sel.mean_score[i]:.3f}") for i in sel.bottom[:per_side]
                ]
                strips.append({"label": "Motive bottom (most negative influence):", "clips": bottom})
        motions.append(
            {
                "motion": motion,
                "queries": [_clip(queries.clips[c], None, "query") for c in cols[:per_side]],
                "strips": strips,
            }
        )
    tracked = {
        folder.name: [{"src": _gif_data_uri(p), "name": p.stem} for p in sorted(folder.glob("*.gif"))]
        for folder in sorted((out / "generated").glob("*"))
        if folder.is_dir()
    }
    config = results.get("config", {})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["cell"] = _cell
    html = env.get_template("demo.html.j2").render(
        title="Motive demo report",
        sigma=config.get("sigma"),
        paper_sigma=config.get("paper_sigma") if "motive_paper_sigma" in results["retrieval"] else None,
        retrieval=results["retrieval"],
        projection={**results["projection"], "spearman_mean": results["projection_spearman"]},
        finetune=results["finetune_by_motion"],
        finetune_columns=FINETUNE_COLUMNS,
        dimension_backends=_dimension_backends(results),
        checks=results.get("finetune_check", {}),
        tracked=tracked,
        motions=motions,
        timings=str(results.get("timings_s", {})),
    )
    path = out / "report.html"
    path.write_text(html)
    return path
