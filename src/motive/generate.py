"""Generation: videos from a prompt list, the way VBench samples them, for evaluation and the study.

A prompt list is a text file (one prompt per line) or a CSV with a ``prompt`` column and optional
``category`` and ``video`` (a clip whose first frame starts the video, with ``first_frame``: a
dataset's ``metadata.csv`` is a prompt list). Each prompt gets ``per_prompt`` videos with seeds
``seed, seed+1, ...``: the same seeds for every prompt and every model, so two models' videos of one
prompt and seed are a fair pair.

A generated folder holds ``videos/p{index:04d}_s{seed}.mp4``, ``videos.csv`` (``video,prompt,
category,seed,index``; paths relative to the folder) and ``generation.json`` (the model and every
sampling setting). Videos already written are kept, so an interrupted run resumes; a folder made
with other settings or another model is refused instead of mixed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from motive.files import write_text_atomic
from motive.log import logger

VIDEO_TABLE = "videos.csv"
GENERATION_FILE = "generation.json"
COLUMNS = ["video", "prompt", "category", "seed", "index"]


@dataclass
class GenerateConfig:
    """How videos are sampled from a prompt list (recorded in ``generation.json``)."""

    per_prompt: int = field(default=1, metadata={"help": "videos per prompt (VBench samples 5)"})
    seed: int = field(default=0, metadata={"help": "seed of each prompt's first video; then +1, +2, ..."})
    steps: int = field(default=25, metadata={"help": "sampling steps"})
    guidance: float = field(default=1.0, metadata={"help": "classifier-free guidance scale"})
    negative_prompt: str = field(default="", metadata={"help": "negative prompt (with guidance > 1)"})
    batch: int = field(default=4, metadata={"help": "prompts sampled together"})
    first_frame: bool = field(
        default=False,
        metadata={
            "help": "image-to-video: start each video at the first frame of its prompt's clip (a CSV prompt "
            "list with a 'video' column, e.g. a dataset's metadata.csv; a model that takes a first frame)"
        },
    )
    # the video format (0: the model's native one); on the command line, the clip format's flags
    frames: int = 0
    height: int = 0
    width: int = 0


@dataclass
class Prompt:
    """One line of a prompt list."""

    prompt: str
    category: str = ""
    video: str = ""  # the clip whose first frame a first-frame video starts at; absolute


def read_prompts(path: str | Path) -> list[Prompt]:
    """The prompts of a ``.txt`` (one per line, blank lines skipped) or ``.csv`` (``prompt`` column,
    optional ``category``) file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt list {path} does not exist")
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "prompt" not in table.columns:
            raise ValueError(f"{path}: a CSV prompt list needs a 'prompt' column (has {list(table.columns)})")
        cats = table["category"] if "category" in table.columns else [""] * len(table)
        videos = [str(path.parent / v) if v else "" for v in table.get("video", [""] * len(table))]
        rows = zip(table["prompt"], cats, videos)
        prompts = [Prompt(p.strip(), c.strip(), v) for p, c, v in rows if p.strip()]
    else:
        prompts = [Prompt(line.strip()) for line in path.read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return prompts


def first_frames(model, videos: list[str], height: int = 0, width: int = 0):
    """The first frame of each clip in ``videos``, standardised to ``height`` × ``width`` (0: the
    model's) as Motive standardises clips → uint8 [B, H, W, 3]."""
    from motive.data.standardise import StandardiseTarget, read_standardised

    s = model.settings
    target = StandardiseTarget(fps=s.fps, frames=1, height=height or s.height, width=width or s.width)
    return np.stack([read_standardised(v, target)[0].frames[0] for v in videos])


def sample(
    model, prompts: list[str], seeds: list[int], config: GenerateConfig, videos: list[str] | None = None
):
    """``model.generate`` with ``config``'s settings, one seed per prompt → uint8 [B, F, H, W, 3];
    with ``config.first_frame``, each video starts at the first frame of its clip in ``videos``."""
    if config.first_frame and not videos:
        raise ValueError("first_frame needs a clip per prompt (a 'video' column in the prompt list)")
    return model.generate(
        prompts,
        first_frames=first_frames(model, videos, config.height, config.width) if config.first_frame else None,
        steps=config.steps,
        guidance=config.guidance,
        seed=seeds,  # each video's noise from its own seed
        frames=config.frames or None,
        height=config.height or None,
        width=config.width or None,
        negative_prompt=config.negative_prompt,
    )


def video_name(index: int, seed: int) -> str:
    """The file name of prompt ``index``'s video with ``seed`` (the pairing key between models)."""
    return f"videos/p{index:04d}_s{seed}.mp4"


def read_videos(folder: str | Path) -> pd.DataFrame:
    """A folder's videos as a table (``video`` absolute, plus prompt, category, seed, index). Without a
    ``videos.csv`` every video file in the folder is listed, with empty prompts."""
    folder = Path(folder)
    table_path = folder / VIDEO_TABLE
    if table_path.is_file():
        table = pd.read_csv(table_path, keep_default_na=False, dtype={"prompt": str, "category": str})
        missing = set(COLUMNS) - set(table.columns)
        if missing:
            raise ValueError(f"{table_path}: missing columns {sorted(missing)}")
        table["video"] = [str(folder / v) for v in table["video"]]
        return table[COLUMNS]
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in {".mp4", ".mkv", ".webm", ".avi", ".mov", ".gif"}
    )
    if not files:
        raise FileNotFoundError(f"{folder}: no {VIDEO_TABLE} and no video files")
    rows = [
        {"video": str(p), "prompt": "", "category": "", "seed": 0, "index": i} for i, p in enumerate(files)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def generate_videos(
    model,
    prompts: list[Prompt],
    out: str | Path,
    config: GenerateConfig | None = None,
    model_name: str = "",
    progress: bool = True,
) -> pd.DataFrame:
    """Sample ``config.per_prompt`` videos for every prompt with ``model`` (a ``VideoModel``) into
    ``out``; returns the video table. Resumes: videos already in ``out`` are not sampled again."""
    from motive.data.video import write_video
    from motive.models.wan import model_fingerprint

    config = config or GenerateConfig()
    out = Path(out)
    record = {
        "model": model_name,
        "fingerprint": model_fingerprint(model),
        "fps": model.settings.fps,
        "config": asdict(config),
        "prompts": [asdict(p) for p in prompts],
    }
    if config.first_frame and (missing := [p.prompt for p in prompts if not p.video]):
        raise ValueError(f"--first-frame: {len(missing)} prompt(s) have no clip, e.g. {missing[0]!r}")
    meta_path = out / GENERATION_FILE
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in ("fingerprint", "config", "prompts")} != {
            k: record[k] for k in ("fingerprint", "config", "prompts")
        }:
            raise ValueError(
                f"{out} holds videos of another model, prompt list or sampling settings; use a new --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(meta_path, json.dumps(record, indent=2))
    seeds = [config.seed + j for j in range(config.per_prompt)]
    rows = [
        {"video": video_name(i, s), "prompt": p.prompt, "category": p.category, "seed": s, "index": i}
        for s in seeds
        for i, p in enumerate(prompts)
    ]
    todo = [r for r in rows if not (out / r["video"]).is_file()]
    if len(todo) < len(rows):
        logger.info("%d of %d videos already generated in %s", len(rows) - len(todo), len(rows), out)
    bar = tqdm(total=len(todo), desc="generate", unit="video", disable=not progress)
    for start in range(0, len(todo), config.batch):
        chunk = todo[start : start + config.batch]
        clips = [prompts[r["index"]].video for r in chunk]
        videos = sample(model, [r["prompt"] for r in chunk], [r["seed"] for r in chunk], config, clips)
        for row, video in zip(chunk, videos):
            write_video(out / row["video"], video, model.settings.fps)
            bar.update(1)
    bar.close()
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_text_atomic(out / VIDEO_TABLE, table.to_csv(index=False))
    return read_videos(out)
