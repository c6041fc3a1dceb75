"""Per-clip gradients of the motion-weighted flow-matching loss under common randomness (docs/method.md §2).

For clip n with latent h_n, text c_n and motion mask W̃_n, at ONE fixed noise level σ_fix and ONE noise
tensor ε_fix shared by every clip and query:

    L_mot(n) = (1/F) · mean_{f,h,w}[ W̃_n(f,h,w) · mean_c (v_θ(x_σ, σ, c_n) − (ε − h_n))² ],
    x_σ = (1−σ)·h_n + σ·ε,   g_n = ∇_θ L_mot(n),   feature = unit(P g_n)

with P the block-wise Fastfood map. ``noise_draws = K > 1`` averages the unit projected gradients over
K shared (σ, ε_k) pairs (the paper's Eq. 6 common-randomness form; K = 1 is its default).
``use_mask = False`` is the paper's "w/o MM" ablation (W̃ ≡ 1).

Two paths give the same features. For a large model, features are projected while backward runs: a
post-accumulate-grad hook on every chosen parameter hands its gradient to a ``StreamingProjector``
and frees it, so the flat gradient [D] is never built (``feature``, one clip at a time). For a small
model (the batch's per-sample gradients fit in ``BATCH_BYTES``), ``features`` computes the per-sample
gradients of a whole batch of clips × noise draws in one vectorised pass (``torch.func.vmap`` over
``grad``) and projects them together — the same numbers, faster on small models, where per-call
overhead rather than arithmetic dominates (BENCHMARKS.md "Vectorised vs streaming featurize").
``precision = "bf16"`` runs forward/backward under bf16 autocast (the paper's setting; the default on
CUDA) with the weights kept in fp32; projection always accumulates in fp32. ``weights = "bf16"``
holds the transformer in bf16 instead (half its memory; what a 14B expert needs to leave room for
activations): forward and backward run in bf16 and each gradient is cast to fp32 as its hook takes it. The streaming path
can recompute each transformer block's activations in backward (gradient checkpointing) when told
to: the same gradients, with activation memory of one block instead of all of them. By default
(``auto``) only when the activations would not fit: recomputing costs time (``use_checkpointing``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace

import torch

from motive.loss import OBJECTIVES, per_sample_loss
from motive.models.wan import CONDITIONS, VideoModel
from motive.motion.mask import MaskConfig
from motive.projection import Fastfood, StreamingProjector, l2_normalise

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # "auto": bf16 on CUDA, else fp32


# Activation bytes a Wan block keeps for backward, per token and element of width: fitted on the CPU
# (10M-parameter Wan config, 2,304 tokens, fp32: 709 MB measured above the gradients, 737 estimated);
# the projections, modulated norms, RoPE'd q/k and fp32 norm upcasts add up to ~24 × dim + 4 × ffn.
ACTIVATIONS_PER_DIM, ACTIVATIONS_PER_FFN = 24, 4
ACTIVATION_SHARE = 0.5  # checkpoint (``auto``) when activations would take over this share of free memory


def activation_bytes(model: VideoModel, latent_shape: tuple[int, ...], precision: str) -> int:
    """Bytes of activations one clip's forward keeps for backward without checkpointing: layers ×
    tokens × (``ACTIVATIONS_PER_DIM`` · width + ``ACTIVATIONS_PER_FFN`` · FFN width) elements of 4
    bytes (2 under bf16). Wan2.1-1.3B at 81×480×832 (32,760 tokens) in bf16: ~143 GB, so every GPU
    checkpoints; the demo model's 80-token clips: ~1 MB."""
    cfg = model.transformer.config
    _, p_h, p_w = cfg.patch_size
    tokens = latent_shape[1] * (latent_shape[2] // p_h) * (latent_shape[3] // p_w)
    width = cfg.num_attention_heads * cfg.attention_head_dim
    per_token = ACTIVATIONS_PER_DIM * width + ACTIVATIONS_PER_FFN * cfg.ffn_dim
    return cfg.num_layers * tokens * per_token * (2 if precision == "bf16" else 4)


def free_memory(device: torch.device) -> int:
    """Free bytes on ``device``: the accelerator's free memory, or the host's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as fh:
        info = dict(line.split(":", 1) for line in fh)
    return int(info["MemAvailable"].split()[0]) * 1024


def use_checkpointing(
    mode: str | bool, model: VideoModel, latent_shape: tuple[int, ...], precision: str
) -> bool:
    """Gradient checkpointing on the streaming path: ``on``/``off`` (or a bool) as said; ``auto``
    when the activations (``activation_bytes``) would take over ``ACTIVATION_SHARE`` of the device's
    free memory. Recomputing every block's forward costs ~30% of a forward + backward (BENCHMARKS.md
    "Featurize overhead and memory by model size"), so it is worth it only where memory demands it:
    on for Wan2.1-1.3B on any GPU, off for the demo model and small CPU shapes."""
    if mode not in (True, False, "auto", "on", "off"):
        raise ValueError(f"checkpointing must be auto, on or off, got {mode!r}")
    if mode != "auto":
        return mode in (True, "on")
    return activation_bytes(model, latent_shape, precision) > ACTIVATION_SHARE * free_memory(model.device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on CUDA, fp32 elsewhere."""
    return ("bf16" if device.type == "cuda" else "fp32") if precision == "auto" else precision


# Largest batch of per-sample flat gradients ``features`` builds (fp32 bytes; about twice that at the
# peak, while they are concatenated); clips whose gradients would not fit stream one at a time.
BATCH_BYTES = 2**29


# Settings added after stores were first written, with the value a store written without them implies.
LATER_SETTINGS = {"objective": "flow", "deflate_appearance": False, "condition": "none", "weights": "fp32"}
WEIGHTS = {"fp32": torch.float32, "bf16": torch.bfloat16}  # the transformer's weights while featurizing


@dataclass
class GradientConfig:
    """Settings that define a feature; all of them are recorded in the store's meta.json."""

    sigma: float = field(default=0.751, metadata={"help": "fixed noise level σ (the paper's t = 751)"})
    noise_seed: int = field(default=0, metadata={"help": "seed of the shared noise tensor(s) ε"})
    noise_draws: int = field(
        default=1, metadata={"help": "K shared (σ, ε) pairs to average over (the paper: 1)"}
    )
    use_mask: bool = field(
        default=True, metadata={"flag": "--no-motion-mask", "help": "W ≡ 1: the paper's 'w/o MM' ablation"}
    )
    objective: str = field(
        default="flow",
        metadata={
            "help": "loss differentiated: flow (the paper's) or temporal (its frame-to-frame change)",
            "choices": OBJECTIVES,
        },
    )
    deflate_appearance: bool = field(
        default=False,
        metadata={
            "help": "remove from each feature its component along the gradient of the clip held still "
            "(first latent frame repeated, whole-frame weight)"
        },
    )
    condition: str = field(
        default="none",
        metadata={
            "help": "none (text-to-video) or first-frame (image-to-video, Wan2.2-TI2V: the clip's first "
            "latent frame is given clean at timestep 0 and carries no loss or mask weight)",
            "choices": CONDITIONS,
        },
    )
    frame_norm: bool = field(  # the 1/F frame-length correction (F = pixel frames of the clip)
        default=True, metadata={"help": "drop the 1/F frame-length factor"}
    )
    params: list[str] | None = field(  # glob patterns over transformer parameter names; None = all
        default=None, metadata={"help": "comma-separated globs of transformer parameters (default: all)"}
    )
    proj_dim: int = field(default=512, metadata={"help": "Fastfood output dimension D'"})
    proj_seed: int = field(default=0, metadata={"help": "Fastfood seed"})
    max_block: int = field(  # BENCHMARKS.md "Fastfood block size"
        default=2**16, metadata={"help": "Fastfood block length (a power of two)"}
    )
    precision: str = field(  # "bf16": autocast for forward/backward; the projection is always fp32
        default="auto",
        metadata={
            "help": "forward/backward precision (the paper: bf16; auto: bf16 on CUDA, else fp32)",
            "choices": ("auto", *PRECISIONS),
        },
    )
    weights: str = field(  # bf16: forward/backward in bf16; gradients projected in fp32 all the same
        default="fp32",
        metadata={
            "help": "the transformer's weights while featurizing: bf16 halves their memory (a Wan2.2-A14B "
            "expert: 26 GiB instead of 52) and implies bf16 precision",
            "choices": tuple(WEIGHTS),
        },
    )
    mask: MaskConfig = field(default_factory=MaskConfig, metadata={"nested": ""})

    def __post_init__(self) -> None:
        if self.precision not in ("auto", *PRECISIONS):
            raise ValueError(f"precision must be auto or one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {sorted(WEIGHTS)}, got {self.weights!r}")
        if self.weights == "bf16" and self.precision == "fp32":
            raise ValueError("bf16 weights compute in bf16: precision fp32 needs fp32 weights")
        if self.noise_draws < 1:
            raise ValueError("noise_draws must be ≥ 1")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mask"] = self.mask.to_dict()
        return d

    def for_model(self, model: VideoModel) -> GradientConfig:
        """These settings with the mask's latent strides filled in from ``model`` and ``auto``
        precision resolved for its device, bf16 with bf16 weights (what a store records). A
        first-frame condition needs a model that takes one (``VideoModel.supports_first_frame``)."""
        if self.condition == "first-frame" and not model.supports_first_frame():
            raise ValueError(
                f"{model.source or 'this model'} does not take a first frame (condition first-frame needs "
                "Wan2.2-TI2V's per-token timesteps, or a demo model pretrained with --condition first-frame)"
            )
        precision = "bf16" if self.weights == "bf16" else resolve_precision(self.precision, model.device)
        mask = self.mask.for_model(model.scale_spatial, model.scale_temporal)
        return replace(self, mask=mask, precision=precision)

    @classmethod
    def from_meta(cls, meta: dict) -> GradientConfig:
        """The settings a feature store was built with (its ``meta.json``)."""
        g = {**LATER_SETTINGS, **meta["gradient"]}
        g.setdefault("precision", "fp32")  # stores written before the setting existed
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


def held_still(h: torch.Tensor) -> torch.Tensor:
    """The clip held still, in latent space: its first latent frame repeated over time. h [B, C, f, h, w]
    → same shape. Wan's causal VAE encodes the first latent frame from the first pixel frame alone, so
    this is the first frame's appearance with no motion at all."""
    return h[:, :, :1].expand_as(h).contiguous()


def deflate(v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``v`` [..., D'] minus its component along ``a`` [..., D'] (row by row; a zero ``a`` leaves v)."""
    aa = a.double().pow(2).sum(-1, keepdim=True)
    coef = (v.double() * a.double()).sum(-1, keepdim=True) / aa.clamp_min(1e-300)
    return (v.double() - torch.where(aa > 0, coef, 0.0) * a.double()).to(v.dtype)


class GradientFeaturizer:
    """Turns (latent, text, mask) of one clip into its gradient and its unit projected feature."""

    def __init__(
        self,
        model: VideoModel,
        config: GradientConfig,
        latent_shape: tuple[int, int, int, int],
        frames: int,
        keep_tables: bool = True,
        checkpointing: str | bool = "auto",
        table_device: str | None = None,
    ):
        """``keep_tables=False`` regenerates the projection's randomness per block instead of keeping
        5 bytes per parameter (same features; memory flat in model size, slower on CPU).
        ``checkpointing``: recompute activations in backward on the streaming path (same features):
        auto, on or off (``use_checkpointing``).
        ``table_device``: where kept tables live (default: the model's device unless they would take
        more than a quarter of its free memory, see ``motive.projection.DEVICE_TABLE_SHARE``)."""
        self.model = model
        self.config = config = config.for_model(model)
        if model.transformer.dtype != WEIGHTS[config.weights]:
            raise ValueError(
                f"these features take {config.weights} transformer weights; the model's are "
                f"{model.transformer.dtype} (load it with transformer_dtype={WEIGHTS[config.weights]})"
            )
        self.frames = frames
        self.latent_shape = tuple(latent_shape)
        self.checkpointing = model.transformer._supports_gradient_checkpointing and use_checkpointing(
            checkpointing, model, self.latent_shape, config.precision
        )
        self.params = model.named_parameters(config.params)
        self.dim = sum(p.numel() for _, p in self.params)
        self.noise = [
            e.to(model.device) for e in common_noise(self.latent_shape, config.noise_seed, config.noise_draws)
        ]
        self.projection = Fastfood(
            self.dim,
            config.proj_dim,
            config.proj_seed,
            config.max_block,
            model.device,
            keep_tables,
            table_device=table_device,
        )
        self.stream = StreamingProjector(self.projection, [p.numel() for _, p in self.params])
        chosen = {id(p) for _, p in self.params}
        for p in model.transformer.parameters():
            p.requires_grad_(id(p) in chosen)

    def loss(
        self,
        h: torch.Tensor,
        text: torch.Tensor,
        weight: torch.Tensor | None,
        draw: int | torch.Tensor = 0,
        params: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """L_mot of one clip: h [1, C, f, h, w], text [1, L, D], weight [1, f, h, w] or None → scalar.
        ``draw``: the index of the shared noise tensor, or the noise itself [C, f, h, w]."""
        sigma = torch.full((1,), self.config.sigma, device=h.device)
        w = weight if self.config.use_mask else None
        eps = self.noise[draw] if isinstance(draw, int) else draw
        dtype = PRECISIONS[self.config.precision]
        with torch.autocast(h.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            objective = self.config.objective
            loss = per_sample_loss(
                self.model, h, text, sigma, eps[None], w, params, objective, self.config.condition
            )[0].float()
        return loss / self.frames if self.config.frame_norm else loss

    def gradient(
        self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor | None, draw: int = 0
    ) -> torch.Tensor:
        """The flat gradient g [D] over the chosen parameters, in parameter order (fp32). The exact
        reference: it materialises g, which ``feature`` never does."""
        tensors = [p for _, p in self.params]
        grads = torch.autograd.grad(self.loss(h, text, weight, draw), tensors, allow_unused=True)
        return torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                for g, p in zip(grads, tensors)
            ]
        )

    @contextmanager
    def _hooks(self):
        """While active, each chosen parameter's gradient goes to the projector and is then freed."""

        def make(i: int):
            def hook(p: torch.Tensor) -> None:
                self.stream.add(i, p.grad)
                p.grad = None

            return hook

        handles = [p.register_post_accumulate_grad_hook(make(i)) for i, (_, p) in enumerate(self.params)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _checkpointing(self):
        """Gradient checkpointing on the transformer for one backward (when enabled)."""
        if not self.checkpointing:
            return nullcontext()

        @contextmanager
        def on():
            self.model.transformer.enable_gradient_checkpointing()
            try:
                yield
            finally:
                self.model.transformer.disable_gradient_checkpointing()

        return on()

    def projected_gradient(
        self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor | None, draw: int = 0
    ) -> tuple[torch.Tensor, float]:
        """P·g [D'] (fp32) and ‖g‖, projected during backward without materialising g."""
        for _, p in self.params:
            p.grad = None
        self.stream.reset()
        with self._hooks(), self._checkpointing():
            self.loss(h, text, weight, draw).backward()
        return self.stream.result(), self.stream.sq_norm**0.5

    def feature(
        self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, float]:
        """Unit projected feature [D'] (averaged over noise draws) and the first draw's gradient norm,
        streamed (the flat gradient is never built)."""
        draws = [self.projected_gradient(h, text, weight, k) for k in range(self.config.noise_draws)]
        v = torch.stack([v for v, _ in draws])  # [K, D']
        if self.config.deflate_appearance:
            still = held_still(h)
            a = torch.stack([self.projected_gradient(still, text, None, k)[0] for k in range(len(draws))])
            v = deflate(v, a)
        return _combine_draws(v[None])[0], draws[0][1]

    def batchable(self, clips: int) -> bool:
        """Whether ``clips`` clips' per-sample gradients (all draws) fit in ``BATCH_BYTES``."""
        return clips * self.config.noise_draws * self.dim * 4 <= BATCH_BYTES

    def features(
        self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[float]]:
        """``feature`` for a batch: h [B, C, f, h, w], text [B, L, D], weight [B, f, h, w] or None →
        unit features [B, D'] and the first draw's gradient norms. Vectorised when ``batchable(B)``,
        else clip by clip through the streaming path."""
        B, K = h.shape[0], self.config.noise_draws
        if not self.batchable(B):
            out = [
                self.feature(h[b : b + 1], text[b : b + 1], None if weight is None else weight[b : b + 1])
                for b in range(B)
            ]
            return torch.stack([v for v, _ in out]), [n for _, n in out]
        params = {name: p.detach() for name, p in self.params}

        def loss(p, hb, tb, wb, eps):  # one (clip, draw): unbatched tensors
            return self.loss(hb[None], tb[None], None if wb is None else wb[None], eps, p)

        def projected(hs: torch.Tensor, ws: torch.Tensor | None) -> tuple[torch.Tensor, list[float]]:
            with warnings.catch_warnings():  # torch has no batching rule for CPU attention yet: it loops
                warnings.filterwarnings("ignore", message="There is a performance drop")
                grads = torch.func.vmap(
                    torch.func.grad(loss), in_dims=(None, 0, 0, None if ws is None else 0, 0)
                )(
                    params,
                    hs.repeat_interleave(K, 0),  # [B·K, C, f, h, w], clip-major
                    text.repeat_interleave(K, 0),
                    None if ws is None else ws.repeat_interleave(K, 0),
                    torch.stack(self.noise).repeat(B, 1, 1, 1, 1),  # [B·K, C, f, h, w]
                )
            flat = torch.cat([grads[n].reshape(B * K, -1).float() for n, _ in self.params], 1)  # [B·K, D]
            norms = flat.double().pow(2).sum(1).sqrt()[::K].tolist()
            return self.projection(flat).view(B, K, -1), norms  # [B, K, D']

        v, norms = projected(h, weight)
        if self.config.deflate_appearance:
            v = deflate(v, projected(held_still(h), None)[0])
        return _combine_draws(v), norms


def _combine_draws(v: torch.Tensor) -> torch.Tensor:
    """[B, K, D'] projected gradients of K noise draws → [B, D'] unit mean of their unit vectors."""
    return l2_normalise(l2_normalise(v).sum(dim=1))
