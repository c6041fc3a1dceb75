"""The flow-matching loss in Wan's convention, and its motion-weighted form (docs/method.md §2).

x_σ = (1−σ)·h + σ·ε, target velocity v = ε − h, timestep = 1000·σ. The motion-weighted loss weights
each latent cell's squared velocity error by the motion mask W̃ before the mean over cells; every
stage that reports or differentiates a loss (gradients, training, evaluation, the demo's checks)
uses these functions.
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


def velocity_error(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    params: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Squared velocity error per latent cell, averaged over latent channels: [B, f, h, w].

    h, eps: [B, C, f, h, w]; text: [B, L, D]; sigma: [B]; ``params``: see ``VideoModel.velocity``.
    """
    s = sigma.view(-1, 1, 1, 1, 1)
    x = (1 - s) * h + s * eps
    pred = model.velocity(x, sigma, text, params).float()
    return (pred - (eps - h)).pow(2).mean(dim=1)


def per_sample_loss(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    weight: torch.Tensor | None = None,
    params: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Flow-matching loss per sample ``[B]``: the velocity error, optionally weighted per latent cell
    by ``weight`` [B, f, h, w] (the motion mask), averaged over cells."""
    return masked_mean(velocity_error(model, h, text, sigma, eps, params), weight)
