"""Fine-tuning the transformer on a selection: full (the paper's setting) or LoRA (docs/method.md §7).

Text encoder and VAE stay frozen; the standard (unmasked) flow-matching loss, so no motion mask is
computed; AdamW at lr 1e-5 (the paper's); the subset is repeated (the paper: 1 epoch over the subset
repeated 50×). On an accelerator (the default device when there is one) it trains under bf16 autocast
with gradient checkpointing; gradients can be accumulated over micro-batches. Training σ follows
Wan's shift, read from the model's scheduler config (``flow_shift``). For Wan2.2-A14B only the expert
that Motive attributed is trained, on the noise levels it denoises; the other is left untouched.

The output holds only what was trained — the transformer's safetensors (full) or the adapter (LoRA,
diffusers' ``pytorch_lora_weights.safetensors``) — plus ``motive.json`` naming the base, so Motive
(``VideoModel.from_pretrained``) and diffusers (``WanPipeline.from_pretrained(base, transformer=...)``
or ``load_lora_weights``) load it. A checkpoint (weights, optimiser, schedule, random state) is saved
every ``checkpoint_every`` steps; rerunning a killed command resumes from it to the same weights.

Under torchrun the ranks either each hold a copy of the transformer and average gradients
(``replicate``) or shard it with FSDP2 (``fsdp``): weights, gradients and AdamW's two moments, 16 bytes
per trained fp32 parameter, split N ways. ``auto`` shards when that training state would take more
than half of one device's memory (a full fine-tune of a 14B expert needs about 224 GB).
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from motive.data.dataset import load_dataset
from motive.data.standardise import StandardiseTarget
from motive.gradients import GradientConfig, resolve_precision
from motive.inputs import cache_dir, dataset_inputs, default_target
from motive.log import logger
from motive.models.devices import resolve_device
from motive.models.wan import VideoModel, expert_sigma_range
from motive.training import EncodedData, TrainConfig, gather, is_sharded, train_flow_matching, unsharded_class

CHECKPOINT = "checkpoint/state.pt"  # inside the output folder, removed when the run finishes
# LoRA on every attention projection of every block (self- and cross-attention), as Wan trainers do
LORA_TARGETS = ["blocks.*.to_q", "blocks.*.to_k", "blocks.*.to_v", "blocks.*.to_out.0"]


@dataclass
class FinetuneConfig:
    """A fine-tuning run; saved as ``finetune.json`` in the output folder."""

    model: str = field(default="", metadata={"help": "base model folder", "required": True})
    data: str = field(
        default="", metadata={"help": "dataset folder the selection's videos live in", "required": True}
    )
    selection: str | None = field(  # rows of ``data``; None = the whole dataset
        default=None, metadata={"help": "selection.csv from `motive attribute` (default: all clips)"}
    )
    out: str = field(default="", metadata={"help": "output folder", "required": True})
    lr: float = field(default=1e-5, metadata={"help": "AdamW learning rate (the paper: 1e-5)"})
    repeat: int = field(default=50, metadata={"help": "times the subset is repeated (the paper: 50)"})
    batch_size: int = field(default=8, metadata={"help": "clips per micro-batch"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    steps: int | None = field(default=None, metadata={"help": "exact optimiser steps (overrides --repeat)"})
    seed: int = field(default=0, metadata={"help": "training seed"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup: int = field(default=0, metadata={"help": "linear warm-up steps"})
    schedule: str = field(
        default="constant",
        metadata={"help": "learning-rate schedule after warm-up", "choices": ("constant", "cosine")},
    )
    device: str = field(default="auto", metadata={"help": "torch device (auto: cuda when present)"})
    precision: str = field(
        default="auto",
        metadata={"help": "bf16 autocast or fp32 (auto: bf16 on CUDA)", "choices": ("auto", "fp32", "bf16")},
    )
    checkpointing: bool = field(
        default=True,
        metadata={"flag": "--no-checkpointing", "help": "keep activations instead of recomputing them"},
    )
    lora_rank: int = field(
        default=0, metadata={"help": "0: full fine-tuning (the paper's); > 0: LoRA of this rank (peft)"}
    )
    lora_alpha: float | None = field(default=None, metadata={"help": "LoRA alpha (default: the rank)"})
    lora_targets: list[str] = field(
        default_factory=lambda: list(LORA_TARGETS),
        metadata={"help": "comma-separated globs of the transformer modules LoRA adapts"},
    )
    checkpoint_every: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps (0: never)"}
    )
    shard: str = field(
        default="auto",
        metadata={
            "help": "under torchrun: copy the model on every rank or shard it (auto: FSDP when the training "
            "state would take over half a device)",
            "choices": ("auto", "replicate", "fsdp"),
        },
    )

    def __post_init__(self) -> None:
        if self.shard not in ("auto", "replicate", "fsdp"):
            raise ValueError(f"shard must be auto, replicate or fsdp, got {self.shard!r}")


TRAIN_BYTES = 16  # per trained fp32 parameter: weight, gradient and AdamW's two moments


def use_fsdp(config: FinetuneConfig, model: VideoModel, trained: int, world: int) -> bool:
    """Whether to shard the transformer (see the module docstring); ``trained``: trained parameters."""
    if world <= 1 or config.shard == "replicate":
        return False
    if config.shard == "fsdp":
        return True
    if model.device.type != "cuda":
        return False
    frozen = sum(p.numel() for p in model.transformer.parameters()) - trained
    need = TRAIN_BYTES * trained + 4 * frozen
    return need > 0.5 * torch.cuda.get_device_properties(model.device).total_memory


def encode_clips(
    model: VideoModel, dataset, progress: bool = True, target: StandardiseTarget | None = None
) -> EncodedData:
    """Latents of every clip at clip format ``target`` (default: the model's native one; through the
    shared input cache; no flow computed), with prompt ids."""
    latents = [
        x.latent for x in dataset_inputs(model, list(dataset), target=target, motion=False, progress=progress)
    ]
    prompts = sorted({c.prompt for c in dataset})
    ids = torch.tensor([prompts.index(c.prompt) for c in dataset], dtype=torch.long)
    return EncodedData(torch.stack(latents), ids, prompts)


def flow_shift(model: VideoModel) -> float:
    """Wan's σ shift from the scheduler config: ``flow_shift`` (UniPC, Wan's own folders) or ``shift``
    (flow-matching Euler), else 3.0."""
    cfg = model.pipe.scheduler.config
    return float(cfg.get("flow_shift") or cfg.get("shift") or 3.0)


def add_lora(model: VideoModel, config: FinetuneConfig) -> list[tuple[str, torch.nn.Parameter]]:
    """Attach a LoRA adapter (peft, diffusers' adapter API) to the transformer; its weights."""
    from peft import LoraConfig

    names = [n for n, _ in model.transformer.named_modules()]
    chosen = [n for n in names if any(fnmatch.fnmatch(n, g) for g in config.lora_targets)]
    if not chosen:
        raise ValueError(f"no transformer module matches the LoRA targets {config.lora_targets}")
    pattern = "|".join(re.escape(n) for n in chosen)  # peft matches a string target in full
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha or config.lora_rank,
        target_modules=f"^({pattern})$",
        init_lora_weights=True,
    )
    model.transformer.add_adapter(lora)
    return [(n, p) for n, p in model.transformer.named_parameters() if "lora_" in n]


def train_on(
    model: VideoModel,
    dataset,
    config: FinetuneConfig,
    progress: bool = True,
    checkpoint: Path | None = None,
    target: StandardiseTarget | None = None,
) -> tuple[list[float], int]:
    """Fine-tune ``model`` in place on ``dataset``'s clips at clip format ``target`` (default: the
    model's native one); returns (losses, steps)."""
    if len(dataset) == 0:
        raise ValueError(f"{config.selection or config.data}: no clips to fine-tune on")
    data = encode_clips(model, dataset, progress, target)
    steps = config.steps or math.ceil(len(dataset) * config.repeat / (config.batch_size * config.grad_accum))
    train = TrainConfig(
        steps=steps,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        cosine=config.schedule == "cosine",
        flow_shift=flow_shift(model),
        seed=config.seed,
        grad_accum=config.grad_accum,
        precision=resolve_precision(config.precision, model.device),
        checkpointing=config.checkpointing,
        sigma_range=expert_sigma_range(model),
        checkpoint_every=config.checkpoint_every if checkpoint is not None else 0,
    )
    trainable = add_lora(model, config) if config.lora_rank else None
    trained = (
        sum(p.numel() for _, p in trainable)
        if trainable
        else sum(p.numel() for p in model.transformer.parameters())
    )
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    train = replace(train, fsdp=use_fsdp(config, model, trained, world))
    if train.fsdp:
        logger.info("sharding the transformer across %d ranks (FSDP)", world)
    losses = train_flow_matching(model, data, train, progress, "finetune", trainable, checkpoint)
    return losses, steps


def attributed_store(config: FinetuneConfig) -> tuple[Path, dict] | None:
    """(path, meta.json) of the store the selection came from (``attribution.json`` beside
    ``selection.csv`` names it), or None."""
    if config.selection:
        summary = Path(config.selection).parent / "attribution.json"
        if summary.is_file():
            store = Path(json.loads(summary.read_text()).get("store", ""))
            if (store / "meta.json").is_file():
                return store, json.loads((store / "meta.json").read_text())
    return None


def attributed_sigma(config: FinetuneConfig) -> float:
    """σ of the store the selection came from, which names the Wan2.2-A14B expert to train; the
    default σ otherwise."""
    found = attributed_store(config)
    return float(found[1]["gradient"]["sigma"]) if found else GradientConfig().sigma


def scored_format(config: FinetuneConfig) -> StandardiseTarget | None:
    """The clip format the selection was scored at (its store's), or None."""
    found = attributed_store(config)
    return StandardiseTarget(**found[1]["standardise"]) if found else None


def save_trained(model: VideoModel, out: Path, config: FinetuneConfig) -> None:
    """Only what was trained, plus ``motive.json`` naming the base (see the module docstring). Under
    torchrun every rank calls it (a sharded transformer is gathered); rank 0 writes."""
    lora = bool(config.lora_rank)
    named = list(model.transformer.named_parameters())
    weights = gather([(n, p) for n, p in named if "lora_" in n] if lora else named)  # {} off rank 0
    if not weights:
        return
    out.mkdir(parents=True, exist_ok=True)
    if lora:
        from diffusers import WanPipeline
        from peft.utils import get_peft_model_state_dict

        layers = get_peft_model_state_dict(model.transformer, state_dict=weights)
        WanPipeline.save_lora_weights(str(out), transformer_lora_layers=layers, safe_serialization=True)
    else:
        from huggingface_hub import save_torch_state_dict

        folder = out / model.expert
        model.transformer.save_config(str(folder))
        if is_sharded(model.transformer):  # FSDP renamed the class (FSDPWanTransformer3DModel)
            config_file = folder / "config.json"
            saved = json.loads(config_file.read_text())
            saved["_class_name"] = unsharded_class(model.transformer).__name__
            config_file.write_text(json.dumps(saved, indent=2))
        pattern = "diffusion_pytorch_model{suffix}.safetensors"  # diffusers' names, index included
        save_torch_state_dict(weights, folder, filename_pattern=pattern, max_shard_size="10GB")
    base = Path(config.model)
    model.settings.write(
        out,
        base=str(base.resolve()) if base.exists() else config.model,
        trained="lora" if lora else "full",
        component=model.expert,
    )


def finetune(
    config: FinetuneConfig, progress: bool = True, target: StandardiseTarget | None = None
) -> dict | None:
    """Fine-tune ``config.model`` on the selected clips and save what was trained to ``config.out``.
    The clips are brought to ``target``; by default to the format the selection was scored at (a
    selection from ``motive attribute``), else to the model's native one. Under torchrun every rank
    trains (see ``motive.training``) and rank 0 saves and returns the summary; the others return None."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    t0 = time.perf_counter()
    out = Path(config.out)
    device = resolve_device(config.device)
    model = VideoModel.from_pretrained(config.model, device=device, sigma=attributed_sigma(config))
    model.text_cache = cache_dir() / "text"
    dataset = load_dataset(config.data, table_path=config.selection)
    scored = scored_format(config)
    target = target or scored or default_target(model)
    why = "the format the selection was scored at" if target == scored else "the clip format"
    if rank == 0:
        logger.info(
            "fine-tuning on %d clips at %s: %d×%d×%d at %g fps",
            len(dataset), why, target.frames, target.height, target.width, target.fps,
        )  # fmt: skip
    checkpoint = out / CHECKPOINT
    losses, steps = train_on(model, dataset, config, progress and rank == 0, checkpoint, target)
    save_trained(model, out, config)
    if rank != 0:
        return None
    with open(out / "loss.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("step", "loss"), *enumerate(losses)])
    summary = {
        "config": asdict(config),
        "clips": len(dataset),
        "format": target.to_dict(),
        "steps": steps,
        "trained": model.expert + (f" (LoRA rank {config.lora_rank})" if config.lora_rank else ""),
        "final_loss": sum(losses[-20:]) / min(20, len(losses)),
        "ranks": torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1,
        "fsdp": is_sharded(model.transformer),
        "seconds": time.perf_counter() - t0,
    }
    (out / "finetune.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(checkpoint.parent, ignore_errors=True)  # finished: the weights are saved
    logger.info("fine-tuned %s for %d steps -> %s", summary["trained"], steps, out)
    return summary
