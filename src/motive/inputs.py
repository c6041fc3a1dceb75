"""Per-clip model inputs: decode → standardise → motion mask → VAE latent, and their cache.

Every stage that needs a clip as the model sees it (featurizing, attributing by mask similarity,
fine-tuning, evaluating) goes through here, so all of them see the same frames, mask and latent.
``prepare_clip`` is the CPU half (runs in data-loading worker processes; it decodes only the frames
the target needs, resized as they are decoded); ``encode_prepared`` the model half (the VAE, one clip
per call at real sizes, so its memory does not grow with the batch). A clip's inputs are cached — in a store's
``cache/inputs`` folder when featurizing, else under ``cache_dir()/inputs`` — keyed by the clip file
(path, size, modification time), the VAE's fingerprint, the target format and the mask settings, so a
changed clip, VAE or setting is never served stale inputs.

Latents are rounded to fp16 (``LATENT_DTYPE``) whether or not they are cached, so a run that reads the
cache computes exactly what the run that filled it did; a 81×480×832 Wan2.1 latent is then 4.4 MB
instead of 8.8 MB. Its effect on scores is measured in tests/test_inputs.py and docs/formats.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from motive.data.dataset import Clip
from motive.data.standardise import StandardiseTarget, read_standardised
from motive.data.video import VideoError
from motive.files import atomic_path
from motive.models.pixels import frames_to_tensor
from motive.models.wan import VideoModel, vae_fingerprint
from motive.motion.mask import MaskConfig, compute_motion, latent_mask

MOTION_COLUMNS = ("residual_mean_flow", "camera_only", "uniformity", "cuts")  # per-clip, into the index
LATENT_DTYPE = torch.float16  # how latents are kept (the model gets them back as fp32)
VAE_CALL_PIXELS = 81 * 480 * 832  # most pixels (F·H·W) one VAE call encodes: one native Wan2.1 clip


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
    """The cache of work not tied to a store (``$MOTIVE_CACHE``, else ``~/.cache/motive``)."""
    return Path(os.environ.get("MOTIVE_CACHE", Path.home() / ".cache" / "motive"))


def cache_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a cache folder."""
    files = [f for f in folder.rglob("*") if f.is_file()] if folder.is_dir() else []
    return len(files), sum(f.stat().st_size for f in files)


def _cache_key(clip: Path, vae_fp: str, target: StandardiseTarget, mask: MaskConfig | None) -> str:
    st = clip.stat()
    raw = json.dumps(
        [
            str(clip.resolve()),
            st.st_size,
            st.st_mtime_ns,
            vae_fp,
            target.to_dict(),
            mask.to_dict() if mask is not None else None,
            str(LATENT_DTYPE),
        ]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def cache_file(
    clip: Path, target: StandardiseTarget, mask: MaskConfig | None, vae_fp: str, cache: Path | None
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
    clip: Path, target: StandardiseTarget, mask: MaskConfig | None, vae_fp: str, cache: Path | None
) -> ClipInputs | Prepared | VideoError:
    """The CPU half of a clip's inputs (decode, standardise, flow → mask), or its cached inputs.

    Runs in data-loading worker processes; ``mask`` must already have the model's strides. With
    ``mask=None`` no flow is computed (training's loss does not use it): the mask is empty, the flow
    statistics NaN."""
    file = cache_file(clip, target, mask, vae_fp, cache)
    if file is not None and file.is_file():
        cached = read_cached(file, target)
        if cached is not None:
            return cached
        file.unlink(missing_ok=True)  # damaged or foreign: recomputed below and written anew
    try:
        video, _ = read_standardised(clip, target)  # decodes only the frames the target needs
    except VideoError as exc:
        return exc
    if mask is None:
        stats = {k: float("nan") for k in MOTION_COLUMNS} | {"cuts": []}
        return Prepared(video.frames, torch.zeros(0), float("nan"), stats, file)
    m = compute_motion(video.frames, mask)
    w = latent_mask(m.weights, mask.spatial_stride, mask.temporal_stride)  # [f, h, w]
    stats = {k: m.stats[k] for k in MOTION_COLUMNS}
    return Prepared(video.frames, w, m.mean_flow, stats, file)


def _digest(latent: torch.Tensor, mask: torch.Tensor) -> str:
    """sha256 over a cached record's tensors: a flipped byte in a cache file is noticed."""
    digest = hashlib.sha256()
    for t in (latent, mask):
        digest.update(str((t.dtype, tuple(t.shape))).encode())
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_cached(file: Path, target: StandardiseTarget) -> ClipInputs | None:
    """A cache file's inputs, or None when the file is not one we wrote intact (unreadable, truncated,
    another structure, a tensor whose bytes no longer match the digest). The cache is untrusted: it is
    loaded with ``weights_only`` (plain tensors and numbers, never code) and then verified."""
    try:
        with warnings.catch_warnings():  # a foreign file's pickle protocol is not worth a warning
            warnings.simplefilter("ignore")
            d = torch.load(file, weights_only=True)
        latent, mask, motion = d["latent"], d["mask"], d["motion"]
        ok = (
            isinstance(latent, torch.Tensor)
            and isinstance(mask, torch.Tensor)
            and latent.dim() == 4
            and latent.dtype == LATENT_DTYPE
            and (mask.numel() == 0 or tuple(mask.shape) == tuple(latent.shape[1:]))  # empty: no mask
            and isinstance(motion, dict)
            and set(MOTION_COLUMNS) <= set(motion)
            and d["digest"] == _digest(latent, mask)
            and (target.frames is None or int(d["frames"]) == target.frames)
        )
        return (
            ClipInputs(latent.float(), mask, float(d["mean_flow"]), int(d["frames"]), motion) if ok else None
        )
    except Exception:  # any failure to read means: not a usable cache entry
        return None


def vae_groups(sizes: list[int], budget: int = VAE_CALL_PIXELS) -> list[list[int]]:
    """Positions of clips (``sizes``: pixels F·H·W each) grouped into VAE calls of at most ``budget``
    pixels; a clip larger than the budget gets a call of its own."""
    groups: list[list[int]] = []
    total = budget + 1
    for i, n in enumerate(sizes):
        if total + n > budget:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += n
    return groups


def encode_prepared(
    model: VideoModel, items: list[ClipInputs | Prepared | VideoError]
) -> list[ClipInputs | VideoError]:
    """The model half: VAE-encode the prepared clips — together while they fit one Wan2.1 clip's
    pixels (``VAE_CALL_PIXELS``), so a real clip has a call of its own whatever the chunk size and
    small clips are not encoded one call each — and fill their cache files."""
    out = list(items)
    todo = [i for i, p in enumerate(items) if isinstance(p, Prepared)]
    latents: dict[int, torch.Tensor] = {}
    for group in vae_groups([items[i].frames[..., 0].size for i in todo]):
        ids = [todo[g] for g in group]
        batch = torch.stack([frames_to_tensor(items[i].frames) for i in ids])  # [B, 3, F, H, W]
        for i, latent in zip(ids, model.encode_video(batch).to("cpu", LATENT_DTYPE)):
            latents[i] = latent.clone()  # [C, f, h, w]
    for i in todo:
        p, latent = items[i], latents[i]
        out[i] = ClipInputs(latent.float(), p.mask, p.mean_flow, len(p.frames), p.motion)
        if p.cache_file is not None:
            p.cache_file.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "latent": latent,
                "mask": p.mask,
                "mean_flow": p.mean_flow,
                "frames": len(p.frames),
                "motion": p.motion,
                "digest": _digest(latent, p.mask),
            }
            with atomic_path(p.cache_file) as tmp:
                torch.save(record, tmp)
    return out


def clip_inputs_batch(
    model: VideoModel,
    clips: list[Path],
    target: StandardiseTarget,
    mask: MaskConfig | None,
    vae_fp: str,
    cache: Path | None,
) -> list[ClipInputs | VideoError]:
    """Standardise, flow → mask (unless ``mask`` is None) and VAE-encode several clips; read from /
    write to ``cache`` when given. A clip that cannot be read gives its error."""
    mask = mask.for_model(model.scale_spatial, model.scale_temporal) if mask is not None else None
    return encode_prepared(model, [prepare_clip(c, target, mask, vae_fp, cache) for c in clips])


def dataset_inputs(
    model: VideoModel,
    clips: list[Clip],
    mask: MaskConfig | None = None,
    batch_size: int = 16,
    keep_errors: bool = False,
    cache: Path | None = None,
    target: StandardiseTarget | None = None,
    motion: bool = True,
    progress: bool = False,
) -> list:
    """Inputs of every clip in ``target`` format (default: the model's native one), through the input
    cache folder ``cache`` (default ``cache_dir()/inputs``). ``motion=False`` computes no flow (empty
    masks). A clip that cannot be read raises its ``VideoError``, or with ``keep_errors`` stands in the
    list as it. ``progress`` shows a bar, moved after each batch of clips."""
    from tqdm import tqdm

    target, fp = target or default_target(model), vae_fingerprint(model)
    cache = cache or cache_dir() / "inputs"
    out: list[ClipInputs | VideoError] = []
    with tqdm(total=len(clips), desc="encoding clips", unit="clip", disable=not progress) as bar:
        for start in range(0, len(clips), batch_size):
            batch = [c.video for c in clips[start : start + batch_size]]
            config = (mask or MaskConfig()) if motion else None
            for x in clip_inputs_batch(model, batch, target, config, fp, cache):
                if isinstance(x, VideoError) and not keep_errors:
                    raise x
                out.append(x)
            bar.update(len(batch))
    return out
