import json
import logging

import numpy as np
import pytest
import torch

from motive.models import ModelError, VideoModel, frames_to_tensor, tensor_to_frames


def test_tiny_model_save_load_round_trip(tiny_model, tmp_path):
    path = tiny_model.save_pretrained(tmp_path / "m")
    assert (path / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = VideoModel.from_pretrained(path)
    assert loaded.settings == tiny_model.settings
    torch.manual_seed(0)
    video = torch.rand(2, 3, 17, 64, 64) * 2 - 1
    prompts = ["a red ball bouncing on a checkered floor", "a blue box resting on a striped floor"]
    h1, h2 = tiny_model.encode_video(video), loaded.encode_video(video)
    torch.testing.assert_close(h1, h2)
    t1, t2 = tiny_model.encode_text(prompts), loaded.encode_text(prompts)
    torch.testing.assert_close(t1, t2)
    sigma = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        torch.testing.assert_close(tiny_model.velocity(h1, sigma, t1), loaded.velocity(h2, sigma, t2))


def test_shapes_and_text(tiny_model):
    assert tiny_model.latent_shape(17, 64, 64) == (16, 5, 16, 16)
    with pytest.raises(ValueError):
        tiny_model.latent_shape(16, 64, 64)
    text = tiny_model.encode_text(["a red ball", "a different, longer prompt"])
    assert text.shape == (2, tiny_model.settings.text_len, 32)
    assert not torch.allclose(text[0], text[1])
    assert text[0, 12:].abs().max() == 0  # padded past the prompt, as WanPipeline does


def test_latent_normalisation_round_trip(tiny_model):
    before = (tiny_model.latents_mean.clone(), tiny_model.latents_std.clone())
    try:
        tiny_model.set_latent_stats([0.5] * 16, [2.0] * 16)
        video = torch.rand(1, 3, 5, 64, 64) * 2 - 1
        h = tiny_model.encode_video(video)
        raw = tiny_model.vae.encode(video).latent_dist.mode()
        torch.testing.assert_close(h, (raw - 0.5) / 2.0)
    finally:
        tiny_model.set_latent_stats(before[0].flatten().tolist(), before[1].flatten().tolist())


def test_parameter_patterns(tiny_model):
    everything = tiny_model.named_parameters()
    attn = tiny_model.named_parameters(["blocks.*.attn1.*"])
    assert 0 < len(attn) < len(everything)
    assert all(".attn1." in n for n, _ in attn)
    with pytest.raises(ValueError, match="no transformer parameter"):
        tiny_model.named_parameters(["nothing.*"])


def test_frames_tensor_round_trip():
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    x = frames_to_tensor(frames)
    assert x.shape == (3, 5, 8, 8) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(tensor_to_frames(x), frames)


def test_clear_errors_for_bad_paths(tmp_path):
    with pytest.raises(ModelError, match="model path not found"):
        VideoModel.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no model_index.json"):
        VideoModel.from_pretrained(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelError, match="not a WanPipeline"):
        VideoModel.from_pretrained(other)


def test_generate_returns_uint8_video_and_logs_its_steps(tiny_model, monkeypatch, caplog):
    monkeypatch.setattr("motive.models.sampling.STEP_LOG_SECONDS", 0.0)  # a line every step
    with caplog.at_level(logging.INFO, logger="motive"):
        out = tiny_model.generate(["a red ball"], steps=2, frames=5)
    assert out.shape == (1, 5, 64, 64, 3) and out.dtype == np.uint8
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sampling 1 video(s)")]
    assert [m.split(",")[0] for m in steps] == [
        "sampling 1 video(s): step 1 of 2",
        "sampling 1 video(s): step 2 of 2",
    ]


def test_channels_last_vae_changes_speed_not_results(tiny_model, tmp_path):
    torch.manual_seed(1)
    video = torch.rand(2, 3, 17, 64, 64) * 2 - 1
    vae = tiny_model.vae
    with torch.no_grad():  # the plain layout, straight through diffusers
        mu = vae.encode(video).latent_dist.mode()
        plain_decoded = vae.decode(mu).sample
    h = tiny_model.encode_video(video)  # channels-last inside
    expected = (mu - tiny_model.latents_mean) / tiny_model.latents_std
    torch.testing.assert_close(h, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(tiny_model.decode_latents(h), plain_decoded, rtol=1e-4, atol=1e-4)
    convs = [m for m in vae.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all(m.weight.is_contiguous() for m in convs)  # plain layout restored
    tiny_model.save_pretrained(tmp_path / "m")  # safetensors needs contiguous weights


def test_fingerprint_names_the_model_not_where_it_was_loaded_from(tiny_model, tmp_path, monkeypatch):
    import shutil

    from motive.models import model_fingerprint, vae_fingerprint

    path = tiny_model.save_pretrained(tmp_path / "a")
    shutil.copytree(path, tmp_path / "copy")
    monkeypatch.chdir(tmp_path)
    loaded = [VideoModel.from_pretrained(p) for p in (path, tmp_path / "copy", "a")]  # "a": relative
    for fingerprint in (model_fingerprint, vae_fingerprint):
        assert {fingerprint(m) for m in loaded} == {fingerprint(tiny_model)}
    other = VideoModel.from_pretrained(path)
    with torch.no_grad():
        next(other.transformer.parameters()).add_(1e-3)
    assert model_fingerprint(other) != model_fingerprint(tiny_model)


def test_a_prompt_longer_than_text_len_is_reported(tiny_model, caplog):
    from dataclasses import replace

    model = VideoModel(tiny_model.pipe, replace(tiny_model.settings, text_len=16), source="tiny")
    with caplog.at_level("WARNING", logger="motive"):
        model.cache_prompts(["a red ball", "a blue box rolling across a brick floor"])
    assert "1 of 2 prompt(s) are longer than text_len = 16 tokens (longest 40)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="motive"):
        model.cache_prompts(["a green triangle swinging above a striped floor"])
    assert "truncated" not in caplog.text  # said once per model
    with caplog.at_level("WARNING", logger="motive"):
        tiny_model.cache_prompts(
            ["a blue box rolling leftward across a brick floor, the camera panning left"]
        )
    assert "truncated" not in caplog.text  # the demo model's prompts fit


def test_vae_tiling_auto_is_off_on_the_cpu_and_a_tiled_encode_is_its_own_input(tiny_model):
    from motive.models.devices import resolve_vae_tiling
    from motive.models.wan import vae_fingerprint

    assert not resolve_vae_tiling("auto", tiny_model.device, 480, 832)
    assert resolve_vae_tiling("on", tiny_model.device, 64, 64) and not resolve_vae_tiling(
        "off", tiny_model.device, 64, 64
    )
    with pytest.raises(ValueError, match="auto, on or off"):
        resolve_vae_tiling("yes", tiny_model.device, 64, 64)
    video = torch.rand(1, 3, 17, 64, 64) * 2 - 1
    plain, fp = tiny_model.encode_video(video), vae_fingerprint(tiny_model)
    tiny_model.vae_tiled = True
    try:
        tiled = tiny_model.encode_video(video)  # one tile at 64×64: the same latents
        assert not tiny_model.vae.use_tiling  # switched on for the call only
        assert vae_fingerprint(tiny_model) == fp + "/tiled"  # cached inputs are kept apart
    finally:
        tiny_model.vae_tiled = False
    torch.testing.assert_close(tiled, plain)
