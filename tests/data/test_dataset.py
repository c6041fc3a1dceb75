import json

import numpy as np
import pytest

from motive.data.dataset import DatasetError, load_dataset, scan_dataset
from motive.data.video import write_video


def _write(root, name, frames=5):
    write_video(root / name, np.full((frames, 16, 16, 3), 100, np.uint8), fps=8)


def test_scan_reports_every_bad_row(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    _write(root, "good.mp4")
    (root / "broken.mp4").write_bytes(b"garbage" * 20)
    (root / "noframes").mkdir()
    (tmp_path / "outside.mp4").write_bytes(b"x")
    _write(root, "noprompt.mp4")
    rows = [
        "video,prompt,motion",
        "good.mp4,a ball,roll",
        "missing.mp4,a ball,roll",
        "broken.mp4,a ball,roll",
        "noframes,a ball,roll",
        "../outside.mp4,a ball,roll",
        "noprompt.mp4,,roll",
    ]
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    dataset, problems = scan_dataset(root)
    assert [c.relpath for c in dataset] == ["good.mp4"]
    assert dataset.clips[0].extra == {"motion": "roll"}
    reasons = {p.file: p.reason for p in problems}
    assert reasons == {
        "missing.mp4": "file not found",
        "broken.mp4": reasons["broken.mp4"],
        "noframes": "folder holds no image frames",
        "../outside.mp4": "path escapes the dataset folder",
        "noprompt.mp4": "missing prompt",
    }
    assert reasons["broken.mp4"].startswith("cannot decode")
    with pytest.raises(DatasetError) as err:
        load_dataset(root, decode=True)
    assert len(err.value.problems) == 5
    assert "missing.mp4: file not found" in str(err.value)


def test_jsonl_and_missing_columns(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    _write(root, "a.mp4")
    (root / "metadata.jsonl").write_text(json.dumps({"video": "a.mp4", "prompt": "hi", "k": 1}) + "\n")
    dataset = load_dataset(root, decode=True)
    assert len(dataset) == 1 and dataset.clips[0].prompt == "hi" and dataset.clips[0].extra == {"k": 1}
    (root / "metadata.csv").write_text("file,caption\na.mp4,hi\n")
    with pytest.raises(DatasetError, match="missing required column 'video'"):
        load_dataset(root)


def test_missing_folder_or_metadata(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no metadata.csv"):
        load_dataset(tmp_path)


def test_first_per_label_takes_up_to_n_of_each_value_in_order():
    from types import SimpleNamespace

    from motive.data.dataset import first_per_label

    clips = [SimpleNamespace(name=i, extra={"motion": m}) for i, m in enumerate("abacbbcca")]
    clips.append(SimpleNamespace(name=9, extra={}))  # unlabelled: skipped
    assert [c.name for c in first_per_label(clips, "motion", 2, exclude=("a",))] == [1, 3, 4, 6]
    assert [c.name for c in first_per_label(clips, "motion", 1)] == [0, 1, 3]


def test_broken_metadata_names_the_file_and_every_bad_line(tmp_path):
    root = tmp_path / "jsonl"
    root.mkdir()
    write_video(root / "a.mp4", np.zeros((5, 16, 16, 3), np.uint8), 8.0)
    lines = [
        '{"video": "a.mp4", "prompt": "a"}',
        '{"video": "a.mp4", "prompt": ',
        "[1, 2]",
        '{"video": "b.mp4"',
    ]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as exc:
        load_dataset(root)
    text = str(exc.value)
    assert "metadata.jsonl:2: not valid JSON" in text and "metadata.jsonl:4: not valid JSON" in text
    assert "metadata.jsonl:3: not a JSON object" in text and len(exc.value.problems) == 3

    latin = tmp_path / "latin"
    latin.mkdir()
    (latin / "metadata.csv").write_bytes("video,prompt\na.mp4,un café animé\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="metadata.csv: not UTF-8 text"):
        load_dataset(latin)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metadata.csv").write_text("video,prompt\n")
    with pytest.raises(DatasetError, match="metadata.csv: no rows"):
        load_dataset(empty)


def test_keep_column_drops_rows_and_all_dropped_is_an_error(tmp_path):
    write_video(tmp_path / "a.mp4", np.zeros((5, 16, 16, 3), np.uint8), 8.0)
    (tmp_path / "metadata.csv").write_text("video,prompt,keep\na.mp4,x,1\na.mp4,y,0\n")
    assert [c.prompt for c in load_dataset(tmp_path)] == ["x"]
    (tmp_path / "metadata.csv").write_text("video,prompt,keep\na.mp4,x,0\n")
    with pytest.raises(DatasetError, match="keep = 0"):
        load_dataset(tmp_path)
