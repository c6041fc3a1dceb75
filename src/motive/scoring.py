"""Scores, majority vote and selection (docs/method.md §6): the arithmetic, on plain arrays.

- Score I(n, q) = cosine(g'_q, g'_n) = dot of unit vectors; higher = more positively influential.
- Majority vote: clip n gets a vote from query q when I(n, q) > τ_q, the q-th column's percentile
  (90th by default); rank by votes, ties broken by mean score; keep the top fraction (10%).
- The lowest-ranked clips (fewest votes, lowest mean) are the negative-influence list.
The baselines' scores (``random_scores``, ``mask_similarity``) have the same [N, Q] form, so one
vote serves every method; ``motive.attribute`` dispatches between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def cosine_scores(train: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """[N, D] × [Q, D] → [N, Q] cosine similarities (rows are re-normalised; zero rows score 0)."""

    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, n, out=np.zeros_like(x), where=n > 0)

    return (unit(train) @ unit(queries).T).astype(np.float32)


CHUNK_ROWS = 1 << 16  # stored rows per matrix product: 128 MiB of float32 at D' = 512


def unit_scores(vectors: np.ndarray, queries: np.ndarray, chunk: int = CHUNK_ROWS) -> np.ndarray:
    """Cosine scores of stored rows that are unit already (or zero, for failed clips) against queries:
    [N, D'] (a memory-mapped shard) × [Q, D'] → [N, Q] float32. Only the queries are normalised, and the
    stored rows are read ``chunk`` at a time, so memory beyond the result stays flat in N."""
    q = np.asarray(queries, dtype=np.float32)
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    q_t = np.ascontiguousarray(np.divide(q, norms, out=np.zeros_like(q), where=norms > 0).T)  # [D', Q]
    out = np.empty((len(vectors), q.shape[0]), np.float32)
    for start in range(0, len(vectors), chunk):
        out[start : start + chunk] = np.asarray(vectors[start : start + chunk], dtype=np.float32) @ q_t
    return out


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


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite ``values`` [N], largest first (``argpartition``: O(N), then a
    sort of the k)."""
    idx = np.flatnonzero(np.isfinite(values))
    if k < len(idx):
        idx = idx[np.argpartition(-values[idx], k - 1)[:k]]
    return idx[np.argsort(-values[idx], kind="stable")]


def random_scores(n: int, seed: int) -> np.ndarray:
    """Baseline: a random permutation as scores [N, 1]."""
    return np.random.default_rng(seed).random((n, 1))


def mask_similarity(train_masks: np.ndarray, query_masks: np.ndarray) -> np.ndarray:
    """Baseline: cosine between flattened latent-grid masks, [N, ...] × [Q, ...] → [N, Q]."""
    return cosine_scores(train_masks.reshape(len(train_masks), -1), query_masks.reshape(len(query_masks), -1))
