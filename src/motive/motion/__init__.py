"""Motion: optical flow between frames and the motion mask W̃ on the model's latent grid."""

from motive.motion.flow import dis_flow, flow_magnitudes
from motive.motion.mask import MaskConfig, latent_mask, motion_mask, normalise_clip, temporal_group

__all__ = [
    "MaskConfig",
    "dis_flow",
    "flow_magnitudes",
    "latent_mask",
    "motion_mask",
    "normalise_clip",
    "temporal_group",
]
