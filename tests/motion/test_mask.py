import numpy as np
import torch

from motive.motion import flow_magnitudes, latent_mask, motion_mask, normalise_clip, temporal_group


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
