"""``VideoModel``: the one seam between Motive and a diffusers Wan text-to-video pipeline.

Everything Motive needs from a model goes through here — VAE encoding with Wan's latent
normalisation, text embedding, the velocity prediction at (x_σ, σ, text), the trainable parameters and
generation — so the tiny demo model and a local ``Wan2.1-T2V-1.3B-Diffusers`` share one code path.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MOTIVE_JSON = "motive.json"  # our extra settings beside a diffusers pipeline (diffusers ignores it)


class ModelError(ValueError):
    """A model path is missing or is not a Wan pipeline."""


@dataclass
class ModelSettings:
    """Settings the pipeline files do not carry: prompt length and the native clip format."""

    text_len: int = 512  # max_sequence_length used for every prompt (training and generation)
    height: int = 480
    width: int = 832
    frames: int = 81
    fps: float = 16.0
    kind: str = "wan"  # "wan" for a user's checkpoint, "tiny" for the built-in demo model

    @classmethod
    def read(cls, path: Path) -> ModelSettings:
        file = path / MOTIVE_JSON
        if not file.is_file():
            return cls()
        data = json.loads(file.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def write(self, path: Path, **extra) -> None:
        (path / MOTIVE_JSON).write_text(json.dumps({**self.__dict__, **extra}, indent=2))


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[F, H, W, 3]`` → float ``[3, F, H, W]`` in [-1, 1] (the VAE's input range)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return x.permute(3, 0, 1, 2)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float ``[3, F, H, W]`` in [-1, 1] → uint8 ``[F, H, W, 3]``."""
    x = video.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte()
    return x.permute(1, 2, 3, 0).cpu().numpy()


def _check_local_pipeline(path: Path) -> None:
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelError(f"{path}: not a diffusers pipeline (no model_index.json)")
    try:
        name = json.loads(index.read_text()).get("_class_name")
    except json.JSONDecodeError as exc:
        raise ModelError(f"{index}: unreadable ({exc})") from exc
    if name != "WanPipeline":
        raise ModelError(f"{path}: is a {name}, not a WanPipeline (Wan2.1 text-to-video)")


class VideoModel:
    """A Wan pipeline plus the operations attribution and training need."""

    def __init__(self, pipe, settings: ModelSettings | None = None, source: str = ""):
        self.pipe = pipe
        self.settings = settings or ModelSettings()
        self.source = source
        vae_cfg = pipe.vae.config
        self.z_dim = int(vae_cfg.z_dim)
        self.scale_temporal = int(vae_cfg.scale_factor_temporal)
        self.scale_spatial = int(vae_cfg.scale_factor_spatial)
        self._set_latent_stats()

    # -- loading and saving --------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32
    ) -> VideoModel:
        """Load a diffusers ``WanPipeline`` directory (or a hub id already in the local cache)."""
        from diffusers import WanPipeline

        local = Path(path)
        if local.exists():
            if not local.is_dir():
                raise ModelError(f"{path}: is a file; expected a diffusers pipeline directory")
            _check_local_pipeline(local)
        elif str(path).count("/") != 1:  # hub ids look like "org/name"
            raise ModelError(f"{path}: model path not found")
        try:
            pipe = WanPipeline.from_pretrained(str(path), dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot load as WanPipeline ({exc})") from exc
        pipe.set_progress_bar_config(disable=True)
        pipe.to(device)
        settings = ModelSettings.read(local) if local.exists() else ModelSettings()
        return cls(pipe, settings, str(path))

    def save_pretrained(self, path: str | Path, **extra) -> Path:
        """Write the pipeline (safetensors) plus ``motive.json``; extra keys go into motive.json."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.pipe.save_pretrained(str(path), safe_serialization=True)
        self.settings.write(path, **extra)
        return path

    # -- components ----------------------------------------------------------------------------

    @property
    def transformer(self) -> torch.nn.Module:
        return self.pipe.transformer

    @property
    def vae(self) -> torch.nn.Module:
        return self.pipe.vae

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def _set_latent_stats(self) -> None:
        cfg = self.pipe.vae.config
        self.latents_mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.latents_std = torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)

    def set_latent_stats(self, mean: list[float], std: list[float]) -> None:
        """Record per-channel latent mean/std in the VAE config (what Wan normalises with)."""
        self.pipe.vae.register_to_config(
            latents_mean=[float(m) for m in mean], latents_std=[float(s) for s in std]
        )
        self._set_latent_stats()

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, f, h, w) of the latent of a ``frames``×``height``×``width`` clip."""
        if (frames - 1) % self.scale_temporal:
            raise ValueError(f"frames must be {self.scale_temporal}n+1, got {frames}")
        s = self.scale_spatial
        return (self.z_dim, (frames - 1) // self.scale_temporal + 1, height // s, width // s)

    # -- the operations ------------------------------------------------------------------------

    @contextmanager
    def vae_channels_last(self):
        """On CPU, hold the VAE's Conv3d weights channels-last while it runs, restoring plain layout
        after (safetensors saves only contiguous tensors). Its 3D convolutions then use oneDNN and its
        channel RMS norms reduce over contiguous memory: faster on the demo VAE, equal to fp32 rounding
        (BENCHMARKS.md "The demo VAE's memory layout"). Training is not wrapped: a training step
        measured slower this way. No-op on other devices."""
        convs = [m for m in self.vae.modules() if isinstance(m, torch.nn.Conv3d)]
        if self.vae.device.type != "cpu":
            convs = []
        for m in convs:
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
        try:
            yield
        finally:
            for m in convs:
                m.weight.data = m.weight.data.contiguous()

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """[B, 3, F, H, W] in [-1, 1] → normalised latents h [B, C, f, h, w] (posterior mean)."""
        vae = self.vae
        with self.vae_channels_last():
            video = video.to(self.device, vae.dtype).contiguous(memory_format=torch.channels_last_3d)
            mu = vae.encode(video).latent_dist.mode().float().contiguous()
        return (mu - self.latents_mean.to(mu.device)) / self.latents_std.to(mu.device)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [B, C, f, h, w] → video [B, 3, F, H, W] in [-1, 1]."""
        vae = self.vae
        z = latents.float() * self.latents_std.to(latents.device) + self.latents_mean.to(latents.device)
        with self.vae_channels_last():
            z = z.to(vae.dtype).contiguous(memory_format=torch.channels_last_3d)
            return vae.decode(z).sample.float().contiguous()

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Prompts → text embeddings [B, L, D] exactly as ``WanPipeline`` computes them."""
        embeds, _ = self.pipe.encode_prompt(
            prompts,
            do_classifier_free_guidance=False,
            max_sequence_length=self.settings.text_len,
            device=self.device,
            dtype=self.transformer.dtype,
        )
        return embeds

    def velocity(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        text: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predicted velocity (ε − h) at noisy latents x [B, C, f, h, w], noise level σ [B], text [B, L, D].
        ``params`` replaces transformer parameters by name for this call (``torch.func`` transforms)."""
        dtype = self.transformer.dtype
        kwargs = dict(
            hidden_states=x.to(dtype),
            timestep=(sigma * 1000.0).to(dtype),  # Wan: timestep = 1000·σ
            encoder_hidden_states=text.to(dtype),
            return_dict=False,
        )
        if params is None:
            return self.transformer(**kwargs)[0]
        return torch.func.functional_call(self.transformer, params, (), kwargs, strict=False)[0]

    def named_parameters(self, patterns: list[str] | None = None) -> list[tuple[str, torch.nn.Parameter]]:
        """Transformer parameters whose names match any glob in ``patterns`` (all when None)."""
        params = list(self.transformer.named_parameters())
        if patterns:
            params = [(n, p) for n, p in params if any(fnmatch.fnmatch(n, pat) for pat in patterns)]
            if not params:
                raise ValueError(f"no transformer parameter matches {patterns}")
        return params

    def num_parameters(self, patterns: list[str] | None = None) -> int:
        return sum(p.numel() for _, p in self.named_parameters(patterns))

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        steps: int = 30,
        guidance: float = 1.0,
        seed: int = 0,
        frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        negative_prompt: str = "",
    ) -> np.ndarray:
        """Sample videos with ``WanPipeline``; returns uint8 ``[B, F, H, W, 3]``. ``negative_prompt``
        is used with classifier-free guidance (``guidance`` > 1)."""
        s = self.settings
        generator = torch.Generator("cpu").manual_seed(seed)
        with self.vae_channels_last():
            out = self.pipe(
                prompt=prompts,
                negative_prompt=[negative_prompt] * len(prompts) if guidance > 1.0 else None,
                height=height or s.height,
                width=width or s.width,
                num_frames=frames or s.frames,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=generator,
                output_type="np",
                max_sequence_length=s.text_len,
            ).frames
        return (np.clip(np.asarray(out), 0, 1) * 255 + 0.5).astype(np.uint8)


def _fingerprint(module: torch.nn.Module) -> str:
    """sha256 over a module's config and weights (first 20 hex digits). The config's private keys
    (where it was loaded from, the diffusers version, ...) are left out, except the class name: a
    copy of a model folder, or the same model loaded by another path, is the same model."""
    config = {k: v for k, v in dict(module.config).items() if not k.startswith("_") or k == "_class_name"}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, p in module.state_dict().items():
        digest.update(name.encode())
        digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def model_fingerprint(model: VideoModel) -> str:
    """sha256 over the transformer's config and weights (identifies the model a store came from)."""
    return _fingerprint(model.transformer)


def vae_fingerprint(model: VideoModel) -> str:
    """sha256 over the VAE's config (with its latent statistics) and weights: what latents depend on."""
    return _fingerprint(model.vae)
