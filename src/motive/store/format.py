"""What a feature store is: its files, its identity, its reader, and when two stores are comparable.

A finished store (format 3, docs/formats.md "Feature store") is a folder with ``meta.json`` (the
settings that define a feature, the dataset's fingerprint and the shard list; written last, so its
presence marks the store finished), float32 shards ``shard-RRRRR-of-WWWWW.npy`` of unit vectors
``[n_r, D']`` (memory-mapped on read) and ``index.parquet`` (one row per clip: id, video, prompt,
motion statistics, gradient norm, status, error, shard, row). Two stores' scores can be compared
only when every key of ``COMPAT_KEYS`` agrees.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from motive import __version__
from motive.data.dataset import Clip, Dataset
from motive.data.standardise import StandardiseTarget
from motive.gradients import LATER_SETTINGS, GradientConfig, GradientFeaturizer
from motive.inputs import LATENT_DTYPE
from motive.models.wan import VideoModel
from motive.scoring import unit_scores

FORMAT = 3  # 3: checksums of meta.json, the index and every shard


META, INDEX, WORK, PLAN = "meta.json", "index.parquet", "work", "plan.json"


COMPAT_KEYS = ("model", "gradient", "projection", "standardise", "latent_shape", "latent_dtype")


class StoreMismatch(ValueError):
    """Two stores (or a store and a request) were built with different settings."""


class StoreError(RuntimeError):
    """A store cannot be written or merged in its current state (the message says why)."""


class StoreLocked(StoreError):
    """Another process is writing this part of the store."""


def build_meta(
    model: VideoModel,
    config: GradientConfig,
    target: StandardiseTarget,
    featurizer: GradientFeaturizer,
    model_fp: str,
) -> dict:
    return {
        "model": {
            "fingerprint": model_fp,
            "source": model.source,
            "expert": model.expert,  # which transformer of the pipeline (Wan2.2-A14B: by σ)
            "parameters": featurizer.dim,
            # weights stay fp32; forward/backward run under autocast when gradient.precision is bf16
            "weights_dtype": str(model.transformer.dtype).removeprefix("torch."),
            "vae_dtype": str(model.vae.dtype).removeprefix("torch."),
            "text_dtype": str(model.text_dtype).removeprefix("torch."),
        },
        "gradient": {
            k: v for k, v in config.to_dict().items() if k not in ("proj_dim", "proj_seed", "max_block")
        },
        "projection": featurizer.projection.spec.to_dict(),
        "standardise": target.to_dict(),
        "latent_shape": list(featurizer.latent_shape),
        "latent_dtype": str(LATENT_DTYPE).removeprefix("torch."),
        "motive_version": __version__,
    }


def compat_diffs(a: dict, b: dict) -> list[str]:
    """Every setting (of ``COMPAT_KEYS``) where two metas differ, as ``key: a != b`` lines."""
    diffs = []
    for key in COMPAT_KEYS:
        va, vb = a.get(key), b.get(key)
        if key == "model":  # the transformer by its fingerprint, and which expert of its pipeline
            va, vb = [
                f"{(m or {}).get('fingerprint')} ({(m or {}).get('expert', 'transformer')})" for m in (va, vb)
            ]
        if key == "gradient" and va is not None and vb is not None:  # stores older than some settings
            va, vb = [{**LATER_SETTINGS, **g} for g in (va, vb)]
            # one line per differing setting (e.g. "gradient.condition: none != first-frame")
            diffs += [
                f"gradient.{k}: {va.get(k)} != {vb.get(k)}"
                for k in sorted({*va, *vb})
                if va.get(k) != vb.get(k)
            ]
            continue
        if va != vb:
            diffs += changed_values(key, va, vb)
    return diffs


def changed_values(key: str, a: object, b: object) -> list[str]:
    """``key.sub: a != b`` for each entry where two settings differ (dicts compared entry by entry,
    so a one-value change is one short line, not two whole settings dicts)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [f"{key}: {a} != {b}"]
    return [
        line
        for sub in sorted(set(a) | set(b), key=str)
        if a.get(sub) != b.get(sub)
        for line in changed_values(f"{key}.{sub}", a.get(sub), b.get(sub))
    ]


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


def plan_diffs(old: dict, new: dict) -> list[str]:
    """Every difference that forbids resuming (or reusing) a store planned as ``old`` with plan ``new``."""
    diffs = compat_diffs(old, new)
    for key in ("dataset", "layout"):
        if old.get(key) != new.get(key):
            diffs += changed_values(key, old.get(key), new.get(key))
    return diffs


def existing_diffs(out: Path, plan: dict) -> list[str]:
    """How what ``out`` already holds (a finished store or an interrupted run) differs from ``plan``."""
    if (out / META).is_file():
        meta = json.loads((out / META).read_text())
        if meta.get("format") != FORMAT:
            return [f"format: {meta.get('format', 1)} != {FORMAT}"]
        return plan_diffs({**meta, "layout": plan["layout"]}, plan)
    if (out / WORK / PLAN).is_file():
        return plan_diffs(json.loads((out / WORK / PLAN).read_text()), plan)
    return []


def shard_name(rank: int, world: int) -> str:
    return f"shard-{rank:05d}-of-{world:05d}.npy"


SHARD_NAME = re.compile(r"shard-\d{5}-of-\d{5}\.npy")


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 16 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(1 << 24):
            digest.update(piece)
    return digest.hexdigest()


def meta_checksum(meta: dict) -> str:
    """sha256 over every key of a store's meta except ``checksum`` itself (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_meta(path: Path) -> dict:
    """The verified meta of the finished store at ``path``: valid JSON of this format, its checksum
    intact, every shard a plain file name of this store, and the index and shards unchanged since
    they were written (sha256)."""
    try:
        meta = json.loads((path / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path / META}: not valid JSON ({exc}); featurize again") from None
    if meta.get("format") != FORMAT:
        raise StoreMismatch(f"{path}: store format {meta.get('format', 1)} is not {FORMAT}; featurize again")
    if meta.get("checksum") != meta_checksum(meta):
        raise StoreError(
            f"{path / META}: checksum mismatch: the file changed after the store was written "
            "(a setting edited by hand, or corruption); featurize again"
        )
    for shard in meta["shards"]:
        if not SHARD_NAME.fullmatch(str(shard["file"])):
            raise StoreError(f"{path / META}: shard {shard['file']!r} is not a shard file of this store")
    for name, expected in [(INDEX, meta["index_sha256"])] + [
        (s["file"], s["sha256"]) for s in meta["shards"]
    ]:
        if not (path / name).is_file():
            raise StoreError(f"{path / name}: missing")
        if file_sha256(path / name) != expected:
            raise StoreError(f"{path / name}: contents do not match their checksum in {META} (corrupted)")
    return meta


def check_rows(path: Path, meta: dict, index: pd.DataFrame, shards: list[np.ndarray]) -> None:
    """Every clip has one row, and every row points inside its shard's vectors."""
    d = meta["projection"]["d_out"]
    if index["id"].tolist() != list(range(meta["dataset"]["clips"])):
        raise StoreError(f"{path / INDEX}: the clip ids are not 0..{meta['dataset']['clips'] - 1}")
    for s, shard in enumerate(shards):
        rows = index.loc[index["shard"] == s, "row"].to_numpy()
        if shard.dtype != np.float32 or shard.ndim != 2 or shard.shape[1] != d:
            raise StoreError(f"{path / meta['shards'][s]['file']}: not float32 vectors of dimension {d}")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(shard) or len(set(rows)) != len(rows)):
            raise StoreError(f"{path / INDEX}: rows of shard {s} point outside its {len(shard)} vectors")


@dataclass
class Store:
    """A finished feature store (vectors are read from the memory-mapped shards)."""

    path: Path
    meta: dict
    index: pd.DataFrame
    shards: list[np.ndarray]  # memmaps [n_r, D'] float32

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open a finished store, verifying it first (``verify``): a changed, corrupted or foreign
        file is refused with a ``StoreError`` that names it."""
        path = Path(path)
        if not (path / META).is_file():
            hint = (
                " (a run is in progress or was interrupted: see `motive store info`)"
                if (path / WORK).is_dir()
                else ""
            )
            raise FileNotFoundError(f"{path}: not a finished feature store (no {META}){hint}")
        meta = read_meta(path)
        index = pd.read_parquet(path / INDEX)
        shards = [np.load(path / s["file"], mmap_mode="r", allow_pickle=False) for s in meta["shards"]]
        check_rows(path, meta, index, shards)
        return cls(path, meta, index, shards)

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

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine scores [N, Q] of every clip (in clip order) against query vectors [Q, D'], read shard
        by shard from the memory-mapped files (``motive.scoring.unit_scores``): the stored rows are
        unit, so nothing is re-normalised, and no [N, D'] copy is made."""
        out = np.zeros((len(self.index), len(queries)), np.float32)
        for s, shard in enumerate(self.shards):
            rows = self.index[self.index["shard"] == s]
            out[rows["id"].to_numpy()] = unit_scores(shard, queries)[rows["row"].to_numpy()]
        return out

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of clips whose feature was computed."""
        return (self.index["status"] == "ok").to_numpy()


def is_store(path: str | Path) -> bool:
    """Whether ``path`` holds a finished feature store (its ``meta.json``)."""
    return (Path(path) / META).is_file()


def remove_store(path: str | Path) -> None:
    """Delete a store's files (finished or in progress); leaves anything else in the folder alone."""
    path = Path(path)
    for f in [path / META, path / INDEX, *path.glob("shard-*.npy")]:
        f.unlink(missing_ok=True)
    shutil.rmtree(path / WORK, ignore_errors=True)


def index_row(i: int, clip: Clip) -> dict:
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
