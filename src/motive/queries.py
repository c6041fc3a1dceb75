"""``motive queries``: query clips generated from motion prompts with the user's own model.

The paper generated its query videos from motion prompts ("a ball bouncing", "floating"). This writes
such clips as an ordinary dataset folder (``queries/NNNN.mp4`` + ``metadata.csv`` with ``video``,
``prompt``, ``seed``, ``keep`` and every other column of the prompts file, e.g. ``motion``; with
``first_frame``, each clip starts at the first frame of its row's ``video``, kept as ``first_frame``), and for
each clip a contact sheet (frames with the motion mask over them) to screen it. Set ``keep`` to 0 for
a clip that does not show the motion, and ``attribute`` skips it. Clips from any other generator fit
the same folder. Rerunning with the same settings and seed gives the same clips; finished clips are
not generated again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from motive.data.dataset import read_prompt_table as read_prompts
from motive.data.standardise import StandardiseTarget
from motive.data.video import write_video
from motive.files import atomic_path, write_text_atomic
from motive.generate import first_frames
from motive.inputs import default_target
from motive.models.wan import VideoModel
from motive.motion.mask import MaskConfig, compute_motion
from motive.motion.preview import contact_sheet, write_contact_sheet


@dataclass
class QueriesConfig:
    """How query clips are generated; saved as ``queries.json`` beside them."""

    prompts: str = field(
        default="",
        metadata={"help": "CSV or JSONL with a 'prompt' column (other columns are kept)", "required": True},
    )
    per_prompt: int = field(
        default=5, metadata={"help": "clips generated per prompt (the paper: 5 per motion)"}
    )
    steps: int = field(default=50, metadata={"help": "sampling steps"})
    guidance: float = field(
        default=5.0,
        metadata={
            "help": "classifier-free guidance scale (1 = off; 5 is Wan's own, for clear query motion; "
            "generate and compare default to 1, half the cost, the same for every model compared)"
        },
    )
    negative_prompt: str = field(default="", metadata={"help": "negative prompt used with guidance"})
    seed: int = field(default=0, metadata={"help": "seed of the first clip; clip k uses seed + k"})
    first_frame: bool = field(
        default=False,
        metadata={
            "help": "image-to-video: start each clip at the first frame of its row's 'video' clip (a path "
            "relative to the prompts file; a model that takes a first frame)"
        },
    )

    def __post_init__(self) -> None:
        if self.per_prompt < 1 or self.steps < 1:
            raise ValueError("per_prompt and steps must be at least 1")


def generate_queries(
    model: VideoModel,
    config: QueriesConfig,
    out: str | Path,
    progress: bool = True,
    target: StandardiseTarget | None = None,
) -> pd.DataFrame:
    """Generate ``config.per_prompt`` clips per prompt, in clip format ``target`` (default: the model's
    native one), into the dataset folder ``out``; returns its metadata table (also written, last, as
    ``metadata.csv``)."""
    target = target or default_target(model)
    out = Path(out)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    (out / "sheets").mkdir(exist_ok=True)
    prompts = read_prompts(config.prompts)
    digest = hashlib.sha256(Path(config.prompts).read_bytes()).hexdigest()  # an edited file is other settings
    settings = {**asdict(config), "model": model.source, "prompts_sha256": digest, "format": target.to_dict()}
    old = out / "queries.json"
    if old.is_file() and json.loads(old.read_text()) != settings:
        raise ValueError(f"{out} holds queries generated with other settings; choose another folder")
    write_text_atomic(old, json.dumps(settings, indent=2))
    kept = {}  # the user's own keep decisions survive a rerun
    if (out / "metadata.csv").is_file():
        previous = pd.read_csv(out / "metadata.csv")
        if {"video", "keep"} <= set(previous.columns):
            kept = dict(zip(previous["video"], previous["keep"]))
    if config.first_frame and "video" not in prompts.columns:
        raise ValueError(
            f"{config.prompts}: first_frame needs a 'video' column (the clip each query starts at)"
        )
    rows = []
    jobs = [row for _, row in prompts.iterrows() for _ in range(config.per_prompt)]  # clip n: row, seed + n
    for n, row in enumerate(tqdm(jobs, desc="queries", disable=not progress)):
        video = f"queries/{n:04d}.mp4"
        seed = config.seed + n
        start = {"first_frame": str(row["video"])} if config.first_frame else {}  # kept in metadata.csv
        if not (out / video).is_file():
            firsts = None
            if start:  # [1, H, W, 3]
                source = str(Path(config.prompts).parent / start["first_frame"])
                firsts = first_frames(model, [source], target.height, target.width)
            clip = model.generate(
                [str(row["prompt"])],
                steps=config.steps,
                guidance=config.guidance,
                seed=seed,
                frames=target.frames,
                height=target.height,
                width=target.width,
                negative_prompt=config.negative_prompt,
                first_frames=firsts,
            )[0]  # [F, H, W, 3]
            motion = compute_motion(clip, MaskConfig())
            title = f"{n:04d} seed {seed}: {row['prompt']} (mean flow {motion.mean_flow:.2f} px)"
            sheet = contact_sheet(clip, motion.raw_weights, None, motion.stats["cuts"], title)
            write_contact_sheet(out / "sheets" / f"{n:04d}.png", sheet)
            write_video(out / video, clip, target.fps)  # written last: the clip is finished
        rows.append({**row.to_dict(), "video": video, "seed": seed, "keep": kept.get(video, 1), **start})
    table = pd.DataFrame(rows)
    table = table[["video", "prompt", *[c for c in table.columns if c not in ("video", "prompt")]]]
    with atomic_path(out / "metadata.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table
