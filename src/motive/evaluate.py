"""Evaluation: held-out target-motion loss and VBench-style dynamic degree of generated videos.

(a) Target-motion loss: the motion-weighted flow-matching loss on held-out clips of the query motions,
    averaged over a fixed grid of (σ, ε) that every compared model shares (common random numbers), so
    differences between models are not noise-draw luck. The plain loss is background-dominated and
    nearly blind to motion; the motion-weighted one is the sensitive metric.
    With held-out clips of the other motions too, ``target_specificity`` is the change of the target
    loss minus the change of the other motions' loss against a base model: fine-tuning a small model
    on a hundred clips shifts every motion's loss (drift), and this difference cancels that shift.
(b) VBench's weight-free dimensions (``motive.dimensions``: dynamic degree, temporal flickering, motion
    smoothness, by VBench v0.1.5's rules, docs/method.md §7) of videos generated with ``WanPipeline``
    from eval prompts, with DIS flow standing in for RAFT and a DIS-flow interpolator for AMT; each
    result names its back-end (``dimension_backends``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from motive.compare import CompareConfig
from motive.data.dataset import Clip
from motive.data.standardise import StandardiseTarget
from motive.dimensions import WEIGHT_FREE, backends, score_video
from motive.generate import sample
from motive.inputs import dataset_inputs
from motive.log import logger, stage
from motive.loss import cell_error, masked_mean
from motive.models.wan import VideoModel


@dataclass
class LossGrid:
    """The fixed (σ, ε) grid every model's held-out losses are averaged over (common random numbers)."""

    sigmas: list[float] = field(
        default_factory=lambda: [0.1, 0.25, 0.4, 0.55, 0.7, 0.85],
        metadata={"help": "comma-separated noise levels of the shared loss grid"},
    )
    draws_per_sigma: int = field(default=4, metadata={"help": "noise draws per σ on the grid"})
    noise_seed: int = field(default=1234, metadata={"help": "seed of the grid's shared noise"})


@dataclass
class EvalConfig:
    """The shared loss grid, and how videos are generated and scored."""

    grid: LossGrid = field(default_factory=LossGrid, metadata={"nested": ""})
    # how videos are generated and scored (VBench-rule dimensions), as ``motive compare`` does it
    videos: CompareConfig = field(default_factory=CompareConfig, metadata={"nested": ""})


def clip_losses(
    model: VideoModel,
    clips: list[Clip],
    grid: LossGrid,
    batch: int = 32,
    target: StandardiseTarget | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each clip's motion-weighted and plain flow-matching loss averaged over ``grid`` → ([N], [N]),
    both from the same forward passes.

    The ε of each grid point is drawn from ``grid.noise_seed`` per latent shape and shared by every
    clip of that shape and by every model, so differences between models are not noise-draw luck."""
    if not clips:
        raise ValueError("no held-out clips to evaluate on")
    inputs = dataset_inputs(model, clips, target=target, progress=logger.isEnabledFor(logging.INFO))
    weighted, plain = np.empty(len(clips)), np.empty(len(clips))  # [N]
    shapes: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(inputs):
        shapes.setdefault(tuple(x.latent.shape), []).append(i)
    with torch.no_grad():
        for shape, members in shapes.items():
            gen = torch.Generator("cpu").manual_seed(grid.noise_seed)
            draws = [
                (sigma, torch.randn(shape, generator=gen))  # [C, f, h, w]
                for sigma in grid.sigmas
                for _ in range(grid.draws_per_sigma)
            ]
            for start in range(0, len(members), batch):
                idx = members[start : start + batch]
                h = torch.stack([inputs[i].latent for i in idx]).to(model.device)  # [B, C, f, h, w]
                w = torch.stack([inputs[i].mask for i in idx]).to(model.device)  # [B, f, h, w]
                text = model.encode_text([clips[i].prompt for i in idx])  # [B, L, D]
                tw = torch.zeros(len(idx), dtype=torch.float64)  # [B]
                tp = torch.zeros(len(idx), dtype=torch.float64)  # [B]
                for sigma, eps in draws:
                    sig = torch.full((len(idx),), sigma, device=model.device)
                    # the model's own loss: a first-frame model's error and weight skip the given frame
                    err, wl = cell_error(model, h, text, sig, eps.to(model.device)[None].expand_as(h), w)
                    tw += masked_mean(err, wl).double().cpu()
                    tp += masked_mean(err).double().cpu()
                weighted[idx] = (tw / len(draws)).numpy()
                plain[idx] = (tp / len(draws)).numpy()
    return weighted, plain


def held_out_losses(
    model: VideoModel, clips: list[Clip], config: EvalConfig, target: StandardiseTarget | None = None
) -> tuple[float, float]:
    """Mean motion-weighted and plain flow-matching loss of ``clips`` over the config's grid, at clip
    format ``target`` (default: the model's native one)."""
    with stage(f"held-out loss of {len(clips)} clips"):
        weighted, plain = clip_losses(model, clips, config.grid, target=target)
    return float(weighted.mean()), float(plain.mean())


def generated_dimensions(
    model: VideoModel,
    prompts: list[str],
    config: CompareConfig,
    clips: list[str] | None = None,
    video_score: Callable[[int, np.ndarray], dict] | None = None,
) -> dict:
    """Mean of each weight-free VBench dimension over videos generated from ``prompts`` (one each, seeds
    ``generate.seed + i``; dynamic degree: the fraction of videos VBench's rule calls dynamic). With
    ``generate.first_frame``, prompt i's video starts at the first frame of ``clips[i]``.

    ``video_score(i, video)`` (video uint8 [F, H, W, 3]) scores each video by a caller's own measure:
    its dicts are kept, in prompt order, under ``videos``, and the mean of each of their float values
    (NaNs skipped) is added beside the dimensions (a video is not kept after it is scored)."""
    g = config.generate
    rows: list[dict[str, float]] = []
    extra: list[dict] = []
    for start in range(0, len(prompts), g.batch):
        chunk = prompts[start : start + g.batch]
        seeds = [g.seed + start + i for i in range(len(chunk))]
        firsts = clips[start : start + g.batch] if clips else None
        videos = sample(model, chunk, seeds, g, firsts)  # [B, F, H, W, 3]
        rows += [score_video(v, model.settings.fps, config.dimensions) for v in videos]
        if video_score is not None:
            extra += [video_score(start + i, v) for i, v in enumerate(videos)]
        logger.info("generated and scored %d of %d videos", len(rows), len(prompts))
    out: dict = {dim: float(np.mean([r[dim] for r in rows])) for dim in WEIGHT_FREE}
    if video_score is not None:
        floats = [k for k, v in extra[0].items() if isinstance(v, float)] if extra else []
        means = {k: np.array([e[k] for e in extra], dtype=float) for k in floats}
        out |= {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in means.items()}
        out["videos"] = extra
    return out


def evaluate(
    model: VideoModel,
    clips: list[Clip],
    prompts: list[str],
    config: EvalConfig | None = None,
    other: list[Clip] | None = None,
    target: StandardiseTarget | None = None,
    first_frames: list[str] | None = None,
    video_score: Callable[[int, np.ndarray], dict] | None = None,
) -> dict:
    """Both metrics for one model: the held-out losses and, one key each, the weight-free VBench
    dimensions of videos generated from ``prompts`` (NaN without prompts), with their back-ends under
    ``dimension_backends``; with ``other`` (held-out clips of the other motions) also their
    motion-weighted loss, ``other_motion_loss``, which ``target_specificity`` needs. ``first_frames``:
    the clip each prompt's video starts at (with ``videos.generate.first_frame``); ``video_score``: a
    caller's own measure of each generated video (``generated_dimensions``)."""
    config = config or EvalConfig()
    weighted, plain = held_out_losses(model, clips, config, target)
    dims = (
        generated_dimensions(model, prompts, config.videos, first_frames, video_score)
        if prompts
        else dict.fromkeys(WEIGHT_FREE, float("nan"))
    )
    result = {
        "target_motion_loss": weighted,
        "plain_loss": plain,
        **dims,
        "dimension_backends": backends(config.videos.dimensions),
        "config": asdict(config),
    }
    if other:
        result["other_motion_loss"] = held_out_losses(model, other, config, target)[0]
    return result


def target_specificity(result: dict, base: dict) -> float:
    """How much more a fine-tune lowered the target motion's loss than the other motions' loss, from
    two ``evaluate`` results with ``other``: (Δ target loss) − (Δ other-motion loss) against ``base``.
    Below 0 when the fine-tune moved the model toward the target motion more than toward the rest; a
    change common to all motions (generic drift from fine-tuning on few clips) cancels."""
    return (result["target_motion_loss"] - base["target_motion_loss"]) - (
        result["other_motion_loss"] - base["other_motion_loss"]
    )
