"""A tiny Wan pipeline built from config: the same diffusers classes as Wan2.1, a thousandth the size.

No download happens: the tokenizer is either ``ByT5Tokenizer`` (one token a byte, no vocabulary file)
or a word-level ``tokenizers`` vocabulary built here from a given word list (one token a word, as
close to Wan's word-piece UMT5 as a tiny world needs), and every module is randomly initialised from
its config. Saved with ``save_pretrained`` it reloads with ``from_pretrained``, exactly like a real
checkpoint (the word tokenizer as its ``tokenizer.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from motive.models.checkpoint import ModelSettings
from motive.models.wan import CONDITIONS, VideoModel

TOKENIZERS = ("byte", "word")
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2: UMT5's pad and end-of-text ids
TEXT_LEN = {"byte": 128, "word": 32}  # the world's captions: ≤ 122 bytes, ≤ 20 words


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
    text_len: int | None = None  # prompt length in tokens; None: TEXT_LEN of the tokenizer
    tokenizer: str = field(
        default="byte",
        metadata={
            "help": "text tokens: byte (ByT5) or word (a word-level vocabulary of the data)",
            "choices": TOKENIZERS,
        },
    )
    condition: str = field(
        default="none",
        metadata={
            "help": "none (text-to-video) or first-frame (image-to-video: the first latent frame is "
            "given clean at timestep 0 and the loss covers the later frames, as Wan2.2-TI2V)",
            "choices": CONDITIONS,
        },
    )
    vae_base_dim: int = field(
        default=8, metadata={"help": "VAE channels at full resolution (its width; ×2 costs about ×2 a step)"}
    )
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

    def __post_init__(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")

    @property
    def prompt_tokens(self) -> int:
        """The prompt length in tokens (``text_len``, or the tokenizer's default)."""
        return self.text_len or TEXT_LEN[self.tokenizer]


def word_tokenizer(words: list[str]):
    """A word-level tokenizer over ``words`` (lower-cased; punctuation is split off as its own word),
    built in memory: ``<pad>`` = 0, ``</s>`` = 1 (appended to every prompt, as T5's), ``<unk>`` = 2 for
    any word outside the list. A ``transformers`` fast tokenizer, saved as ``tokenizer.json``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()  # \w+ runs and punctuation runs
    vocab = sorted({w for text in words for w, _ in pre.pre_tokenize_str(text.lower())} - set(SPECIAL_TOKENS))
    ids = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *vocab])}
    tok = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def build_tiny_model(
    config: TinyConfig | None = None, seed: int = 0, words: list[str] | None = None
) -> VideoModel:
    """A randomly initialised tiny ``WanPipeline`` wrapped as a ``VideoModel``. ``words``: the texts
    whose words make the vocabulary of ``tokenizer="word"`` (e.g. every caption of the data)."""
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
    if c.tokenizer == "word" and not words:
        raise ValueError("a word tokenizer needs the words of its vocabulary")
    torch.manual_seed(seed)
    tokenizer = ByT5Tokenizer() if c.tokenizer == "byte" else word_tokenizer(words)
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
        text_len=c.prompt_tokens,
        height=c.height,
        width=c.width,
        frames=c.frames,
        fps=c.fps,
        kind="tiny",
        condition=c.condition,
    )
    model = VideoModel(pipe, settings, source="tiny")
    model.tiny_config = asdict(c)
    return model
