"""The flow-matching loss in Wan's convention, and its motion-weighted form (docs/method.md §2).

x_σ = (1−σ)·h + σ·ε, target velocity v = ε − h, timestep = 1000·σ. The motion-weighted loss weights
each latent cell's squared velocity error by the motion mask W̃ before the mean over cells; every
stage that reports or differentiates a loss (gradients, training, evaluation, the demo's checks)
uses these functions. The *temporal-difference* form (an attribution option) squares the change of
the velocity error from one latent frame to the next instead, so an error that is the same in every
frame (how the clip looks, not how it moves) contributes nothing.

With ``condition="first-frame"`` (image-to-video, as Wan2.2-TI2V) the first latent frame of x_σ is the
clean h itself (timestep 0 on its tokens) and every loss covers the later latent frames only: the
per-cell errors are [B, f−1, h, w] and a weight given per latent frame loses its first frame. The
condition defaults to the one the model was trained with (``ModelSettings.condition``).
"""

from __future__ import annotations

import torch

from motive.models.wan import CONDITIONS, VideoModel


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
    condition: str | None = None,
) -> torch.Tensor:
    """Predicted minus target velocity: [B, C, f, h, w], or [B, C, f−1, h, w] (the frames after the
    given one) with ``condition="first-frame"``.

    h, eps: [B, C, f, h, w]; text: [B, L, D]; sigma: [B]; ``params``: see ``VideoModel.velocity``;
    ``condition``: one of ``CONDITIONS`` (None: the model's own).
    """
    condition = resolve_condition(model, condition)
    s = sigma.view(-1, 1, 1, 1, 1)
    x = (1 - s) * h + s * eps
    if condition == "first-frame":
        x = torch.cat([h[:, :, :1], x[:, :, 1:]], dim=2)  # the conditioning frame, clean
        return model.velocity(x, sigma, text, params, condition)[:, :, 1:].float() - (eps - h)[:, :, 1:]
    return model.velocity(x, sigma, text, params).float() - (eps - h)


def resolve_condition(model: VideoModel, condition: str | None) -> str:
    """``condition``, or the model's own (``ModelSettings.condition``) when None; checked."""
    condition = model.settings.condition if condition is None else condition
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    return condition


def loss_weight(weight: torch.Tensor | None, condition: str) -> torch.Tensor | None:
    """A weight per latent frame [B, f, h, w] for the frames a loss under ``condition`` covers: all,
    or (first-frame) the frames after the conditioning one [B, f−1, h, w]."""
    return weight[:, 1:] if weight is not None and condition == "first-frame" else weight


def velocity_error(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    params: dict[str, torch.Tensor] | None = None,
    condition: str | None = None,
) -> torch.Tensor:
    """Squared velocity error per latent cell, averaged over latent channels: [B, f, h, w] ([B, f−1,
    h, w] with ``condition="first-frame"``)."""
    return velocity_residual(model, h, text, sigma, eps, params, condition).pow(2).mean(dim=1)


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
    condition: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(per-cell error, matching weight) of ``objective``: ``flow`` = the squared velocity error per
    latent cell [B, f, h, w] with ``weight`` as given; ``temporal`` = ``temporal_error`` per pair of
    consecutive latent frames [B, f−1, h, w] with ``pair_weight(weight)``. Under ``condition =
    "first-frame"`` both cover the frames after the first only (one frame fewer)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    condition = resolve_condition(model, condition)
    weight = loss_weight(weight, condition)
    if objective == "flow":
        return velocity_error(model, h, text, sigma, eps, params, condition), weight
    residual = velocity_residual(model, h, text, sigma, eps, params, condition)
    return temporal_error(residual), None if weight is None else pair_weight(weight)


def per_sample_loss(
    model: VideoModel,
    h: torch.Tensor,
    text: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    weight: torch.Tensor | None = None,
    params: dict[str, torch.Tensor] | None = None,
    objective: str = "flow",
    condition: str | None = None,
) -> torch.Tensor:
    """Flow-matching loss per sample ``[B]``: the velocity error (or, ``objective="temporal"``, its
    frame-to-frame change), optionally weighted per latent cell by ``weight`` [B, f, h, w] (the motion
    mask), averaged over cells (the frames after the first under ``condition="first-frame"``)."""
    return masked_mean(*cell_error(model, h, text, sigma, eps, weight, params, objective, condition))
