"""Frames as the VAE sees them: uint8 pixels ↔ float tensors in [-1, 1] (its input range).

Apart from ``models.wan`` so that ``models.sampling``, which ``VideoModel.generate`` calls, can use them
too without importing ``models.wan``.
"""

from __future__ import annotations

import numpy as np
import torch


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[F, H, W, 3]`` → float ``[3, F, H, W]`` in [-1, 1] (the VAE's input range)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return x.permute(3, 0, 1, 2)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float ``[3, F, H, W]`` in [-1, 1] → uint8 ``[F, H, W, 3]``."""
    x = video.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte()
    return x.permute(1, 2, 3, 0).cpu().numpy()
