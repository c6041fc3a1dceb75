"""Per-clip gradients of the motion-weighted flow-matching loss under common randomness (METHOD.md §2).

For clip n with latent h_n, text c_n and motion mask W̃_n, at ONE fixed noise level σ_fix and ONE noise
tensor ε_fix shared by every clip and query:

    L_mot(n) = (1/F) · mean_{f,h,w}[ W̃_n(f,h,w) · mean_c (v_θ(x_σ, σ, c_n) − (ε − h_n))² ],
    x_σ = (1−σ)·h_n + σ·ε,   g_n = ∇_θ L_mot(n),   feature = unit(P g_n)

with P the block-wise Fastfood map. ``noise_draws = K > 1`` averages the unit projected gradients over
K shared (σ, ε_k) pairs (the paper's Eq. 6 common-randomness form; K = 1 is its default).
``use_mask = False`` is the paper's "w/o MM" ablation (W̃ ≡ 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from motive.models.wan import VideoModel
from motive.motion.mask import MaskConfig
from motive.projection import Fastfood, l2_normalise
from motive.training import per_sample_loss


@dataclass
class GradientConfig:
    """Settings that define a feature; all of them are recorded in the store's meta.json."""

    sigma: float = 0.751  # the paper's t = 751
    noise_seed: int = 0
    noise_draws: int = 1
    use_mask: bool = True
    frame_norm: bool = True  # the 1/F frame-length correction (F = pixel frames of the clip)
    params: list[str] | None = None  # glob patterns over transformer parameter names; None = all
    proj_dim: int = 512
    proj_seed: int = 0
    max_block: int = 2**16  # blocks of 65536 stay in cache: 2.5× faster per clip than 2**20 (README)
    mask: MaskConfig = field(default_factory=MaskConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mask"] = self.mask.to_dict()
        return d

    def for_model(self, model: VideoModel) -> GradientConfig:
        """These settings with the mask's latent strides filled in from ``model``."""
        return replace(self, mask=self.mask.for_model(model.scale_spatial, model.scale_temporal))

    @classmethod
    def from_meta(cls, meta: dict) -> GradientConfig:
        """The settings a feature store was built with (its ``meta.json``)."""
        g = dict(meta["gradient"])
        p = meta["projection"]
        return cls(
            **{k: v for k, v in g.items() if k != "mask"},
            mask=MaskConfig(**g["mask"]),
            proj_dim=p["d_out"],
            proj_seed=p["seed"],
            max_block=p["max_block"],
        )


def common_noise(latent_shape: tuple[int, ...], seed: int, draws: int) -> list[torch.Tensor]:
    """The shared noise tensors ε_k [C, f, h, w], drawn on the CPU from ``seed`` (same on any device)."""
    gen = torch.Generator("cpu").manual_seed(seed)
    return [torch.randn(latent_shape, generator=gen) for _ in range(draws)]


class GradientFeaturizer:
    """Turns (latent, text, mask) of one clip into its gradient and its unit projected feature."""

    stack_bytes = 2**28  # project stacked gradients when they take at most 256 MiB

    def __init__(
        self, model: VideoModel, config: GradientConfig, latent_shape: tuple[int, int, int, int], frames: int
    ):
        self.model = model
        self.config = config
        self.frames = frames
        self.latent_shape = tuple(latent_shape)
        self.params = model.named_parameters(config.params)
        self.dim = sum(p.numel() for _, p in self.params)
        self.noise = [
            e.to(model.device) for e in common_noise(self.latent_shape, config.noise_seed, config.noise_draws)
        ]
        self.projection = Fastfood(self.dim, config.proj_dim, config.proj_seed, config.max_block)
        chosen = {id(p) for _, p in self.params}
        for p in model.transformer.parameters():
            p.requires_grad_(id(p) in chosen)

    def loss(
        self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor | None, draw: int = 0
    ) -> torch.Tensor:
        """L_mot of one clip: h [1, C, f, h, w], text [1, L, D], weight [1, f, h, w] or None → scalar."""
        sigma = torch.full((1,), self.config.sigma, device=h.device)
        w = weight if self.config.use_mask else None
        loss = per_sample_loss(self.model, h, text, sigma, self.noise[draw][None], w)[0]
        return loss / self.frames if self.config.frame_norm else loss

    def gradient(
        self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor | None, draw: int = 0
    ) -> torch.Tensor:
        """The flat gradient g [D] over the chosen parameters, in parameter order (fp32)."""
        tensors = [p for _, p in self.params]
        grads = torch.autograd.grad(self.loss(h, text, weight, draw), tensors)
        return torch.cat([g.reshape(-1).float() for g in grads])

    def feature(
        self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, float]:
        """Unit projected feature [D'] (averaged over noise draws) and the first draw's gradient norm."""
        vecs, norms = self.features([(h, text, weight)])
        return vecs[0], norms[0]

    def features(self, batch: list[tuple]) -> tuple[torch.Tensor, list[float]]:
        """``feature`` for several clips [(h, text, weight), ...] → ([B, D'], norms). Gradients are taken
        one clip at a time (B = 1 backward passes); their projection runs on the stacked gradients when
        they fit in ``stack_bytes`` (much faster per clip), else one by one."""
        K = self.config.noise_draws
        grads = [self.gradient(h, text, w, k) for h, text, w in batch for k in range(K)]  # B·K × [D]
        norms = [float(grads[i * K].norm()) for i in range(len(batch))]
        if len(grads) * self.dim * 4 <= self.stack_bytes:
            projected = self.projection(torch.stack(grads))  # [B·K, D']
        else:
            projected = torch.cat([self.projection(g[None]) for g in grads])
        unit = l2_normalise(projected).view(len(batch), K, -1).sum(dim=1)  # average of unit vectors
        return l2_normalise(unit), norms
