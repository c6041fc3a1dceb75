"""Evaluation: held-out target-motion loss and VBench-style dynamic degree of generated videos.

(a) Target-motion loss: the motion-weighted flow-matching loss on held-out clips of the query motions,
    averaged over a fixed grid of (σ, ε) that every compared model shares (common random numbers), so
    differences between models are not noise-draw luck. The plain loss is background-dominated and
    nearly blind to motion; the motion-weighted one is the sensitive metric.
    With held-out clips of the other motions too, ``target_specificity`` is the change of the target
    loss minus the change of the other motions' loss against a base model: fine-tuning a small model
    on a hundred clips shifts every motion's loss (drift), and this difference cancels that shift.
(b) Dynamic degree (VBench v0.1.5 rule, docs/method.md §7) of videos generated with ``WanPipeline`` from
    eval prompts, with DIS flow standing in for RAFT (a weight-free proxy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from motive.data.dataset import Clip
from motive.inputs import dataset_inputs
from motive.loss import masked_mean, velocity_error
from motive.models.wan import VideoModel
from motive.motion.flow import dis_flow


@dataclass
class EvalConfig:
    """The shared evaluation grid and generation settings."""

    sigmas: list[float] = field(
        default_factory=lambda: [0.1, 0.25, 0.4, 0.55, 0.7, 0.85],
        metadata={"help": "comma-separated noise levels of the shared loss grid"},
    )
    noise_seed: int = field(default=1234, metadata={"help": "seed of the grid's shared noise"})
    draws_per_sigma: int = field(default=4, metadata={"help": "noise draws per σ on the grid"})
    generate_steps: int = field(default=25, metadata={"flag": "--steps", "help": "sampling steps"})
    generate_seed: int = field(default=0, metadata={"help": "seed of the first generated video"})
    guidance: float = field(default=1.0, metadata={"help": "classifier-free guidance scale"})


def held_out_losses(model: VideoModel, clips: list[Clip], config: EvalConfig) -> tuple[float, float]:
    """Mean motion-weighted and plain flow-matching loss of ``clips`` over the fixed (σ, ε) grid, both
    from the same forward passes: (weighted, plain)."""
    if not clips:
        raise ValueError("no held-out clips to evaluate on")
    inputs = dataset_inputs(model, clips)
    h = torch.stack([i.latent for i in inputs]).to(model.device)  # [N, C, f, h, w]
    w = torch.stack([i.mask for i in inputs]).to(model.device)  # [N, f, h, w]
    text = model.encode_text([c.prompt for c in clips])
    gen = torch.Generator("cpu").manual_seed(config.noise_seed)
    weighted, plain, count = 0.0, 0.0, 0
    with torch.no_grad():
        for sigma in config.sigmas:
            for _ in range(config.draws_per_sigma):
                eps = torch.randn(h.shape[1:], generator=gen).to(model.device)  # one ε for every clip
                sig = torch.full((len(clips),), sigma, device=model.device)
                err = velocity_error(model, h, text, sig, eps[None].expand_as(h))  # [N, f, h, w]
                weighted += float(masked_mean(err, w).sum())
                plain += float(masked_mean(err).sum())
                count += len(clips)
    return weighted / count, plain / count


def dynamic_degree_flags(videos: np.ndarray, fps: float) -> list[bool]:
    """VBench dynamic-degree rule per video [B, F, H, W, 3]: frames every round(fps/8); per pair the mean
    of the top 5% flow magnitudes; threshold 6·min(H, W)/256; dynamic when at least round(4·n/16)
    of the n pairs exceed it."""
    flags = []
    for video in videos:
        step = max(1, round(fps / 8))
        frames = video[::step]
        h, w = frames.shape[1:3]
        thresh = 6.0 * min(h, w) / 256.0
        scores = []
        for a, b in zip(frames[:-1], frames[1:]):
            mag = np.linalg.norm(dis_flow(a, b), axis=-1).ravel()
            k = max(1, int(len(mag) * 0.05))
            scores.append(float(np.sort(mag)[-k:].mean()))
        need = round(4 * len(scores) / 16)
        flags.append(sum(s > thresh for s in scores) >= max(1, need))
    return flags


def dynamic_degree(model: VideoModel, prompts: list[str], config: EvalConfig, batch: int = 8) -> float:
    """Fraction of videos generated from ``prompts`` that VBench's rule calls dynamic."""
    flags: list[bool] = []
    for start in range(0, len(prompts), batch):
        videos = model.generate(
            prompts[start : start + batch],
            steps=config.generate_steps,
            guidance=config.guidance,
            seed=config.generate_seed + start,
        )
        flags += dynamic_degree_flags(videos, model.settings.fps)
    return float(np.mean(flags))


def evaluate(
    model: VideoModel,
    clips: list[Clip],
    prompts: list[str],
    config: EvalConfig | None = None,
    other: list[Clip] | None = None,
) -> dict:
    """Both metrics for one model; with ``other`` (held-out clips of the other motions) also their
    motion-weighted loss, ``other_motion_loss``, which ``target_specificity`` needs."""
    config = config or EvalConfig()
    weighted, plain = held_out_losses(model, clips, config)
    result = {
        "target_motion_loss": weighted,
        "plain_loss": plain,
        "dynamic_degree": dynamic_degree(model, prompts, config) if prompts else float("nan"),
        "config": asdict(config),
    }
    if other:
        result["other_motion_loss"] = held_out_losses(model, other, config)[0]
    return result


def target_specificity(result: dict, base: dict) -> float:
    """How much more a fine-tune lowered the target motion's loss than the other motions' loss, from
    two ``evaluate`` results with ``other``: (Δ target loss) − (Δ other-motion loss) against ``base``.
    Below 0 when the fine-tune moved the model toward the target motion more than toward the rest; a
    change common to all motions (generic drift from fine-tuning on few clips) cancels."""
    return (result["target_motion_loss"] - base["target_motion_loss"]) - (
        result["other_motion_loss"] - base["other_motion_loss"]
    )
