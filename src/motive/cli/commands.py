"""What the ``motive`` subcommands share: loading a model, starting a torchrun group, the clip format
option group and the options every long command has. The subcommands themselves live in
``motive.cli.stores`` (featurize, store, attribute, report, export), ``motive.cli.models`` (queries,
finetune, generate, evaluate, compare), ``motive.cli.demo`` (world, pretrain, demo),
``motive.cli.motion`` and ``motive.cli.study``; each is imported only once its subcommand is chosen,
after ``motive.cli.checks`` has checked the inputs."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

from motive.cli.options import add_options, from_args
from motive.data.standardise import StandardiseTarget
from motive.generate import GenerateConfig


def quiet_libraries() -> None:
    """Keep diffusers/transformers from printing per-load progress bars; their warnings still show."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_warning()
    dlog.disable_progress_bar()
    tlog.set_verbosity_warning()
    tlog.disable_progress_bar()


def load_model(path: str, device: str, sigma: float | None = None, weights: str = "fp32"):
    """The model at ``path`` on ``device`` (``auto``: CUDA when present). With ``sigma``, only the
    expert of a two-expert pipeline that denoises at σ is loaded; ``weights``: the transformer's dtype
    (a key of ``motive.gradients.WEIGHTS``)."""
    from motive.gradients import WEIGHTS
    from motive.models.wan import VideoModel

    return VideoModel.from_pretrained(path, device=device, sigma=sigma, transformer_dtype=WEIGHTS[weights])


def torchrun_group(device: str) -> str:
    """Under torchrun (WORLD_SIZE > 1), start the process group (NCCL for CUDA tensors with gloo for CPU
    ones on GPUs, gloo on the CPU: ``motive.parallel.group_backend``) and
    return this rank's device (``cuda:LOCAL_RANK``); else ``device`` as is. Warns once when several
    ranks share a CPU."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device
    if device == "cpu" and int(os.environ.get("RANK", "0")) == 0:
        from motive.log import logger

        logger.warning(
            "%d ranks on the CPU share its %d cores: each runs slower; on one machine, one process "
            "with all cores is usually as fast",
            world,
            os.cpu_count() or 1,
        )
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        from motive.parallel import group_backend

        dist.init_process_group(group_backend(device))
    return device


def end_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def ranks_of(args: argparse.Namespace):
    """This process's rank: torchrun's process group (started here when WORLD_SIZE > 1), the
    ``--rank/--world-size`` flags of separately launched jobs, or a single process."""
    from motive.models.devices import resolve_device
    from motive.store import Ranks

    args.device = torchrun_group(resolve_device(args.device))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return Ranks.current()
    if args.world_size > 1:
        if not 0 <= args.rank < args.world_size:
            raise ValueError(f"--rank must be in [0, {args.world_size}), got {args.rank}")
        return Ranks(args.rank, args.world_size)
    return Ranks()


def mask_plugins(args: argparse.Namespace) -> tuple[str, ...]:
    """Import the ``--plugin`` modules (they register flow back-ends) before a mask config is checked."""
    from motive.motion.flow import load_plugins

    load_plugins(args.plugin)
    return tuple(args.plugin)


def finish(p: argparse.ArgumentParser, func, device: bool = False) -> None:
    """The options every long-running subcommand shares, and its handler."""
    if device:
        p.add_argument(
            "--device", default="auto", help="torch device (auto: cuda when present, else cpu; cuda:1, ...)"
        )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars; warnings and errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (each stage's steps)")
    p.set_defaults(func=func)


def add_plugin_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="module to import first; it registers a flow back-end with motive.motion.register_flow",
    )


FORMAT_HELP = " (default: the store's format downstream of a store, else the model's native format)"


def add_format(p: argparse.ArgumentParser) -> None:
    """The clip format (``--frames --fps --height --width``): one option group, the same on every
    command that reads or makes clips."""
    group = p.add_argument_group("clip format")
    add_options(group, StandardiseTarget, help_suffix=FORMAT_HELP)


def format_given(args: argparse.Namespace) -> bool:
    """Whether any clip-format flag is on the command line."""
    return any(hasattr(args, name) for name in StandardiseTarget.__dataclass_fields__)


def clip_format(args: argparse.Namespace, base: StandardiseTarget) -> StandardiseTarget:
    """``base`` (the store's or the model's format) with the clip-format flags given applied."""
    return from_args(base, args)


def model_format(path: str) -> StandardiseTarget:
    """A model folder's clip format without loading it: ``motive.json``, else its VAE's native one."""
    import json

    from motive.models.checkpoint import ModelSettings, local_pipeline

    local = local_pipeline(path)
    vae = local / "vae" / "config.json"
    z_dim = int(json.loads(vae.read_text()).get("z_dim", 16)) if vae.is_file() else 16
    s = ModelSettings.read(local, z_dim)
    return StandardiseTarget(fps=s.fps, frames=s.frames, height=s.height, width=s.width)


def describe_format(target: StandardiseTarget) -> str:
    """``17×128×224 at 16 fps``."""
    return f"{target.frames}×{target.height}×{target.width} at {target.fps:g} fps"


def generation_format(args: argparse.Namespace, config: GenerateConfig) -> GenerateConfig:
    """``config`` with the frames, height and width given as clip-format flags (videos are sampled at
    that size and written at the model's frame rate, so ``--fps`` is refused here)."""
    if hasattr(args, "fps"):
        raise ValueError(
            "--fps: generated videos are written at the model's frame rate; give --frames instead"
        )
    return replace(config, **{k: getattr(args, k) for k in ("frames", "height", "width") if hasattr(args, k)})
