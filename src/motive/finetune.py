"""Full fine-tuning of the transformer on a selection (docs/method.md §7).

Text encoder and VAE stay frozen; the standard (unmasked) flow-matching loss; AdamW at lr 1e-5 (the
paper's); the subset is repeated (the paper: 1 epoch over the subset repeated 50×). The output is a
diffusers pipeline folder like the input, with ``finetune.json`` and the loss log beside it.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from motive.data.dataset import load_dataset
from motive.inputs import dataset_inputs
from motive.models.wan import VideoModel
from motive.training import EncodedData, TrainConfig, train_flow_matching


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
    out: str = field(default="", metadata={"help": "output model folder", "required": True})
    lr: float = field(default=1e-5, metadata={"help": "AdamW learning rate (the paper: 1e-5)"})
    repeat: int = field(default=50, metadata={"help": "times the subset is repeated (the paper: 50)"})
    batch_size: int = field(default=8, metadata={"help": "clips per step"})
    steps: int | None = field(default=None, metadata={"help": "exact optimiser steps (overrides --repeat)"})
    seed: int = field(default=0, metadata={"help": "training seed"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})


def encode_clips(model: VideoModel, dataset, progress: bool = True) -> EncodedData:
    """Latents of every clip (through the shared input cache), with prompt ids."""
    latents = [x.latent for x in dataset_inputs(model, list(dataset))]
    prompts = sorted({c.prompt for c in dataset})
    ids = torch.tensor([prompts.index(c.prompt) for c in dataset], dtype=torch.long)
    return EncodedData(torch.stack(latents), ids, prompts)


def train_on(
    model: VideoModel, dataset, config: FinetuneConfig, progress: bool = True
) -> tuple[list[float], int]:
    """Fine-tune ``model`` in place on ``dataset``'s clips; returns (losses, steps)."""
    if len(dataset) == 0:
        raise ValueError(f"{config.selection or config.data}: no clips to fine-tune on")
    data = encode_clips(model, dataset, progress)
    steps = config.steps or math.ceil(len(dataset) * config.repeat / config.batch_size)
    train = TrainConfig(
        steps=steps,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup=0,
        cosine=False,
        flow_shift=float(model.pipe.scheduler.config.get("shift", 3.0)),
        seed=config.seed,
    )
    return train_flow_matching(model, data, train, progress, desc="finetune"), steps


def finetune(config: FinetuneConfig, progress: bool = True) -> dict:
    """Fine-tune ``config.model`` on the selected clips and save to ``config.out``."""
    t0 = time.perf_counter()
    model = VideoModel.from_pretrained(config.model)
    dataset = load_dataset(config.data, table_path=config.selection)
    losses, steps = train_on(model, dataset, config, progress)
    out = Path(config.out)
    model.save_pretrained(out)
    with open(out / "loss.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("step", "loss"), *enumerate(losses)])
    summary = {
        "config": asdict(config),
        "clips": len(dataset),
        "steps": steps,
        "final_loss": sum(losses[-20:]) / min(20, len(losses)),
        "seconds": time.perf_counter() - t0,
    }
    (out / "finetune.json").write_text(json.dumps(summary, indent=2))
    return summary
