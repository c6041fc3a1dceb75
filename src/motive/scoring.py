"""Scores, majority vote and selection (METHOD.md §6), plus the baselines behind the same interface.

- Score I(n, q) = cosine(g'_q, g'_n) = dot of unit vectors; higher = more positively influential.
- Majority vote: clip n gets a vote from query q when I(n, q) > τ_q, the q-th column's percentile
  (90th by default); rank by votes, ties broken by mean score; keep the top fraction (10%).
- The lowest-ranked clips (fewest votes, lowest mean) are the negative-influence list.
Baselines: ``random`` (seeded), ``motion_magnitude`` (highest mean flow), ``mask_similarity`` (cosine
between latent-grid motion masks, no gradients). "w/o MM" is ``motive`` on a store featurized with
``use_mask=False``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from motive.data.dataset import Dataset, load_dataset
from motive.gradients import GradientConfig
from motive.models.wan import VideoModel
from motive.store import (
    StandardiseTarget,
    Store,
    StoreMismatch,
    check_compatible,
    dataset_inputs,
    featurize,
    model_fingerprint,
)

METHODS = ("motive", "random", "motion_magnitude", "mask_similarity")


def cosine_scores(train: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """[N, D] × [Q, D] → [N, Q] cosine similarities (rows are re-normalised; zero rows score 0)."""

    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, n, out=np.zeros_like(x), where=n > 0)

    return (unit(train) @ unit(queries).T).astype(np.float32)


@dataclass
class Selection:
    """Result of voting: per-clip votes and mean score, the full ranking, and the kept top/bottom."""

    votes: np.ndarray  # [N] int
    mean_score: np.ndarray  # [N]
    order: np.ndarray  # [N] clip indices, best first
    top: np.ndarray  # [k] clip indices of the selection
    bottom: np.ndarray  # [k] clip indices with the most negative influence (worst first)
    thresholds: np.ndarray  # [Q] τ_q


def majority_vote(
    scores: np.ndarray, percentile: float = 90.0, fraction: float = 0.1, valid: np.ndarray | None = None
) -> Selection:
    """Vote over the columns of ``scores`` [N, Q]; ``valid`` [N] excludes failed clips from everything."""
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("no valid clips to select from")
    tau = np.percentile(scores[valid], percentile, axis=0)  # [Q]
    votes = (scores > tau[None]).sum(axis=1)
    mean = scores.mean(axis=1)
    idx = np.flatnonzero(valid)
    order = idx[np.lexsort((-mean[idx], -votes[idx]))]  # votes desc, then mean desc
    k = max(1, int(round(fraction * len(idx))))
    return Selection(votes, mean, order, order[:k], order[::-1][:k], tau)


def random_scores(n: int, seed: int) -> np.ndarray:
    """Baseline: a random permutation as scores [N, 1]."""
    return np.random.default_rng(seed).random((n, 1))


def mask_similarity(train_masks: np.ndarray, query_masks: np.ndarray) -> np.ndarray:
    """Baseline: cosine between flattened latent-grid masks, [N, ...] × [Q, ...] → [N, Q]."""
    return cosine_scores(train_masks.reshape(len(train_masks), -1), query_masks.reshape(len(query_masks), -1))


@dataclass
class AttributionConfig:
    """How a selection is made; saved as ``attribution.json`` beside the outputs."""

    method: str = "motive"
    percentile: float = 90.0
    fraction: float = 0.1
    seed: int = 0  # for ``random``


def write_selection(
    out: Path,
    table: pd.DataFrame,
    scores: np.ndarray,
    query_names: list[str],
    selection: Selection,
    config: AttributionConfig,
    extra: dict | None = None,
) -> dict[str, Path]:
    """Write scores.parquet, selection.csv (a valid metadata.csv subset + score/votes/rank), bottom.csv."""
    out.mkdir(parents=True, exist_ok=True)
    score_df = pd.DataFrame(scores, columns=query_names)
    score_df.insert(0, "video", table["video"].to_numpy())
    score_df.to_parquet(out / "scores.parquet", index=False)
    rank = np.empty(len(table), int)
    rank[selection.order] = np.arange(1, len(selection.order) + 1)
    full = table.copy()
    full["score"] = selection.mean_score
    full["votes"] = selection.votes
    full["rank"] = np.where(np.isin(np.arange(len(table)), selection.order), rank, -1)
    full.iloc[selection.top].to_csv(out / "selection.csv", index=False)
    full.iloc[selection.bottom].to_csv(out / "bottom.csv", index=False)
    full.iloc[selection.order].to_csv(out / "ranking.csv", index=False)
    summary = {
        "config": asdict(config),
        "clips": len(table),
        "selected": len(selection.top),
        "thresholds": selection.thresholds.tolist(),
    }
    summary.update(extra or {})
    (out / "attribution.json").write_text(json.dumps(summary, indent=2))
    return {
        "scores": out / "scores.parquet",
        "selection": out / "selection.csv",
        "bottom": out / "bottom.csv",
    }


def dataset_masks(model: VideoModel, dataset: Dataset) -> np.ndarray:
    """Latent-grid motion masks of every clip [N, f·h·w] (through the shared input cache)."""
    return np.stack([x.mask.numpy().ravel() for x in dataset_inputs(model, list(dataset))])


def attribute(
    model,
    store_path: str | Path,
    queries: str | Path,
    out: str | Path,
    config: AttributionConfig | None = None,
    progress: bool = True,
) -> dict:
    """Score the store's clips against the query dataset with ``config.method`` and write the selection.

    ``motive`` featurizes the queries with exactly the store's settings (read from its meta.json) and
    refuses a model other than the one the store was built with.
    """

    config = config or AttributionConfig()
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; choose from {METHODS}")
    out = Path(out)
    store = Store.open(store_path)
    train = load_dataset(store.meta["data"])
    query_set = load_dataset(queries)
    if len(train) != len(store.index):
        raise StoreMismatch(
            f"{store_path}: the dataset at {store.meta['data']} changed since the store was written"
        )
    query_names = [c.relpath for c in query_set]
    extra: dict = {"store": str(store_path), "queries": str(queries)}
    if config.method == "motive":
        fp = model_fingerprint(model)
        if fp != store.meta["model"]["fingerprint"]:
            raise StoreMismatch(
                f"{store_path} was built with model {store.meta['model']['fingerprint']}, not this model ({fp})"
            )
        gcfg = GradientConfig.from_meta(store.meta)
        target = StandardiseTarget(**store.meta["standardise"])
        qstore = featurize(
            model, queries, out / "query_store", gcfg, target, progress=progress, overwrite=True
        )
        check_compatible(store.meta, qstore.meta, "query store")
        scores = cosine_scores(np.asarray(store.vectors), np.asarray(qstore.vectors))
        extra["use_mask"] = gcfg.use_mask
    elif config.method == "random":
        scores = random_scores(len(store.index), config.seed)
        query_names = ["random"]
    elif config.method == "motion_magnitude":
        scores = store.index["mean_flow"].fillna(-np.inf).to_numpy()[:, None]
        query_names = ["mean_flow"]
    else:
        scores = mask_similarity(dataset_masks(model, train), dataset_masks(model, query_set))
    selection = majority_vote(scores, config.percentile, config.fraction, valid=store.ok)
    paths = write_selection(out, train.table, scores, query_names, selection, config, extra)
    return {"selection": selection, "scores": scores, "paths": paths, "train": train, "queries": query_set}
