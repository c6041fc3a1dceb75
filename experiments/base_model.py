"""How much must the demo's base model learn its motion words before attribution finds motion?

Retrains the demo's transformer from scratch (same VAE and text encoder as the run's base model, same
``base`` split) for ``--steps`` steps, and at every ``--every`` steps along that one run measures

- the motion-word check (``motion_word_sensitivity``, as in ``pretrain.json``): loss with a wrong
  motion word over the loss with the true one, and the share of held-out clips where the true word
  gives the lower loss;
- Motive's same-motion and same-colour precision@10% on the run's pool and queries (one attribution
  seed, the demo's σ);
- the same check at σ = 1 alone (only the prompt informs the model there) and the share of its σ = 1
  prediction that is one fixed spatial layout (``fixed_layout_share``: does it know where it is?);

so the retrieval figures can be read against how much the model conditions on motion. It also prints
what the data allow: at σ = 1 a model that predicts each clip's latent by the mean latent of its
motion group (optionally of its motion and background) would show a wrong/true loss ratio of
``group_mean_ratio`` on the base split (in-sample group means: an optimistic ceiling). Each checkpoint
is saved as a model folder (``OUT/step{k}``) and its figures appended to ``OUT/checkpoints.jsonl``;
a killed run resumes from its last checkpoint.

    python experiments/base_model.py --run runs/demo --out runs/base_model_steps --steps 10000 --every 2500
    python experiments/base_model.py --run runs/demo --word-swaps   # which words the base model uses
    python experiments/base_model.py --run runs/demo --where [MODEL ...]  # σ = 1: ideal vs the model
        # (held-out pairs, new clips of seen pairs, the training clips) and what the text encoder holds
    python experiments/base_model.py --run runs/demo --out runs/base_model_mw20 --steps 2500 --every 2500 \
        --motion-weight 20     # pretraining that weighs moving cells more
    python experiments/base_model.py --run runs/demo --out runs/base_model_high --sigma-range 0.9,1 \
        --steps 2500 --every 2500   # pretraining on the highest noise levels only
    python experiments/base_model.py --run runs/demo --word-check MODEL [MODEL ...]  # the motion-word
        # check per σ on the latent frames after the first, and whether it meets the demo's rule
    python experiments/base_model.py --run runs/demo --base M --joint-text --out runs/joint --steps 2500 \
        --every 500   # M's VAE, tokenizer and condition; its text encoder trained with a fresh transformer
    python experiments/base_model.py --smoke    # a mini world and a few steps: seconds
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from lds import open_run  # experiments/lds.py

from motive.data.dataset import first_per_label, load_dataset
from motive.demo.measures import topk_precision
from motive.demo.pretrain import decode_all, motion_word_sensitivity
from motive.demo.stages import pool_scores
from motive.demo.world import BACKGROUNDS, COLOURS, MOTIONS, STILL, caption_labels, make_prompt
from motive.gradients import GradientConfig
from motive.inputs import dataset_inputs, default_target
from motive.loss import masked_mean, per_sample_loss, velocity_error
from motive.models.wan import VideoModel
from motive.motion.mask import MaskConfig
from motive.scoring import static_queries
from motive.store import Store
from motive.training import TrainConfig, encode_frames, shifted_sigmas, train_flow_matching


def where_figures(model: VideoModel, world: Path, per_motion: int, split: str = "eval") -> dict:
    """The motion-word check at σ = 1 alone (where the clip is invisible and only the prompt tells the
    model anything), and how much of the model's σ = 1 prediction is a fixed spatial layout. On
    ``eval`` (held-out colour–shape pairs) by default; on ``base`` it is in-sample, on ``pool`` new clips
    of the pairs the model was trained on."""
    clips = load_dataset(world / split)
    words = motion_word_sensitivity(model, clips, default_target(model), sigmas=(1.0,), per_motion=per_motion)
    return {
        "motion_word_ratio_sigma1": words.get("weighted_ratio_wrong_over_true"),
        "true_word_lower_share_sigma1": words.get("share_of_clips_true_word_lower"),
        "fixed_layout_share_sigma1": fixed_layout_share(model, clips.table["prompt"].iloc[0]),
    }


WORD_CHECK_SIGMAS = (1.0, 0.8, 0.6, 0.45, 0.3)
# The demo's rule for a base model that uses its motion words (fixed before measuring): at σ = 1, on the
# latent frames after the first, wrong/true ≥ 1.05 with the true word lower on ≥ 65% of held-out clips.
RULE_RATIO, RULE_SHARE = 1.05, 0.65


def word_check(model: VideoModel, world: Path, per_motion: int, sigmas=WORD_CHECK_SIGMAS) -> dict:
    """The motion-word check (``motion_word_sensitivity``) at each σ alone, on the latent frames after
    the first (a first-frame model's loss covers only those; a text-to-video model's is cut to them),
    and whether σ = 1 meets ``RULE_RATIO`` / ``RULE_SHARE``."""
    clips, target = load_dataset(world / "eval"), default_target(model)
    rows = {}
    for sigma in sigmas:
        words = motion_word_sensitivity(
            model, clips, target, (sigma,), per_motion=per_motion, later_frames=True
        )
        rows[str(sigma)] = {
            "ratio": words["weighted_ratio_wrong_over_true"],
            "true_word_lower_share": words["share_of_clips_true_word_lower"],
            "clips": words["clips"],
        }
    one = rows.get("1.0")
    met = one is not None and one["ratio"] >= RULE_RATIO and one["true_word_lower_share"] >= RULE_SHARE
    return {"condition": model.settings.condition, "per_sigma": rows, "rule_met": met}


def text_probe(model: VideoModel, split: Path, held_out: int = 200, ridge: float = 1.0) -> dict[str, float]:
    """Is each label in what the (frozen) text encoder hands the transformer? Accuracy of a ridge
    classifier on the prompt embeddings averaged over their tokens, fitted on all but the last
    ``held_out`` prompts of ``split`` and tested on those (chance: one over the number of labels)."""
    clips = list(load_dataset(split))
    held_out = min(held_out, len(clips) // 4)  # a small (smoke) world
    x = model.encode_text([c.prompt for c in clips]).double().mean(1).cpu().numpy()  # [N, D]
    x = (x - x[:-held_out].mean(0)) / (x[:-held_out].std(0) + 1e-9)
    fit, test = slice(0, -held_out), slice(-held_out, None)
    out = {}
    for label in ("motion", "colour", "shape", "background", "camera", "direction"):
        y = np.array([c.extra.get(label, STILL) for c in clips])
        classes = sorted(set(y))
        if len(classes) < 2:
            continue
        onehot = (y[:, None] == np.array(classes)[None]).astype(float)  # [N, K]
        w = np.linalg.solve(x[fit].T @ x[fit] + ridge * np.eye(x.shape[1]), x[fit].T @ onehot[fit])
        out[label] = float((np.argmax(x[test] @ w, 1) == np.argmax(onehot[test], 1)).mean())
    return out


def measure(model: VideoModel, world: Path, out: Path, sigma: float, per_motion: int) -> dict:
    """Motion-word check (σ grid of the pretraining report, and σ = 1) and Motive's retrieval
    precision (one seed) of ``model`` on ``world``; feature stores go to ``out/stores``."""
    t0 = time.perf_counter()
    words = motion_word_sensitivity(
        model, load_dataset(world / "eval"), default_target(model), per_motion=per_motion
    )
    pool, queries = load_dataset(world / "pool"), load_dataset(world / "query")
    g = GradientConfig(sigma=sigma, noise_seed=0, proj_seed=0).for_model(model)
    store, scores = pool_scores(model, pool, queries, out / "stores", "motive", g, progress=False)
    keep = ~static_queries(np.asarray(Store.open(out / "stores" / "query_motive").vectors))
    row = {
        "motion_word_ratio": words.get("weighted_ratio_wrong_over_true"),
        "true_word_lower_share": words.get("share_of_clips_true_word_lower"),
        "per_motion_ratio": {
            m: v["wrong_weighted"] / v["true_weighted"] for m, v in words.get("per_motion", {}).items()
        },
        **where_figures(model, world, per_motion),
    }
    for label in ("motion", "colour"):
        train, query = pool.table[label].to_numpy(), queries.table[label].to_numpy()
        row[f"motive_{label}_precision"] = float(
            topk_precision(scores[:, keep], train, query[keep], 0.1, store.ok).mean()
        )
    row["measure_s"] = time.perf_counter() - t0
    return row


def group_mean_ratio(model: VideoModel, split: Path) -> dict[str, dict[str, float]]:
    """The motion-word check's ratio for an ideal predictor at σ = 1 (where x = ε and the loss is the
    error in predicting h): h predicted by the mean latent of the clip's group (motion; motion and
    background) vs by another motion's group mean, mask-weighted as the check weights. The
    ``motion, where-blind`` row averages each motion's mean latent over the frame's positions (per
    channel and frame): what the motion word is worth to a predictor that cannot place anything.
    In a world whose captions name directions, a group is a motion *and* its named direction, and the
    other groups are the other motions named with the same direction."""
    data = load_dataset(split)
    clips = list(data)
    inputs = dataset_inputs(model, clips, MaskConfig())
    h = torch.stack([x.latent for x in inputs]).double()  # [N, C, f, h, w]
    w = torch.stack([x.mask for x in inputs]).double()  # [N, f, h, w]
    words = [(c.extra["motion"], c.extra.get("direction", STILL)) for c in clips]
    out = {}
    for name, keys, blind in (
        ("motion", words, False),
        ("motion, where-blind", words, True),
        ("motion+background", [(*k, c.extra["background"]) for k, c in zip(words, clips)], False),
    ):
        means = {
            k: h[[i for i, key in enumerate(keys) if key == k]].mean(0) for k in set(keys)
        }  # each [C, f, h, w]
        if blind:
            means = {k: m.mean((-2, -1), keepdim=True).expand_as(m) for k, m in means.items()}

        def loss(i: int, mean: torch.Tensor) -> float:
            return float((((h[i] - mean) ** 2).mean(0) * w[i]).mean())

        true, wrong = [], []
        for i, key in enumerate(keys):
            others = [k for k in means if k[0] != key[0] and k[1:] == key[1:]]
            if not others:  # no other motion on this background (a small world)
                continue
            true.append(loss(i, means[key]))
            wrong.append(float(np.mean([loss(i, means[k]) for k in others])))
        out[name] = {
            "ratio": float(np.mean(wrong) / np.mean(true)),
            "true_lower_share": float(np.mean(np.array(true) < np.array(wrong))),
        }
    return out


def fixed_layout_share(model: VideoModel, prompt: str, draws: int = 16, seed: int = 0) -> float:
    """At σ = 1 (pure noise in), the share of the variance of the model's predicted clean latent h
    that is one fixed spatial layout, the same for every noise draw (its mean over draws, less that
    mean's per-channel, per-frame average over positions). A model with no sense of absolute position
    (its only position signal is relative, as RoPE's) would give ≈ 0."""
    shape = (draws, *model.latent_shape(model.settings.frames, model.settings.height, model.settings.width))
    eps = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(model.device)
    text = model.encode_text([prompt])
    with torch.no_grad():
        h = eps - model.velocity(
            eps, torch.ones(draws, device=model.device), text.expand(draws, *text.shape[1:])
        )
    mean = h.mean(0)  # [C, f, h, w]
    return float((mean - mean.mean((-2, -1), keepdim=True)).pow(2).mean() / h.var())


def word_swap_ratios(
    model: VideoModel, split: Path, sigmas=(0.3, 0.6, 0.8, 0.95), per_motion: int = 3, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Which words does the model use? Per σ, the motion-weighted loss of held-out clips with one word
    of the prompt swapped (each other motion, colour or background in turn; the camera words added or
    dropped; or the empty prompt) over the loss with the true prompt, one shared ε per σ and clip.
    → {σ: {word kind: ratio}}."""
    clips = first_per_label(list(load_dataset(split)), "motion", per_motion)
    target = default_target(model)
    inputs = dataset_inputs(model, clips, MaskConfig(), target=target)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, dict[str, float]] = {}
    for sigma in sigmas:
        sums: dict[str, float] = {}
        for clip, x in zip(clips, inputs):
            labels = caption_labels(clip.extra)

            prompts = {
                "true": [clip.prompt],
                "empty": [""],
                **{
                    key: [make_prompt(**{**labels, key: v}) for v in values if v != labels[key]]
                    for key, values in (
                        ("motion", MOTIONS),
                        ("colour", COLOURS),
                        ("background", BACKGROUNDS),
                        ("camera", (STILL, "camera_pan")),  # the words for a whole-frame motion
                    )
                },
            }
            eps = torch.randn(x.latent.shape, generator=gen)
            for kind, texts in prompts.items():
                n = len(texts)
                with torch.no_grad():
                    err = velocity_error(
                        model,
                        x.latent[None].expand(n, *x.latent.shape).to(model.device),
                        model.encode_text(texts),
                        torch.full((n,), sigma, device=model.device),
                        eps[None].expand(n, *eps.shape).to(model.device),
                    )  # [n, f, h, w]
                    loss = masked_mean(err, x.mask[None].expand_as(err).to(err.device)).mean()
                sums[kind] = sums.get(kind, 0.0) + float(loss)
        out[str(sigma)] = {k: v / sums["true"] for k, v in sums.items() if k != "true"}
    return out


def text_embeddings(model: VideoModel, prompts: list[str]) -> torch.Tensor:
    """Prompts → [B, L, D] through the model's text encoder *with* gradients, as ``WanPipeline``
    computes them (each prompt's tokens, zero rows after them up to ``text_len``)."""
    tok = model.pipe.tokenizer(
        prompts,
        padding="max_length",
        max_length=model.settings.text_len,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    )
    mask = tok.attention_mask.to(model.device)  # [B, L]
    out = model.pipe.text_encoder(tok.input_ids.to(model.device), mask).last_hidden_state  # [B, L, D]
    return out * mask[..., None]


def train_jointly(model: VideoModel, data, config: TrainConfig, on_step) -> list[float]:
    """``train_flow_matching``'s recipe (AdamW, warmup then cosine, Wan's σ shift, prompt dropout,
    clipping) with the text encoder trained together with the transformer: the text is re-encoded
    every step instead of cached. The loss is the model's own (a first-frame model's covers the later
    frames)."""
    import math

    encoder = model.pipe.text_encoder
    params = list(model.transformer.parameters()) + list(encoder.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    prompts, losses = data.prompts + [""], []
    for step in range(config.steps):
        warm = (step + 1) / config.warmup
        cos = 0.1 + 0.9 * 0.5 * (
            1 + math.cos(math.pi * (step - config.warmup) / (config.steps - config.warmup))
        )
        for group in opt.param_groups:
            group["lr"] = config.lr * (warm if step < config.warmup else cos)
        model.transformer.train(), encoder.train()
        idx = torch.randint(0, len(data.latents), (config.batch_size,), generator=gen)
        pid = data.prompt_ids[idx].clone()
        pid[torch.rand(len(idx), generator=gen) < config.prompt_dropout] = len(data.prompts)
        u = torch.rand(len(idx), generator=gen)
        eps = torch.randn((len(idx), *data.latents.shape[1:]), generator=gen)
        sigma = shifted_sigmas(u, config.flow_shift)
        text = text_embeddings(model, [prompts[i] for i in pid.tolist()])
        loss = per_sample_loss(model, data.latents[idx], text, sigma, eps).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: loss {np.mean(losses[-100:]):.4f}", flush=True)
        model.transformer.eval(), encoder.eval()
        on_step(step + 1)
    return losses


def fresh_transformer(model: VideoModel, seed: int, **sizes) -> None:
    """Replace ``model``'s transformer by a freshly initialised one from its own config with ``sizes``
    changed (e.g. ``num_layers``), seeded; the VAE, its latent statistics and the text encoder stay the
    trained ones."""
    torch.manual_seed(seed)
    config = {**model.transformer.config, **sizes}
    model.pipe.transformer = type(model.transformer).from_config(config).to(model.device)


def joint_text_run(model: VideoModel, world: Path, out: Path, args: argparse.Namespace) -> None:
    """``--joint-text``: a fresh transformer and ``model``'s own text encoder trained together on the
    world's base split; the σ = 1 word check every ``--every`` steps, every σ of it at the end
    (``OUT/step{k}`` model folders, ``OUT/joint_text.jsonl``)."""
    model._text_encoder(model.device)  # loaded now, trained below
    fresh_transformer(model, args.seed)
    base = load_dataset(world / "base", decode=True)
    data = encode_frames(
        model, decode_all(base, default_target(model), False), [c.prompt for c in base], progress=False
    )
    (out / "settings.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
    t0 = time.perf_counter()

    def on_step(k: int) -> None:
        if k % args.every and k != args.steps:
            return
        folder = out / f"step{k}"
        model.save_pretrained(folder)
        sigmas = WORD_CHECK_SIGMAS if k == args.steps else (1.0,)
        row = {"step": k, "train_s": time.perf_counter() - t0}
        row |= word_check(VideoModel.from_pretrained(folder), world, args.per_motion, sigmas)
        with open(out / "joint_text.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        one = row["per_sigma"]["1.0"]
        print(f"step {k}: at σ = 1 {one['ratio']:.4f} ({one['true_word_lower_share']:.0%} lower)", flush=True)

    config = replace(TrainConfig(), steps=args.steps, seed=args.seed)
    train_jointly(model, data, config, on_step)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/demo", help="a demo run folder (world/, base_model/)")
    p.add_argument("--world", default=None, help="train and measure on this world (default: RUN/world)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/base_model_steps)")
    p.add_argument("--steps", type=int, default=10000, help="training steps of the one run")
    p.add_argument("--every", type=int, default=2500, help="measure every this many steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the transformer's init and training")
    p.add_argument("--sigma", type=float, default=0.3, help="σ of the attribution features")
    p.add_argument("--per-motion", type=int, default=10, help="held-out clips per motion, word check")
    p.add_argument("--head-dim", type=int, default=0, help="attention head size (default: the run's)")
    p.add_argument("--layers", type=int, default=0, help="transformer blocks (default: the run's)")
    p.add_argument("--ffn", type=int, default=0, help="feed-forward size (default: the run's)")
    p.add_argument("--text-len", type=int, default=0, help="prompt length in tokens (default: the run's)")
    p.add_argument(
        "--motion-weight",
        type=float,
        default=0.0,
        help="pretrain with loss weight 1 + this × the motion mask per latent cell (0: the plain loss)",
    )
    p.add_argument(
        "--sigma-range",
        default="0,1",
        metavar="LO,HI",
        help="pretrain on σ in [LO, HI) only (Wan's shifted draws, mapped into the range)",
    )
    p.add_argument("--base", default=None, help="the model to start from (default: RUN/base_model)")
    p.add_argument(
        "--joint-text",
        action="store_true",
        help="train the base model's text encoder together with the fresh transformer; measure only the"
        " --word-check figures along the run",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--smoke", action="store_true", help="mini world, untrained model, 4 steps")
    p.add_argument(
        "--word-swaps",
        nargs="?",
        const="",
        metavar="MODEL",
        help="only the word-swap check of MODEL (default: RUN's base model) on the world, then stop",
    )
    p.add_argument(
        "--word-check",
        nargs="+",
        metavar="MODEL",
        help="only the motion-word check per σ (frames after the first) of each MODEL (RUN_BASE: the run's"
        " base model), then stop",
    )
    p.add_argument(
        "--where",
        nargs="*",
        metavar="MODEL",
        help="only the σ = 1 figures (ideal predictors on the world; each MODEL's on eval, pool and base,"
        " and its text probe; default RUN's base), then stop",
    )
    args = p.parse_args()

    run, tmp = open_run(args)  # experiments/lds.py
    if args.smoke:
        args.steps, args.every, args.per_motion = 4, 2, 1
    world = Path(args.world) if args.world else run / "world"
    out = Path(args.out) if args.out else run / "base_model_steps"
    out.mkdir(parents=True, exist_ok=True)
    if args.word_check:
        models = [run / "base_model" if m == "RUN_BASE" else Path(m) for m in args.word_check]
        rows = {str(m): word_check(VideoModel.from_pretrained(m), world, args.per_motion) for m in models}
        (out / "word_check.json").write_text(json.dumps(rows, indent=2))
        for m, row in rows.items():
            print(f"{m} ({row['condition']}): rule met at σ = 1: {row['rule_met']}")
            for sigma, r in row["per_sigma"].items():
                print(
                    f"  σ {sigma}: wrong/true {r['ratio']:.4f}, true lower {r['true_word_lower_share']:.0%} of {r['clips']}"
                )
        return
    if args.where is not None:
        models = args.where or [run / "base_model"]
        rows = {"ideal_sigma1": group_mean_ratio(VideoModel.from_pretrained(models[0]), world / "base")}
        for m in models:
            model = VideoModel.from_pretrained(m)
            rows[str(m)] = {
                split: where_figures(model, world, args.per_motion, split)
                for split in ("eval", "pool", "base")
            } | {"text_probe": text_probe(model, world / "base")}
        (out / "where.json").write_text(json.dumps(rows, indent=2))
        print(json.dumps(rows, indent=2))
        return
    if args.word_swaps is not None:
        model = VideoModel.from_pretrained(args.word_swaps or run / "base_model")
        swaps = word_swap_ratios(model, world / "eval")
        (out / "word_swaps.json").write_text(json.dumps(swaps, indent=2))
        print("wrong/true motion-weighted loss with one word swapped:")
        for sigma, row in swaps.items():
            print(f"  σ {sigma}: " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()))
        return
    log = out / "checkpoints.jsonl"
    done = {json.loads(line)["step"] for line in log.read_text().splitlines()} if log.is_file() else set()

    model = VideoModel.from_pretrained(args.base or run / "base_model")
    if args.text_len:
        model.settings = replace(model.settings, text_len=args.text_len)
    if args.joint_text:
        joint_text_run(model, world, out, args)
        return
    ceiling = group_mean_ratio(model, world / "base")
    (out / "group_mean_ratio.json").write_text(json.dumps(ceiling, indent=2))
    print("ideal predictor at σ = 1 (group means on the base split):", json.dumps(ceiling))
    sizes = {k: v for k, v in (("attention_head_dim", args.head_dim), ("num_layers", args.layers)) if v}
    sizes |= {"ffn_dim": args.ffn} if args.ffn else {}
    fresh_transformer(model, args.seed, **sizes)
    base = load_dataset(world / "base", decode=True)
    frames = decode_all(base, default_target(model), progress=False)
    data = encode_frames(model, frames, [c.prompt for c in base], progress=False)
    if args.motion_weight:
        masks = torch.stack([x.mask for x in dataset_inputs(model, list(base), MaskConfig())])  # [N, f, h, w]
        data.weights = 1.0 + args.motion_weight * masks
    (out / "settings.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
    lo, hi = (float(v) for v in args.sigma_range.split(","))
    config = replace(
        TrainConfig(), steps=args.steps, seed=args.seed, checkpoint_every=args.every, sigma_range=(lo, hi)
    )
    t0 = time.perf_counter()

    def on_step(k: int) -> None:
        if k % args.every and k != args.steps or k in done:
            return
        model.transformer.eval()
        folder = out / f"step{k}"
        model.save_pretrained(folder)
        row = {"step": k, "train_s": time.perf_counter() - t0}
        row.update(measure(VideoModel.from_pretrained(folder), world, folder, args.sigma, args.per_motion))
        with open(log, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(
            f"step {k}: motion words {row['motion_word_ratio']:.4f} ({row['true_word_lower_share']:.0%} lower),"
            f" at σ = 1 {row['motion_word_ratio_sigma1']:.4f}, fixed layout {row['fixed_layout_share_sigma1']:.2f},"
            f" precision motion {row['motive_motion_precision']:.3f} colour {row['motive_colour_precision']:.3f}",
            flush=True,
        )
        model.transformer.train()

    if max(done, default=0) < args.steps:
        train_flow_matching(
            model, data, config, not args.smoke, checkpoint=out / "train_state.pt", on_step=on_step
        )
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    print(f"\n{'step':>6} {'ratio':>7} {'lower':>6} {'motion':>7} {'colour':>7}")
    for r in sorted(rows, key=lambda r: r["step"]):
        print(
            f"{r['step']:>6} {r['motion_word_ratio']:7.4f} {r['true_word_lower_share']:6.0%} "
            f"{r['motive_motion_precision']:7.3f} {r['motive_colour_precision']:7.3f}"
        )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
