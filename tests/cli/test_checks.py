"""A command's inputs are checked before torch or diffusers is imported: a typo costs a second, not a
model load; and the messages say what to do."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from motive.cli import main

NO_HEAVY = (
    "import sys\nfrom motive.cli import main\nrc = main(sys.argv[1:])\n"
    "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'imported before the check'\n"
    "sys.exit(rc)\n"
)


def run_alone(*argv: str) -> tuple[int, str, float]:
    """(exit code, stderr, CPU seconds) of ``motive ARGV`` in a fresh interpreter that must not import
    torch or diffusers. CPU time, not wall time: other jobs on the machine do not count."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as `make test`
    proc = subprocess.run(
        [sys.executable, "-c", NO_HEAVY, *map(str, argv)], capture_output=True, text=True, timeout=60, env=env
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, proc.stderr, cpu


def test_a_bad_input_fails_in_under_2_s_without_loading_a_model(model_dir, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "a.mp4").write_bytes(b"")
    (pool / "metadata.csv").write_text("video,caption\na.mp4,a dog\n")  # no 'prompt' column
    rc, err, cpu = run_alone("featurize", "--model", model_dir, "--data", pool, "--out", tmp_path / "s")
    assert rc == 2, err
    assert "missing required column 'prompt'" in err
    assert err.splitlines()[0] == "motive: featurize: checking the inputs"  # the first line, at once
    assert cpu < 2.0, f"{cpu:.2f} s of CPU to refuse a bad input"
    rc, err, _ = run_alone("attribute", "--model", model_dir, "--store", tmp_path / "s", "--queries", pool,
                           "--out", tmp_path / "a")  # fmt: skip
    assert rc == 2 and "not a feature store" in err
    rc, err, _ = run_alone("featurize", "--model", tmp_path / "nope", "--data", pool, "--out", tmp_path / "s")
    assert rc == 2 and "nope: model folder not found" in err
    rc, err, _ = run_alone("evaluate", "--data", pool)
    assert rc == 2 and "need --model" in err


def test_an_unfinished_store_says_rerun_featurize(model_dir, tmp_path, capsys):
    store = tmp_path / "store"
    (store / "work").mkdir(parents=True)
    (store / "work" / "plan.json").write_text(json.dumps({"dataset": {"clips": 5}}))
    (store / "work" / "rank-00000.jsonl").write_text('{"id": 0}\n{"id": 1}\n')
    args = ["attribute", "--model", str(model_dir), "--store", str(store), "--queries", str(tmp_path)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "not finished (2 of 5 clips saved): rerun the featurize command" in err
    assert "Errno" not in err


def test_a_misspelt_flag_gets_the_nearest_one(model_dir, mini_world, capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--model", str(model_dir), "--data", str(mini_world / "pool"), "--out", "o",
              "--lora_rank", "4"])  # fmt: skip
    err = capsys.readouterr().err
    assert "usage: motive finetune" in err and "did you mean --lora-rank?" in err


def test_a_named_pipe_in_a_dataset_is_refused_without_opening_it(tmp_path):
    from motive.data.dataset import scan_dataset
    from motive.data.video import VideoError, read_video

    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "metadata.csv").write_text("video,prompt\npipe.mp4,a pipe\n")
    for decode in (False, True):  # opening the pipe would block this test forever
        _, problems = scan_dataset(tmp_path, decode=decode)
        assert [str(p) for p in problems] == [
            "line 2: pipe.mp4: not a regular file or a folder of frames (a pipe, socket or device)"
        ]
    with pytest.raises(VideoError, match="not a regular file"):
        read_video(tmp_path / "pipe.mp4")


def test_jsonl_problems_name_the_file_line_and_a_null_video(tmp_path):
    from motive.data.dataset import scan_dataset

    Path(tmp_path / "a.mp4").write_bytes(b"")
    lines = ['{"video": "a.mp4", "prompt": "ok"}', "", "not json", '{"video": null, "prompt": "p"}']
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    _, problems = scan_dataset(tmp_path, decode=False)
    assert [str(p) for p in problems] == [
        f"dataset: {tmp_path / 'metadata.jsonl'}:3: not valid JSON (Expecting value)",
        "line 4: <empty>: empty video path",
    ]
