"""Motion: optical flow between frames, camera compensation, hard cuts and the motion mask W̃."""

from motive.motion.camera import CameraFit, fit_camera, residual_flow
from motive.motion.cuts import detect_cuts
from motive.motion.flow import (
    FlowFn,
    dis_flow,
    flow_backends,
    flow_magnitudes,
    get_flow,
    register_flow,
)
from motive.motion.mask import (
    MaskConfig,
    MotionResult,
    compute_motion,
    latent_mask,
    motion_mask,
    normalise_clip,
    temporal_group,
    uniformity,
)

__all__ = [
    "CameraFit",
    "FlowFn",
    "MaskConfig",
    "MotionResult",
    "compute_motion",
    "detect_cuts",
    "dis_flow",
    "fit_camera",
    "flow_backends",
    "flow_magnitudes",
    "get_flow",
    "latent_mask",
    "motion_mask",
    "normalise_clip",
    "register_flow",
    "residual_flow",
    "temporal_group",
    "uniformity",
]
