"""The demo's measurements on ground truth: retrieval precision, projection fidelity, fine-tuning.

Everything here reads the motion world's labels (``motion``, ``colour``) to check what attribution
found; the attribution itself never sees them.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from motive.data.dataset import Dataset
from motive.gradients import GradientConfig, GradientFeaturizer
from motive.inputs import dataset_inputs, default_target
from motive.models.wan import VideoModel
from motive.projection import l2_normalise


def topk_precision(
    scores: np.ndarray,
    train_labels: np.ndarray,
    query_labels: np.ndarray,
    fraction: float = 0.1,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Per query q: share of the top ``fraction`` of clips by ``scores[:, q]`` whose label equals q's. → [Q].
    A single-column ``scores`` (a query-independent baseline) ranks the same clips for every query."""
    n = scores.shape[0]
    valid = np.ones(n, bool) if valid is None else valid
    idx = np.flatnonzero(valid)
    k = max(1, int(round(fraction * len(idx))))
    out = []
    for q in range(len(query_labels)):
        col = scores[idx, q if scores.shape[1] > 1 else 0]
        top = idx[np.argsort(-col, kind="stable")[:k]]
        out.append(float(np.mean(train_labels[top] == query_labels[q])))
    return np.asarray(out)


def per_label_mean(values: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {str(m): float(values[labels == m].mean()) for m in sorted(set(labels))}


def exact_unit_gradients(
    model: VideoModel, dataset: Dataset, config: GradientConfig, indices: list[int], progress: bool = True
) -> torch.Tensor:
    """Unprojected unit gradients [len(indices), D] of chosen clips (the ground truth for the projection)."""
    target = default_target(model)
    shape = model.latent_shape(target.frames, target.height, target.width)
    featurizer = GradientFeaturizer(model, config, shape, target.frames)
    clips = [dataset.clips[i] for i in indices]
    out = []
    for clip, inputs in zip(
        tqdm(clips, desc="exact gradients", disable=not progress, leave=False),
        dataset_inputs(model, clips, config.mask),
    ):
        text = model.encode_text([clip.prompt])
        acc = None
        for k in range(config.noise_draws):
            g = l2_normalise(featurizer.gradient(inputs.latent[None], text, inputs.mask[None], k)[None])[0]
            acc = g if acc is None else acc + g
        out.append(l2_normalise(acc[None])[0])
    return torch.stack(out)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-D arrays (average ranks for ties)."""
    import pandas as pd

    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def retrieval(
    scores: dict[str, list[np.ndarray]], pool: Dataset, queries: Dataset, valid: np.ndarray, fraction: float
) -> dict:
    """Same-motion and same-colour precision@``fraction`` of every method (mean over queries and seeds),
    its seed spread and per-motion means, and what chance gives."""
    pool_motion, pool_colour = pool.table["motion"].to_numpy(), pool.table["colour"].to_numpy()
    q_motion, q_colour = queries.table["motion"].to_numpy(), queries.table["colour"].to_numpy()
    out = {}
    for method, runs in scores.items():
        motion_p = np.stack(
            [topk_precision(s, pool_motion, q_motion, fraction, valid) for s in runs]
        )  # [S, Q]
        colour_p = np.stack([topk_precision(s, pool_colour, q_colour, fraction, valid) for s in runs])
        out[method] = {
            "motion_precision": float(motion_p.mean()),
            "motion_precision_seed_std": float(motion_p.mean(axis=1).std()),
            "colour_precision": float(colour_p.mean()),
            "per_motion": per_label_mean(motion_p.mean(axis=0), q_motion),
            "seeds": len(runs),
        }
    out["chance"] = {
        "motion_precision": float(np.mean([np.mean(pool_motion[valid] == m) for m in q_motion])),
        "colour_precision": float(np.mean([np.mean(pool_colour[valid] == c) for c in q_colour])),
    }
    return out


def projection_check(
    model: VideoModel,
    pool: Dataset,
    queries: Dataset,
    config: GradientConfig,
    projected: np.ndarray,
    clips: int,
    progress: bool = True,
) -> dict:
    """Spearman correlation, per query, between the exact cosine of unprojected gradients and the
    projected scores ``projected`` [N, Q] over the first ``clips`` pool clips."""
    n_sub = min(clips, len(pool))
    exact_pool = exact_unit_gradients(model, pool, config, list(range(n_sub)), progress)
    exact_q = exact_unit_gradients(model, queries, config, list(range(len(queries))), progress)
    exact = (exact_pool.double() @ exact_q.double().T).numpy()  # [n_sub, Q], fp64 sums over D
    projected = projected[:n_sub]
    # a query without motion (static) has W̃ ≡ 0, hence a zero gradient and a constant column: no ranking
    rhos = np.array([spearman(exact[:, q], projected[:, q]) for q in range(exact.shape[1])])
    ok = np.isfinite(rhos)
    return {
        "spearman_mean": float(rhos[ok].mean()) if ok.any() else float("nan"),
        "spearman_min": float(rhos[ok].min()) if ok.any() else float("nan"),
        "clips": n_sub,
        "dim": config.proj_dim,
        "queries": int(ok.sum()),
        "queries_without_ranking": int((~ok).sum()),
    }
