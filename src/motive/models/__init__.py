"""Models: the ``VideoModel`` seam over diffusers Wan and the tiny demo-model factory."""

from motive.models.tiny import TinyConfig, build_tiny_model
from motive.models.wan import ModelError, ModelSettings, VideoModel, frames_to_tensor, tensor_to_frames

__all__ = [
    "ModelError",
    "ModelSettings",
    "TinyConfig",
    "VideoModel",
    "build_tiny_model",
    "frames_to_tensor",
    "tensor_to_frames",
]
