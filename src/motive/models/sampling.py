"""Sampling videos: text-to-video through ``WanPipeline``, and from a given first frame as
Wan2.2-TI2V's image-to-video mode does it.

From a first frame, the first latent frame is the clean latent of the given image (the causal VAE
encodes a clip's first frame alone), held fixed at every step with timestep 0 on its tokens; the later
frames start from noise and follow the model's velocity through the pipeline's own flow-matching
scheduler, with classifier-free guidance when asked. This is the loop of diffusers'
``WanImageToVideoPipeline`` with ``expand_timesteps=True``, written against ``VideoModel.velocity`` so
that it holds for any patch size (diffusers' loop assumes Wan2.2's 1×2×2 patches; the demo model's are
1×4×4). A test checks that the two agree where both apply. ``model`` is a ``VideoModel`` throughout
(not imported here: ``VideoModel.generate`` calls this module).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from motive.log import logger
from motive.models.checkpoint import ModelError
from motive.models.pixels import frames_to_tensor, tensor_to_frames

STEP_LOG_SECONDS = 10.0  # while sampling, a log line at most this often (a real-size video takes minutes)


def first_frame_latents(model, images: np.ndarray) -> torch.Tensor:
    """uint8 images [B, H, W, 3] → normalised clean latents of a one-frame clip [B, C, 1, h, w]."""
    return model.encode_video(torch.stack([frames_to_tensor(image[None]) for image in images]))


def sample_from_first_frames(
    model,
    prompts: list[str],
    images: np.ndarray,
    steps: int,
    guidance: float,
    generator: torch.Generator | list[torch.Generator],
    frames: int,
    negative_prompt: str = "",
    on_step=None,
) -> np.ndarray:
    """Videos [B, F, H, W, 3] uint8 that start at ``images`` [B, H, W, 3] uint8 (one per prompt).
    ``on_step(i)`` is called after each denoising step."""
    from diffusers.utils.torch_utils import randn_tensor

    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} first frames for {len(prompts)} prompts")
    device = model.device
    condition = first_frame_latents(model, images).to(device)  # [B, C, 1, h, w]
    b, c, _, h, w = condition.shape
    f = (frames - 1) // model.scale_temporal + 1
    latents = randn_tensor((b, c, f, h, w), generator=generator, device=device, dtype=torch.float32)
    text = model.encode_text(prompts)  # [B, L, D]
    uncond = model.encode_text([negative_prompt] * b) if guidance > 1.0 else None
    scheduler = copy.deepcopy(model.pipe.scheduler)  # the pipeline's own, with its shift; state is per call
    scheduler.set_timesteps(steps, device=device)
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps):
            x = torch.cat([condition, latents[:, :, 1:]], dim=2)  # the first frame stays the given one
            sigma = (t / 1000.0).expand(b).to(device)  # [B]
            v = model.velocity(x, sigma, text, condition="first-frame").float()
            if uncond is not None:
                v_uncond = model.velocity(x, sigma, uncond, condition="first-frame").float()
                v = v_uncond + guidance * (v - v_uncond)
            latents = scheduler.step(v, t, latents, return_dict=False)[0]
            if on_step is not None:
                on_step(i)
        latents = torch.cat([condition, latents[:, :, 1:]], dim=2)
        video = model.decode_latents(latents)  # [B, 3, F, H, W] in [-1, 1]
    return np.stack([tensor_to_frames(v) for v in video])  # [B, F, H, W, 3]


def generate(
    model,
    prompts: list[str],
    steps: int = 30,
    guidance: float = 1.0,
    seed: int | list[int] = 0,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    negative_prompt: str = "",
    first_frames: np.ndarray | None = None,
) -> np.ndarray:
    """Sample videos with ``WanPipeline``; returns uint8 ``[B, F, H, W, 3]``. ``negative_prompt``
    is used with classifier-free guidance (``guidance`` > 1). With a list of seeds, one per prompt,
    each video's noise depends on its own seed only, not on what it was batched with.
    ``first_frames`` [B, H, W, 3] uint8: image-to-video from these frames (``sample_from_first_frames``), for
    a model that takes a first frame (``supports_first_frame``)."""
    s = model.settings
    if first_frames is None and s.condition == "first-frame":
        raise ModelError("this model was trained on a given first frame: give the first frames")
    if first_frames is not None and not model.supports_first_frame():
        raise ModelError("this model does not take a first frame (a text-to-video checkpoint)")
    if model.pipe.config.get("boundary_ratio") is not None and None in (
        model.pipe.transformer,
        model.pipe.transformer_2,
    ):
        raise ModelError("generation needs both experts: load the model without sigma")
    model._text_encoder(model.device)
    if isinstance(seed, list):
        if len(seed) != len(prompts):
            raise ValueError(f"{len(seed)} seeds for {len(prompts)} prompts")
        generator = [torch.Generator("cpu").manual_seed(s) for s in seed]
    else:
        generator = torch.Generator("cpu").manual_seed(seed)
    started = last = time.monotonic()

    def step_log(pipe, i: int, t, tensors: dict) -> dict:
        """Says how far sampling is, at most every ``STEP_LOG_SECONDS``."""
        nonlocal last
        now = time.monotonic()
        if now - last >= STEP_LOG_SECONDS:
            last = now
            logger.info(
                "sampling %d video(s): step %d of %d, %.0f s", len(prompts), i + 1, steps, now - started
            )
        return tensors

    if first_frames is not None:
        return sample_from_first_frames(
            model, prompts, first_frames, steps, guidance, generator, frames or s.frames, negative_prompt,
            lambda i: step_log(model.pipe, i, None, {}),
        )  # fmt: skip
    with model.vae_channels_last():
        out = model.pipe(
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
            callback_on_step_end=step_log,
        ).frames
    return (np.clip(np.asarray(out), 0, 1) * 255 + 0.5).astype(np.uint8)
