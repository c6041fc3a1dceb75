import numpy as np
import pytest

from motive.data.video import read_video
from motive.motion import MaskConfig, compute_motion
from motive.motion.camera import camera_flow, fit_camera, residual_flow
from motive.motion.validation import PAN_TILT, STATIC_CAMERA, ZOOM_ROLL
from tests.conftest import shared_data


def similarity(scale: float, degrees: float, tx: float, ty: float, centre: tuple[float, float]) -> np.ndarray:
    """Zoom by ``scale`` and turn by ``degrees`` (clockwise on screen) about ``centre``, then shift."""
    a = np.radians(degrees)
    cx, cy = centre
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = np.eye(3)
    m[:2, :2] = r
    m[:2, 2] = np.array([cx, cy]) - r @ np.array([cx, cy]) + np.array([tx, ty])
    return m


SHAPE = (60, 80)  # flow grid (h, w) over a 120×160 frame
FULL = (120, 160)
CENTRE = ((FULL[1] - 1) / 2, (FULL[0] - 1) / 2)


@pytest.mark.parametrize(
    "scale, degrees, tx, ty",
    [
        (1.0, 0.0, 6.0, 0.0),
        (1.0, 0.0, 0.0, -4.0),
        (1.04, 0.0, 0.0, 0.0),
        (1.0, 2.0, 0.0, 0.0),
        (0.97, -1.5, 2.0, 1.0),
    ],
    ids=["pan", "tilt", "zoom", "roll", "mixed"],
)
def test_global_motion_is_recovered_and_removed(scale, degrees, tx, ty):
    truth = similarity(scale, degrees, tx, ty, CENTRE)
    flow = camera_flow(truth, SHAPE, FULL)  # [h, w, 2]
    rng = np.random.default_rng(0)
    flow = flow + rng.normal(0, 0.1, flow.shape).astype(np.float32)
    flow[20:30, 30:45] += np.array([5.0, -3.0], np.float32)  # an object with its own motion
    fit = fit_camera(flow, FULL, "homography")
    assert not fit.static
    motion = fit.centre_motion(*FULL)
    assert motion["tx"] == pytest.approx(tx, abs=0.1) and motion["ty"] == pytest.approx(ty, abs=0.1)
    assert motion["scale"] == pytest.approx(scale, abs=2e-3)
    assert motion["rotation_deg"] == pytest.approx(degrees, abs=0.05)
    residual = np.linalg.norm(residual_flow(flow, fit, FULL), axis=-1)
    assert residual[20:30, 30:45].mean() == pytest.approx(np.hypot(5, 3), abs=0.3)  # the object stays
    assert np.median(residual) < 0.3  # the background is gone


def test_affine_model_fits_a_pan_too():
    flow = camera_flow(similarity(1.0, 0.0, 3.0, 2.0, CENTRE), SHAPE, FULL)
    fit = fit_camera(flow, FULL, "affine")
    assert fit.centre_motion(*FULL)["tx"] == pytest.approx(3.0, abs=1e-3)
    with pytest.raises(ValueError, match="camera model"):
        fit_camera(flow, FULL, "similarity")


def test_still_camera_with_a_moving_object_is_left_alone():
    rng = np.random.default_rng(1)
    flow = rng.normal(0, 0.15, (*SHAPE, 2)).astype(np.float32)
    flow[10:40, 10:40] += np.array([4.0, 1.0], np.float32)  # a large mover: 19% of the frame
    fit = fit_camera(flow, FULL)
    assert fit.static
    np.testing.assert_array_equal(fit.matrix, np.eye(3))
    assert residual_flow(flow, fit, FULL) is flow
    record = fit.to_dict(*FULL)
    assert record["static"] and record["tx"] == 0.0 and len(record["matrix"]) == 3


def _ratio(clip: str, frames: int) -> float:
    video = read_video(shared_data() / "videos" / clip, max_frames=frames)
    stats = compute_motion(video.frames, MaskConfig(camera_compensation=True)).stats
    return stats["residual_mean_flow"] / stats["raw_mean_flow"]


@pytest.mark.parametrize("clip", PAN_TILT)
def test_pans_and_tilts_are_compensated(clip):
    assert _ratio(clip, 40) <= 0.2


@pytest.mark.parametrize("clip", ZOOM_ROLL)
def test_zooms_and_rolls_are_compensated(clip):
    assert _ratio(clip, 16) <= 0.4


@pytest.mark.parametrize("clip", STATIC_CAMERA[:4])
def test_static_cameras_keep_their_object_motion(clip):
    assert _ratio(clip, 25) >= 0.8
