"""Flow-matching training shared by pretraining and fine-tuning, on cached latents.

The loss is ``motive.loss`` (docs/method.md §2). Training σ is drawn with Wan's shift:
σ = s·u / (1 + (s−1)·u), u ~ U(0, 1), mapped into ``sigma_range`` (a Wan2.2-A14B expert trains only on
the noise levels it denoises). The text encoder and VAE are frozen, so each clip is encoded once,
prompts are encoded once through the model's prompt cache (the encoder then freed), and every step
only runs the transformer: under bf16 autocast when asked, with gradient checkpointing, accumulating
gradients over micro-batches. A run can save a checkpoint (trained weights, optimiser, schedule,
random-generator state, losses) every few steps and resume from it to the same weights as an
uninterrupted run. Under torchrun every rank draws the same global batch (``batch_size`` × ranks,
from the same generator), trains on its slice and averages gradients with the others, so N ranks take
the steps one process with N× the batch would, up to floating-point reduction order. With ``fsdp``
the transformer is sharded across the ranks instead of copied (FSDP2's ``fully_shard`` per block):
each rank keeps 1/N of the trained weights, their gradients and AdamW's moments, for models whose
training state does not fit one device; checkpoints and the final weights are gathered to full
tensors, so they are the same files either way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motive.files import atomic_path
from motive.gradients import PRECISIONS
from motive.log import logger
from motive.loss import per_sample_loss
from motive.models.pixels import frames_to_tensor
from motive.models.wan import VideoModel
from motive.parallel import all_reduce


def shifted_sigmas(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Map uniform u ∈ (0, 1) to Wan's shifted noise levels."""
    return shift * u / (1 + (shift - 1) * u)


@dataclass
class EncodedData:
    """A dataset encoded once: latents [N, C, f, h, w], prompt index per clip, unique prompts, and
    optionally a loss weight per latent cell [N, f, h, w] (None: the plain flow-matching loss, what
    every command trains with; a weighted base model is an experiment's, e.g. more weight where
    things move)."""

    latents: torch.Tensor
    prompt_ids: torch.Tensor
    prompts: list[str]
    weights: torch.Tensor | None = None


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
    grad_accum: int = 1  # micro-batches of batch_size clips per optimiser step
    precision: str = "fp32"  # "bf16": forward/backward under bf16 autocast (weights and AdamW fp32)
    checkpointing: bool = False  # recompute each block's activations in backward (memory for time)
    sigma_range: tuple[float, float] = (0.0, 1.0)  # training σ is mapped into [lo, hi)
    checkpoint_every: int = 0  # save a resumable checkpoint every this many steps (0: never)
    fsdp: bool = False  # under torchrun, shard the transformer across ranks (FSDP2) instead of copying it

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.grad_accum < 1 or self.batch_size < 1 or self.steps < 1:
            raise ValueError("steps, batch_size and grad_accum must be ≥ 1")


def _group() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Mean of every rank's gradients, in place (one all-reduce per flattened bucket of tensors)."""
    grads = [p.grad for p in params if p.grad is not None]
    for bucket in torch.split(torch.arange(len(grads)), 64):
        flat = torch.cat([grads[i].reshape(-1) for i in bucket.tolist()])
        all_reduce(flat)
        flat /= world
        offset = 0
        for i in bucket.tolist():
            n = grads[i].numel()
            grads[i].copy_(flat[offset : offset + n].view_as(grads[i]))
            offset += n


def _sum_over_ranks(value: float, device: torch.device) -> float:
    """``value`` summed over the ranks, through a tensor on the training ``device`` (under NCCL a CPU
    tensor has no backend)."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    all_reduce(t)
    return float(t)


def _identity(config: TrainConfig, data: EncodedData) -> str:
    """What a checkpoint must agree with to be resumed: the settings and the data (clips, prompts)."""
    parts = [asdict(config), list(data.latents.shape), data.prompts, data.prompt_ids.tolist()]
    if data.weights is not None:  # (unweighted runs keep the identity older checkpoints have)
        parts.append(float(data.weights.double().sum()))
    return json.dumps(parts)


def shard(transformer: torch.nn.Module) -> None:
    """FSDP2: shard each transformer block, then the rest, across the ranks of the process group (in
    place; parameters become DTensors, gradients are reduce-scattered and averaged in backward)."""
    from torch.distributed.fsdp import fully_shard

    for block in getattr(transformer, "blocks", []):
        fully_shard(block)
    fully_shard(transformer)


def is_sharded(module: torch.nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in module.parameters())


def unsharded_class(module: torch.nn.Module) -> type:
    """The module's own class (FSDP2 swaps in a subclass named ``FSDP<class>``)."""
    from torch.distributed.fsdp import FSDPModule

    return next(c for c in type(module).__mro__ if c is not FSDPModule and not issubclass(c, FSDPModule))


def gather(named: list[tuple[str, torch.nn.Parameter]]) -> dict[str, torch.Tensor]:
    """Full CPU copies of the named parameters. A sharded one is all-gathered one at a time (a
    collective every rank calls in the same order); only rank 0 keeps the copies, the others get {}."""
    from torch.distributed.tensor import DTensor

    rank, _ = _group()
    out = {}
    for n, p in named:
        full = p.full_tensor() if isinstance(p, DTensor) else p
        if rank == 0:  # a copy of its own: loaded weights can be views into one shared buffer
            out[n] = full.detach().to("cpu", copy=True)
        del full
    return out


def _save_checkpoint(file: Path, step: int, module, named, opt, sched, gen, losses, identity: str) -> None:
    """Save on rank 0; under FSDP every rank calls it (weights and optimiser state are gathered)."""
    rank, _ = _group()
    weights = gather(named)
    if is_sharded(module):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        optimizer = get_optimizer_state_dict(
            module, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
    else:
        optimizer = opt.state_dict()
    if rank != 0:
        return
    state = {
        "step": step,
        "identity": identity,
        "weights": weights,
        "optimizer": optimizer,
        "scheduler": sched.state_dict(),
        "generator": gen.get_state(),
        "losses": torch.tensor(losses, dtype=torch.float64),
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(file) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(file: Path, identity: str) -> dict | None:
    """A checkpoint written by a run with the same settings and data, or None. Loaded with
    ``weights_only`` (tensors, numbers, strings: never code)."""
    if not file.is_file():
        return None
    state = torch.load(file, weights_only=True)
    if state.get("identity") != identity:
        raise ValueError(f"{file} was written by a run with other settings or data; delete it to start over")
    return state


def train_flow_matching(
    model: VideoModel,
    data: EncodedData,
    config: TrainConfig,
    progress: bool = True,
    desc: str = "train",
    trainable: list[tuple[str, torch.nn.Parameter]] | None = None,
    checkpoint: Path | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[float]:
    """Train the transformer with the standard flow-matching loss; returns per-step losses.

    ``trainable``: the (name, parameter) pairs to train (default: all of the transformer; a LoRA run
    passes its adapter weights). ``checkpoint``: file to save to every ``config.checkpoint_every``
    steps and to resume from when it exists (same settings required). ``on_step(k)`` is called after
    the k-th optimiser step (with the transformer in train mode), e.g. to evaluate along training."""
    transformer = model.transformer
    names = (
        [n for n, _ in trainable] if trainable is not None else [n for n, _ in transformer.named_parameters()]
    )
    rank, world = _group()
    identity = _identity(config, data)
    state = _load_checkpoint(checkpoint, identity) if checkpoint is not None else None
    transformer.requires_grad_(False)
    before = dict(transformer.named_parameters())
    for n in names:
        before[n].requires_grad_(True)
    if state is not None:  # weights before sharding: every rank copies the full tensors
        with torch.no_grad():
            for n in names:
                before[n].copy_(state["weights"][n])
    sharded = config.fsdp and world > 1
    if sharded:
        shard(transformer)
    by_name = dict(transformer.named_parameters())  # sharding replaced the parameters
    named = [(n, by_name[n]) for n in names]
    params = [p for _, p in named]
    transformer.train()
    device = model.device
    model.cache_prompts(data.prompts + [""])  # every prompt once; the encoder is then freed
    prompts = data.prompts + [""]  # last = the empty prompt (prompt dropout)
    empty = len(data.prompts)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        if not config.cosine:
            return 1.0
        p = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    losses: list[float] = []
    start = 0
    if state is not None:
        if sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(
                transformer, opt, state["optimizer"], options=StateDictOptions(full_state_dict=True)
            )
        else:
            opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        losses, start = state["losses"].tolist(), int(state["step"])
        logger.info("resuming %s at step %d of %d from %s", desc, start, config.steps, checkpoint)
    dtype = PRECISIONS[config.precision]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    if config.checkpointing and transformer._supports_gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    lo, hi = config.sigma_range
    B = config.batch_size
    mine = slice(rank * B, (rank + 1) * B)  # this rank's part of each global batch
    bar = tqdm(
        range(start, config.steps), desc=desc, disable=not progress or rank, initial=start, total=config.steps
    )
    n = data.latents.shape[0]
    try:
        for step in bar:
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(config.grad_accum):
                idx = torch.randint(0, n, (B * world,), generator=gen)  # the global batch, on every rank
                pid = data.prompt_ids[idx].clone()
                pid[torch.rand(len(idx), generator=gen) < config.prompt_dropout] = empty
                u = torch.rand(len(idx), generator=gen)
                eps = torch.randn((len(idx), *data.latents.shape[1:]), generator=gen)
                idx, pid, u, eps = idx[mine], pid[mine], u[mine], eps[mine].to(device)
                h = data.latents[idx].to(device)  # [B, C, f, h, w]
                w = None if data.weights is None else data.weights[idx].to(device)  # [B, f, h, w]
                sigma = (lo + (hi - lo) * shifted_sigmas(u, config.flow_shift)).to(device)  # [B]
                text = model.encode_text([prompts[i] for i in pid.tolist()])  # [B, L, D]
                with autocast:
                    loss = per_sample_loss(model, h, text, sigma, eps, w).float().mean() / config.grad_accum
                loss.backward()
                total += float(loss.detach()) / world
            if world > 1:
                if not sharded:  # FSDP averaged the gradients in backward already
                    _average_gradients(params, world)
                total = _sum_over_ranks(total, device)
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            sched.step()
            losses.append(total)
            if len(losses) % 25 == 0 or len(losses) < 25:
                bar.set_postfix(loss=f"{np.mean(losses[-100:]):.4f}")
            if (
                checkpoint is not None
                and config.checkpoint_every
                and (step + 1) % config.checkpoint_every == 0
            ):
                _save_checkpoint(checkpoint, step + 1, transformer, named, opt, sched, gen, losses, identity)
            if on_step is not None:
                on_step(step + 1)
    finally:
        if config.checkpointing and transformer._supports_gradient_checkpointing:
            transformer.disable_gradient_checkpointing()
        transformer.eval()
    return losses
