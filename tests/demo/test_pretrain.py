import json

import numpy as np
import pytest

from motive.data.dataset import load_dataset
from motive.data.standardise import StandardiseTarget
from motive.demo.pretrain import PretrainConfig, VaeConfig, decode_all, is_pretrained, pretrain, train_vae
from motive.training import TrainConfig


def test_vae_fit_lowers_reconstruction_error(mini_world):
    from motive.models.tiny import build_tiny_model

    model = build_tiny_model(seed=2)
    frames = decode_all(
        load_dataset(mini_world / "base"),
        StandardiseTarget(fps=8, frames=17, height=64, width=64),
        progress=False,
    )
    losses = train_vae(model, frames, VaeConfig(steps=12, batch_size=4), progress=False)
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_object_masks_weigh_the_object_and_equal_weights_are_the_plain_loss(mini_world):
    from motive.demo.pretrain import object_masks_of
    from motive.models.tiny import build_tiny_model

    base = load_dataset(mini_world / "base")
    frames = decode_all(base, StandardiseTarget(fps=8, frames=17, height=64, width=64), progress=False)
    config = VaeConfig(steps=3, batch_size=2, object_weight=9.0)
    objects = object_masks_of(base, frames, config)  # [N, F, H, W]
    assert objects.shape == frames.shape[:4] and objects.dtype == bool
    assert 0.001 < objects.mean() < 0.1  # the object: a small part of each frame
    assert object_masks_of(base, frames, VaeConfig()) is None
    plain = train_vae(build_tiny_model(seed=2), frames, config, progress=False)
    none = np.zeros_like(objects)  # no object pixels: every weight 1
    ones = train_vae(build_tiny_model(seed=2), frames, config, progress=False, objects=none)
    np.testing.assert_allclose(ones, plain, rtol=1e-5)  # a weighted mean with equal weights
    weighted = train_vae(build_tiny_model(seed=2), frames, config, progress=False, objects=objects)
    assert weighted[0] != plain[0]  # the object's pixels weigh more
    for clip in base:
        clip.extra.pop("colour")
    with pytest.raises(ValueError, match="need a 'colour' column"):
        object_masks_of(base, frames, config)


def test_pretrain_writes_a_loadable_pipeline(mini_world, tmp_path):
    from motive.models.wan import VideoModel

    out = tmp_path / "model"
    cfg = PretrainConfig(
        data=str(mini_world / "base"),
        out=str(out),
        vae=VaeConfig(steps=2, batch_size=2),
        train=TrainConfig(steps=3, batch_size=4, warmup=1),
        sample_prompts=2,
        sample_steps=2,
    )
    summary = pretrain(cfg, eval_data=str(mini_world / "eval"), progress=False)
    assert is_pretrained(out)
    for name in ("loss.csv", "loss.png", "samples/sample_00.mp4", "samples/sample_01.gif", "pretrain.json"):
        assert (out / name).is_file(), name
    sens = summary["motion_word_sensitivity"]
    assert sens["clips"] == 10 and sens["weighted_loss_true"] > 0
    model = VideoModel.from_pretrained(out)
    assert model.settings.kind == "tiny"
    assert model.latents_std.flatten().tolist() != [1.0] * 16  # stats were fitted and saved
    saved = json.loads((out / "pretrain.json").read_text())
    assert saved["config"]["train"]["steps"] == 3


def test_pretrain_a_word_first_frame_model(mini_world, tmp_path):
    from motive.demo.pretrain import motion_word_sensitivity
    from motive.models.tiny import TinyConfig
    from motive.models.wan import VideoModel

    out = tmp_path / "model"
    cfg = PretrainConfig(
        data=str(mini_world / "base"),
        out=str(out),
        tiny=TinyConfig(tokenizer="word", condition="first-frame"),
        vae=VaeConfig(steps=2, batch_size=2),
        train=TrainConfig(steps=2, batch_size=4, warmup=1),
        sample_prompts=1,
        sample_steps=2,
    )
    summary = pretrain(cfg, eval_data=str(mini_world / "eval"), progress=False)
    assert summary["motion_word_sensitivity"]["clips"] == 10
    assert (out / "samples" / "sample_00.mp4").is_file()  # generated from a base clip's first frame
    model = VideoModel.from_pretrained(out)
    assert model.settings.condition == "first-frame" and model.settings.text_len == 32
    eval_data = load_dataset(mini_world / "eval")
    target = StandardiseTarget(fps=8, frames=17, height=64, width=64)
    later = motion_word_sensitivity(model, eval_data, target, sigmas=(1.0,), per_motion=1, later_frames=True)
    assert later == motion_word_sensitivity(model, eval_data, target, sigmas=(1.0,), per_motion=1)


def test_object_crops_hold_the_object_and_fit(mini_world):
    from motive.demo.pretrain import crop_origin, object_masks_of
    from motive.models.tiny import build_tiny_model

    base = load_dataset(mini_world / "base")
    frames = decode_all(base, StandardiseTarget(fps=8, frames=17, height=64, width=64), progress=False)
    config = VaeConfig(steps=3, batch_size=2, crop=32, crop_object=True, lr=6e-3, schedule="cosine")
    objects = object_masks_of(base, frames, config)  # crops need the object even at weight 0
    gen = np.random.default_rng(0)
    for body in objects[:, :9]:
        y, x = crop_origin(gen, 64, 64, 32, body)
        assert 0 <= y <= 32 and 0 <= x <= 32
        inside = body[:, y : y + 32, x : x + 32].sum()
        assert inside >= 0.5 * body.sum()  # most of the object's pixels fall in its crop
    losses = train_vae(build_tiny_model(seed=2), frames, config, progress=False, objects=objects)
    assert len(losses) == 3 and np.isfinite(losses).all()
    with pytest.raises(ValueError, match="needs the object masks"):
        train_vae(build_tiny_model(seed=2), frames, config, progress=False)
    with pytest.raises(ValueError, match="needs a crop size"):
        VaeConfig(crop_object=True)
    with pytest.raises(ValueError, match="schedule"):
        VaeConfig(schedule="linear")


def test_lowpass_weight_adds_the_error_of_block_means(mini_world):
    from motive.models.tiny import build_tiny_model

    base = load_dataset(mini_world / "base")
    frames = decode_all(base, StandardiseTarget(fps=8, frames=17, height=64, width=64), progress=False)
    plain = train_vae(build_tiny_model(seed=2), frames, VaeConfig(steps=1), progress=False)
    both = train_vae(build_tiny_model(seed=2), frames, VaeConfig(steps=1, lowpass_weight=1.0), progress=False)
    # the same window and model: the block means' error is added, and an untrained VAE has some
    assert plain[0] < both[0] < 2 * plain[0]  # block means cannot err more than the pixels (Jensen)


def test_a_vae_of_other_sizes_or_no_vae_is_refused(mini_world, model_dir, tmp_path):
    from motive.demo.pretrain import load_vae
    from motive.models.tiny import TinyConfig, build_tiny_model

    wider = build_tiny_model(TinyConfig(vae_base_dim=16), seed=0)
    with pytest.raises(ValueError, match="other sizes: base_dim 8 \\(this model: 16\\)"):
        load_vae(wider, model_dir)
    with pytest.raises(FileNotFoundError, match="no .*safetensors"):
        load_vae(wider, tmp_path)
    same = build_tiny_model(seed=5)
    load_vae(same, model_dir)  # the saved tiny model's VAE: same sizes
