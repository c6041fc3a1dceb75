"""Where a model's parts run and in what memory: the default device, the text encoder's dtype there,
and whether the VAE must encode in tiles to fit the device's free memory."""

from __future__ import annotations

import torch


def default_device() -> str:
    """CUDA when there is one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | None) -> str:
    """``None`` or ``"auto"`` → ``default_device()``; anything else as given."""
    return default_device() if device in (None, "auto") else device


def text_dtype_for(device: str | torch.device) -> torch.dtype:
    """The text encoder's dtype: bf16 on accelerators (what Wan's pipelines use), fp32 on the CPU."""
    return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16


# Bytes the Wan VAE's encoder holds per pixel of a clip at its peak: it encodes causally, a few frames
# at a time, so its activations scale with height × width, not frames. Measured on the CPU with the
# released Wan2.1 VAE's shape, fp32: 18,487 at 160×256 and 18,629 at 320×512 (BENCHMARKS.md "The Wan
# VAE tiled and untiled"), so ~7.4 GB for a 480×832 clip; tiles of 256 pixels need less than half.
VAE_BYTES_PER_PIXEL = 18_600


def resolve_vae_tiling(mode: str, device: torch.device, height: int, width: int) -> bool:
    """Whether the VAE encodes in tiles: ``on``/``off`` as said; ``auto`` tiles on an accelerator when
    an untiled encode of one ``height`` × ``width`` clip (``VAE_BYTES_PER_PIXEL``; a VAE call holds
    one real-size clip, ``motive.inputs.VAE_CALL_PIXELS``) would not fit its free memory, never on the
    CPU."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"VAE tiling must be auto, on or off, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return VAE_BYTES_PER_PIXEL * height * width > free
