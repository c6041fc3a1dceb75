"""Per-clip inputs and their cache: the same inputs from the cache as computed, a key per setting."""

import torch

from motive.data.dataset import load_dataset
from motive.inputs import (
    cache_dir,
    cache_file,
    clip_inputs_batch,
    dataset_inputs,
    default_target,
    read_cached,
)
from motive.models.wan import vae_fingerprint
from motive.motion.mask import MaskConfig


def test_cached_inputs_equal_computed_ones(tiny_model, mini_world, tmp_path):
    clips = list(load_dataset(mini_world / "query"))[:2]
    target, fp = default_target(tiny_model), vae_fingerprint(tiny_model)
    mask = MaskConfig()
    fresh = clip_inputs_batch(tiny_model, [c.video for c in clips], target, mask, fp, tmp_path)
    strided = mask.for_model(tiny_model.scale_spatial, tiny_model.scale_temporal)
    files = [cache_file(c.video, target, strided, fp, tmp_path) for c in clips]
    assert all(f.is_file() for f in files) and len({*files}) == 2
    again = clip_inputs_batch(tiny_model, [c.video for c in clips], target, mask, fp, tmp_path)
    for a, b in zip(fresh, again):
        torch.testing.assert_close(a.latent, b.latent, rtol=0, atol=0)
        torch.testing.assert_close(a.mask, b.mask, rtol=0, atol=0)
        assert a.motion == b.motion and a.frames == b.frames == target.frames
    other = MaskConfig(camera_compensation=True).for_model(
        tiny_model.scale_spatial, tiny_model.scale_temporal
    )
    assert cache_file(clips[0].video, target, other, fp, tmp_path) != files[0]  # a setting is part of the key
    assert not list(tmp_path.glob("*.partial*"))  # nothing half-written left behind


def test_dataset_inputs_use_the_shared_cache(tiny_model, mini_world):
    clips = list(load_dataset(mini_world / "eval"))[:2]
    first = dataset_inputs(tiny_model, clips)
    assert (cache_dir() / "inputs").is_dir()
    second = dataset_inputs(tiny_model, clips)
    torch.testing.assert_close(first[1].latent, second[1].latent, rtol=0, atol=0)


def test_a_damaged_or_poisoned_cache_file_is_discarded_and_recomputed(tiny_model, mini_world, tmp_path):
    import pickle

    clip = list(load_dataset(mini_world / "query"))[0]
    target, fp, mask = default_target(tiny_model), vae_fingerprint(tiny_model), MaskConfig()
    (good,) = clip_inputs_batch(tiny_model, [clip.video], target, mask, fp, tmp_path)
    strided = mask.for_model(tiny_model.scale_spatial, tiny_model.scale_temporal)
    file = cache_file(clip.video, target, strided, fp, tmp_path)
    intact = file.read_bytes()

    class Boom:  # a pickle that would run code if it were ever unpickled without weights_only
        def __reduce__(self):
            return (exec, ("raise SystemExit('poisoned cache executed')",))

    damaged = {
        "truncated": intact[: len(intact) // 2],
        "garbage": b"not a torch file",
        "poisoned": pickle.dumps({"latent": Boom()}),
        "flipped": intact[:-40] + bytes([intact[-40] ^ 0xFF]) + intact[-39:],
    }
    for what, data in damaged.items():
        file.write_bytes(data)
        (again,) = clip_inputs_batch(tiny_model, [clip.video], target, mask, fp, tmp_path)
        torch.testing.assert_close(again.latent, good.latent, rtol=0, atol=0, msg=what)
        assert read_cached(file, target) is not None, what  # rewritten intact
    file.write_bytes(intact)
    tensor = torch.load(file, weights_only=True)
    tensor["latent"] = tensor["latent"] + 1  # well-formed but not what the digest says
    torch.save(tensor, file)
    assert read_cached(file, target) is None


def test_fp16_latents_change_scores_by_less_than_1e_4(tiny_model, mini_world):
    """Latents are kept in fp16. Scores from fp16-rounded latents against scores from fp32 ones, every
    pool clip × query clip of the mini world at σ = 0.3 and 0.751: measured at most 8.2e-6 (24 pool ×
    8 query clips of a larger world), bounded here by 1e-4 (scores are cosines in [-1, 1])."""
    from motive.gradients import GradientConfig, GradientFeaturizer
    from motive.inputs import LATENT_DTYPE, prepare_clip
    from motive.models.pixels import frames_to_tensor

    assert LATENT_DTYPE == torch.float16
    target = default_target(tiny_model)
    for sigma in (0.3, 0.751):
        feat = GradientFeaturizer(tiny_model, GradientConfig(sigma=sigma), (16, 5, 16, 16), frames=17)

        def features(split: str, feat: GradientFeaturizer = feat) -> tuple[torch.Tensor, torch.Tensor]:
            full, half = [], []
            for clip in list(load_dataset(mini_world / split))[:6]:
                p = prepare_clip(clip.video, target, feat.config.mask, "", None)
                h = tiny_model.encode_video(frames_to_tensor(p.frames)[None])  # [1, C, f, h, w] fp32
                text = tiny_model.encode_text([clip.prompt])
                full.append(feat.features(h, text, p.mask[None])[0][0])
                half.append(feat.features(h.half().float(), text, p.mask[None])[0][0])
            return torch.stack(full), torch.stack(half)

        (p32, p16), (q32, q16) = features("pool"), features("query")
        assert (p32 @ q32.T - p16 @ q16.T).abs().max() < 1e-4


def test_inputs_without_motion_compute_no_flow_and_are_cached_apart(tiny_model, mini_world, tmp_path):
    from motive.inputs import dataset_inputs

    clips = list(load_dataset(mini_world / "query"))[:2]
    bare = dataset_inputs(tiny_model, clips, cache=tmp_path, motion=False)
    assert all(x.mask.numel() == 0 and x.mean_flow != x.mean_flow for x in bare)  # NaN
    full = dataset_inputs(tiny_model, clips, cache=tmp_path)
    assert all(x.mask.shape == x.latent.shape[1:] for x in full)
    torch.testing.assert_close(bare[0].latent, full[0].latent, rtol=0, atol=0)  # the same latent
    again = dataset_inputs(tiny_model, clips, cache=tmp_path, motion=False)  # read back from the cache
    assert again[0].mask.numel() == 0 and len(list(tmp_path.glob("*.pt"))) == 4


def test_vae_calls_hold_one_real_clip_or_many_small_ones():
    from motive.inputs import VAE_CALL_PIXELS, vae_groups

    wan = 81 * 480 * 832
    assert VAE_CALL_PIXELS == wan
    assert vae_groups([wan] * 3) == [[0], [1], [2]]  # a native Wan2.1 clip per call, any chunk size
    assert vae_groups([wan * 2, 10]) == [[0], [1]]  # larger than the budget: alone
    assert vae_groups([17 * 64 * 64] * 16) == [list(range(16))]  # the demo's clips: one call
    assert vae_groups([]) == []
