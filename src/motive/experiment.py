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
from motive.models.wan import VideoModel
from motive.projection import l2_normalise
from motive.store import dataset_inputs, default_target


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
