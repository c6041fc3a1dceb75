"""The motion mask of METHOD.md §3: flow magnitude → clip-wide min–max → latent grid.

W = (M − min M) / (max M − min M + ζ), min/max over the whole clip; then bilinear to the latent grid
(spatial ÷8) and causal temporal grouping onto the VAE's latent frames: latent frame 0 ← pixel frame
0, latent frame k ≥ 1 ← mean of pixel frames 4k−3 … 4k.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from motive.motion.flow import flow_magnitudes

ZETA = 1e-6


@dataclass(frozen=True)
class MaskConfig:
    """How masks are made; recorded with every feature store."""

    flow: str = "dis"
    preset: str = "medium"
    zeta: float = ZETA
    spatial_stride: int | None = (
        None  # None: the model's VAE compression (8 for Wan2.1, 4 for the tiny model)
    )
    temporal_stride: int | None = None  # None: the model's (4 for both)

    def to_dict(self) -> dict:
        return asdict(self)

    def for_model(self, spatial: int, temporal: int) -> MaskConfig:
        """These settings with unset strides filled from a model's VAE; set ones must agree."""
        s = self.spatial_stride or spatial
        t = self.temporal_stride or temporal
        if (s, t) != (spatial, temporal):
            raise ValueError(
                f"mask strides ({s}, {t}) do not match the model's latent grid ({spatial}, {temporal})"
            )
        return replace(self, spatial_stride=s, temporal_stride=t)


def normalise_clip(mags: np.ndarray, zeta: float = ZETA) -> np.ndarray:
    """Min–max normalise magnitudes ``[F, H, W]`` over the whole clip into [0, 1)."""
    lo, hi = float(mags.min()), float(mags.max())
    return ((mags - lo) / (hi - lo + zeta)).astype(np.float32)


def temporal_group(w: torch.Tensor, stride: int = 4) -> torch.Tensor:
    """Causal grouping ``[F, h, w]`` → ``[(F−1)/stride + 1, h, w]``: frame 0 alone, then means of
    consecutive groups of ``stride`` frames (Wan's causal VAE latent frames)."""
    n = w.shape[0]
    if (n - 1) % stride:
        raise ValueError(f"frame count must be {stride}n+1, got {n}")
    rest = w[1:].reshape((n - 1) // stride, stride, *w.shape[1:]).mean(dim=1)
    return torch.cat([w[:1], rest], dim=0)


def latent_mask(weights: np.ndarray, spatial_stride: int = 8, temporal_stride: int = 4) -> torch.Tensor:
    """Pixel-grid weights ``[F, H, W]`` → latent-grid W̃ ``[f, H/s, W/s]`` (bilinear, then grouping)."""
    n, h, w = weights.shape
    if h % spatial_stride or w % spatial_stride:
        raise ValueError(f"frame size {h}x{w} is not divisible by the latent stride {spatial_stride}")
    x = torch.from_numpy(weights).float()[:, None]  # [F, 1, H, W]
    x = F.interpolate(
        x, size=(h // spatial_stride, w // spatial_stride), mode="bilinear", align_corners=False
    )
    return temporal_group(x[:, 0], temporal_stride)


def motion_mask(frames: np.ndarray, config: MaskConfig | None = None) -> torch.Tensor:
    """The motion mask W̃ ``[f, h, w]`` of a standardised clip ``[F, H, W, 3]``."""
    c = config or MaskConfig(spatial_stride=8, temporal_stride=4)
    if c.flow != "dis":
        raise ValueError(f"unknown flow back-end {c.flow!r}")
    weights = normalise_clip(flow_magnitudes(frames, c.preset), c.zeta)
    return latent_mask(weights, c.spatial_stride, c.temporal_stride)
