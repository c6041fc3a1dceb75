"""Comparison: the paper's Table 1 for any set of models — VBench-rule dimensions, mean and 95% CI.

Each model is a model folder (its videos are generated from the prompt list into
``OUT/videos/<name>``, resumably) or a folder of videos already generated (``videos.csv``). Every
video is scored by ``motive.dimensions``. Per model and dimension the table gives the mean over all
videos and a 95% interval from a bootstrap over prompts (a prompt's videos, all its seeds, are
resampled together: videos of one prompt are not independent); for every model after the first, the
difference from the first (the base) with a paired bootstrap over the same prompts. Written to
``OUT``: ``scores.csv`` (one row per video), ``comparison.json``, ``comparison.md``,
``comparison.png`` and ``index.html`` with the table, the plot and each prompt's videos side by side.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from motive.dimensions import DimensionConfig, score_videos
from motive.generate import (
    GENERATION_FILE,
    VIDEO_TABLE,
    GenerateConfig,
    generate_videos,
    read_prompts,
    read_videos,
)
from motive.log import logger, stage


@dataclass
class CompareConfig:
    """How models are compared; saved in ``comparison.json``."""

    generate: GenerateConfig = field(default_factory=GenerateConfig, metadata={"nested": ""})
    dimensions: DimensionConfig = field(default_factory=DimensionConfig, metadata={"nested": ""})
    bootstrap: int = field(default=2000, metadata={"help": "bootstrap resamples of the prompts for the CIs"})
    ci_seed: int = field(default=0, metadata={"help": "seed of the bootstrap"})
    side_by_side: int = field(default=12, metadata={"help": "prompts shown side by side in index.html"})


def model_name(path: str | Path, taken: set[str]) -> str:
    """A short unique name for a model or video folder: its folder name (``-2``, ``-3`` on clashes)."""
    base = Path(path).resolve().name or "model"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    return name


def is_video_folder(path: str | Path) -> bool:
    """A folder of generated videos (``videos.csv``) rather than a model."""
    return (Path(path) / VIDEO_TABLE).is_file()


def bootstrap_ci(
    values: np.ndarray, groups: np.ndarray, resamples: int, seed: int
) -> tuple[float, float, float]:
    """Mean of ``values`` [V] and a 95% percentile interval from resampling whole ``groups`` [V] (the
    prompt of each video) with replacement. NaN values are left out; (nan, nan, nan) when none is left."""
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    ids, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(ids))  # [G]
    counts = np.bincount(inverse, minlength=len(ids)).astype(float)  # [G]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(ids), size=(resamples, len(ids)))  # [R, G]
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)  # [R]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def summarise(scores: pd.DataFrame, dims: list[str], names: list[str], config: CompareConfig) -> dict:
    """Per model and dimension: mean and CI; for every model but the first, the paired difference from
    the first (videos matched by prompt index and seed)."""
    out: dict = {}
    base = scores[scores["model"] == names[0]].set_index(["index", "seed"])
    for name in names:
        rows = scores[scores["model"] == name]
        entry = {}
        for dim in dims:
            mean, lo, hi = bootstrap_ci(
                rows[dim].to_numpy(float), rows["index"].to_numpy(), config.bootstrap, config.ci_seed
            )
            entry[dim] = {"mean": mean, "lo": lo, "hi": hi, "videos": int(rows[dim].notna().sum())}
            if name != names[0]:
                mine = rows.set_index(["index", "seed"])
                both = mine[[dim]].join(base[[dim]], rsuffix="_base", how="inner")
                diff = (both[dim] - both[f"{dim}_base"]).to_numpy(float)
                d, dlo, dhi = bootstrap_ci(
                    diff, both.index.get_level_values("index").to_numpy(), config.bootstrap, config.ci_seed
                )
                entry[dim]["diff"] = {"mean": d, "lo": dlo, "hi": dhi, "pairs": int(np.isfinite(diff).sum())}
        out[name] = entry
    return out


def markdown(summary: dict, dims: list[str], backends: dict[str, str]) -> str:
    """The comparison as a markdown table: mean [95% CI], and Δ against the first model."""
    names = list(summary)
    head = "| dimension (back-end) | " + " | ".join(names) + " |"
    lines = [head, "|" + "---|" * (len(names) + 1)]
    for dim in dims:
        cells = []
        for name in names:
            e = summary[name][dim]
            cell = f"{e['mean']:.4f} [{e['lo']:.4f}, {e['hi']:.4f}]"
            if "diff" in e:
                d = e["diff"]
                cell += f"<br>Δ {d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]"
            cells.append(cell)
        lines.append(f"| {dim} ({backends.get(dim, '?')}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, dims: list[str], path: Path) -> Path:
    """One panel per dimension: each model's mean with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    fig, axes = plt.subplots(1, len(dims), figsize=(2.6 * len(dims) + 1, 3.2), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for ax, dim in zip(axes[0], dims):
        means = np.array([summary[n][dim]["mean"] for n in names])
        err = np.array(
            [
                [means[i] - summary[n][dim]["lo"], summary[n][dim]["hi"] - means[i]]
                for i, n in enumerate(names)
            ]
        ).T  # [2, models]
        ax.bar(range(len(names)), means, yerr=err, capsize=3, color=colours[: len(names)])
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(dim.replace("_", " "), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_html(
    out: Path, summary: dict, dims: list[str], backends: dict, scores: pd.DataFrame, shown: int
) -> Path:
    """``index.html``: the table, the plot, and the first ``shown`` prompts' videos side by side (each
    model's video of the prompt's first seed)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    names = list(summary)
    first = scores[scores["seed"] == scores["seed"].min()]
    rows = []
    for index in sorted(first["index"].unique())[:shown]:
        here = first[first["index"] == index]
        videos = []
        for name in names:
            match = here[here["model"] == name]
            videos.append(os.path.relpath(match["video"].iloc[0], out) if len(match) else None)
        rows.append(
            {"prompt": here["prompt"].iloc[0], "category": here["category"].iloc[0], "videos": videos}
        )
    env = Environment(loader=PackageLoader("motive"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("compare.html.j2").render(
        title="Model comparison", names=names, dims=dims, summary=summary, backends=backends, rows=rows
    )
    path = out / "index.html"
    path.write_text(html)
    return path


def compare(
    models: list[str],
    prompts: str | Path | None,
    out: str | Path,
    config: CompareConfig | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Generate (where a model is given) and score every model's videos; write the comparison to
    ``out``. ``prompts`` is needed when any entry of ``models`` is a model rather than a video folder."""
    from motive.models.wan import VideoModel

    config = config or CompareConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prompt_list = read_prompts(prompts) if prompts is not None else None
    taken: set[str] = set()
    tables = []
    backends: dict[str, str] = {}
    names = []
    for entry in models:
        name = model_name(entry, taken)
        names.append(name)
        if is_video_folder(entry):
            table = read_videos(entry)
        else:
            if prompt_list is None:
                raise ValueError(f"{entry} is a model: generating its videos needs --prompts")
            with stage(f"loading {entry}"):
                model = VideoModel.from_pretrained(entry, device=device)
            table = generate_videos(
                model, prompt_list, out / "videos" / name, config.generate, str(entry), progress
            )
            del model
        with stage(f"scoring {name}'s {len(table)} videos"):
            scored, used = score_videos(table, config.dimensions, progress)
        backends.update(used)
        scored.insert(0, "model", name)
        tables.append(scored)
    scores = pd.concat(tables, ignore_index=True)
    dims = [d for d in backends if d in scores.columns and scores[d].notna().any()]
    scores.to_csv(out / "scores.csv", index=False)
    summary = summarise(scores, dims, names, config)
    result = {
        "models": dict(zip(names, map(str, models))),
        "dimensions": dims,
        "backends": backends,
        "summary": summary,
        "config": asdict(config),
        "generation": {
            n: json.loads((out / "videos" / n / GENERATION_FILE).read_text())["config"]
            for n in names
            if (out / "videos" / n / GENERATION_FILE).is_file()
        },
    }
    (out / "comparison.json").write_text(json.dumps(result, indent=2))
    (out / "comparison.md").write_text(markdown(summary, dims, backends))
    plot(summary, dims, out / "comparison.png")
    write_html(out, summary, dims, backends, scores, config.side_by_side)
    logger.info("compared %d models on %d dimensions -> %s", len(names), len(dims), out)
    return result
