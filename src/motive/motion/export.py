"""``motive motion``: masks, statistics and previews for video files, frame folders and datasets.

Per clip, in ``OUT/<clip id>/``:
- ``mask.npy``: the latent-grid W̃ ``[f, h, w]`` float32 for the given VAE strides;
- ``stats.json``: what ``compute_motion`` measured (docs/formats.md "`motive motion` outputs") plus the run;
- ``preview.mp4``: the clip beside its mask overlay; ``contact_sheet.png``: sampled frames and masks;
- ``flow.npy`` (``save_flow``): full-resolution pair flows ``[P, H, W, 2]`` float32, (u, v) like
  Middlebury ``.flo``; NaN for pairs across a cut.
``OUT/summary.csv`` holds one row per clip, including a clear error row for anything undecodable.
Clips run in a process pool; ``stats.json`` is written last, so a finished clip is skipped on rerun.
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from motive.data.dataset import METADATA_FILES, scan_dataset
from motive.data.standardise import StandardiseTarget, standardise
from motive.data.video import read_video
from motive.files import write_text_atomic
from motive.motion.flow import load_plugins
from motive.motion.mask import MaskConfig, compute_motion, latent_mask
from motive.motion.preview import contact_sheet, write_contact_sheet, write_preview
from motive.parallel import forkserver_context

SUMMARY_COLUMNS = [
    "id",
    "source",
    "status",
    "error",
    "frames",
    "pairs",
    "raw_mean_flow",
    "residual_mean_flow",
    "camera_only",
    "uniformity",
    "cuts",
    "seconds",
]


@dataclass(frozen=True)
class RunOptions:
    """What ``motive motion`` writes besides the mask settings (recorded in stats.json as ``run``)."""

    spatial_stride: int = field(  # Wan2.1: 8 and 4
        default=8, metadata={"flag": "--latent-stride", "help": "spatial VAE compression of mask.npy"}
    )
    temporal_stride: int = field(default=4, metadata={"help": "temporal VAE compression of mask.npy"})
    standardise: dict | None = None  # StandardiseTarget fields: mask the clip as featurize sees it
    save_flow: bool = field(default=False, metadata={"help": "also write flow.npy [pairs, H, W, 2] float32"})
    preview: bool = field(default=True, metadata={"help": "skip preview.mp4 and contact_sheet.png"})


@dataclass(frozen=True)
class MotionJob:
    """One clip: where it is read from and where its outputs go."""

    clip_id: str
    source: str
    out_dir: str


def strides_from_model(model: str | Path) -> tuple[int, int]:
    """(spatial, temporal) VAE compression read from a diffusers pipeline folder's ``vae/config.json``
    (no weights are loaded; diffusers' defaults 8 and 4 when the keys are absent)."""
    path = Path(model) / "vae" / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected a diffusers pipeline folder)")
    cfg = json.loads(path.read_text())
    return int(cfg.get("scale_factor_spatial", 8)), int(cfg.get("scale_factor_temporal", 4))


def _clip_id(name: str, seen: set[str]) -> str:
    """A folder-safe, unique id for a clip."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or "clip"
    cid, k = base, 2
    while cid in seen:
        cid, k = f"{base}-{k}", k + 1
    seen.add(cid)
    return cid


def _error_row(clip_id: str, source: str, error: str) -> dict:
    return {"id": clip_id, "source": source, "status": "error", "error": error}


def collect_jobs(inputs: list[str | Path], out: Path) -> tuple[list[MotionJob], list[dict]]:
    """Jobs for every clip named by ``inputs`` (video files, frame folders, dataset folders with
    metadata.csv/jsonl) in order, and error rows for inputs or dataset rows that are not clips."""
    jobs, errors, seen = [], [], set()
    for item in map(Path, inputs):
        if item.is_dir() and any((item / m).is_file() for m in METADATA_FILES):
            dataset, problems = scan_dataset(item, decode=False)
            for clip in dataset:
                cid = _clip_id(str(Path(clip.relpath).with_suffix("")), seen)
                jobs.append(MotionJob(cid, str(clip.video), str(out / cid)))
            for p in problems:
                cid = _clip_id(str(Path(p.file).with_suffix("")), seen)
                errors.append(_error_row(cid, str(item / p.file), p.reason))
        elif item.exists():
            cid = _clip_id(item.stem if item.is_file() else item.name, seen)
            jobs.append(MotionJob(cid, str(item), str(out / cid)))
        else:
            errors.append(_error_row(_clip_id(item.name, seen), str(item), "file not found"))
    return jobs, errors


def _summary_row(job: MotionJob, stats: dict, status: str) -> dict:
    return {
        "id": job.clip_id,
        "source": job.source,
        "status": status,
        "error": "",
        **{k: stats[k] for k in SUMMARY_COLUMNS[4:10]},
        "cuts": " ".join(map(str, stats["cuts"])),
        "seconds": stats["seconds"],
    }


def process_clip(job: MotionJob, config: MaskConfig, options: RunOptions, force: bool = False) -> dict:
    """Compute and write one clip's outputs; returns its summary row (an error row on failure)."""
    out = Path(job.out_dir)
    stats_path = out / "stats.json"
    run = asdict(options)
    if stats_path.is_file() and not force:
        old = json.loads(stats_path.read_text())
        if old.get("settings") == config.to_dict() and old.get("run") == run:
            return _summary_row(job, old, "cached")
    try:
        start = time.perf_counter()
        video = read_video(job.source)
        record = None
        if options.standardise is not None:
            video, record = standardise(video, StandardiseTarget(**options.standardise))
        result = compute_motion(video.frames, config)
        seconds = time.perf_counter() - start
        out.mkdir(parents=True, exist_ok=True)
        s, t = options.spatial_stride, options.temporal_stride
        mask = latent_mask(result.weights, s, t, pad=options.standardise is None).numpy()
        np.save(out / "mask.npy", mask)
        stats = {"id": job.clip_id, "video": job.source, "fps": video.fps, **result.stats}
        stats.update(mask_shape=list(mask.shape), seconds=round(seconds, 3), run=run)
        if record is not None:
            stats["standardise"] = record.to_dict()
        if options.save_flow:
            _save_flow(out / "flow.npy", result)
        if options.preview:
            cuts = result.stats["cuts"]
            write_preview(out / "preview.mp4", video.frames, result.weights, video.fps, cuts)
            title = (
                f"{job.clip_id}: {stats['frames']} frames, raw flow {stats['raw_mean_flow']:.2f} px, "
                f"residual {stats['residual_mean_flow']:.2f} px, camera_only={stats['camera_only']}, "
                f"uniformity {stats['uniformity']:.2f}, cuts {cuts}"
            )
            compensated = result.weights if config.camera_compensation else None
            sheet = contact_sheet(video.frames, result.raw_weights, compensated, cuts, title)
            write_contact_sheet(out / "contact_sheet.png", sheet)
        write_text_atomic(stats_path, json.dumps(stats, indent=1))  # last: the clip is complete
        return _summary_row(job, stats, "ok")
    except Exception as exc:  # one bad clip must not end a dataset run; its row says why
        return _error_row(job.clip_id, job.source, f"{type(exc).__name__}: {exc}")


def _save_flow(path: Path, result) -> None:
    """Full-resolution pair flows into a ``.npy`` memmap, one pair at a time (long clips stay lean)."""
    pairs = len(result.flow)
    h, w = result.weights.shape[1:]
    flow = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(pairs, h, w, 2))
    for i in range(pairs):
        flow[i] = result.full_flow(i)
    flow.flush()
    del flow


def _init_worker(plugins: tuple[str, ...], threads: int) -> None:
    """Pool worker set-up: share the cores out and load flow plug-ins (they call register_flow)."""
    import torch

    cv2.setNumThreads(threads)
    torch.set_num_threads(1)
    load_plugins(plugins)


def run_motion(
    inputs: list[str | Path],
    out: str | Path,
    config: MaskConfig | None = None,
    options: RunOptions | None = None,
    workers: int | None = None,
    plugins: tuple[str, ...] = (),
    force: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Process every clip of ``inputs`` into ``out``; returns (and writes ``summary.csv``) one row
    per clip, in input order, then a row per input that is not a clip. ``workers=1`` runs in this process (flow back-ends registered here are then usable);
    more use a spawned process pool whose workers import ``plugins`` first."""
    config = config or MaskConfig()
    options = options or RunOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    load_plugins(plugins)
    jobs, problems = collect_jobs(inputs, out)
    cores = os.cpu_count() or 1
    workers = max(1, min(workers or cores, len(jobs) or 1))
    rows: dict[str, dict] = {}
    bar = tqdm(total=len(jobs), desc="motion", unit="clip", disable=not progress)
    if workers == 1:
        for job in jobs:
            rows[job.clip_id] = process_clip(job, config, options, force)
            bar.update()
    else:
        context = forkserver_context()  # never re-runs the caller's script
        init = (tuple(plugins), max(1, cores // workers))
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=init
        ) as pool:
            futures = {pool.submit(process_clip, job, config, options, force): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    rows[job.clip_id] = future.result()
                except Exception as exc:  # the worker died (e.g. out of memory)
                    rows[job.clip_id] = _error_row(job.clip_id, job.source, f"{type(exc).__name__}: {exc}")
                bar.update()
    bar.close()
    table = pd.DataFrame([rows[job.clip_id] for job in jobs] + problems, columns=SUMMARY_COLUMNS)
    table = table.astype({"frames": "Int64", "pairs": "Int64"})
    table.to_csv(out / "summary.csv", index=False)
    return table
