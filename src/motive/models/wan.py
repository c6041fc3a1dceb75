"""``VideoModel``: the one seam between Motive and a diffusers Wan text-to-video pipeline.

Everything Motive needs from a model goes through here — VAE encoding with Wan's latent
normalisation, text embedding, the velocity prediction at (x_σ, σ, text), the trainable parameters and
generation — so the tiny demo model, a local ``Wan2.1-T2V-1.3B-Diffusers``, Wan2.2-TI2V-5B and one
expert of Wan2.2-T2V-A14B share one code path.

Loading follows the ecosystem (docs/method.md §8): the transformer and VAE in fp32 (the transformer
runs under bf16 autocast when asked), the UMT5 text encoder in bf16 on CUDA. The text encoder is
loaded only when a prompt's embedding is not cached, used, and freed again: its 11 GB (UMT5-XXL in
bf16) are never on the accelerator beside the transformer's gradients.
"""

from __future__ import annotations

import fnmatch
import gc
import hashlib
import json
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from motive.files import atomic_path
from motive.log import logger, stage
from motive.models.checkpoint import (
    EXPERTS,
    ModelError,
    ModelSettings,
    expert_for,
    files_id,
    local_pipeline,
    module_fingerprint,
    pipeline_index,
    trained_on,
)
from motive.models.devices import resolve_device, text_dtype_for

# What the model sees besides the text: nothing (text-to-video), or the clip's first frame, given as the
# clean first latent frame with timestep 0 on its tokens (Wan2.2-TI2V's image-to-video mode).
CONDITIONS = ("none", "first-frame")


def expert_sigma_range(model: VideoModel) -> tuple[float, float]:
    """The noise levels [lo, hi) the model's expert denoises: all of [0, 1) for a single transformer;
    Wan2.2-A14B's ``transformer`` takes σ ≥ boundary_ratio, ``transformer_2`` the rest."""
    ratio = model.pipe.config.get("boundary_ratio")
    if ratio is None:
        return (0.0, 1.0)
    return (float(ratio), 1.0) if model.expert == "transformer" else (0.0, float(ratio))


class VideoModel:
    """A Wan pipeline plus the operations attribution and training need.

    ``expert`` names the pipeline's transformer that Motive differentiates (``transformer``, or
    Wan2.2-A14B's low-noise ``transformer_2``). ``folder`` is where the pipeline was loaded from
    (None for a model built in memory): the text encoder is loaded from there on demand.
    ``text_cache``: a folder of cached prompt embeddings (None keeps them in memory only)."""

    def __init__(
        self,
        pipe,
        settings: ModelSettings | None = None,
        source: str = "",
        expert: str = "transformer",
        folder: Path | None = None,
        text_dtype: torch.dtype = torch.float32,
    ):
        if expert not in EXPERTS or getattr(pipe, expert, None) is None:
            raise ModelError(f"the pipeline has no {expert}")
        self.pipe = pipe
        self.settings = settings or ModelSettings()
        self.source = source
        self.expert = expert
        self.folder = folder
        self.text_dtype = text_dtype
        self.text_cache: Path | None = None
        self._text_memo: dict[str, torch.Tensor] = {}  # prompt key → trimmed embedding [len, D] (CPU)
        self._said_truncated = False  # warned that prompts exceed settings.text_len
        self.vae_tiled = False  # encode in overlapping spatial tiles (``resolve_vae_tiling``)
        vae_cfg = pipe.vae.config
        self.z_dim = int(vae_cfg.z_dim)
        self.scale_temporal = int(vae_cfg.scale_factor_temporal)
        self.scale_spatial = int(vae_cfg.scale_factor_spatial)
        self._set_latent_stats()

    # -- loading and saving --------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | None = None,
        dtype: torch.dtype = torch.float32,
        sigma: float | None = None,
        transformer_dtype: torch.dtype | None = None,
    ) -> VideoModel:
        """Load a diffusers ``WanPipeline`` folder (or a hub id already in the local cache).

        ``device`` defaults to CUDA when present. The transformer(s) and VAE load in ``dtype`` (fp32)
        onto the device, the transformer(s) in ``transformer_dtype`` when given (bf16 weights: an
        A14B expert in 26 GiB instead of 52); the text encoder is not loaded until a prompt needs it.
        With ``sigma``, a two-expert pipeline (Wan2.2-A14B) loads only the expert that denoises at σ."""
        from diffusers import WanPipeline

        device = resolve_device(device)
        local = local_pipeline(path)
        if (trained := trained_on(local)) is not None:
            return cls._from_trained(local, trained, device, dtype, sigma, transformer_dtype)
        index = pipeline_index(local)
        expert = "transformer" if sigma is None else expert_for(index, sigma)
        skip = {"text_encoder": None}
        if sigma is not None and (index.get("transformer_2") or [None])[0] is not None:
            skip[EXPERTS[1 - EXPERTS.index(expert)]] = None  # the other expert stays on disk
        with stage(f"loading {path} ({expert}) onto {device}"):
            try:
                dtypes = {"default": dtype, **dict.fromkeys(EXPERTS, transformer_dtype or dtype)}
                pipe = WanPipeline.from_pretrained(str(local), dtype=dtypes, **skip)
            except (OSError, ValueError) as exc:
                raise ModelError(f"{path}: cannot load as WanPipeline ({exc})") from exc
            pipe.set_progress_bar_config(disable=True)
            pipe.to(device)
        settings = ModelSettings.read(local, int(pipe.vae.config.z_dim))
        return cls(pipe, settings, str(path), expert, local, text_dtype_for(device))

    @classmethod
    def _from_trained(
        cls,
        path: Path,
        trained: dict,
        device: str,
        dtype: torch.dtype,
        sigma: float | None,
        transformer_dtype: torch.dtype | None = None,
    ) -> VideoModel:
        """A ``motive finetune`` output: its base pipeline with the trained transformer put in (full)
        or the LoRA adapter fused into it (so the parameters are plain weights, as in the base)."""
        from diffusers import WanTransformer3DModel

        component = trained.get("component", "transformer")
        if sigma is None and component == "transformer_2":
            sigma = 0.0  # its expert: a model trained on one expert loads that one
        model = cls.from_pretrained(trained["base"], device, dtype, sigma, transformer_dtype)
        if model.expert != component and getattr(model.pipe, component) is None:
            raise ModelError(f"{path} trained {component}, which σ = {sigma} does not load")
        with stage(f"loading the fine-tuned {component} ({trained['trained']}) from {path}"):
            if trained["trained"] == "full":
                module = WanTransformer3DModel.from_pretrained(
                    str(path), subfolder=component, dtype=transformer_dtype or dtype
                )
                setattr(model.pipe, component, module.to(model.device).eval())
            else:
                model.pipe.load_lora_weights(
                    str(path), adapter_name="motive", load_into_transformer_2=component == "transformer_2"
                )
                model.pipe.fuse_lora(components=[component], adapter_names=["motive"])
                model.pipe.unload_lora_weights()
        model.source = str(path)
        return model

    def save_pretrained(self, path: str | Path, **extra) -> Path:
        """Write the pipeline (safetensors) plus ``motive.json``; extra keys go into motive.json."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.pipe.config.get("boundary_ratio") is not None and None in (
            self.pipe.transformer,
            self.pipe.transformer_2,
        ):
            raise ModelError("this model holds one expert of a two-expert pipeline; it cannot be saved whole")
        self._text_encoder("cpu")  # a lazily loaded pipeline writes its text encoder too
        self.pipe.save_pretrained(str(path), safe_serialization=True)
        self.settings.write(path, **extra)
        return path

    # -- components ----------------------------------------------------------------------------

    @property
    def transformer(self) -> torch.nn.Module:
        """The transformer Motive differentiates (``expert``)."""
        return getattr(self.pipe, self.expert)

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

    def _vae_layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` channels-last for the VAE on the CPU (``vae_channels_last``), as it is elsewhere."""
        return x.contiguous(memory_format=torch.channels_last_3d) if x.device.type == "cpu" else x

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """[B, 3, F, H, W] in [-1, 1] → normalised latents h [B, C, f, h, w] (posterior mean); in
        overlapping spatial tiles when ``vae_tiled``."""
        vae = self.vae
        tiles = getattr(vae, "enable_tiling", None) if self.vae_tiled else None
        if tiles is not None:
            tiles()
        try:
            with self.vae_channels_last():
                video = self._vae_layout(video.to(self.device, vae.dtype))
                mu = vae.encode(video).latent_dist.mode().float().contiguous()
        finally:
            if tiles is not None:
                vae.disable_tiling()
        return (mu - self.latents_mean.to(mu.device)) / self.latents_std.to(mu.device)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [B, C, f, h, w] → video [B, 3, F, H, W] in [-1, 1]."""
        vae = self.vae
        z = latents.float() * self.latents_std.to(latents.device) + self.latents_mean.to(latents.device)
        with self.vae_channels_last():
            z = self._vae_layout(z.to(vae.dtype))
            return vae.decode(z).sample.float().contiguous()

    # -- text --------------------------------------------------------------------------------------

    def _text_encoder(self, device: str | torch.device) -> torch.nn.Module:
        """The text encoder on ``device``, loaded from ``folder`` first when it is not in memory."""
        if self.pipe.text_encoder is None:
            from transformers import UMT5EncoderModel

            with stage(f"loading the text encoder ({self.text_dtype})"):
                self.pipe.text_encoder = UMT5EncoderModel.from_pretrained(
                    str(self.folder), subfolder="text_encoder", dtype=self.text_dtype
                ).eval()
        return self.pipe.text_encoder.to(device)

    def release_text_encoder(self) -> None:
        """Free the text encoder: dropped when it can be reloaded from ``folder``, else moved to the CPU."""
        if self.pipe.text_encoder is None:
            return
        if self.folder is not None:
            self.pipe.text_encoder = None
            gc.collect()
        else:
            self.pipe.text_encoder.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def text_encoder_id(self) -> str:
        """What a prompt embedding depends on besides the prompt: the encoder and tokenizer (by their
        files, or by their weights for a model built in memory), its dtype and the prompt length."""
        if not hasattr(self, "_text_id"):
            if self.folder is not None:
                base = files_id(self.folder / "text_encoder", self.folder / "tokenizer")
            else:
                base = module_fingerprint(self.pipe.text_encoder)
            self._text_id = f"{base}/{str(self.text_dtype).removeprefix('torch.')}/{self.settings.text_len}"
        return self._text_id

    def _text_key(self, prompt: str) -> str:
        return hashlib.sha256(json.dumps([self.text_encoder_id(), prompt]).encode()).hexdigest()[:32]

    def _cached_text(self, key: str) -> torch.Tensor | None:
        if key in self._text_memo:
            return self._text_memo[key]
        if self.text_cache is not None and (f := self.text_cache / f"{key}.safetensors").is_file():
            from safetensors.torch import load_file

            try:
                return load_file(str(f))["embeds"]
            except Exception:  # damaged: recomputed
                f.unlink(missing_ok=True)
        return None

    @torch.no_grad()
    def cache_prompts(self, prompts: list[str], batch_size: int = 8, release: bool = True) -> None:
        """Encode every prompt whose embedding is not cached yet (``batch_size`` at a time, the encoder
        on the model's device), cache them, then (``release``) free the encoder."""
        todo = list(dict.fromkeys(p for p in prompts if self._cached_text(self._text_key(p)) is None))
        if not todo:
            return
        lengths = [len(ids) for ids in self.pipe.tokenizer(todo, add_special_tokens=True).input_ids]
        if (cut := sum(n > self.settings.text_len for n in lengths)) and not self._said_truncated:
            self._said_truncated = True  # once per model: checks encode a few prompts at a time
            logger.warning(
                "%d of %d prompt(s) are longer than text_len = %d tokens (longest %d) and are truncated:"
                " the model never sees their end (said once per model)",
                cut,
                len(todo),
                self.settings.text_len,
                max(lengths),
            )
        with stage(f"encoding {len(todo)} prompt(s)"):
            self._text_encoder(self.device)
            for i in range(0, len(todo), batch_size):
                batch = todo[i : i + batch_size]
                embeds, _ = self.pipe.encode_prompt(
                    batch,
                    do_classifier_free_guidance=False,
                    max_sequence_length=self.settings.text_len,
                    device=self.device,
                    dtype=self.text_dtype,
                )  # [B, L, D], zero rows past each prompt's tokens
                for prompt, e in zip(batch, embeds):
                    used = int(e.abs().sum(-1).nonzero().max()) + 1 if e.abs().sum() > 0 else 0
                    self._store_text(self._text_key(prompt), e[:used].cpu().clone())  # [len, D]
        if release:
            self.release_text_encoder()

    def _store_text(self, key: str, embeds: torch.Tensor) -> None:
        if self.text_cache is None:
            self._text_memo[key] = embeds
            return
        from safetensors.torch import save_file

        self.text_cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.text_cache / f"{key}.safetensors") as tmp:
            save_file({"embeds": embeds.contiguous()}, str(tmp))

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Prompts → text embeddings [B, L, D] exactly as ``WanPipeline`` computes them (zero-padded to
        ``text_len``), on the model's device; from the cache where possible. The encoder stays loaded
        after encoding: call ``cache_prompts`` first to encode many prompts and free it."""
        found = {p: self._cached_text(self._text_key(p)) for p in dict.fromkeys(prompts)}  # one read each
        if missing := [p for p, e in found.items() if e is None]:
            self.cache_prompts(missing, release=False)
            found.update({p: self._cached_text(self._text_key(p)) for p in missing})
        out = []
        for p in prompts:
            e = found[p]  # [len, D]
            out.append(torch.cat([e, e.new_zeros(self.settings.text_len - e.shape[0], e.shape[1])]))
        return torch.stack(out).to(self.device, self.transformer.dtype)  # [B, L, D]

    def supports_first_frame(self) -> bool:
        """Whether the model takes a clean first frame (per-token timesteps): Wan2.2-TI2V's pipeline
        (``expand_timesteps``) or a demo model trained with ``condition = "first-frame"``."""
        return bool(self.pipe.config.get("expand_timesteps")) or self.settings.condition == "first-frame"

    def velocity(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        text: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
        condition: str = "none",
    ) -> torch.Tensor:
        """Predicted velocity (ε − h) at noisy latents x [B, C, f, h, w], noise level σ [B], text [B, L, D].
        ``params`` replaces transformer parameters by name for this call (``torch.func`` transforms).
        ``condition="first-frame"``: x's first latent frame is the clean conditioning frame, and its
        tokens get timestep 0 (the others 1000·σ), as Wan2.2-TI2V's image-to-video mode."""
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        dtype = self.transformer.dtype
        timestep = (sigma * 1000.0).to(dtype)  # Wan: timestep = 1000·σ  # [B]
        if self.pipe.config.get("expand_timesteps") or condition == "first-frame":
            p_t, p_h, p_w = self.transformer.config.patch_size  # one timestep per patch token
            per_frame = (x.shape[3] // p_h) * (x.shape[4] // p_w)
            timestep = timestep[:, None].repeat(1, x.shape[2] // p_t * per_frame)  # [B, tokens]
            if condition == "first-frame":
                if p_t != 1:
                    raise ModelError("first-frame conditioning needs a temporal patch size of 1")
                timestep[:, :per_frame] = 0.0  # the conditioning frame is clean
        kwargs = dict(
            hidden_states=x.to(dtype),
            timestep=timestep,
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
    def generate(self, prompts: list[str], **options) -> np.ndarray:
        """Sample videos; returns uint8 ``[B, F, H, W, 3]``. ``options``: ``models.sampling.generate``'s
        (steps, guidance, seed, frames, height, width, negative_prompt, first_frames)."""
        from motive.models.sampling import generate

        return generate(self, prompts, **options)


def model_fingerprint(model: VideoModel) -> str:
    """Identifies the transformer a store was built with (its config and sampled weights)."""
    with stage("fingerprinting the transformer", logging.DEBUG):
        return module_fingerprint(model.transformer)


def vae_fingerprint(model: VideoModel) -> str:
    """Identifies the VAE (config with its latent statistics, sampled weights) and whether it encodes
    in tiles: what latents depend on."""
    return module_fingerprint(model.vae) + ("/tiled" if model.vae_tiled else "")
