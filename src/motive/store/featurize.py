"""``featurize``: the unit projected gradient of every clip of a dataset, into a feature store.

Each rank (one process; torchrun or separately launched jobs) takes its chunks of clips, prepares
their inputs in data-loading worker processes (``motive.inputs``), computes the chunk's features in
one batch (``motive.gradients``) and journals them clip by clip (``motive.store.journal``); the last
rank to finish merges. See docs/formats.md "Feature store" for the files and the resume rules.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motive.data.dataset import Dataset, load_dataset
from motive.data.standardise import StandardiseTarget
from motive.files import write_text_atomic
from motive.gradients import GradientConfig, GradientFeaturizer
from motive.inputs import ClipInputs, cache_file, cache_size, default_target, encode_prepared, prepare_clip
from motive.log import logger, peak_host_gib, stage
from motive.models.devices import resolve_vae_tiling
from motive.models.wan import VideoModel, model_fingerprint, vae_fingerprint
from motive.motion.flow import load_plugins
from motive.motion.mask import MaskConfig
from motive.parallel import forkserver_context, worker_setup
from motive.store.format import (
    META,
    PLAN,
    WORK,
    Store,
    StoreLocked,
    StoreMismatch,
    build_meta,
    dataset_fingerprint,
    existing_diffs,
    index_row,
    remove_store,
    shard_name,
)
from motive.store.journal import Journal, Ranks, all_shards_done, finalise_rank, lock, merge


class _ChunkData(torch.utils.data.Dataset):
    """Data-loader view of a rank's chunks: item k = the prepared inputs of chunk k (worker processes)."""

    def __init__(
        self,
        chunks: list[list[Path]],
        target: StandardiseTarget,
        mask: MaskConfig,
        vae_fp: str,
        cache: Path | None,
        plugins: tuple[str, ...],
    ):
        self.chunks, self.args, self.plugins = chunks, (target, mask, vae_fp, cache), plugins

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> list:
        load_plugins(self.plugins)  # a worker process registers the user's flow back-ends itself
        return [prepare_clip(c, *self.args) for c in self.chunks[k]]


def _worker_init(parent: int, _: int) -> None:
    worker_setup(parent)  # one core per worker (the model keeps the rest); exits with the main process


def _as_is(x):
    return x


def default_workers() -> int:
    """Data-loading processes: one per spare core, at most 4 (0 = load in the main process)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


@dataclass
class FeaturizeOptions:
    """How a featurize run is carried out. None of these changes a feature: a store can be resumed
    or reused under other options, except ``batch_size`` (the resume unit, recorded in the plan)."""

    batch_size: int = field(
        default=16, metadata={"help": "clips per chunk (VAE batch, vectorised gradient batch, resume unit)"}
    )
    workers: int | None = field(
        default=None, metadata={"help": "data-loading processes (default: spare cores, at most 4)"}
    )
    use_cache: bool = field(
        default=True,
        metadata={"flag": "--no-cache", "help": "do not read/write the per-clip input and prompt cache"},
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "folder of the input and prompt-embedding cache (default: OUT/cache)"},
    )
    checkpointing: str = field(
        default="auto",
        metadata={
            "help": "recompute each block's activations in backward instead of keeping them (slower, far "
            "less memory; auto: when they would not fit the device's free memory, e.g. Wan2.1-1.3B on any GPU)",
            "choices": ("auto", "on", "off"),
        },
    )
    vae_tiling: str = field(
        default="auto",
        metadata={
            "help": "VAE-encode in overlapping spatial tiles (less memory; the latents differ; auto: on "
            "an accelerator whose free memory an untiled encode would not fit, e.g. a 24 GB card)",
            "choices": ("auto", "on", "off"),
        },
    )
    keep_tables: bool = field(
        default=True,
        metadata={
            "flag": "--regenerate-projection",
            "help": "regenerate the Fastfood randomness per block instead of keeping 5 bytes per "
            "parameter (same vectors; memory flat in model size, slower on CPU)",
        },
    )
    tables: str = field(
        default="auto",
        metadata={
            "help": "where the kept projection tables live: auto (the device unless they would take over a "
            "quarter of its free memory, then pinned host memory), device, host",
            "choices": ("auto", "device", "host"),
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a store with other settings (or data) at --out"}
    )
    wait_hours: float = field(
        default=72.0,
        metadata={
            "help": "under torchrun, hours a rank that finished waits for the slowest one before giving up "
            "(a resumed or uneven run can wait most of a run; NCCL's own 10-minute timeout is not used)"
        },
    )
    plugins: tuple[str, ...] = ()  # modules that register flow back-ends (imported by loader workers too)


def featurize(
    model: VideoModel,
    data: str | Path,
    out: str | Path,
    config: GradientConfig | None = None,
    target: StandardiseTarget | None = None,
    options: FeaturizeOptions | None = None,
    progress: bool = True,
    ranks: Ranks | None = None,
) -> Store | None:
    """Compute the unit projected gradient of every clip of dataset ``data`` into store ``out``.

    Resumes an interrupted run with the same settings; returns an existing finished store with the
    same settings and data as is; refuses (``StoreMismatch``) a store or an interrupted run with other
    settings unless ``options.overwrite``. A clip that cannot be read is recorded with status
    ``error`` and its message (zero vector); the run goes on. Under torchrun (``ranks`` defaults to
    the process group) every rank computes its chunks, and rank 0 merges once all are done. Returns
    the store, or None when this rank finished but others (started as separate jobs) have not.
    """
    options = options or FeaturizeOptions()
    ranks = ranks or Ranks.current()
    config = (config or GradientConfig()).for_model(model)
    target = target or default_target(model)
    dataset = load_dataset(data)
    out = Path(out)
    model.vae_tiled = resolve_vae_tiling(options.vae_tiling, model.device, target.height, target.width)
    with stage("fingerprinting the model"):
        model_fp, vae_fp = model_fingerprint(model), vae_fingerprint(model)
    shape = model.latent_shape(target.frames, target.height, target.width)
    table_device = {"auto": None, "device": str(model.device), "host": "cpu"}[options.tables]
    featurizer = GradientFeaturizer(
        model, config, shape, target.frames, options.keep_tables, options.checkpointing, table_device
    )
    plan = build_meta(model, config, target, featurizer, model_fp)
    plan["data"] = str(dataset.root)  # where the clips live
    plan["dataset"] = {"clips": len(dataset), "fingerprint": dataset_fingerprint(dataset)}
    plan["layout"] = {"world_size": ranks.world, "batch_size": options.batch_size}
    cache = Path(options.cache_dir) if options.cache_dir else out / "cache"
    plan["cache"] = str(cache.resolve()) if options.use_cache else None  # where inputs went (not identity)
    diffs = existing_diffs(out, plan)
    if diffs:
        if not options.overwrite:
            raise StoreMismatch(
                f"{out} holds a store (or an interrupted run) with other settings or data; resume or reuse "
                "it with those, choose another folder, or overwrite it:\n  " + "\n  ".join(diffs)
            )
        if ranks.rank == 0:
            remove_store(out)
        ranks.barrier(options.wait_hours)
    if (out / META).is_file():
        return Store.open(out)  # finished, same settings and data
    model.text_cache = cache / "text" if options.use_cache else None
    work = out / WORK
    work.mkdir(parents=True, exist_ok=True)
    if not (work / PLAN).is_file():
        write_text_atomic(work / PLAN, json.dumps(plan, indent=2))
    with lock(work / f"rank-{ranks.rank:05d}.lock", f"{out} (rank {ranks.rank})"):
        _featurize_rank(
            model,
            dataset,
            out,
            featurizer,
            target=target,
            cache=cache / "inputs" if options.use_cache else None,
            progress=progress,
            batch_size=options.batch_size,
            workers=default_workers() if options.workers is None else options.workers,
            ranks=ranks,
            vae_fp=vae_fp,
            plugins=options.plugins,
        )
    ranks.barrier(options.wait_hours)
    if (
        (ranks.rank == 0 or not ranks.group)
        and not (out / META).is_file()
        and all_shards_done(out, ranks.world)
    ):
        try:
            merge(out)  # under torchrun rank 0 merges; separate jobs: whichever finishes last
        except StoreLocked:
            pass  # another job is merging right now
    peak = f"peak memory: host {peak_host_gib():.2f} GiB"
    if model.device.type == "cuda":
        peak += f", device {torch.cuda.max_memory_allocated(model.device) / 2**30:.2f} GiB"
    logger.info("%s%s", peak, f" (rank {ranks.rank})" if ranks.world > 1 else "")
    ranks.barrier(options.wait_hours)
    if options.use_cache and ranks.rank == 0:
        files, size = cache_size(cache)
        logger.info("cache: %s holds %d file(s), %.1f MB (delete it freely)", cache, files, size / 1e6)
    return Store.open(out) if (out / META).is_file() else None


def _featurize_rank(
    model: VideoModel,
    dataset: Dataset,
    out: Path,
    featurizer: GradientFeaturizer,
    *,
    target: StandardiseTarget,
    cache: Path | None,
    progress: bool,
    batch_size: int,
    workers: int,
    ranks: Ranks,
    vae_fp: str,
    plugins: tuple[str, ...],
) -> None:
    """Rank ``ranks.rank``'s share: chunks k ≡ rank (mod world) of ``batch_size`` clips, journaled per clip."""
    if (out / shard_name(ranks.rank, ranks.world)).is_file():
        return  # this rank's shard is already final
    config = featurizer.config
    n = len(dataset)
    chunks = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)][
        ranks.rank :: ranks.world
    ]
    journal = Journal(out / WORK, ranks.rank, config.proj_dim)
    todo = [c for c in chunks if not journal.done.issuperset(c)]
    if journal.done:
        logger.info(
            "resuming %s: %d of %d clips%s already saved", out, len(journal.done), sum(map(len, chunks)),
            f" of rank {ranks.rank}" if ranks.world > 1 else "",
        )  # fmt: skip
    mask = config.mask.for_model(model.scale_spatial, model.scale_temporal)
    if todo:  # every prompt of this rank through the text encoder once; it is then freed
        model.cache_prompts([dataset.clips[i].prompt for c in todo for i in c])
        if featurizer.projection.keep_tables:
            gib, where = featurizer.projection.nbytes / 2**30, featurizer.projection.table_device
            with stage(
                f"building the projection tables ({gib:.2f} GiB in {where} memory, "
                f"{featurizer.projection.spec.num_blocks} blocks)"
            ):
                featurizer.projection.prepare_all(progress=progress and ranks.rank == 0)
    files = [cache_file(dataset.clips[i].video, target, mask, vae_fp, cache) for c in todo for i in c]
    if all(f is not None and f.is_file() for f in files):
        workers = 0  # every input is cached: reading them here beats starting worker processes
    loader = torch.utils.data.DataLoader(
        _ChunkData([[dataset.clips[i].video for i in c] for c in todo], target, mask, vae_fp, cache, plugins),
        batch_size=None,
        num_workers=workers if todo else 0,
        collate_fn=_as_is,
        worker_init_fn=functools.partial(_worker_init, os.getpid()),
        multiprocessing_context=forkserver_context() if workers and todo else None,
        prefetch_factor=2 if workers and todo else None,
    )
    bar = tqdm(
        total=sum(map(len, chunks)),
        initial=len(journal.done),
        desc=f"featurize {out.name}" + (f" rank {ranks.rank}/{ranks.world}" if ranks.world > 1 else ""),
        disable=not progress or ranks.rank != 0,
    )
    try:
        for chunk, prepared in zip(todo, loader):
            inputs = encode_prepared(model, prepared)
            good = [k for k, x in enumerate(inputs) if isinstance(x, ClipInputs)]
            # A small model's chunk goes in one vectorised pass, also the clips a resumed run journaled
            # already: the same batch gives the same bits as an uninterrupted run. A large model's clips
            # take the streaming path one by one anyway, so each is journaled (saved) as it is done.
            per_clip = not featurizer.batchable(len(good))
            groups = [[k] for k in good if chunk[k] not in journal.done] if per_clip else [good]
            for group in filter(None, groups):
                dev = model.device
                h = torch.stack([inputs[k].latent for k in group]).to(dev)  # [B, C, f, h, w]
                text = model.encode_text([dataset.clips[chunk[k]].prompt for k in group])  # [B, L, D]
                w = torch.stack([inputs[k].mask for k in group]).to(dev)  # [B, f, h, w]
                if per_clip:
                    vector, norm = featurizer.feature(
                        h, text, w
                    )  # the streaming path, as ``features`` takes it
                    vectors, norms = vector[None].cpu().numpy(), [norm]  # [1, D']
                else:
                    vectors, norms = featurizer.features(h, text, w)
                    vectors = vectors.cpu().numpy()  # [B, D']
                for b, k in enumerate(group):
                    if chunk[k] not in journal.done:
                        x = inputs[k]
                        row = index_row(chunk[k], dataset.clips[chunk[k]])
                        row.update(
                            frames=x.frames,
                            mean_flow=x.mean_flow,
                            mask_mean=float(x.mask.mean()),
                            grad_norm=norms[b],
                            status="ok",
                            **{**x.motion, "cuts": json.dumps(x.motion["cuts"])},
                        )
                        journal.add(row, vectors[b])
                        bar.update(1)
                journal.sync()
            for i, x in zip(chunk, inputs):
                if not isinstance(x, ClipInputs) and i not in journal.done:
                    row = index_row(i, dataset.clips[i])
                    row.update(status="error", error=str(x))
                    journal.add(row, np.zeros(config.proj_dim, np.float32))
                    bar.update(1)
            journal.sync()
    finally:
        journal.close()
        bar.close()
    finalise_rank(out, journal, ranks)


def saved_clips(out: Path) -> tuple[int, int]:
    """(clips saved, clips planned) of the run at ``out``: what an interrupted run leaves to resume."""
    if (out / META).is_file():
        n = len(Store.open(out).index)
        return n, n
    if not (out / WORK / PLAN).is_file():
        return 0, 0
    planned = json.loads((out / WORK / PLAN).read_text())["dataset"]["clips"]
    return sum(f.read_text().count("\n") for f in (out / WORK).glob("rank-*.jsonl")), planned
