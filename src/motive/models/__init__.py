"""Models: the ``VideoModel`` seam over diffusers Wan and the tiny demo-model factory."""

from motive.models.checkpoint import ModelError, ModelSettings
from motive.models.pixels import frames_to_tensor, tensor_to_frames
from motive.models.tiny import TinyConfig, build_tiny_model
from motive.models.wan import VideoModel, model_fingerprint, vae_fingerprint

__all__ = [
    "ModelError",
    "ModelSettings",
    "TinyConfig",
    "VideoModel",
    "build_tiny_model",
    "frames_to_tensor",
    "model_fingerprint",
    "tensor_to_frames",
    "vae_fingerprint",
]
