"""Which text pathway lets the demo's first-frame base model use its motion words?

An image-to-video transformer trained on an oracle code of the motion (one fixed random vector in
text token 0) uses it strongly at σ = 1; the same transformer trained on the caption through the demo's
word-level text encoder barely does. This script trains a fresh transformer per *text pathway* — the
same VAE, latents, recipe and seed; only what the transformer receives as text differs — and measures
the motion-word check (``base_model.word_check``: wrong/true mask-weighted loss on the latent frames
after the first, share of held-out clips where the true word is lower) after ``--steps`` steps, also split by motion and over the clips without a camera pan
(``object_motion``):

- ``encoder``: the caption through the model's own text encoder (word tokens, random UMT5, frozen);
- ``encoder3``: the same, times 3;
- ``oracle``: a random code (std 3) of the caption's motion verb in token 0, nothing else;
- ``oracle1``: the same code at std 1;
- ``codes``: every word of the caption its own random code (std 3), in order, no encoder: the oracle's
  kind of signal with every other word present;
- ``embed``: the encoder's own word embeddings of the caption, no encoder layers.

    python experiments/text_pathway.py --base runs/w0/word_i2v --world runs/w0/world --out runs/w0/paths \
        --steps 500 --pathways encoder,oracle,codes,embed
    python experiments/text_pathway.py ... --patch 1,2,2    # finer tokens: 4× the tokens per latent frame
    python experiments/text_pathway.py --smoke      # a mini world and a few steps: seconds
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import torch
from base_model import WORD_CHECK_SIGMAS, fresh_transformer, word_check  # experiments/base_model.py

from motive.data.dataset import load_dataset
from motive.demo.pretrain import decode_all, motion_word_sensitivity
from motive.demo.world import MOTION_PHRASES
from motive.inputs import default_target
from motive.models.wan import VideoModel
from motive.training import TrainConfig, encode_frames, train_flow_matching

PATHWAYS = ("encoder", "encoder3", "oracle", "oracle1", "codes", "embed")
VERBS = sorted({phrase.split(" ", 1)[0] for phrase in MOTION_PHRASES.values()})
WORD = re.compile(r"\w+|[^\w\s]+")


def random_code(word: str, dim: int, std: float) -> torch.Tensor:
    """A fixed random vector [dim] of ``word`` (seeded by the word itself)."""
    seed = int.from_bytes(word.encode()[:8].ljust(8, b"\0"), "little") % (2**63)
    return torch.randn(dim, generator=torch.Generator().manual_seed(seed)) * std


def pathway_text(model: VideoModel, pathway: str, own) -> callable:
    """prompts → [B, L, D] for ``pathway`` (``own``: the model's own ``encode_text``)."""
    L, D = model.settings.text_len, model.transformer.config.text_dim
    embedding = model.pipe.text_encoder.get_input_embeddings() if pathway == "embed" else None

    def encode(prompts: list[str]) -> torch.Tensor:
        if pathway in ("encoder", "encoder3"):
            return own(prompts) * (3.0 if pathway == "encoder3" else 1.0)
        out = torch.zeros(len(prompts), L, D)
        for i, prompt in enumerate(prompts):
            words = WORD.findall(prompt.lower())
            if not words:
                continue  # the empty prompt: zeros, as the encoder's padding
            if pathway in ("oracle", "oracle1"):
                verb = next(w for w in words if w in VERBS)
                out[i, 0] = random_code(verb, D, 3.0 if pathway == "oracle" else 1.0)
            elif pathway == "codes":
                for j, w in enumerate(words[:L]):
                    out[i, j] = random_code(w, D, 3.0)
            else:  # embed
                ids = model.pipe.tokenizer(prompt, truncation=True, max_length=L).input_ids
                with torch.no_grad():
                    out[i, : len(ids)] = embedding(torch.tensor(ids))
        return out.to(model.device, model.transformer.dtype)

    return encode


def object_motion(model: VideoModel, world: Path, per_motion: int) -> tuple[dict, float]:
    """The σ = 1 check split by motion (wrong/true per motion), and its ratio over the clips without a
    camera pan: a pan's mask covers the whole frame, so a check averaged over clips is mostly the pans'
    (a *camera_pan* clip's loss is several times any other's)."""
    words = motion_word_sensitivity(
        model, load_dataset(world / "eval"), default_target(model), (1.0,), per_motion=per_motion
    )
    per = {m: r["wrong_weighted"] / r["true_weighted"] for m, r in words["per_motion"].items()}
    objects = {m: r for m, r in words["per_motion"].items() if m != "camera_pan"}
    wrong = sum(r["wrong_weighted"] * r["clips"] for r in objects.values())
    true = sum(r["true_weighted"] * r["clips"] for r in objects.values())
    return per, wrong / true


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", help="a first-frame demo model (its VAE, latent statistics and text encoder)")
    p.add_argument("--world", help="a motion world folder (base/ to train on, eval/ to check)")
    p.add_argument("--out", help="output folder (results.jsonl)")
    p.add_argument("--steps", type=int, default=500, help="training steps per pathway")
    p.add_argument("--pathways", default="encoder,oracle,codes,embed", help=f"comma-separated: {PATHWAYS}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-motion", type=int, default=10, help="held-out clips per motion, word check")
    p.add_argument("--all-sigmas", action="store_true", help="check every σ, not only σ = 1")
    p.add_argument(
        "--first-frame", action="store_true", help="train a text-to-video --base's transformer image-to-video"
    )
    p.add_argument(
        "--patch", default="", help="the fresh transformer's patch size, e.g. 1,2,2 (default: --base's)"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="mini world, untrained VAE, 3 steps")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        import tempfile

        from motive.demo.render import generate_world
        from motive.demo.world import WorldConfig, caption_texts
        from motive.models.tiny import TinyConfig, build_tiny_model

        tmp = Path(tempfile.mkdtemp())
        generate_world(WorldConfig(seed=0, clips=10), tmp / "world", progress=False)
        model = build_tiny_model(TinyConfig(tokenizer="word", condition="first-frame"), words=caption_texts())
        model.save_pretrained(tmp / "base")
        args.base, args.world, args.out, args.steps, args.per_motion = tmp / "base", tmp / "world", tmp, 3, 1
        args.pathways = ",".join(PATHWAYS)
    world, out = Path(args.world), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = VideoModel.from_pretrained(args.base)
    if args.first_frame:
        model.settings = replace(model.settings, condition="first-frame")
    base = load_dataset(world / "base", decode=True)
    data = encode_frames(
        model, decode_all(base, default_target(model), False), [c.prompt for c in base], progress=False
    )
    patch = {"patch_size": tuple(int(v) for v in args.patch.split(","))} if args.patch else {}
    own = model.encode_text
    model.cache_prompts(data.prompts + [""], release=False)
    for pathway in args.pathways.split(","):
        if pathway not in PATHWAYS:
            raise SystemExit(f"unknown pathway {pathway!r}: one of {PATHWAYS}")
        fresh_transformer(model, args.seed, **patch)
        model.encode_text = pathway_text(model, pathway, own)
        t0 = time.perf_counter()
        losses = train_flow_matching(
            model, data, replace(TrainConfig(), steps=args.steps, seed=args.seed), progress=False
        )
        model.transformer.eval()
        sigmas = WORD_CHECK_SIGMAS if args.all_sigmas else (1.0,)
        row = {"pathway": pathway, "steps": args.steps, "train_s": time.perf_counter() - t0}
        row["patch"] = list(model.transformer.config.patch_size)
        row |= {"final_loss": sum(losses[-50:]) / len(losses[-50:])}
        row |= word_check(model, world, args.per_motion, sigmas)
        row["per_motion_sigma1"], row["object_ratio_sigma1"] = object_motion(model, world, args.per_motion)
        with open(out / "results.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        one = row["per_sigma"]["1.0"]
        print(
            f"{pathway:9s} {args.steps} steps, patch {'×'.join(map(str, row['patch']))} "
            f"({row['train_s']:.0f} s, loss {row['final_loss']:.4f}): σ = 1 "
            f"wrong/true {one['ratio']:.4f}, true lower on {one['true_word_lower_share']:.0%}; "
            f"without camera pans {row['object_ratio_sigma1']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
