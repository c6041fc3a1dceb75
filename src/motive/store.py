"""Feature store: one unit vector per clip plus everything needed to trust and reuse it.

Layout of a store directory (DESIGN.md "Outside contracts"):
- ``meta.json``: what must match for two stores to be comparable (model fingerprint, parameter count,
  σ, noise seed/draws, latent shape, projection, mask settings, standardisation, package version);
- ``vectors.npy``: float32 ``[N, D']`` unit vectors (row i ↔ index row i);
- ``index.parquet``: one row per clip — id, video, prompt, frames, motion statistics, gradient norm,
  status, error.

``featurize`` writes a store for a dataset; queries are featurized the same way and checked against
the training store with ``check_compatible`` before any score is computed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from motive import __version__
from motive.data.dataset import Clip, load_dataset
from motive.data.standardise import StandardiseTarget, standardise
from motive.data.video import VideoError, read_video
from motive.gradients import GradientConfig, GradientFeaturizer
from motive.models.wan import VideoModel, frames_to_tensor
from motive.motion.flow import flow_magnitudes
from motive.motion.mask import MaskConfig, latent_mask, normalise_clip

META, VECTORS, INDEX = "meta.json", "vectors.npy", "index.parquet"
# Keys that must be equal for scores between two stores to mean anything.
COMPAT_KEYS = ("model", "gradient", "projection", "standardise", "latent_shape")


class StoreMismatch(ValueError):
    """Two stores (or a store and a request) were built with different settings."""


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


def cache_dir() -> Path:
    return Path(os.environ.get("MOTIVE_CACHE", Path.home() / ".cache" / "motive"))


def _cache_key(clip: Path, vae_fp: str, target: StandardiseTarget, mask: MaskConfig) -> str:
    st = clip.stat()
    raw = json.dumps(
        [str(clip.resolve()), st.st_size, st.st_mtime_ns, vae_fp, target.to_dict(), mask.to_dict()]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


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
    out: list[ClipInputs | VideoError | None] = [None] * len(clips)
    todo = []  # (position, cache file, frames, weights, mean flow)
    for i, clip in enumerate(clips):
        file = (
            cache / f"{_cache_key(clip, vae_fp, target, mask)}.pt"
            if cache is not None and clip.exists()
            else None
        )
        if file is not None and file.is_file():
            d = torch.load(file, weights_only=True)  # our own cache of plain tensors only
            out[i] = ClipInputs(d["latent"], d["mask"], float(d["mean_flow"]), int(d["frames"]))
            continue
        try:
            video, _ = standardise(read_video(clip), target)
        except VideoError as exc:
            out[i] = exc
            continue
        mags = flow_magnitudes(video.frames, mask.preset)
        w = latent_mask(normalise_clip(mags, mask.zeta), mask.spatial_stride, mask.temporal_stride)
        todo.append((i, file, video.frames, w, float(mags[1:].mean()) if len(mags) > 1 else 0.0))
    if todo:
        latents = model.encode_video(
            torch.stack([frames_to_tensor(t[2]) for t in todo])
        ).cpu()  # [B, C, f, h, w]
        for (i, file, frames, w, mean_flow), latent in zip(todo, latents):
            out[i] = ClipInputs(latent.clone(), w, mean_flow, len(frames))
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                tmp = file.with_suffix(".partial")
                torch.save(
                    {"latent": out[i].latent, "mask": w, "mean_flow": mean_flow, "frames": len(frames)}, tmp
                )
                tmp.replace(file)
    return out


def clip_inputs(
    model: VideoModel,
    clip: Path,
    target: StandardiseTarget,
    mask: MaskConfig,
    vae_fp: str,
    cache: Path | None,
) -> ClipInputs:
    """``clip_inputs_batch`` for one clip; raises the clip's ``VideoError``."""
    result = clip_inputs_batch(model, [clip], target, mask, vae_fp, cache)[0]
    if isinstance(result, VideoError):
        raise result
    return result


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


def check_compatible(a: dict, b: dict, what: str = "store") -> None:
    """Raise ``StoreMismatch`` naming every setting where two metas differ."""
    diffs = []
    for key in COMPAT_KEYS:
        va, vb = a.get(key), b.get(key)
        if key == "model":
            va, vb = (va or {}).get("fingerprint"), (vb or {}).get("fingerprint")
        if va != vb:
            diffs.append(f"{key}: {va} != {vb}")
    if diffs:
        raise StoreMismatch(f"{what} was built with different settings:\n  " + "\n  ".join(diffs))


@dataclass
class Store:
    """A loaded feature store."""

    path: Path
    meta: dict
    vectors: np.ndarray  # [N, D'] float32, unit rows (zeros for failed clips)
    index: pd.DataFrame

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        if not (path / META).is_file():
            raise FileNotFoundError(f"{path}: not a feature store (no {META})")
        meta = json.loads((path / META).read_text())
        vectors = np.load(path / VECTORS, mmap_mode="r")
        return cls(path, meta, vectors, pd.read_parquet(path / INDEX))

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
    batch_size: int = 8,
) -> Store:
    """Compute the unit projected gradient of every clip of dataset ``data`` into store ``out``.

    A clip that cannot be read is recorded with status ``error`` and its message (zero vector); the run
    goes on. Files are written to temporary names and renamed at the end, so a crash never leaves a
    store that looks complete.
    """
    config = (config or GradientConfig()).for_model(model)
    target = target or default_target(model)
    dataset = load_dataset(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_fp, vae_fp = model_fingerprint(model), vae_fingerprint(model)
    shape = model.latent_shape(target.frames, target.height, target.width)
    featurizer = GradientFeaturizer(model, config, shape, target.frames)
    cache = cache_dir() / "inputs" if use_cache else None
    meta = build_meta(model, config, target, featurizer, model_fp)
    meta["data"] = str(dataset.root)  # where the clips live (not part of compatibility)
    vectors = np.zeros((len(dataset), config.proj_dim), np.float32)
    rows = [_index_row(i, clip) for i, clip in enumerate(dataset.clips)]
    bar = tqdm(total=len(dataset), desc=f"featurize {out.name}", disable=not progress)
    for start in range(0, len(dataset), batch_size):
        chunk = dataset.clips[start : start + batch_size]
        inputs = clip_inputs_batch(model, [c.video for c in chunk], target, config.mask, vae_fp, cache)
        good = [(start + j, c, x) for j, (c, x) in enumerate(zip(chunk, inputs)) if isinstance(x, ClipInputs)]
        for j, x in enumerate(inputs):
            if not isinstance(x, ClipInputs):
                rows[start + j].update(status="error", error=str(x))
        if good:
            texts = model.encode_text([c.prompt for _, c, _ in good])
            batch = [
                (x.latent[None].to(model.device), texts[k : k + 1], x.mask[None].to(model.device))
                for k, (_, _, x) in enumerate(good)
            ]
            vecs, norms = featurizer.features(batch)
            for k, (i, _, x) in enumerate(good):
                vectors[i] = vecs[k].cpu().numpy()
                rows[i].update(
                    frames=x.frames,
                    mean_flow=x.mean_flow,
                    mask_mean=float(x.mask.mean()),
                    grad_norm=norms[k],
                    status="ok",
                )
        bar.update(len(chunk))
    bar.close()
    _write_store(out, meta, vectors, pd.DataFrame(rows))
    return Store.open(out)


def _index_row(i: int, clip: Clip) -> dict:
    return {
        "id": i,
        "video": clip.relpath,
        "prompt": clip.prompt,
        "frames": -1,  # frames after standardisation, filled in when the clip is read
        "mean_flow": np.nan,
        "mask_mean": np.nan,
        "grad_norm": np.nan,
        "status": "pending",
        "error": "",
    }


def _write_store(out: Path, meta: dict, vectors: np.ndarray, index: pd.DataFrame) -> None:
    np.save(out / "vectors.partial.npy", vectors)
    index.to_parquet(out / "index.partial.parquet", index=False)
    (out / "meta.partial.json").write_text(json.dumps(meta, indent=2))
    os.replace(out / "vectors.partial.npy", out / VECTORS)
    os.replace(out / "index.partial.parquet", out / INDEX)
    os.replace(out / "meta.partial.json", out / META)  # meta last: its presence marks a finished store
