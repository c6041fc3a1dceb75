import json

import numpy as np
import pytest
import torch

from motive.data.video import read_video
from motive.motion import (
    MaskConfig,
    compute_motion,
    flow_magnitudes,
    latent_mask,
    motion_mask,
    normalise_clip,
    temporal_group,
    uniformity,
)
from motive.motion.validation import mass_on_changing_pixels
from tests.conftest import shared_data
from tests.motion.clips import camera_clip, object_clip, translation


def test_normalise_over_whole_clip():
    m = np.array([[[1.0, 3.0]], [[5.0, 9.0]]])
    w = normalise_clip(m, zeta=0.0)
    np.testing.assert_allclose(w, [[[0.0, 0.25]], [[0.5, 1.0]]])
    assert normalise_clip(np.zeros((2, 3, 3))).max() == 0  # no motion, no weight, no NaN


def test_temporal_grouping_is_causal():
    w = torch.arange(9, dtype=torch.float32).view(9, 1, 1).expand(9, 2, 2)
    g = temporal_group(w, 4)
    assert g.shape == (3, 2, 2)
    np.testing.assert_allclose(g[:, 0, 0], [0.0, 2.5, 6.5])  # frame 0; mean(1..4); mean(5..8)


def test_latent_mask_downsamples_bilinearly():
    w = np.zeros((5, 16, 16), np.float32)
    w[:, :8, :8] = 1.0  # top-left quarter moves
    m = latent_mask(w, spatial_stride=8, temporal_stride=4)
    assert m.shape == (2, 2, 2)
    np.testing.assert_allclose(m[0], [[1, 0], [0, 0]])


def test_flow_magnitudes_of_a_moving_square():
    frames = np.zeros((5, 64, 64, 3), np.uint8)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    for f in range(5):
        frames[f, 20:36, 10 + 2 * f : 26 + 2 * f] = texture
    mags = flow_magnitudes(frames)
    assert mags.shape == (5, 64, 64)
    inside = mags[2, 24:32, 16:24].mean()
    outside = mags[2, 50:, 50:].mean()
    assert 1.0 < inside < 3.0 and outside < 0.2
    mask = motion_mask(np.concatenate([frames, frames[-1:].repeat(4, 0)]))
    assert mask.shape == (3, 8, 8)
    assert mask[1, 2:5, 1:4].mean() > mask[1, 6:, 6:].mean() + 0.2


def _moving_square(frames: int = 9) -> np.ndarray:
    return object_clip(frames, size=64, step=2)


def test_default_weights_are_the_papers_on_small_clips():
    """64×64 clips stay at full resolution: W is exactly min–max of ‖DIS flow‖, frame 0 taking 0 → 1."""
    frames = _moving_square()
    result = compute_motion(frames)
    mags = flow_magnitudes(frames, MaskConfig().preset)
    np.testing.assert_allclose(result.weights, normalise_clip(mags), atol=1e-5)
    assert result.mean_flow == pytest.approx(float(mags[1:].mean()), abs=1e-4)
    assert result.stats["work_height"] == 64 and result.stats["cuts"] == []
    assert result.stats["raw_mean_flow"] == result.stats["residual_mean_flow"]


def test_motion_mask_goes_through_compute_motion():
    frames = _moving_square()
    config = MaskConfig(spatial_stride=8, temporal_stride=4, camera_compensation=True)
    expected = latent_mask(compute_motion(frames, config).weights, 8, 4)
    torch.testing.assert_close(motion_mask(frames, config), expected)


def test_working_resolution_reports_full_resolution_pixels():
    frames = camera_clip(3, translation(4.0, 0.0), size=128)
    result = compute_motion(frames, MaskConfig(work_size=64))
    assert (result.stats["work_height"], result.stats["work_width"]) == (64, 64)
    assert result.weights.shape == (3, 128, 128) and result.flow.shape == (2, 64, 64, 2)
    np.testing.assert_allclose(np.median(result.flow[0, 8:-8, 8:-8].reshape(-1, 2), axis=0), [4, 0], atol=0.3)
    assert result.full_flow(0).shape == (128, 128, 2)
    assert result.mean_flow == pytest.approx(4.0, abs=0.4)


def test_a_cut_is_kept_out_of_the_mask():
    shot_a = _moving_square(9)
    shot_b = object_clip(8, size=64, step=2, seed=7)[:, ::-1]  # other content, moving left
    frames = np.concatenate([shot_a, shot_b])
    result = compute_motion(frames)
    assert result.stats["cuts"] == [9] and result.stats["excluded_pairs"] == [8]
    assert np.isnan(result.flow[8]).all() and result.stats["camera"][8] is None
    assert len(result.stats["pair_raw_flow"]) == result.stats["pairs"] - 1
    # without cut detection the jump reads as violent motion everywhere around frame 9
    blind = compute_motion(frames, MaskConfig(cut_detection=False))
    assert blind.weights[9].mean() > 3 * result.weights[9].mean()
    # the first frame of the new shot takes its forward flow, like frame 0
    np.testing.assert_allclose(result.weights[9], result.weights[10], atol=0.15)


def test_anchor_mode_grows_with_distance_from_the_first_frame():
    frames = camera_clip(5, translation(2.0, 0.0))
    result = compute_motion(frames, MaskConfig(mode="anchor"))
    centre = result.flow[:, 24:-24, 24:-24, 0].mean(axis=(1, 2))  # pair i: frame 0 → i+1
    np.testing.assert_allclose(centre, [2, 4, 6, 8], atol=0.4)
    assert result.weights[0].max() == 0.0  # frame 0 has not moved from itself
    assert result.weights[4].mean() > result.weights[1].mean() + 0.4


def test_camera_compensation_keeps_the_object_and_drops_the_pan():
    # the camera pans 3 px/frame; the square drifts 1 px/frame on screen, i.e. 2 px/frame against the scene
    frames = object_clip(9, size=96, step=1, pan=3.0)
    inside = (slice(None), slice(36, 52), slice(20, 36))  # the square's path
    background = (slice(None), slice(70, 90), slice(10, 80))
    raw = compute_motion(frames)
    comp = compute_motion(frames, MaskConfig(camera_compensation=True))
    assert raw.stats["raw_mean_flow"] == comp.stats["raw_mean_flow"]
    assert comp.stats["residual_mean_flow"] < 0.5 * comp.stats["raw_mean_flow"]
    assert raw.weights[background].mean() > 2 * raw.weights[inside].mean()  # the paper's W: the pan
    assert comp.weights[inside].mean() > 4 * comp.weights[background].mean()  # compensated: the square
    assert comp.stats["uniformity"] < raw.stats["uniformity"] == comp.stats["raw_uniformity"]
    assert not comp.stats["camera_only"]
    assert compute_motion(camera_clip(5, translation(3.0, 1.0)), MaskConfig()).stats["camera_only"]


def test_uniformity_is_the_moving_share_of_the_frame():
    w = np.zeros((2, 10, 10), np.float32)
    w[:, :2, :5] = 0.7  # 10% of each frame
    assert uniformity(w) == pytest.approx(0.1)
    assert uniformity(np.full((3, 4, 4), 0.2, np.float32)) == pytest.approx(1.0)
    assert uniformity(np.zeros((2, 4, 4), np.float32)) == 0.0


def test_config_is_json_plain_and_validated():
    c = MaskConfig(camera_compensation=True, work_size=None, mode="anchor")
    assert json.loads(json.dumps(c.to_dict())) == c.to_dict()
    assert c.for_model(8, 4).spatial_stride == 8
    with pytest.raises(ValueError, match="flow mode"):
        MaskConfig(mode="backward")
    with pytest.raises(ValueError, match="camera model"):
        MaskConfig(camera_model="similarity")
    with pytest.raises(ValueError, match="unknown flow back-end"):
        compute_motion(_moving_square(), MaskConfig(flow="raft"))


def test_padded_latent_mask_matches_and_extends():
    w = np.random.default_rng(0).uniform(size=(9, 16, 24)).astype(np.float32)
    torch.testing.assert_close(latent_mask(w, 8, 4, pad=True), latent_mask(w, 8, 4))
    odd = np.ones((11, 20, 30), np.float32)
    assert latent_mask(odd, 8, 4, pad=True).shape == (4, 3, 4)
    with pytest.raises(ValueError, match="not divisible"):
        latent_mask(odd[:9], 8, 4)


def test_single_frame_clip_has_no_motion():
    result = compute_motion(_moving_square(1))
    assert result.weights.shape == (1, 64, 64) and result.weights.max() == 0
    assert result.stats["pairs"] == 0 and result.mean_flow == 0.0


def test_tiny_moving_region_concentrates_the_mask():
    """Newton's cradle: only the end balls swing; the mask's weight sits on the pixels that change."""
    video = read_video(shared_data() / "videos" / "imageio__newtonscradle.gif")
    weights = compute_motion(video.frames).weights  # [F, H, W]
    share, area = mass_on_changing_pixels(video.frames, weights)
    assert share > 0.5 and share > 4 * area  # a uniform mask would put `area` of its weight there
