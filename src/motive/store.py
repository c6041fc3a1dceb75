"""Feature store: one unit vector per clip plus everything needed to trust, resume and reuse it.

Layout of a finished store directory (format 2; DESIGN.md "Outside contracts"):
- ``meta.json``: what must match for two stores to be comparable (model fingerprint, parameter count,
  σ, noise seed/draws, precision, latent shape, projection, mask settings, standardisation, package
  version), the dataset fingerprint, and the shard list. Written last: its presence marks a store
  as finished.
- ``shard-RRRRR-of-WWWWW.npy``: float32 ``[n_r, D']`` unit vectors of the clips rank r computed
  (memory-mappable); ``index.parquet`` maps every clip to its (shard, row).
- ``index.parquet``: one row per clip — id, video, prompt, frames, motion statistics, gradient norm,
  status, error, shard, row.

While a store is being written, ``work/`` holds the plan (``plan.json``: the meta every rank and every
resumed run must agree with) and, per rank, an append-only vector file plus a JSON-lines journal with
one line per finished clip. A line is written only after its vector is flushed, so a killed run
resumes at the first clip without a line, recomputing its whole chunk (chunks are fixed groups of
``batch_size`` clips in dataset order), and ends bit-identical to an uninterrupted run. A rank's shard
is finalised atomically (temporary name, then rename); ``merge`` joins the shards. Clip chunks are
dealt to ranks round-robin, so the result does not depend on the number of ranks. An advisory lock
per rank keeps two processes from writing the same part of a store.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from motive import __version__
from motive.data.dataset import Clip, Dataset, load_dataset
from motive.data.standardise import StandardiseTarget, standardise
from motive.data.video import VideoError, read_video
from motive.gradients import GradientConfig, GradientFeaturizer
from motive.models.wan import VideoModel, frames_to_tensor
from motive.motion.mask import MaskConfig, compute_motion, latent_mask
from motive.motion.run import load_plugins
from motive.parallel import forkserver_context, single_threaded

FORMAT = 2
META, INDEX, WORK, PLAN = "meta.json", "index.parquet", "work", "plan.json"
MOTION_COLUMNS = ("residual_mean_flow", "camera_only", "uniformity", "cuts")  # per-clip, into the index
# Keys that must be equal for scores between two stores to mean anything.
COMPAT_KEYS = ("model", "gradient", "projection", "standardise", "latent_shape")


class StoreMismatch(ValueError):
    """Two stores (or a store and a request) were built with different settings."""


class StoreError(RuntimeError):
    """A store cannot be written or merged in its current state (the message says why)."""


class StoreLocked(StoreError):
    """Another process is writing this part of the store."""


def _fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256(json.dumps(dict(module.config), sort_keys=True, default=str).encode())
    for name, p in module.state_dict().items():
        digest.update(name.encode())
        digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def model_fingerprint(model: VideoModel) -> str:
    """sha256 over the transformer's config and weights (identifies the model a store came from)."""
    return _fingerprint(model.transformer)


def vae_fingerprint(model: VideoModel) -> str:
    """sha256 over the VAE's config (with its latent statistics) and weights: what latents depend on."""
    return _fingerprint(model.vae)


def default_target(model: VideoModel) -> StandardiseTarget:
    """The model's native clip format (81×480×832 at 16 fps for Wan2.1; 17×64×64 at 8 fps for the tiny model)."""
    s = model.settings
    return StandardiseTarget(fps=s.fps, frames=s.frames, height=s.height, width=s.width)


@dataclass
class ClipInputs:
    """Model inputs of one standardised clip (cached between runs)."""

    latent: torch.Tensor  # [C, f, h, w]
    mask: torch.Tensor  # [f, h, w] latent-grid motion mask W̃
    mean_flow: float  # mean flow magnitude, pixels per frame pair
    frames: int
    motion: dict  # residual_mean_flow, camera_only, uniformity, cuts (from motive.motion)


def cache_dir() -> Path:
    return Path(os.environ.get("MOTIVE_CACHE", Path.home() / ".cache" / "motive"))


def _cache_key(clip: Path, vae_fp: str, target: StandardiseTarget, mask: MaskConfig) -> str:
    st = clip.stat()
    raw = json.dumps(
        [str(clip.resolve()), st.st_size, st.st_mtime_ns, vae_fp, target.to_dict(), mask.to_dict()]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _cache_file(
    clip: Path, target: StandardiseTarget, mask: MaskConfig, vae_fp: str, cache: Path | None
) -> Path | None:
    """Where the clip's inputs are cached (None without a cache or for a missing clip)."""
    if cache is None or not clip.exists():
        return None
    return cache / f"{_cache_key(clip, vae_fp, target, mask)}.pt"


@dataclass
class Prepared:
    """A clip decoded, standardised and given its motion mask, waiting for the VAE (a cache miss)."""

    frames: np.ndarray  # [F, H, W, 3] uint8
    mask: torch.Tensor  # [f, h, w]
    mean_flow: float
    motion: dict
    cache_file: Path | None


def prepare_clip(
    clip: Path, target: StandardiseTarget, mask: MaskConfig, vae_fp: str, cache: Path | None
) -> ClipInputs | Prepared | VideoError:
    """The CPU half of a clip's inputs (decode, standardise, flow → mask), or its cached inputs.

    Runs in data-loading worker processes; ``mask`` must already have the model's strides."""
    file = _cache_file(clip, target, mask, vae_fp, cache)
    if file is not None and file.is_file():
        d = torch.load(file, weights_only=True)  # our own cache of plain tensors and numbers only
        return ClipInputs(d["latent"], d["mask"], float(d["mean_flow"]), int(d["frames"]), d["motion"])
    try:
        video, _ = standardise(read_video(clip), target)
    except VideoError as exc:
        return exc
    m = compute_motion(video.frames, mask)
    w = latent_mask(m.weights, mask.spatial_stride, mask.temporal_stride)  # [f, h, w]
    stats = {k: m.stats[k] for k in MOTION_COLUMNS}
    return Prepared(video.frames, w, m.mean_flow, stats, file)


def encode_prepared(
    model: VideoModel, items: list[ClipInputs | Prepared | VideoError]
) -> list[ClipInputs | VideoError]:
    """The model half: VAE-encode the prepared clips together (one batch) and fill their cache files."""
    todo = [i for i, x in enumerate(items) if isinstance(x, Prepared)]
    out = list(items)
    if todo:
        latents = model.encode_video(torch.stack([frames_to_tensor(items[i].frames) for i in todo])).cpu()
        for i, latent in zip(todo, latents):  # latent [C, f, h, w]
            p = items[i]
            out[i] = ClipInputs(latent.clone(), p.mask, p.mean_flow, len(p.frames), p.motion)
            if p.cache_file is not None:
                p.cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = p.cache_file.with_suffix(f".{os.getpid()}.partial")
                torch.save(
                    {
                        "latent": out[i].latent,
                        "mask": p.mask,
                        "mean_flow": p.mean_flow,
                        "frames": len(p.frames),
                        "motion": p.motion,
                    },
                    tmp,
                )
                tmp.replace(p.cache_file)
    return out


def clip_inputs_batch(
    model: VideoModel,
    clips: list[Path],
    target: StandardiseTarget,
    mask: MaskConfig,
    vae_fp: str,
    cache: Path | None,
) -> list[ClipInputs | VideoError]:
    """Standardise, flow → mask and VAE-encode several clips (the VAE runs once on the batch of cache
    misses); read from / write to ``cache`` when given. A clip that cannot be read gives its error."""
    mask = mask.for_model(model.scale_spatial, model.scale_temporal)
    return encode_prepared(model, [prepare_clip(c, target, mask, vae_fp, cache) for c in clips])


def dataset_inputs(
    model: VideoModel, clips: list[Clip], mask: MaskConfig | None = None, batch_size: int = 16
) -> list[ClipInputs]:
    """Inputs of every clip in the model's native format, through the shared cache; raises on a bad clip."""
    target, fp, cache = default_target(model), vae_fingerprint(model), cache_dir() / "inputs"
    out: list[ClipInputs] = []
    for start in range(0, len(clips), batch_size):
        for x in clip_inputs_batch(
            model,
            [c.video for c in clips[start : start + batch_size]],
            target,
            mask or MaskConfig(),
            fp,
            cache,
        ):
            if isinstance(x, VideoError):
                raise x
            out.append(x)
    return out


def build_meta(
    model: VideoModel,
    config: GradientConfig,
    target: StandardiseTarget,
    featurizer: GradientFeaturizer,
    model_fp: str,
) -> dict:
    return {
        "model": {"fingerprint": model_fp, "source": model.source, "parameters": featurizer.dim},
        "gradient": {
            k: v for k, v in config.to_dict().items() if k not in ("proj_dim", "proj_seed", "max_block")
        },
        "projection": featurizer.projection.spec.to_dict(),
        "standardise": target.to_dict(),
        "latent_shape": list(featurizer.latent_shape),
        "motive_version": __version__,
    }


def compat_diffs(a: dict, b: dict) -> list[str]:
    """Every setting (of ``COMPAT_KEYS``) where two metas differ, as ``key: a != b`` lines."""
    diffs = []
    for key in COMPAT_KEYS:
        va, vb = a.get(key), b.get(key)
        if key == "model":
            va, vb = (va or {}).get("fingerprint"), (vb or {}).get("fingerprint")
        if va != vb:
            diffs.append(f"{key}: {va} != {vb}")
    return diffs


def check_compatible(a: dict, b: dict, what: str = "store") -> None:
    """Raise ``StoreMismatch`` naming every setting where two metas differ."""
    if diffs := compat_diffs(a, b):
        raise StoreMismatch(f"{what} was built with different settings:\n  " + "\n  ".join(diffs))


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 over every clip's path, prompt, size and modification time: a changed dataset is noticed."""
    digest = hashlib.sha256()
    for c in dataset.clips:
        st = c.video.stat() if c.video.exists() else None
        digest.update(json.dumps([c.relpath, c.prompt, st and st.st_size, st and st.st_mtime_ns]).encode())
    return digest.hexdigest()[:20]


def _plan_diffs(old: dict, new: dict) -> list[str]:
    """Every difference that forbids resuming (or reusing) a store planned as ``old`` with plan ``new``."""
    diffs = compat_diffs(old, new)
    for key in ("dataset", "layout"):
        if old.get(key) != new.get(key):
            diffs.append(f"{key}: {old.get(key)} != {new.get(key)}")
    return diffs


@dataclass(frozen=True)
class Ranks:
    """Which part of the work this process does: rank ``rank`` of ``world`` (torchrun sets both)."""

    rank: int = 0
    world: int = 1
    group: bool = False  # a torch.distributed process group is up, so ranks can wait for each other

    @classmethod
    def current(cls) -> Ranks:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), True)
        return cls()

    def barrier(self) -> None:
        if self.group:
            import torch.distributed as dist

            dist.barrier()


def _shard_name(rank: int, world: int) -> str:
    return f"shard-{rank:05d}-of-{world:05d}.npy"


@contextmanager
def _lock(path: Path, what: str):
    """An advisory exclusive lock (released by the kernel if the process dies); refuse if held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise StoreLocked(
                f"{what} is being written by another process ({fh.read().strip() or 'unknown'})"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Journal:
    """One rank's append-only progress: ``rank-R.vec`` (float32 rows) + ``rank-R.jsonl`` (a line per clip)."""

    def __init__(self, work: Path, rank: int, dim: int):
        self.vec_path, self.log_path = work / f"rank-{rank:05d}.vec", work / f"rank-{rank:05d}.jsonl"
        self.dim = dim
        self.rows: list[dict] = []
        kept = 0  # bytes of complete journal lines
        if self.log_path.is_file():
            for line in self.log_path.read_bytes().splitlines(keepends=True):
                try:
                    self.rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a kill: that clip is not done
                    break
                kept += len(line)
        # keep exactly the finished lines and one vector per line (a kill may leave a vector without its line)
        for file, size in ((self.log_path, kept), (self.vec_path, len(self.rows) * dim * 4)):
            with open(file, "ab") as fh:
                fh.truncate(size)
        self.done = {r["id"] for r in self.rows}
        self._vec, self._log = open(self.vec_path, "ab"), open(self.log_path, "a")

    def add(self, row: dict, vector: np.ndarray) -> None:
        self._vec.write(np.ascontiguousarray(vector, np.float32).tobytes())
        self._vec.flush()  # the vector reaches the OS before the line that declares it done
        self._log.write(json.dumps(row) + "\n")
        self._log.flush()
        self.rows.append(row)
        self.done.add(row["id"])

    def sync(self) -> None:
        for fh in (self._vec, self._log):
            os.fsync(fh.fileno())

    def close(self) -> None:
        self._vec.close()
        self._log.close()

    def vectors(self) -> np.ndarray:
        return np.fromfile(self.vec_path, np.float32).reshape(-1, self.dim)  # [n, D']


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


def _worker_init(_: int) -> None:
    single_threaded()  # one core per worker; the model keeps the rest


def _as_is(x):
    return x


def default_workers() -> int:
    """Data-loading processes: one per spare core, at most 4 (0 = load in the main process)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


@dataclass
class Store:
    """A finished feature store (vectors are read from the memory-mapped shards)."""

    path: Path
    meta: dict
    index: pd.DataFrame
    shards: list[np.ndarray]  # memmaps [n_r, D'] float32

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        if not (path / META).is_file():
            hint = (
                " (a run is in progress or was interrupted: see `motive store info`)"
                if (path / WORK).is_dir()
                else ""
            )
            raise FileNotFoundError(f"{path}: not a finished feature store (no {META}){hint}")
        meta = json.loads((path / META).read_text())
        if meta.get("format") != FORMAT:
            raise StoreMismatch(
                f"{path}: store format {meta.get('format', 1)} is not {FORMAT}; featurize again"
            )
        shards = [np.load(path / s["file"], mmap_mode="r") for s in meta["shards"]]
        return cls(path, meta, pd.read_parquet(path / INDEX), shards)

    @property
    def vectors(self) -> np.ndarray:
        """``[N, D']`` float32 unit vectors in clip order (zeros for failed clips)."""
        if not hasattr(self, "_vectors"):
            out = np.zeros((len(self.index), self.meta["projection"]["d_out"]), np.float32)
            for s, shard in enumerate(self.shards):
                rows = self.index[self.index["shard"] == s]
                out[rows["id"].to_numpy()] = shard[rows["row"].to_numpy()]
            self._vectors = out
        return self._vectors

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of clips whose feature was computed."""
        return (self.index["status"] == "ok").to_numpy()


def featurize(
    model: VideoModel,
    data: str | Path,
    out: str | Path,
    config: GradientConfig | None = None,
    target: StandardiseTarget | None = None,
    use_cache: bool = True,
    progress: bool = True,
    batch_size: int = 16,
    workers: int | None = None,
    ranks: Ranks | None = None,
    overwrite: bool = False,
    plugins: tuple[str, ...] = (),
    keep_tables: bool = True,
) -> Store | None:
    """Compute the unit projected gradient of every clip of dataset ``data`` into store ``out``.

    Resumes an interrupted run with the same settings; returns an existing finished store with the
    same settings and data as is; refuses (``StoreMismatch``) a store or an interrupted run with other
    settings unless ``overwrite``. A clip that cannot be read is recorded with status ``error`` and
    its message (zero vector); the run goes on. Under torchrun (``ranks`` defaults to the process
    group) every rank computes its chunks, and rank 0 merges once all are done. Returns the store,
    or None when this rank finished but others (started as separate jobs) have not. ``plugins``:
    modules that register flow back-ends (imported in data-loading workers too). ``keep_tables=False``
    regenerates the projection's randomness per block (memory flat in model size; same vectors).
    """
    ranks = ranks or Ranks.current()
    config = (config or GradientConfig()).for_model(model)
    target = target or default_target(model)
    dataset = load_dataset(data)
    out = Path(out)
    model_fp, vae_fp = model_fingerprint(model), vae_fingerprint(model)
    shape = model.latent_shape(target.frames, target.height, target.width)
    featurizer = GradientFeaturizer(model, config, shape, target.frames, keep_tables)
    plan = build_meta(model, config, target, featurizer, model_fp)
    plan["data"] = str(dataset.root)  # where the clips live
    plan["dataset"] = {"clips": len(dataset), "fingerprint": dataset_fingerprint(dataset)}
    plan["layout"] = {"world_size": ranks.world, "batch_size": batch_size}
    diffs = _existing_diffs(out, plan)
    if diffs:
        if not overwrite:
            raise StoreMismatch(
                f"{out} holds a store (or an interrupted run) with other settings or data; resume or reuse "
                "it with those, choose another folder, or overwrite it:\n  " + "\n  ".join(diffs)
            )
        if ranks.rank == 0:
            remove_store(out)
        ranks.barrier()
    if (out / META).is_file():
        return Store.open(out)  # finished, same settings and data
    work = out / WORK
    work.mkdir(parents=True, exist_ok=True)
    if not (work / PLAN).is_file():
        _write_atomic(work / PLAN, json.dumps(plan, indent=2))
    with _lock(work / f"rank-{ranks.rank:05d}.lock", f"{out} (rank {ranks.rank})"):
        _featurize_rank(
            model,
            dataset,
            out,
            featurizer,
            target=target,
            cache=cache_dir() / "inputs" if use_cache else None,
            progress=progress,
            batch_size=batch_size,
            workers=default_workers() if workers is None else workers,
            ranks=ranks,
            vae_fp=vae_fp,
            plugins=plugins,
        )
    ranks.barrier()
    if (
        (ranks.rank == 0 or not ranks.group)
        and not (out / META).is_file()
        and _all_shards_done(out, ranks.world)
    ):
        try:
            merge(out)  # under torchrun rank 0 merges; separate jobs: whichever finishes last
        except StoreLocked:
            pass  # another job is merging right now
    ranks.barrier()
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
    if (out / _shard_name(ranks.rank, ranks.world)).is_file():
        return  # this rank's shard is already final
    config = featurizer.config
    n = len(dataset)
    chunks = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)][
        ranks.rank :: ranks.world
    ]
    journal = _Journal(out / WORK, ranks.rank, config.proj_dim)
    todo = [c for c in chunks if not journal.done.issuperset(c)]
    mask = config.mask.for_model(model.scale_spatial, model.scale_temporal)
    files = [_cache_file(dataset.clips[i].video, target, mask, vae_fp, cache) for c in todo for i in c]
    if all(f is not None and f.is_file() for f in files):
        workers = 0  # every input is cached: reading them here beats starting worker processes
    loader = torch.utils.data.DataLoader(
        _ChunkData([[dataset.clips[i].video for i in c] for c in todo], target, mask, vae_fp, cache, plugins),
        batch_size=None,
        num_workers=workers if todo else 0,
        collate_fn=_as_is,
        worker_init_fn=_worker_init,
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
            batch_row = {k: b for b, k in enumerate(good)}  # chunk position → row of the batch
            # the chunk's clips together (one vectorised pass when the model is small), also those a
            # resumed run journaled already: the same batch gives the same bits as an uninterrupted run
            if good:
                dev = model.device
                vectors, norms = featurizer.features(
                    torch.stack([inputs[k].latent for k in good]).to(dev),  # [B, C, f, h, w]
                    model.encode_text([dataset.clips[chunk[k]].prompt for k in good]),  # [B, L, D]
                    torch.stack([inputs[k].mask for k in good]).to(dev),  # [B, f, h, w]
                )
                vectors = vectors.cpu().numpy()  # [B, D']
            for k, (i, x) in enumerate(zip(chunk, inputs)):
                if i in journal.done:
                    continue
                row = _index_row(i, dataset.clips[i])
                vector = np.zeros(config.proj_dim, np.float32)
                if isinstance(x, ClipInputs):
                    vector = vectors[batch_row[k]]
                    row.update(
                        frames=x.frames,
                        mean_flow=x.mean_flow,
                        mask_mean=float(x.mask.mean()),
                        grad_norm=norms[batch_row[k]],
                        status="ok",
                        **{**x.motion, "cuts": json.dumps(x.motion["cuts"])},
                    )
                else:
                    row.update(status="error", error=str(x))
                journal.add(row, vector)
                bar.update(1)
            journal.sync()
    finally:
        journal.close()
        bar.close()
    _finalise_rank(out, journal, ranks)


def _finalise_rank(out: Path, journal: _Journal, ranks: Ranks) -> None:
    """Write this rank's shard (rows sorted by clip id) and its index part, atomically."""
    rows = pd.DataFrame(journal.rows) if journal.rows else pd.DataFrame({"id": pd.Series(dtype=np.int64)})
    order = np.argsort(rows["id"].to_numpy(), kind="stable")
    vectors = journal.vectors()[order]  # [n_r, D']
    rows = rows.iloc[order].reset_index(drop=True)
    rows["shard"], rows["row"] = ranks.rank, np.arange(len(rows))
    part = out / WORK / f"rank-{ranks.rank:05d}.index.parquet"
    rows.to_parquet(part.with_suffix(".partial"), index=False)
    os.replace(part.with_suffix(".partial"), part)
    shard = out / _shard_name(ranks.rank, ranks.world)
    tmp = shard.with_suffix(".partial.npy")
    np.save(tmp, vectors)
    os.replace(tmp, shard)  # the shard's presence marks the rank as finished


def _existing_diffs(out: Path, plan: dict) -> list[str]:
    """How what ``out`` already holds (a finished store or an interrupted run) differs from ``plan``."""
    if (out / META).is_file():
        meta = json.loads((out / META).read_text())
        if meta.get("format") != FORMAT:
            return [f"format: {meta.get('format', 1)} != {FORMAT}"]
        return _plan_diffs({**meta, "layout": plan["layout"]}, plan)
    if (out / WORK / PLAN).is_file():
        return _plan_diffs(json.loads((out / WORK / PLAN).read_text()), plan)
    return []


def _all_shards_done(out: Path, world: int) -> bool:
    return all((out / _shard_name(r, world)).is_file() for r in range(world))


def merge(path: str | Path) -> Store:
    """Join the finished rank shards of ``path`` into a store (writes index.parquet, then meta.json)."""
    path = Path(path)
    work = path / WORK
    if (path / META).is_file():
        return Store.open(path)
    if not (work / PLAN).is_file():
        raise FileNotFoundError(f"{path}: nothing to merge (no {WORK}/{PLAN})")
    plan = json.loads((work / PLAN).read_text())
    world, n = plan["layout"]["world_size"], plan["dataset"]["clips"]
    missing = [r for r in range(world) if not (path / _shard_name(r, world)).is_file()]
    if missing:
        raise StoreError(
            f"{path}: rank(s) {missing} of {world} have not finished; rerun them (same command and ranks) first"
        )
    with ExitStack() as stack:  # no rank may be writing while we merge
        for r in range(world):
            stack.enter_context(_lock(work / f"rank-{r:05d}.lock", f"{path} (rank {r})"))
        index = pd.concat(
            [pd.read_parquet(work / f"rank-{r:05d}.index.parquet") for r in range(world)],
            ignore_index=True,
        ).sort_values("id", kind="stable")
        if index["id"].tolist() != list(range(n)):
            raise StoreError(f"{path}: the shards hold {len(index)} clips, the plan {n}")
        index.reset_index(drop=True).to_parquet(path / "index.partial.parquet", index=False)
        os.replace(path / "index.partial.parquet", path / INDEX)
        shards = [
            {"file": _shard_name(r, world), "clips": int((index["shard"] == r).sum())} for r in range(world)
        ]
        meta = {k: v for k, v in plan.items() if k != "layout"}
        _write_atomic(path / META, json.dumps({**meta, "format": FORMAT, "shards": shards}, indent=2))
    shutil.rmtree(work)
    return Store.open(path)


def remove_store(path: str | Path) -> None:
    """Delete a store's files (finished or in progress); leaves anything else in the folder alone."""
    path = Path(path)
    for f in [path / META, path / INDEX, *path.glob("shard-*.npy")]:
        f.unlink(missing_ok=True)
    shutil.rmtree(path / WORK, ignore_errors=True)


def info(path: str | Path) -> dict:
    """What a store (finished or in progress) holds, as plain data for ``motive store info``."""
    path = Path(path)
    if (path / META).is_file():
        s = Store.open(path)
        counts = s.index["status"].value_counts().to_dict()
        return {
            "path": str(path),
            "state": "finished",
            "clips": len(s.index),
            "status": counts,
            "dim": s.meta["projection"]["d_out"],
            "shards": s.meta["shards"],
            "bytes": sum(sh.nbytes for sh in s.shards),
            **{
                k: s.meta[k]
                for k in (
                    "data",
                    "dataset",
                    "model",
                    "gradient",
                    "projection",
                    "standardise",
                    "latent_shape",
                    "motive_version",
                )
            },
        }
    plan_file = path / WORK / PLAN
    if not plan_file.is_file():
        raise FileNotFoundError(f"{path}: not a feature store")
    plan = json.loads(plan_file.read_text())
    world = plan["layout"]["world_size"]
    ranks = {}
    for r in range(world):
        log = path / WORK / f"rank-{r:05d}.jsonl"
        done = log.read_text().count("\n") if log.is_file() else 0
        ranks[r] = "finished" if (path / _shard_name(r, world)).is_file() else f"{done} clips done"
    return {
        "path": str(path),
        "state": "in progress (resume with the same command)",
        "clips": plan["dataset"]["clips"],
        "ranks": ranks,
        **{k: plan[k] for k in ("data", "model", "gradient", "projection")},
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def _index_row(i: int, clip: Clip) -> dict:
    return {
        "id": i,
        "video": clip.relpath,
        "prompt": clip.prompt,
        "frames": -1,  # frames after standardisation, filled in when the clip is read
        "mean_flow": np.nan,
        "mask_mean": np.nan,
        "residual_mean_flow": np.nan,  # after camera compensation (= mean_flow when it is off)
        "camera_only": False,  # motion explained by the camera (motive.motion)
        "uniformity": np.nan,  # spatial uniformity of the mask W
        "cuts": "[]",  # first frames of new shots (JSON list), flow across them kept out of the mask
        "grad_norm": np.nan,
        "status": "pending",
        "error": "",
    }
