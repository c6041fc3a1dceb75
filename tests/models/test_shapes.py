"""Pipelines shaped like the released Wan checkpoints: native formats, experts, per-token timesteps,
and the real-size VAE and text-encoder paths (loaded lazily, freed, cached)."""

from __future__ import annotations

import pytest
import torch

from motive.models.checkpoint import ModelSettings
from motive.models.shapes import build_pipeline
from motive.models.wan import VideoModel, model_fingerprint


def test_native_formats_come_from_the_vae(real_shaped_dir, wan22_dirs):
    assert not (real_shaped_dir / "motive.json").exists()
    wan21 = VideoModel.from_pretrained(real_shaped_dir)
    assert (wan21.settings.frames, wan21.settings.fps, wan21.settings.height, wan21.settings.width) == (
        81,
        16.0,
        480,
        832,
    )
    ti2v = VideoModel.from_pretrained(wan22_dirs["ti2v"])
    assert (ti2v.settings.frames, ti2v.settings.fps, ti2v.settings.height, ti2v.settings.width) == (
        121,
        24.0,
        704,
        1280,
    )
    assert ti2v.z_dim == 48 and ti2v.scale_spatial == 16
    assert ti2v.latent_shape(121, 704, 1280) == (48, 31, 44, 80)
    assert ModelSettings.native(16) == ModelSettings()


def test_a14b_loads_only_the_expert_that_sees_sigma(wan22_dirs):
    low = VideoModel.from_pretrained(wan22_dirs["a14b"], sigma=0.751)  # t = 751 < 875: low-noise expert
    assert low.expert == "transformer_2" and low.pipe.transformer is None
    assert low.transformer is low.pipe.transformer_2
    high = VideoModel.from_pretrained(wan22_dirs["a14b"], sigma=0.9)
    assert high.expert == "transformer" and high.pipe.transformer_2 is None
    assert model_fingerprint(low) != model_fingerprint(high)
    both = VideoModel.from_pretrained(wan22_dirs["a14b"])  # for generation: both experts
    assert both.pipe.transformer is not None and both.pipe.transformer_2 is not None
    assert model_fingerprint(both) == model_fingerprint(high)
    with pytest.raises(ValueError, match="both experts"):
        low.generate(["a ball"], steps=1, frames=5, height=64, width=64)
    with pytest.raises(ValueError, match="one expert"):
        low.save_pretrained(wan22_dirs["a14b"].parent / "copy")


def test_ti2v_velocity_gives_every_token_the_timestep(wan22_dirs):
    model = VideoModel.from_pretrained(wan22_dirs["ti2v"])
    assert model.pipe.config.expand_timesteps
    x = torch.randn(2, *model.latent_shape(5, 64, 64))  # [2, 48, 2, 4, 4]
    text = model.encode_text(["a ball rolls", "a box"])
    sigma = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        expanded = model.velocity(x, sigma, text)
        scalar = model.transformer(
            hidden_states=x, timestep=sigma * 1000, encoder_hidden_states=text, return_dict=False
        )[0]
    torch.testing.assert_close(expanded, scalar, rtol=1e-4, atol=1e-5)


def test_full_size_vae_one_clip_per_call_equals_batched(real_shaped_dir):
    model = VideoModel.from_pretrained(real_shaped_dir)
    assert model.vae.config.base_dim == 96 and model.vae.dtype == torch.float32  # the released VAE
    torch.manual_seed(0)
    video = torch.rand(2, 3, 5, 64, 96) * 2 - 1
    batched = model.encode_video(video)
    single = torch.cat([model.encode_video(video[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(single, batched, rtol=1e-5, atol=1e-5)


def test_text_encoder_is_loaded_on_demand_freed_and_cached(real_shaped_dir, tmp_path):
    from diffusers import WanPipeline

    prompts = ["a red ball bounces", "water flows between stones"]
    reference, _ = WanPipeline.from_pretrained(str(real_shaped_dir), dtype=torch.float32).encode_prompt(
        prompts, do_classifier_free_guidance=False, max_sequence_length=512, device="cpu"
    )
    model = VideoModel.from_pretrained(real_shaped_dir)
    assert model.pipe.text_encoder is None  # not loaded with the model
    model.text_cache = tmp_path / "text"
    model.cache_prompts(prompts)
    assert model.pipe.text_encoder is None  # used, then freed
    assert len(list((tmp_path / "text").glob("*.safetensors"))) == 2
    again = VideoModel.from_pretrained(real_shaped_dir)
    again.text_cache = tmp_path / "text"
    embeds = again.encode_text(prompts)  # [2, 512, 4096] from the cache alone
    assert again.pipe.text_encoder is None
    torch.testing.assert_close(embeds, reference.float())
    assert embeds.shape == (2, 512, 4096)


def test_fingerprint_samples_without_copying_and_tells_models_apart(tiny_model, model_dir, tmp_path):
    loaded = VideoModel.from_pretrained(model_dir)
    assert model_fingerprint(loaded) == model_fingerprint(tiny_model)  # however it was loaded
    with torch.no_grad():
        for p in loaded.transformer.parameters():
            p.add_(1e-3 * torch.randn_like(p))  # what any fine-tune does to the weights it trains
    assert model_fingerprint(loaded) != model_fingerprint(tiny_model)


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown variant"):
        build_pipeline("wan3", tmp_path)


def _nbytes(folder) -> int:
    """Bytes of every tensor in a folder's safetensors files."""
    from safetensors.torch import load_file

    return sum(t.nbytes for f in folder.glob("*.safetensors") for t in load_file(f).values())


@pytest.mark.gpu
def test_on_cuda_the_text_encoder_leaves_the_device_after_encoding(real_shaped_dir, tmp_path):
    model = VideoModel.from_pretrained(real_shaped_dir)  # auto: CUDA
    assert model.device.type == "cuda" and model.text_dtype == torch.bfloat16
    # warm-up: cuBLAS and cuBLASLt allocate their workspaces (through torch's allocator, per handle and
    # stream) at the first product and keep them; make them exist before the baseline, not count them
    for dtype in (torch.bfloat16, torch.float32):
        a = torch.ones(256, 256, device="cuda", dtype=dtype)
        torch.nn.functional.linear(a, a, a[0]).sum().item()  # addmm with a bias: the cuBLASLt path
        (a @ a).sum().item()  # mm: cuBLAS
    del a
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    model.text_cache = tmp_path
    model.cache_prompts(["a red ball bounces", "water flows"])
    # it was on the device (its bf16 weights, as saved and loaded), and then nothing of it stays behind
    assert torch.cuda.max_memory_allocated() - before >= _nbytes(real_shaped_dir / "text_encoder")
    assert model.pipe.text_encoder is None
    assert torch.cuda.memory_allocated() <= before + 2**20
