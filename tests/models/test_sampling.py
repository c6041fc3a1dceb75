"""Sampling from a given first frame: the loop agrees with diffusers' Wan2.2-TI2V image-to-video pipeline
where both apply (1×2×2 patches), keeps the given frame, and is refused where it has no meaning."""

import numpy as np
import pytest
import torch
from PIL import Image

from motive.models import ModelError
from motive.models.pixels import tensor_to_frames
from motive.models.sampling import first_frame_latents
from motive.models.tiny import TinyConfig, build_tiny_model


@pytest.fixture(scope="module")
def first_frame_model():
    """A tiny first-frame model with Wan2.2-TI2V's 1×2×2 patches; its output layer scaled up so that the
    sampled frames clearly move (a random model's velocities are small)."""
    model = build_tiny_model(TinyConfig(condition="first-frame", patch=[1, 2, 2], frames=9), seed=1)
    with torch.no_grad():
        model.transformer.proj_out.weight.mul_(20.0)
    return model


def _frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.full((64, 64, 3), 90, np.uint8)
    frame[20:40, 10:30] = rng.integers(150, 255, 3)  # a coloured square on grey
    return frame


def test_first_frame_sampling_equals_diffusers_ti2v_image_to_video(first_frame_model):
    from diffusers import WanImageToVideoPipeline

    guidance = 3.0  # with guidance: both the conditional and the unconditional pass

    model, frame = first_frame_model, _frame()
    pipe = model.pipe
    i2v = WanImageToVideoPipeline(
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        transformer=pipe.transformer,
        expand_timesteps=True,
    )
    prompt = "a red ball bouncing on a checkered floor"
    theirs = i2v(
        image=Image.fromarray(frame),
        prompt_embeds=model.encode_text([prompt]),  # its own prompt cleaning needs ftfy (diffusers 0.37)
        negative_prompt_embeds=model.encode_text([""]) if guidance > 1 else None,
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=4,
        guidance_scale=guidance,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
        max_sequence_length=model.settings.text_len,
    ).frames
    theirs = (np.clip(np.asarray(theirs), 0, 1) * 255 + 0.5).astype(np.uint8)  # [1, F, H, W, 3]
    ours = model.generate([prompt], steps=4, guidance=guidance, seed=3, first_frames=frame[None])
    assert ours.shape == theirs.shape == (1, 9, 64, 64, 3)
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1  # timestep rounding only
    assert ours[:, 1:].std() > 1.0  # the model did move the later frames


def test_the_given_frame_is_kept_and_seeds_are_per_video(first_frame_model):
    model = first_frame_model
    frames = np.stack([_frame(0), _frame(1)])
    videos = model.generate(["a ball", "a cube"], steps=2, seed=[5, 6], first_frames=frames)
    alone = model.generate(["a cube"], steps=2, seed=[6], first_frames=frames[1:])
    assert np.abs(videos[1].astype(int) - alone[0]).max() <= 1  # its own seed's noise (batched rounding)
    decoded = model.decode_latents(first_frame_latents(model, frames))  # [2, 3, 1, H, W]
    np.testing.assert_array_equal(
        videos[:, :1], np.stack([tensor_to_frames(v) for v in decoded])
    )  # the causal VAE: frame 0 is the given one's


def test_first_frames_are_refused_by_a_text_to_video_model_and_required_by_a_first_frame_one(
    first_frame_model, tiny_model
):
    with pytest.raises(ModelError, match="does not take a first frame"):
        tiny_model.generate(["a ball"], steps=1, first_frames=_frame()[None])
    with pytest.raises(ModelError, match="give the first frames"):
        first_frame_model.generate(["a ball"], steps=1)
    with pytest.raises(ValueError, match="2 first frames for 1 prompts"):
        first_frame_model.generate(["a ball"], steps=1, first_frames=np.stack([_frame(), _frame()]))
