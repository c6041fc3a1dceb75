import numpy as np
import pytest

from motive.motion import MaskConfig, compute_motion
from motive.motion import flow as flow_mod
from motive.motion.flow import (
    compose,
    endpoint_error,
    flow_backends,
    get_flow,
    read_flo,
    register_flow,
    to_pixels_of,
    upsample_flow,
    work_shape,
    write_flo,
)
from motive.motion.validation import FLOW_CASES, REFERENCE_EPE, load_flow_case
from tests.conftest import shared_data
from tests.motion.clips import camera_clip, translation


def test_work_shape_only_downscales():
    assert work_shape(64, 64, 256) == (64, 64)
    assert work_shape(480, 832, 256) == (148, 256)
    assert work_shape(480, 832, None) == (480, 832)
    assert work_shape(832, 480, 416) == (416, 240)


def test_displacements_are_rescaled_to_full_resolution():
    small = np.zeros((148, 256, 2), np.float32)
    small[..., 0], small[..., 1] = 2.0, 1.0
    full = to_pixels_of(small, (480, 832))
    np.testing.assert_allclose(full[0, 0], [2.0 * 832 / 256, 1.0 * 480 / 148], rtol=1e-6)
    assert upsample_flow(full, (480, 832)).shape == (480, 832, 2)


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_builtin_backends_recover_a_shift(name):
    clip = camera_clip(2, translation(3.0, -2.0))
    est = get_flow(name, "balanced")(clip[0], clip[1])  # [H, W, 2]
    inner = est[16:-16, 16:-16].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [3.0, -2.0], atol=0.25)


def test_unknown_backend_and_preset_are_clear_errors():
    with pytest.raises(ValueError, match="unknown flow back-end 'raft'"):
        get_flow("raft")
    with pytest.raises(ValueError, match="unknown dis preset"):
        get_flow("dis", "slowest")
    with pytest.raises(ValueError, match="built-in"):
        register_flow("dis", lambda a, b: None)


def test_registered_callable_is_a_backend(monkeypatch):
    monkeypatch.setattr(flow_mod, "_BACKENDS", dict(flow_mod._BACKENDS))

    def constant(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros((*a.shape[:2], 2), np.float32)
        out[..., 0] = 1.5
        return out

    register_flow("constant", constant)
    assert "constant" in flow_backends()
    assert get_flow("constant", "any preset")(np.zeros((4, 5, 3), np.uint8), None)[0, 0, 0] == 1.5


def test_compose_follows_points():
    h, w = 20, 30
    a_to_b = np.zeros((h, w, 2), np.float32)
    a_to_b[..., 0] = 2.0  # everything moves 2 px right
    b_to_c = np.zeros((h, w, 2), np.float32)
    b_to_c[:, 12:, 1] = 3.0  # then only the right part (x ≥ 12) moves 3 px down
    a_to_c = compose(a_to_b, b_to_c)
    np.testing.assert_allclose(a_to_c[5, 5], [2.0, 0.0])  # lands at x = 7: no second move
    np.testing.assert_allclose(a_to_c[5, 15], [2.0, 3.0])  # lands at x = 17: moves down too


def test_flo_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    flow = rng.normal(size=(7, 9, 2)).astype(np.float32)
    write_flo(tmp_path / "x.flo", flow)
    np.testing.assert_array_equal(read_flo(tmp_path / "x.flo"), flow)
    gt = flow.copy()
    gt[0, 0] = 1e10  # unknown: ignored
    assert endpoint_error(flow + np.array([3.0, 4.0], np.float32), gt) == pytest.approx(5.0, rel=1e-5)


@pytest.mark.parametrize("case", list(FLOW_CASES))
def test_default_backend_meets_the_reference_epe(case):
    """The default back-end at the pair's own resolution matches or beats plain DIS-medium's EPE
    (measured once as the reference) within 10%, on every flow-GT case of ../shared/data."""
    a, b, gt = load_flow_case(shared_data(), case)
    default = MaskConfig()
    est = get_flow(default.flow, default.preset)(a, b)
    assert endpoint_error(est, gt) <= 1.1 * REFERENCE_EPE[case]


def test_farneback_beats_zero_flow_on_ground_truth():
    a, b, gt = load_flow_case(shared_data(), "middlebury_RubberWhale")
    assert endpoint_error(get_flow("farneback", "balanced")(a, b), gt) < 0.5 * endpoint_error(
        np.zeros_like(gt), gt
    )


def test_a_backend_returning_the_wrong_shape_is_named(monkeypatch):
    monkeypatch.setattr(flow_mod, "_BACKENDS", dict(flow_mod._BACKENDS))
    register_flow("transposed", lambda a, b: np.zeros((a.shape[1], a.shape[0], 2), np.float32))
    frames = camera_clip(3, translation(1.0, 0.0), size=32)[:, :, :24]
    with pytest.raises(ValueError, match="flow back-end returned shape"):
        compute_motion(frames, MaskConfig(flow="transposed"))
