"""A Wan checkpoint on disk, read without loading any weights: where its folder is (a local path, or
a hub id already in the hub cache, never downloaded), what its ``model_index.json`` and our
``motive.json`` say (the native clip format, the prompt length, what a fine-tune was trained from),
which Wan2.2-A14B expert denoises at σ; and the ids that tell one checkpoint from another: of a
component's files (no weights read) and of a loaded module (its config and sampled weights).

``motive.models.wan`` loads what this finds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

MOTIVE_JSON = "motive.json"  # our extra settings beside a diffusers pipeline (diffusers ignores it)
FINGERPRINT_SAMPLES = 4096  # values read from each tensor for a module's fingerprint
EXPERTS = ("transformer", "transformer_2")  # Wan2.2-A14B: high-noise and low-noise experts
# The native clip format of each VAE (by latent channels): Wan2.1 and Wan2.2-A14B use the 16-channel
# VAE and 81 frames at 16 fps, 480×832; Wan2.2-TI2V-5B's 48-channel VAE, 121 frames at 24 fps, 704×1280.
NATIVE_FORMATS = {
    16: {"frames": 81, "fps": 16.0, "height": 480, "width": 832},
    48: {"frames": 121, "fps": 24.0, "height": 704, "width": 1280},
}


class ModelError(ValueError):
    """A model path is missing or is not a Wan pipeline."""


@dataclass
class ModelSettings:
    """Settings the pipeline files do not carry: prompt length and the native clip format."""

    text_len: int = 512  # max_sequence_length used for every prompt (training and generation)
    height: int = 480
    width: int = 832
    frames: int = 81
    fps: float = 16.0
    kind: str = "wan"  # "wan" for a user's checkpoint, "tiny" for the built-in demo model
    condition: str = "none"  # what the model was trained with (wan.CONDITIONS); the default of every loss

    @classmethod
    def native(cls, z_dim: int) -> ModelSettings:
        """The native clip format of a model whose VAE has ``z_dim`` latent channels."""
        return cls(**NATIVE_FORMATS.get(z_dim, NATIVE_FORMATS[16]))

    @classmethod
    def read(cls, path: Path, z_dim: int = 16) -> ModelSettings:
        """``motive.json`` beside the pipeline, else the native format of its VAE."""
        file = path / MOTIVE_JSON
        if not file.is_file():
            return cls.native(z_dim)
        data = json.loads(file.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def write(self, path: Path, **extra) -> None:
        (path / MOTIVE_JSON).write_text(json.dumps({**self.__dict__, **extra}, indent=2))


def local_pipeline(path: str | Path) -> Path:
    """The local folder of a pipeline: ``path`` itself, or a hub id's snapshot already in the hub
    cache (never downloaded)."""
    local = Path(path)
    if local.exists():
        if not local.is_dir():
            raise ModelError(f"{path}: is a file; expected a diffusers pipeline directory")
        return local
    if str(path).count("/") != 1:  # hub ids look like "org/name"
        raise ModelError(f"{path}: model path not found")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(path), local_files_only=True))
    except Exception as exc:  # not in the cache (we never download)
        raise ModelError(f"{path}: not a local folder, and not in the hub cache ({exc})") from exc


def pipeline_index(path: Path) -> dict:
    """A Wan pipeline folder's ``model_index.json``, checked."""
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelError(f"{path}: not a diffusers pipeline (no model_index.json)")
    try:
        data = json.loads(index.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{index}: unreadable ({exc})") from exc
    if data.get("_class_name") != "WanPipeline":
        raise ModelError(f"{path}: is a {data.get('_class_name')}, not a WanPipeline (Wan text-to-video)")
    return data


def trained_on(path: Path) -> dict | None:
    """The ``motive.json`` of a fine-tune output (it names its ``base``), else None."""
    file = path / MOTIVE_JSON
    if (path / "model_index.json").is_file() or not file.is_file():
        return None
    data = json.loads(file.read_text())
    return data if "base" in data and "trained" in data else None


def expert_for(index: dict, sigma: float) -> str:
    """The transformer that denoises at noise level σ: Wan2.2-A14B's pipeline hands timesteps
    t = 1000·σ ≥ boundary_ratio·1000 to ``transformer`` (high noise), lower ones to ``transformer_2``.
    Single-transformer pipelines (Wan2.1, TI2V-5B) always use ``transformer``."""
    ratio = index.get("boundary_ratio")
    has_second = (index.get("transformer_2") or [None])[0] is not None
    if ratio is None or not has_second:
        return "transformer"
    return "transformer" if 1000.0 * sigma >= 1000.0 * float(ratio) else "transformer_2"


def files_id(*folders: Path) -> str:
    """sha256 over the files of some pipeline component folders, reading no weights: small files
    whole, and of each ``.safetensors`` file its size and header (tensor names, dtypes, shapes,
    offsets). Identifies a text encoder whose weights are not loaded (its embedding cache key)."""
    digest = hashlib.sha256()
    for folder in folders:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f.relative_to(folder.parent).as_posix().encode())
            size = f.stat().st_size
            digest.update(str(size).encode())
            with open(f, "rb") as fh:
                if f.suffix == ".safetensors":
                    n = int.from_bytes(fh.read(8), "little")
                    digest.update(fh.read(min(n, 100 * 2**20)))
                elif size <= 16 * 2**20:
                    digest.update(fh.read())
    return digest.hexdigest()[:20]


def module_fingerprint(module: torch.nn.Module) -> str:
    """sha256 over a module's config and, for every tensor, its name, dtype, shape and
    ``FINGERPRINT_SAMPLES`` values evenly spaced through it (first 20 hex digits). Reads a few KB per
    tensor where it lies — no copy of the weights — yet any fine-tune (which moves every weight of the
    matrices it trains) changes it; an edit confined to unsampled values would not. The config's
    private keys (where it was loaded from, the library version, ...) are left out and the class name
    put in: a copy of a model folder, the same model loaded by another path or built in memory, is the
    same model."""
    raw = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
    config = {k: v for k, v in raw.items() if not k.startswith("_") and k != "transformers_version"}
    config["class"] = type(module).__name__
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in module.state_dict().items():
        flat = t.detach().reshape(-1)
        n = flat.numel()
        idx = torch.linspace(0, max(n - 1, 0), min(n, FINGERPRINT_SAMPLES), device=flat.device).long()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(flat[idx].contiguous().view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()[:20]
