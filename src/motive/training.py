"""Flow-matching training shared by pretraining and fine-tuning, on cached latents.

The loss is ``motive.loss`` (docs/method.md §2). Training σ is drawn with Wan's shift:
σ = s·u / (1 + (s−1)·u), u ~ U(0, 1). The text encoder and VAE are frozen, so each clip is encoded
once and every step only runs the transformer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from motive.loss import per_sample_loss
from motive.models.wan import VideoModel, frames_to_tensor


def shifted_sigmas(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Map uniform u ∈ (0, 1) to Wan's shifted noise levels."""
    return shift * u / (1 + (shift - 1) * u)


@dataclass
class EncodedData:
    """A dataset encoded once: latents [N, C, f, h, w], prompt index per clip, unique prompts."""

    latents: torch.Tensor
    prompt_ids: torch.Tensor
    prompts: list[str]


def encode_frames(
    model: VideoModel, frames: np.ndarray, prompts: list[str], batch_size: int = 16, progress: bool = True
) -> EncodedData:
    """VAE-encode standardised clips ``frames`` [N, F, H, W, 3] uint8 with their prompts."""
    latents = []
    for start in tqdm(range(0, len(frames), batch_size), desc="encode", disable=not progress, leave=False):
        batch = torch.stack([frames_to_tensor(f) for f in frames[start : start + batch_size]])
        latents.append(model.encode_video(batch).cpu())
    unique = sorted(set(prompts))
    index = {p: i for i, p in enumerate(unique)}
    ids = torch.tensor([index[p] for p in prompts], dtype=torch.long)
    return EncodedData(torch.cat(latents), ids, unique)


@dataclass
class TrainConfig:
    """Optimiser settings of a flow-matching run (pretraining or fine-tuning)."""

    steps: int = field(default=2500, metadata={"help": "transformer training steps"})
    batch_size: int = field(default=16, metadata={"help": "clips per step"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the transformer"})
    weight_decay: float = 0.01
    warmup: int = 100
    cosine: bool = True  # cosine decay to 10% of lr after warmup
    flow_shift: float = 3.0
    prompt_dropout: float = 0.1  # share of samples trained with the empty prompt (allows guidance)
    grad_clip: float = 1.0
    seed: int = 0


def train_flow_matching(
    model: VideoModel, data: EncodedData, config: TrainConfig, progress: bool = True, desc: str = "train"
) -> list[float]:
    """Train all transformer parameters with the standard flow-matching loss; returns per-step losses."""
    transformer = model.transformer
    transformer.requires_grad_(True)  # a featurizer may have frozen some parameters
    transformer.train()
    device = model.device
    texts = model.encode_text(data.prompts + [""])  # [P+1, L, D]; last row = empty prompt
    empty = len(data.prompts)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(transformer.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        if not config.cosine:
            return 1.0
        p = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    losses: list[float] = []
    bar = tqdm(range(config.steps), desc=desc, disable=not progress)
    n = data.latents.shape[0]
    for _ in bar:
        idx = torch.randint(0, n, (config.batch_size,), generator=gen)
        h = data.latents[idx].to(device)
        pid = data.prompt_ids[idx].clone()
        pid[torch.rand(len(idx), generator=gen) < config.prompt_dropout] = empty
        sigma = shifted_sigmas(torch.rand(len(idx), generator=gen), config.flow_shift).to(device)
        eps = torch.randn(h.shape, generator=gen).to(device)
        loss = per_sample_loss(model, h, texts[pid.to(device)], sigma, eps).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), config.grad_clip)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if len(losses) % 25 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-100:]):.4f}")
    transformer.eval()
    return losses
