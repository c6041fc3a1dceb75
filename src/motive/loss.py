"""The flow-matching loss in Wan's convention, and its motion-weighted form (docs/method.md §2).

x_σ = (1−σ)·h + σ·ε, target velocity v = ε − h, timestep = 1000·σ. The motion-weighted loss weights
each latent cell's squared velocity error by the motion mask W̃ before the mean over cells; every
stage that reports or differentiates a loss (gradients, training, evaluation, the demo's checks)
uses these functions. The *temporal-difference* form (an attribution option) squares the change of
the velocity error from one latent frame to the next instead, so an error that is the same in every
frame (how the clip looks, not how it moves) contributes nothing.
"""

from __future__ import annotations

import torch

from motive.models.wan import VideoModel


def masked_mean(err: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample mean over cells of ``err`` [B, f, h, w], each cell weighted by ``weight`` (same
    shape, the motion mask) when given → [B]. The mean is over all cells, not the mask's sum."""
    if weight is not None:
        err = err * weight
    return err.flatten(1).mean(dim=1)


OBJECTIVES = ("flow", "temporal")  # the per-cell error a loss averages: see ``cell_error``


def velocity_residual(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    params: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Predicted minus target velocity: [B, C, f, h, w].

    h, eps: [B, C, f, h, w]; text: [B, L, D]; sigma: [B]; ``params``: see ``VideoModel.velocity``.
    """
    s = sigma.view(-1, 1, 1, 1, 1)
    x = (1 - s) * h + s * eps
    return model.velocity(x, sigma, text, params).float() - (eps - h)


def velocity_error(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    params: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Squared velocity error per latent cell, averaged over latent channels: [B, f, h, w]."""
    return velocity_residual(model, h, text, sigma, eps, params).pow(2).mean(dim=1)


def temporal_error(residual: torch.Tensor) -> torch.Tensor:
    """Squared frame-to-frame change of the velocity residual [B, C, f, h, w], averaged over
    channels: [B, f−1, h, w]. A residual constant over time gives zero."""
    return (residual[:, :, 1:] - residual[:, :, :-1]).pow(2).mean(dim=1)


def pair_weight(weight: torch.Tensor) -> torch.Tensor:
    """A per-frame weight [B, f, h, w] → per pair of consecutive frames [B, f−1, h, w] (their mean)."""
    return 0.5 * (weight[:, 1:] + weight[:, :-1])


def cell_error(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    weight: torch.Tensor | None = None,
    params: dict[str, torch.Tensor] | None = None,
    objective: str = "flow",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(per-cell error, matching weight) of ``objective``: ``flow`` = the squared velocity error per
    latent cell [B, f, h, w] with ``weight`` as given; ``temporal`` = ``temporal_error`` per pair of
    consecutive latent frames [B, f−1, h, w] with ``pair_weight(weight)``."""
    if objective == "flow":
        return velocity_error(model, h, text, sigma, eps, params), weight
    if objective == "temporal":
        residual = velocity_residual(model, h, text, sigma, eps, params)
        return temporal_error(residual), None if weight is None else pair_weight(weight)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def per_sample_loss(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    weight: torch.Tensor | None = None,
    params: dict[str, torch.Tensor] | None = None,
    objective: str = "flow",
) -> torch.Tensor:
    """Flow-matching loss per sample ``[B]``: the velocity error (or, ``objective="temporal"``, its
    frame-to-frame change), optionally weighted per latent cell by ``weight`` [B, f, h, w] (the motion
    mask), averaged over cells."""
    return masked_mean(*cell_error(model, h, text, sigma, eps, weight, params, objective))
