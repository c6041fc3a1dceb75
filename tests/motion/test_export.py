import json
import textwrap

import cv2
import numpy as np
import pandas as pd
import pytest

from motive.data.video import write_video
from motive.motion import MaskConfig
from motive.motion.export import RunOptions, run_motion, strides_from_model
from tests.motion.clips import camera_clip, object_clip, translation


def _dataset(root):
    """A dataset folder: a clip with a hard cut, a panning clip, an undecodable file, a missing one."""
    root.mkdir()
    shot_b = (camera_clip(8, translation(2.0, 0.0), size=64, seed=5) * np.array([0.4, 0.7, 1.0]) + 30).astype(
        np.uint8
    )
    write_video(root / "cut.mkv", np.concatenate([object_clip(9, size=64), shot_b]), 8.0)
    write_video(root / "pan.mkv", camera_clip(9, translation(3.0, 0.0), size=64), 8.0)
    (root / "broken.mp4").write_bytes(b"not a video")
    rows = ["cut.mkv", "pan.mkv", "broken.mp4", "missing.mp4"]
    pd.DataFrame({"video": rows, "prompt": ["p"] * 4}).to_csv(root / "metadata.csv", index=False)
    return root


def test_dataset_run_writes_every_output(tmp_path):
    data = _dataset(tmp_path / "data")
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, f in enumerate(object_clip(5, size=48)):
        cv2.imwrite(str(frames_dir / f"{i:03d}.png"), f[..., ::-1])
    out = tmp_path / "out"
    options = RunOptions(spatial_stride=8, temporal_stride=4, save_flow=True)
    config = MaskConfig(camera_compensation=True)
    table = run_motion([data, frames_dir], out, config, options, workers=1, progress=False)

    assert list(table["id"]) == ["cut", "pan", "broken", "frames", "missing"]  # non-clips last
    errors = table.set_index("id")["error"]
    assert "cannot decode" in errors["broken"] and errors["missing"] == "file not found"
    assert (pd.read_csv(out / "summary.csv")["status"] == table["status"]).all()

    stats = json.loads((out / "cut" / "stats.json").read_text())
    for key in ("raw_mean_flow", "residual_mean_flow", "camera_only", "cuts", "frames", "pairs"):
        assert key in stats
    assert stats["frames"] == 17 and stats["pairs"] == 16 and stats["cuts"] == [9]
    assert stats["settings"] == config.to_dict() and stats["run"]["save_flow"]
    flow = np.load(out / "cut" / "flow.npy")
    assert flow.shape == (16, 64, 64, 2) and flow.dtype == np.float32
    assert np.isnan(flow[8]).all() and np.isfinite(flow[7]).all()
    assert np.load(out / "cut" / "mask.npy").shape == (5, 8, 8)  # 17 frames, 64 px / 8
    assert np.load(out / "frames" / "mask.npy").shape == (2, 6, 6)  # 5 frames padded to 5, 48 / 8
    pan = json.loads((out / "pan" / "stats.json").read_text())
    assert pan["camera_only"] and pan["residual_mean_flow"] < 0.3 * pan["raw_mean_flow"]
    assert (
        pan["camera"][0]["tx"] == np.float64(pan["camera"][0]["tx"]) and abs(pan["camera"][0]["tx"] - 3) < 0.3
    )
    for name in ("preview.mp4", "contact_sheet.png"):
        assert (out / "pan" / name).stat().st_size > 0

    again = run_motion([data, frames_dir], out, config, options, workers=1, progress=False)
    assert set(again.loc[again["status"] != "error", "status"]) == {"cached"}


def test_pool_workers_load_flow_plugins(tmp_path, monkeypatch):
    plugin = tmp_path / "shift_flow_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import numpy as np
            from motive.motion import register_flow

            def shift(a, b):
                out = np.zeros((*a.shape[:2], 2), np.float32)
                out[..., 1] = 2.0
                return out

            register_flow("shift", shift)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    clips = []
    for k in range(2):
        clips.append(write_video(tmp_path / f"c{k}.mkv", object_clip(5, size=32, seed=k), 8.0))
    out = tmp_path / "out"
    options = RunOptions(preview=False)
    table = run_motion(
        clips,
        out,
        MaskConfig(flow="shift"),
        options,
        workers=2,
        plugins=("shift_flow_plugin",),
        progress=False,
    )
    assert list(table["status"]) == ["ok", "ok"]
    assert table["raw_mean_flow"].tolist() == [2.0, 2.0]
    assert not (out / "c0" / "preview.mp4").exists()


def test_strides_from_a_pipeline_folder(tmp_path):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text(
        json.dumps({"scale_factor_spatial": 4, "scale_factor_temporal": 4})
    )
    assert strides_from_model(tmp_path) == (4, 4)


def test_a_playlist_among_the_inputs_is_an_error_row_and_nothing_outside_is_read(tmp_path):
    from tests.audit import OpenAudit

    outside, ds = tmp_path / "outside", tmp_path / "ds"
    outside.mkdir()
    ds.mkdir()
    write_video(outside / "secret.ts", np.zeros((9, 32, 32, 3), np.uint8), 8.0)
    write_video(ds / "good.mp4", np.zeros((9, 32, 32, 3), np.uint8), 8.0)
    (ds / "evil.m3u8").write_text("#EXTM3U\n#EXTINF:10,\n../outside/secret.ts\n#EXT-X-ENDLIST\n")
    pd.DataFrame({"video": ["good.mp4", "evil.m3u8"], "prompt": ["a", "b"]}).to_csv(
        ds / "metadata.csv", index=False
    )
    audit = OpenAudit(outside)
    try:
        table = run_motion(
            [ds], tmp_path / "out", options=RunOptions(preview=False), workers=1, progress=False
        )
        assert audit.opened() == []
    finally:
        audit.close()
    rows = table.set_index("id")
    assert rows.loc["good", "status"] == "ok"
    assert rows.loc["evil", "status"] == "error" and "HLS playlist" in rows.loc["evil", "error"]


def test_a_clip_format_flag_standardises_and_a_short_clip_is_said_to_be_padded(tmp_path):
    """``motive motion --frames ...`` masks the clip in that format (the flags used to be ignored
    without --standardise); a clip shorter than the format is padded with a warning naming it."""
    from motive.cli import main

    write_video(tmp_path / "short.mp4", np.zeros((9, 32, 48, 3), np.uint8), 8.0)  # 1.1 s
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"short.mp4: shorter than the clip format .* fills 8 of 17 frames"):
        code = main(["motion", str(tmp_path / "short.mp4"), "--out", str(out), "--frames", "17", "--fps",
                     "8", "--height", "32", "--width", "48", "--workers", "1", "--no-preview", "-q"])  # fmt: skip
    assert code == 0
    stats = json.loads((out / "short" / "stats.json").read_text())
    assert stats["standardise"]["padded_frames"] == 8 and len(stats["standardise"]["frame_indices"]) == 17
