"""Scores, majority vote and selection (docs/method.md §6): the arithmetic, on plain arrays.

- Score I(n, q) = cosine(g'_q, g'_n) = dot of unit vectors; higher = more positively influential.
- Majority vote: clip n gets a vote from query q when I(n, q) > τ_q, the q-th column's percentile
  (90th by default); rank by votes, ties broken by mean score; keep the top fraction (10%).
- The lowest-ranked clips (fewest votes, lowest mean) are the negative-influence list.
The baselines' scores (``random_scores``, ``mask_similarity``) have the same [N, Q] form, so one
vote serves every method; ``motive.attribute`` dispatches between them.

Beside the paper's cosine, two options (``SCORES``), both read the pool in chunks so memory stays flat
in N (only [D'] and [D', D'] statistics of the pool are held):
- ``centred_scores``: cosine after subtracting the pool's mean feature from every row and query.
- ``preconditioned_scores``: TRAK-style g_n · (ΦᵀΦ + λI)⁻¹ g_q, λ = damping × trace(ΦᵀΦ) / D'.
A query with a zero feature (no motion, or a failed clip) is found by ``static_queries``; the vote
leaves its column out (``majority_vote(kept=...)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

SCORES = ("cosine", "centred", "preconditioned")


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


CHUNK_BYTES = 1 << 27  # float64 pool rows per chunk of the centred / preconditioned scores: 128 MiB


def chunk_rows(dim: int, nbytes: int = CHUNK_BYTES) -> int:
    """Rows of width ``dim`` that fit ``nbytes`` as float64: the default chunk of the options below, so
    a chunk's memory is the same at D' = 512 and at D' = 8192."""
    return max(1, nbytes // (8 * dim))


def _chunks(
    rows: np.ndarray, valid: np.ndarray | None, chunk: int | None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(start, float64 block [c, D'] with invalid rows zeroed, block's valid mask [c]) over ``rows``
    [N, D'] (a memory-mapped shard is read one block at a time)."""
    chunk = chunk or chunk_rows(rows.shape[1])
    for start in range(0, len(rows), chunk):
        block = np.array(rows[start : start + chunk], dtype=np.float64)  # [c, D']
        ok = np.ones(len(block), bool) if valid is None else np.asarray(valid[start : start + chunk], bool)
        block[~ok] = 0.0
        yield start, block, ok


@dataclass
class PoolStats:
    """Sums over a pool's valid rows, the statistics the centred and preconditioned scores need
    (``pool_stats`` fills them, one shard after another with ``into``)."""

    count: int  # valid rows summed
    total: np.ndarray  # [D'] float64 sum of the rows
    gram: np.ndarray | None  # [D', D'] float64 ΦᵀΦ, when asked for

    @property
    def mean(self) -> np.ndarray:
        """[D'] the mean valid row (the pool's mean feature)."""
        if self.count == 0:
            raise ValueError("no valid clips in the pool: no mean feature")
        return self.total / self.count


def pool_stats(
    rows: np.ndarray,
    valid: np.ndarray | None = None,
    gram: bool = False,
    chunk: int | None = None,
    into: PoolStats | None = None,
) -> PoolStats:
    """One chunked pass over ``rows`` [N, D'] (``valid`` [N] keeps failed clips out): their count, sum
    and, with ``gram``, ΦᵀΦ accumulated in float64 (a D'×D' matrix, never an N×N one). ``into`` adds
    to the stats of earlier shards in place (no second D'×D' matrix)."""
    d = rows.shape[1]
    stats = PoolStats(0, np.zeros(d), np.zeros((d, d)) if gram else None) if into is None else into
    if gram and stats.gram is None:
        raise ValueError("pool_stats(gram=True) cannot add to stats without ΦᵀΦ")
    for _, block, ok in _chunks(rows, valid, chunk):
        stats.count += int(ok.sum())
        stats.total += block.sum(axis=0)
        if gram:
            stats.gram += block.T @ block  # [D', D']
    return stats


def static_queries(queries: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """[Q] True for the queries whose vector [Q, D'] has (near) zero norm: at most ``rtol`` times the
    largest query norm. A query without motion (W̃ ≡ 0) has a zero gradient, and a query that failed is
    stored as zeros; stored features are otherwise unit, so on a store this is the test "is zero"."""
    norms = np.linalg.norm(np.asarray(queries, dtype=np.float64), axis=1)  # [Q]
    return norms <= rtol * (norms.max() if len(norms) else 0.0)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` [M, D] to unit length in float64; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def centred_scores(
    rows: np.ndarray,
    queries: np.ndarray,
    valid: np.ndarray | None = None,
    mean: np.ndarray | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """Cosine after centring: cos(g_n − μ, g_q − μ), μ the mean of the valid ``rows`` [N, D'] as stored
    (``mean`` when given, e.g. over every shard of a store; else one extra pass). [Q, D'] queries →
    [N, Q] float32. Why: a direction that every clip's gradient shares dominates raw cosines and says
    nothing about which clip is like the query. Invalid rows, and rows equal to μ, score 0."""
    mu = pool_stats(rows, valid, chunk=chunk).mean if mean is None else np.asarray(mean, np.float64)  # [D']
    q_t = _unit_rows(np.asarray(queries, np.float64) - mu).T  # [D', Q]
    out = np.zeros((len(rows), q_t.shape[1]), np.float32)
    for start, block, ok in _chunks(rows, valid, chunk):
        centred = block - mu  # [c, D']
        norms = np.linalg.norm(centred, axis=1, keepdims=True)  # [c, 1]
        s = np.divide(centred @ q_t, norms, out=np.zeros((len(block), q_t.shape[1])), where=norms > 0)
        s[~ok] = 0.0
        out[start : start + len(block)] = s
    return out


def preconditioner(stats: PoolStats, queries: np.ndarray, damping: float = 0.1) -> tuple[np.ndarray, float]:
    """The preconditioned queries W [D', Q] and λ: W_q = H⁻¹ q̂ / √(q̂ᵀ H⁻¹ q̂), H = ΦᵀΦ + λI with
    λ = ``damping`` × trace(ΦᵀΦ) / D' (damping times the mean eigenvalue, so it scales with the pool),
    q̂ the unit query. H is factored once by Cholesky (no explicit inverse). Dividing by √(q̂ᵀH⁻¹q̂)
    gives every query the same scale in the H⁻¹ metric, so each weighs alike in the mean score; a zero
    query gives a zero column."""
    if stats.gram is None:
        raise ValueError("the preconditioned score needs the pool's ΦᵀΦ (pool_stats(..., gram=True))")
    if not damping > 0:
        raise ValueError(
            f"damping must be > 0 (ΦᵀΦ is singular when the pool has fewer clips than D'), not {damping}"
        )
    d = stats.gram.shape[0]
    lam = damping * float(np.trace(stats.gram)) / d
    if not lam > 0:
        raise ValueError("the pool's features are all zero: nothing to precondition with")
    h = stats.gram.copy()  # [D', D'] H = ΦᵀΦ + λI, factored in place
    h[np.diag_indices(d)] += lam
    factor = cho_factor(h, lower=True, overwrite_a=True)
    q_t = _unit_rows(queries).T  # [D', Q]
    solved = cho_solve(factor, q_t)  # [D', Q] H⁻¹ q̂
    scale = np.sqrt(np.maximum((q_t * solved).sum(axis=0), 0.0))  # [Q] √(q̂ᵀ H⁻¹ q̂)
    return np.divide(solved, scale, out=np.zeros_like(solved), where=scale > 0), lam


def linear_scores(
    rows: np.ndarray, weights: np.ndarray, valid: np.ndarray | None = None, chunk: int | None = None
) -> np.ndarray:
    """Inner products of ``rows`` [N, D'] as stored with the columns of ``weights`` [D', Q], chunk by
    chunk → [N, Q] float32; invalid rows score 0."""
    out = np.zeros((len(rows), weights.shape[1]), np.float32)
    for start, block, _ in _chunks(rows, valid, chunk):
        out[start : start + len(block)] = block @ weights
    return out


def preconditioned_scores(
    rows: np.ndarray,
    queries: np.ndarray,
    damping: float = 0.1,
    valid: np.ndarray | None = None,
    stats: PoolStats | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """TRAK-style scores g_nᵀ H⁻¹ q̂ / √(q̂ᵀ H⁻¹ q̂), H = ΦᵀΦ + λI over the valid ``rows`` [N, D'] as
    stored (``stats`` when given, e.g. over every shard; else one extra pass), λ as in
    ``preconditioner``. [Q, D'] queries → [N, Q] float32. Why: directions that many clips share get
    less weight, rare ones more. The clip side is the raw inner product (TRAK's): it is not
    re-normalised in the H⁻¹ metric, so a clip along rare directions scores larger in magnitude."""
    stats = pool_stats(rows, valid, gram=True, chunk=chunk) if stats is None else stats
    weights, _ = preconditioner(stats, queries, damping)  # [D', Q]
    return linear_scores(rows, weights, valid, chunk)


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
    scores: np.ndarray,
    percentile: float = 90.0,
    fraction: float = 0.1,
    valid: np.ndarray | None = None,
    kept: np.ndarray | None = None,
) -> Selection:
    """Vote over the columns of ``scores`` [N, Q]; ``valid`` [N] excludes failed clips from everything,
    ``kept`` [Q] (default: all) names the columns that vote: the others (skipped static queries) count
    neither in the votes nor in the mean score, and their threshold is NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("no valid clips to select from")
    if kept is not None:
        kept = np.asarray(kept, bool)
        if not kept.any():
            raise ValueError("no query column left to vote")
        tau = np.full(scores.shape[1], np.nan)  # [Q]
        tau[kept] = np.percentile(scores[valid][:, kept], percentile, axis=0)
        votes = (scores[:, kept] > tau[None, kept]).sum(axis=1)
        mean = scores[:, kept].mean(axis=1)
    else:
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
