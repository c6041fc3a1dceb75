"""A tiny Wan pipeline built from config: the same diffusers classes as Wan2.1, a thousandth the size.

No download happens: ``ByT5Tokenizer`` needs no vocabulary file and every module is randomly
initialised from its config. Saved with ``save_pretrained`` it reloads with ``from_pretrained``,
exactly like a real checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from motive.models.wan import ModelSettings, VideoModel


@dataclass
class TinyConfig:
    """Sizes of the demo model. Defaults were picked by measurement (docs/demo.md "The demo model"):
    ~1M transformer parameters learn to use the motion words on 64×64×17 clips; ~150k barely do."""

    dim: int = field(default=128, metadata={"help": "transformer hidden size (heads × head size)"})
    heads: int = field(default=4, metadata={"help": "attention heads"})
    layers: int = field(default=4, metadata={"help": "transformer blocks"})
    ffn: int = field(default=256, metadata={"help": "feed-forward size"})
    freq_dim: int = 64
    text_dim: int = 32  # = the text encoder's d_model
    text_layers: int = 2
    text_heads: int = 4
    text_len: int = 128  # prompts are byte-tokenised (one token a byte); the world's are ≤ 122 bytes
    vae_base_dim: int = 8
    # Three levels = 4× spatial compression (16×16 latents for 64×64 clips). A 4-level, 8× VAE (Wan's)
    # fitted for the same two minutes lost the objects entirely; at 4× they survive (docs/demo.md).
    vae_dim_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    patch: list[int] = field(
        default_factory=lambda: [1, 4, 4]
    )  # 4×4 patches keep 4×4 tokens per latent frame
    flow_shift: float = 3.0  # σ shift of the sampler and of training σ draws
    height: int = 64
    width: int = 64
    frames: int = 17
    fps: float = 8.0


def build_tiny_model(config: TinyConfig | None = None, seed: int = 0) -> VideoModel:
    """A randomly initialised tiny ``WanPipeline`` wrapped as a ``VideoModel``."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import ByT5Tokenizer, UMT5Config, UMT5EncoderModel

    c = config or TinyConfig()
    if len(c.vae_dim_mult) < 3:
        raise ValueError("the VAE needs at least 3 levels (4× temporal compression)")
    if c.dim % c.heads:
        raise ValueError(f"dim {c.dim} is not divisible by heads {c.heads}")
    torch.manual_seed(seed)
    tokenizer = ByT5Tokenizer()
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=c.text_dim,
            d_kv=c.text_dim // c.text_heads,
            d_ff=2 * c.text_dim,
            num_layers=c.text_layers,
            num_heads=c.text_heads,
            dropout_rate=0.0,
            is_encoder_decoder=False,
        )
    )
    vae = AutoencoderKLWan(
        base_dim=c.vae_base_dim,
        z_dim=16,
        dim_mult=list(c.vae_dim_mult),
        num_res_blocks=1,
        # diffusers' spelling; the last two downsamples halve time: 4× temporal compression, as in Wan
        temperal_downsample=[False] * (len(c.vae_dim_mult) - 3) + [True, True],
        scale_factor_spatial=2 ** (len(c.vae_dim_mult) - 1),
        latents_mean=[0.0] * 16,
        latents_std=[1.0] * 16,
    )
    transformer = WanTransformer3DModel(
        patch_size=tuple(c.patch),
        num_attention_heads=c.heads,
        attention_head_dim=c.dim // c.heads,
        in_channels=16,
        out_channels=16,
        text_dim=c.text_dim,
        freq_dim=c.freq_dim,
        ffn_dim=c.ffn,
        num_layers=c.layers,
        rope_max_seq_len=64,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=c.flow_shift)
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer
    )
    pipe.set_progress_bar_config(disable=True)
    for module in (text_encoder, vae, transformer):
        module.eval()
    settings = ModelSettings(
        text_len=c.text_len, height=c.height, width=c.width, frames=c.frames, fps=c.fps, kind="tiny"
    )
    model = VideoModel(pipe, settings, source="tiny")
    model.tiny_config = asdict(c)
    return model
