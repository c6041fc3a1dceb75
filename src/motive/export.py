"""``motive export``: a selection as the dataset folder another trainer reads.

Many teams fine-tune with their own trainer. DiffSynth-Studio reads ``metadata.csv`` (``video,prompt``,
paths relative to ``--dataset_base_path``); finetrainers reads ``prompt.txt`` and ``videos.txt`` (one
line per clip, ``--caption_column prompt.txt --video_column videos.txt``). Both take the first
``--num_frames`` raw frames of a clip, while Motive scored the clip resampled to the model's frame rate
(81 frames at 16 fps for Wan2.1: 5.1 s), so a 30-fps clip would silently train on 2.7 s of it.
``standardise`` writes the exact frames Motive scored (the store's clip format) as H.264 files, so the
trainer sees what was attributed; without it the folder links the original clips (relative links) and
the flags name the scored format, with a note on what the trainer will read instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from motive.data.dataset import load_dataset
from motive.data.standardise import StandardiseTarget, read_standardised
from motive.data.video import write_video
from motive.files import write_text_atomic

FORMATS = ("diffsynth", "finetrainers")


@dataclass
class ExportConfig:
    """How a selection is exported; saved as ``export.json`` in the output folder."""

    format: str = field(
        default="diffsynth", metadata={"help": "the trainer's dataset layout", "choices": FORMATS}
    )
    standardise: bool = field(
        default=False,
        metadata={
            "help": "write the frames Motive scored (the store's clip format) instead of linking the clips"
        },
    )


def selection_source(selection: Path) -> tuple[Path | None, StandardiseTarget | None]:
    """The dataset folder and clip format of the store a selection came from (``attribution.json``
    beside it names the store), or (None, None)."""
    summary = selection.parent / "attribution.json"
    if not summary.is_file():
        return None, None
    meta_file = Path(json.loads(summary.read_text()).get("store", "")) / "meta.json"
    if not meta_file.is_file():
        return None, None
    meta = json.loads(meta_file.read_text())
    return Path(meta["data"]), StandardiseTarget(**meta["standardise"])


def trainer_flags(config: ExportConfig, out: Path, target: StandardiseTarget | None) -> str:
    """The trainer's command-line flags that read this folder (and, standardised, its clip format)."""
    if config.format == "diffsynth":
        flags = f"--dataset_base_path {out} --dataset_metadata_path {out / 'metadata.csv'}"
        if target is not None:
            flags += f" --num_frames {target.frames} --height {target.height} --width {target.width}"
        return flags
    flags = f"--data_root {out} --caption_column prompt.txt --video_column videos.txt"
    if target is not None:
        flags += f" --video_resolution_buckets {target.frames}x{target.height}x{target.width}"
    return flags


def export_selection(
    selection: str | Path,
    out: str | Path,
    config: ExportConfig | None = None,
    data: str | Path | None = None,
    target: StandardiseTarget | None = None,
    progress: bool = True,
) -> dict:
    """Write ``selection``'s clips (a ``selection.csv`` or any ``metadata.csv``) as ``config.format``
    into ``out``. The dataset folder and clip format come from the store the selection was made from,
    unless ``data`` / ``target`` are given. Returns the summary written to ``export.json``."""
    config = config or ExportConfig()
    selection, out = Path(selection), Path(out)
    source_data, source_target = selection_source(selection)
    data = Path(data) if data is not None else source_data
    if data is None:
        raise ValueError(
            f"{selection}: no attribution.json beside it names its dataset; pass the dataset folder"
        )
    target = target or source_target
    if config.standardise and target is None:
        raise ValueError("--standardise needs the clip format: export a selection made by `motive attribute`")
    clips = list(load_dataset(data, table_path=selection))
    if not clips:
        raise ValueError(f"{selection}: no clips to export")
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    names = []
    for i, clip in enumerate(tqdm(clips, desc=f"export {config.format}", disable=not progress)):
        if config.standardise:
            name = f"videos/{i:05d}.mp4"
            video, _ = read_standardised(clip.video, target)
            write_video(out / name, video.frames, video.fps)
        else:
            name = f"videos/{i:05d}{clip.video.suffix}"
            link = out / name
            link.unlink(missing_ok=True)
            # relative: the folder keeps working when moved together with the dataset (``cp -rL`` copies
            # the clips themselves)
            os.symlink(os.path.relpath(clip.video, link.parent), link)
        names.append(name)
    prompts = [" ".join(c.prompt.split()) for c in clips]  # one line each
    if config.format == "diffsynth":
        pd.DataFrame({"video": names, "prompt": prompts}).to_csv(out / "metadata.csv", index=False)
    else:
        write_text_atomic(out / "videos.txt", "\n".join(names) + "\n")
        write_text_atomic(out / "prompt.txt", "\n".join(prompts) + "\n")
    summary = {
        "config": asdict(config),
        "selection": str(selection.resolve()),
        "data": str(data.resolve()),
        "clips": len(clips),
        "standardise": target.to_dict() if config.standardise else None,
        "trainer_flags": trainer_flags(config, out, target),
        "note": None
        if config.standardise or target is None
        else (
            f"the videos link the original clips (relative links: copy with `cp -rL` to take the files); the "
            f"trainer reads their first {target.frames} raw frames, while Motive scored them resampled to "
            f"{target.fps:g} fps ({target.frames / target.fps:.1f} s): --standardise writes those frames"
        ),
    }
    write_text_atomic(out / "export.json", json.dumps(summary, indent=2))
    return summary
