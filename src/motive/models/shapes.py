"""Wan pipelines shaped like the released checkpoints, randomly initialised and built offline.

``build_pipeline("wan2.1-t2v-1.3b", out)`` writes a diffusers ``WanPipeline`` folder with the released
model's component classes and configs — the same transformer width, heads and FFN, VAE and text-encoder
shapes — and no ``motive.json``, exactly as a user's download would look. Keyword overrides shrink any
part (``layers=1``, a small text encoder, a small VAE), so the tests run the real-size code paths on a
CPU and the benchmarks measure real-size memory without downloading 30 GB of weights. The weights are
random: what is measured is shape, memory and time, never quality.

The tokenizer is ``ByT5Tokenizer`` (no vocabulary file needed; byte ids fit any vocabulary). The
released checkpoints' UMT5 tokenizer needs its SentencePiece file, which is not ours to ship.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# The released checkpoints' configs (diffusers' Wan-AI/*-Diffusers folders), the parts that set shapes.
UMT5_XXL = {
    "d_model": 4096,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "d_kv": 64,
    "vocab_size": 256384,
}
WAN21_VAE = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
}  # diffusers' defaults
WAN22_VAE = {
    "base_dim": 160,
    "decoder_base_dim": 256,
    "z_dim": 48,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "is_residual": True,
    "in_channels": 12,  # the VAE patchifies 2×2 pixels into channels first
    "out_channels": 12,
    "patch_size": 2,
    "scale_factor_spatial": 16,
    "scale_factor_temporal": 4,
    "latents_mean": [0.0] * 48,  # random weights: the released statistics would not fit them anyway
    "latents_std": [1.0] * 48,
}
_DIT = {
    "patch_size": (1, 2, 2),
    "attention_head_dim": 128,
    "freq_dim": 256,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
}
VARIANTS = {
    "wan2.1-t2v-1.3b": {
        "transformer": {
            **_DIT,
            "num_attention_heads": 12,
            "ffn_dim": 8960,
            "num_layers": 30,
            "in_channels": 16,
        },
        "vae": WAN21_VAE,
        "flow_shift": 3.0,
        "experts": 1,
        "pipeline": {},
    },
    "wan2.2-ti2v-5b": {
        "transformer": {
            **_DIT,
            "num_attention_heads": 24,
            "ffn_dim": 14336,
            "num_layers": 30,
            "in_channels": 48,
        },
        "vae": WAN22_VAE,
        "flow_shift": 5.0,
        "experts": 1,
        "pipeline": {"expand_timesteps": True},
    },
    "wan2.2-t2v-a14b": {
        "transformer": {
            **_DIT,
            "num_attention_heads": 40,
            "ffn_dim": 13824,
            "num_layers": 40,
            "in_channels": 16,
        },
        "vae": WAN21_VAE,
        "flow_shift": 3.0,
        "experts": 2,
        "pipeline": {"boundary_ratio": 0.875},
    },
}


def build_pipeline(
    variant: str,
    out: str | Path,
    *,
    transformer: dict | None = None,
    transformer_2: dict | None = None,
    vae: dict | None = None,
    text: dict | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a randomly initialised ``variant`` pipeline (a key of ``VARIANTS``) to ``out``.

    ``transformer``, ``vae`` and ``text`` override their configs (e.g. ``{"num_layers": 1}``; ``text``
    overrides UMT5-XXL's); ``transformer_2`` overrides the second expert's instead (default: as the
    first). The transformer's ``text_dim`` follows the text encoder's width. ``device`` is where the
    modules are initialised (CUDA is much faster at full size); transformers are saved in ``dtype``
    (bf16 halves a 14B expert's 56 GB), the VAE in fp32, the text encoder in bf16, as released."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import ByT5Tokenizer, UMT5Config, UMT5EncoderModel

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {sorted(VARIANTS)}")
    spec = VARIANTS[variant]
    text_cfg = {**UMT5_XXL, **(text or {})}
    torch.manual_seed(seed)
    with torch.device(device):
        encoder = UMT5EncoderModel(
            UMT5Config(**text_cfg, dropout_rate=0.0, is_encoder_decoder=False, feed_forward_proj="gated-gelu")
        ).to(torch.bfloat16)
        overrides = [transformer or {}, transformer_2 if transformer_2 is not None else transformer or {}]
        experts = []
        for k in range(spec["experts"]):
            t_cfg = {**spec["transformer"], **overrides[k]}
            t_cfg.setdefault("out_channels", t_cfg["in_channels"])
            expert = WanTransformer3DModel(**t_cfg, text_dim=text_cfg["d_model"])
            experts.append(expert if dtype == torch.float32 else expert.to(dtype))
        autoencoder = AutoencoderKLWan(**{**spec["vae"], **(vae or {})})
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=spec["flow_shift"]
    )
    pipe = WanPipeline(
        tokenizer=ByT5Tokenizer(),
        text_encoder=encoder,
        vae=autoencoder,
        scheduler=scheduler,
        transformer=experts[0],
        transformer_2=experts[1] if len(experts) > 1 else None,
        **spec["pipeline"],
    )
    out = Path(out)
    pipe.save_pretrained(str(out), safe_serialization=True)
    (out / "shape.json").write_text(json.dumps({"variant": variant, "random_init": True, "seed": seed}))
    return out
