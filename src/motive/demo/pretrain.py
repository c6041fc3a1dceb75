"""Pretrain the demo base model on the motion world's ``base`` split.

Two stages, both on CPU in minutes: (1) fit the tiny Wan VAE as an autoencoder on short windows and
record its latent mean/std (Wan's normalisation); (2) train the tiny Wan transformer with the standard
flow-matching loss on the cached latents. The result is a diffusers ``WanPipeline`` directory
(safetensors) with the loss curve, sample videos and a motion-word sensitivity check beside it.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motive.data.dataset import Dataset, first_per_label, load_dataset
from motive.data.standardise import StandardiseTarget, read_standardised
from motive.data.video import write_video
from motive.demo.plots import line_plot, smooth
from motive.demo.track import object_pixels
from motive.demo.world import MOTIONS, caption_labels, caption_texts, make_prompt
from motive.loss import cell_error, masked_mean
from motive.models.pixels import frames_to_tensor
from motive.models.tiny import TinyConfig, build_tiny_model
from motive.models.wan import VideoModel
from motive.motion.mask import MaskConfig, motion_mask
from motive.training import EncodedData, TrainConfig, encode_frames, train_flow_matching

DONE_FILE = "pretrain.json"  # written last: a model folder without it is incomplete
SCHEDULES = ("constant", "cosine")
LOWPASS = 4  # pixels a side of the means --vae-lowpass-weight compares


@dataclass
class VaeConfig:
    """Autoencoder fit of the tiny VAE (a real Wan VAE comes pretrained and skips this)."""

    steps: int = field(default=300, metadata={"help": "autoencoder steps of the tiny VAE"})
    source: str = field(
        default="",
        metadata={
            "flag": "--vae-from",
            "help": "take the VAE from this model folder (one written by motive pretrain, same VAE sizes) "
            "instead of fitting one, as a real Wan VAE comes pretrained; the other --vae-* settings are unused",
        },
    )
    lr: float = field(default=2e-3, metadata={"help": "autoencoder learning rate (AdamW)"})
    schedule: str = field(
        default="constant",
        metadata={"help": "learning-rate schedule: constant, or cosine (decayed to 0)", "choices": SCHEDULES},
    )
    # many small steps beat few large ones in a two-minute budget (measured on whole frames)
    batch_size: int = field(default=1, metadata={"help": "windows per autoencoder step"})
    window: int = field(
        default=9,
        metadata={"help": "frames per window (1 + 4k: the first chunk and k cached later chunks)"},
    )
    crop: int = field(
        default=0,
        metadata={"help": "side (px) of the square crops the autoencoder fits on (0: whole frames)"},
    )
    crop_object: bool = field(
        default=False,
        metadata={"help": "centre each crop on the world object (found by its 'colour' column)"},
    )
    kl_weight: float = 1e-6
    lowpass_weight: float = field(
        default=0.0,
        metadata={
            "help": f"weight of an extra squared error on {LOWPASS}×{LOWPASS}-pixel means of the frames "
            "(colour and layout rather than texture; 0: none)"
        },
    )
    object_weight: float = field(
        default=0.0,
        metadata={
            "help": "extra weight of the world object's pixels in the autoencoder loss (0: plain MSE; "
            "the object is found by its 'colour' column, as the tracker finds it)"
        },
    )

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"vae schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.crop < 0 or self.crop % 8:
            raise ValueError(f"vae crop must be 0 or a positive multiple of 8, got {self.crop}")
        if self.crop_object and not self.crop:
            raise ValueError("crop_object needs a crop size")

    @property
    def needs_objects(self) -> bool:
        """True when the fit needs the object's pixels (to weigh them or to crop around them)."""
        return bool(self.object_weight) or self.crop_object


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run; saved as ``pretrain.json`` in the model folder."""

    data: str = field(default="", metadata={"help": "dataset folder with metadata.csv", "required": True})
    out: str = field(
        default="", metadata={"help": "model folder to write (a diffusers WanPipeline)", "required": True}
    )
    seed: int = field(default=0, metadata={"help": "seed of the model's initialisation and training"})
    tiny: TinyConfig = field(default_factory=TinyConfig, metadata={"nested": ""})
    vae: VaeConfig = field(default_factory=VaeConfig, metadata={"nested": "vae-"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"nested": ""})  # train.seed := seed
    sample_prompts: int = field(
        default=4, metadata={"flag": "--samples", "help": "sample videos to generate at the end"}
    )
    sample_steps: int = 25
    sample_guidance: float = 1.0


def is_pretrained(path: str | Path) -> bool:
    """True when ``path`` holds a finished pretraining run."""
    return (Path(path) / DONE_FILE).is_file() and (Path(path) / "model_index.json").is_file()


def decode_all(dataset: Dataset, target: StandardiseTarget, progress: bool = True) -> np.ndarray:
    """Every clip of ``dataset`` standardised: uint8 [N, F, H, W, 3]."""
    clips = [
        read_standardised(c.video, target)[0].frames
        for c in tqdm(dataset, desc="decode", disable=not progress, leave=False)
    ]
    return np.stack(clips)


def load_vae(model: VideoModel, source: str | Path) -> None:
    """Load the VAE weights of the model folder ``source`` (its ``vae/`` safetensors, never a pickle)
    into ``model``, whose VAE must have the same sizes; its latent statistics are set afresh later."""
    from safetensors.torch import load_file

    folder = Path(source) / "vae"
    weights = folder / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(
            f"--vae-from {source}: no {weights} (give a model folder written by motive pretrain)"
        )
    theirs = json.loads((folder / "config.json").read_text())
    ours = json.loads(json.dumps(dict(model.vae.config), default=list))
    sizes = ("base_dim", "z_dim", "dim_mult", "num_res_blocks", "temperal_downsample")
    if differ := {k: (theirs.get(k), ours.get(k)) for k in sizes if theirs.get(k) != ours.get(k)}:
        shown = ", ".join(f"{k} {a} (this model: {b})" for k, (a, b) in differ.items())
        raise ValueError(f"--vae-from {source}: its VAE has other sizes: {shown}")
    model.vae.load_state_dict(load_file(str(weights), device=str(model.device)))


def object_masks_of(dataset: Dataset, frames: np.ndarray, config: VaeConfig) -> np.ndarray | None:
    """The object's pixels [N, F, H, W] (bool) of each clip, found by its ``colour`` column, for the
    autoencoder loss's ``config.object_weight`` and ``crop_object``; None when neither is set."""
    if not config.needs_objects:
        return None
    if any("colour" not in c.extra for c in dataset):
        raise ValueError(
            "--vae-object-weight and --vae-crop-object need a 'colour' column (the motion world's metadata)"
        )
    return np.stack([object_pixels(f, str(c.extra["colour"])) for f, c in zip(frames, dataset)])


def crop_origin(
    gen: np.random.Generator, height: int, width: int, crop: int, body: np.ndarray | None
) -> tuple[int, int]:
    """Top-left corner of a ``crop``-pixel square: uniform over the frame, or, given the object's
    pixels ``body`` [F, H, W] over the window, around their centre (jittered by up to a quarter crop)."""
    if body is None or not body.any():
        return int(gen.integers(0, height - crop + 1)), int(gen.integers(0, width - crop + 1))
    ys, xs = np.nonzero(body.any(axis=0))
    jitter = gen.integers(-(crop // 4), crop // 4 + 1, 2)
    y = int(np.clip(round(ys.mean()) - crop // 2 + jitter[0], 0, height - crop))
    x = int(np.clip(round(xs.mean()) - crop // 2 + jitter[1], 0, width - crop))
    return y, x


def train_vae(
    model: VideoModel,
    frames: np.ndarray,
    config: VaeConfig,
    seed: int = 0,
    progress: bool = True,
    objects: np.ndarray | None = None,
) -> list[float]:
    """Fit the VAE as an autoencoder on random ``window``-frame windows of ``frames`` [N, F, H, W, 3]
    (square crops of them with ``config.crop``, centred on the object with ``crop_object``); the pixels
    of ``objects`` [N, F, H, W] (bool) weigh 1 + ``config.object_weight`` in the squared error (a
    weighted mean; None: plain MSE), and ``lowpass_weight`` adds the error of the frames' block means."""
    vae = model.vae
    vae.train()
    gen = np.random.default_rng(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=config.lr, weight_decay=0.0)
    sched = None
    if config.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config.steps))
    losses = []
    n, f, height, width = frames.shape[:4]
    window = min(config.window, (f - 1) // 4 * 4 + 1)
    crop = min(config.crop, height, width) if config.crop else 0
    size_y, size_x = (crop, crop) if crop else (height, width)
    if config.crop_object and objects is None:
        raise ValueError("crop_object needs the object masks (object_masks_of)")
    pool = torch.nn.AvgPool3d((1, LOWPASS, LOWPASS))  # block means for ``lowpass_weight``
    for _ in tqdm(range(config.steps), desc="vae", disable=not progress):
        idx = gen.integers(0, n, config.batch_size)
        starts = gen.integers(0, f - window + 1, config.batch_size)
        picks = []  # (clip, frames, rows, columns) of each window; the whole frame without a crop
        for i, s in zip(idx, starts):
            body = objects[i, s : s + window] if config.crop_object else None
            top, left = crop_origin(gen, height, width, crop, body) if crop else (0, 0)
            picks.append((i, slice(s, s + window), slice(top, top + size_y), slice(left, left + size_x)))
        x = torch.stack([frames_to_tensor(frames[i, t, ys, xs]) for i, t, ys, xs in picks])
        x = x.to(model.device)  # [B, 3, window, h, w]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.mode()).sample  # deterministic: Motive only ever uses the posterior mean
        err = (rec - x).pow(2)  # [B, 3, window, h, w]
        if config.object_weight and objects is not None:
            m = torch.stack([torch.from_numpy(objects[i, t, ys, xs]) for i, t, ys, xs in picks])
            w = 1.0 + config.object_weight * m[:, None].to(err)  # [B, 1, window, h, w]
            err = err * w / w.mean()
        loss = err.mean() + config.kl_weight * post.kl().mean()
        if config.lowpass_weight:  # the error of 4×4-pixel means: colour and layout, not texture
            loss = loss + config.lowpass_weight * (pool(rec) - pool(x)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(float(loss.detach()))
    vae.eval()
    return losses


def normalise_latents(model: VideoModel, data: EncodedData) -> EncodedData:
    """Set the VAE's latents_mean/std from raw latents and return the normalised ones."""
    mean = data.latents.mean(dim=(0, 2, 3, 4))
    std = data.latents.std(dim=(0, 2, 3, 4)).clamp_min(1e-4)
    model.set_latent_stats(mean.tolist(), std.tolist())
    latents = (data.latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)
    return EncodedData(latents, data.prompt_ids, data.prompts)


def motion_word_sensitivity(
    model: VideoModel,
    dataset: Dataset,
    target: StandardiseTarget,
    sigmas=(0.2, 0.4, 0.6, 0.8),
    seed: int = 0,
    per_motion: int = 10,
    later_frames: bool = False,
) -> dict:
    """Does the model use the motion words? Loss on held-out clips (the first ``per_motion`` of each
    motion) with the true prompt vs the same prompt with each other motion's words, on a fixed grid
    of (σ, ε) shared by all prompts. The loss is the model's own (``ModelSettings.condition``: a
    first-frame model's covers the frames after the given one); ``later_frames`` drops the first
    latent frame from a text-to-video model's loss too, so the two compare on the same frames.

    Needs the motion world's label columns; returns an empty dict for other datasets.
    """
    needed = {"motion", "colour", "shape", "background", "camera"}
    clips = first_per_label([c for c in dataset if needed <= set(c.extra)], "motion", per_motion)
    if not clips:
        return {}
    frames = [read_standardised(c.video, target)[0].frames for c in clips]
    h = model.encode_video(torch.stack([frames_to_tensor(f) for f in frames]))  # [N, C, f, h, w]
    mask_config = MaskConfig().for_model(model.scale_spatial, model.scale_temporal)
    masks = torch.stack([motion_mask(f, mask_config) for f in frames])  # [N, f, h, w]
    gen = torch.Generator().manual_seed(seed)
    eps_grid = [torch.randn(h.shape[1:], generator=gen) for _ in sigmas]
    rows = []
    with torch.no_grad():
        for i, c in enumerate(clips):
            labels = caption_labels(c.extra)
            candidates = [labels["motion"]] + [m for m in MOTIONS if m != labels["motion"]]
            prompts = [make_prompt(**{**labels, "motion": m}) for m in candidates]
            if prompts[0] != c.prompt:
                raise ValueError(f"{c.video}: its labels give {prompts[0]!r}, not its prompt {c.prompt!r}")
            text = model.encode_text(prompts)
            k = len(prompts)
            plain = torch.zeros(k)
            weighted = torch.zeros(k)
            for sigma, eps in zip(sigmas, eps_grid):
                hb, eb = h[i : i + 1].expand(k, *h.shape[1:]), eps[None].expand(k, *eps.shape)
                sig = torch.full((k,), sigma)
                # [k, f, h, w] ([k, f−1, h, w] for a first-frame model), one pass for both losses
                err, w = cell_error(model, hb, text, sig, eb, masks[i : i + 1].expand(k, *masks.shape[1:]))
                if later_frames and err.shape[1] == masks.shape[1]:
                    err, w = err[:, 1:], w[:, 1:]
                plain += masked_mean(err) / len(sigmas)
                weighted += masked_mean(err, w) / len(sigmas)
            rows.append(
                (
                    labels["motion"],
                    plain[0].item(),
                    plain[1:].mean().item(),
                    weighted[0].item(),
                    weighted[1:].mean().item(),
                )
            )
    per_motion = {}
    for m in sorted({r[0] for r in rows}):
        sel = np.array([r[1:] for r in rows if r[0] == m])
        per_motion[m] = {
            "true_weighted": float(sel[:, 2].mean()),
            "wrong_weighted": float(sel[:, 3].mean()),
            "clips": len(sel),
        }
    arr = np.array([r[1:] for r in rows])
    return {
        "clips": len(rows),
        "sigmas": list(sigmas),
        "plain_loss_true": float(arr[:, 0].mean()),
        "plain_loss_wrong": float(arr[:, 1].mean()),
        "weighted_loss_true": float(arr[:, 2].mean()),
        "weighted_loss_wrong": float(arr[:, 3].mean()),
        "weighted_ratio_wrong_over_true": float(arr[:, 3].mean() / arr[:, 2].mean()),
        "share_of_clips_true_word_lower": float((arr[:, 2] < arr[:, 3]).mean()),
        "per_motion": per_motion,
    }


def write_samples(
    model: VideoModel,
    prompts: list[str],
    out: Path,
    steps: int,
    guidance: float,
    seed: int,
    first_frames: np.ndarray | None = None,
) -> list[str]:
    """Generate one clip per prompt (from its first frame in ``first_frames`` [B, H, W, 3] for a
    first-frame model); writes mp4 + gif; returns file stems."""
    out.mkdir(parents=True, exist_ok=True)
    videos = model.generate(prompts, steps=steps, guidance=guidance, seed=seed, first_frames=first_frames)
    names = []
    for i, video in enumerate(videos):
        stem = f"sample_{i:02d}"
        write_video(out / f"{stem}.mp4", video, model.settings.fps)
        write_video(out / f"{stem}.gif", video, model.settings.fps)
        names.append(stem)
    (out / "prompts.json").write_text(json.dumps(dict(zip(names, prompts)), indent=2))
    return names


def pretrain(config: PretrainConfig, eval_data: str | None = None, progress: bool = True) -> dict:
    """Run both stages and write the model folder ``config.out``; returns the run summary."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    t0 = time.perf_counter()
    dataset = load_dataset(config.data, decode=True)
    tiny = config.tiny
    target = StandardiseTarget(fps=tiny.fps, frames=tiny.frames, height=tiny.height, width=tiny.width)
    frames = decode_all(dataset, target, progress)
    timings["decode_s"] = time.perf_counter() - t0

    words = caption_texts() + [c.prompt for c in dataset] if tiny.tokenizer == "word" else None
    model = build_tiny_model(tiny, seed=config.seed, words=words)
    t = time.perf_counter()
    vae_losses = []  # none when the VAE comes pretrained
    if config.vae.source:
        load_vae(model, config.vae.source)
    else:
        objects = object_masks_of(dataset, frames, config.vae)
        vae_losses = train_vae(model, frames, config.vae, config.seed, progress, objects)
    timings["vae_s"] = time.perf_counter() - t

    t = time.perf_counter()
    data = normalise_latents(
        model, encode_frames(model, frames, [c.prompt for c in dataset], progress=progress)
    )
    timings["encode_s"] = time.perf_counter() - t

    t = time.perf_counter()
    losses = train_flow_matching(model, data, config.train, progress, desc="pretrain")
    timings["transformer_s"] = time.perf_counter() - t

    model.save_pretrained(out, tiny=asdict(tiny))
    with open(out / "loss.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss"])
        writer.writerows(enumerate(losses))
    line_plot(
        out / "loss.png",
        {"flow-matching loss (mean of 50)": smooth(losses, 50).tolist()},
        "pretraining loss",
        log_y=True,
    )
    if vae_losses:
        line_plot(
            out / "vae_loss.png",
            {"VAE reconstruction": smooth(vae_losses, 10).tolist()},
            "VAE fit",
            log_y=True,
        )

    t = time.perf_counter()
    prompts = sorted({c.prompt for c in dataset})[
        :: max(1, len({c.prompt for c in dataset}) // max(1, config.sample_prompts))
    ]
    prompts = prompts[: config.sample_prompts]
    firsts = None  # a first-frame model starts each sample at the first frame of a clip of its prompt
    if tiny.condition == "first-frame" and prompts:
        clip_prompts = [c.prompt for c in dataset]
        firsts = np.stack([frames[clip_prompts.index(p), 0] for p in prompts])  # [S, H, W, 3]
    if prompts:
        write_samples(
            model, prompts, out / "samples", config.sample_steps, config.sample_guidance, config.seed, firsts
        )
    timings["samples_s"] = time.perf_counter() - t

    sensitivity = {}
    if eval_data:
        t = time.perf_counter()
        sensitivity = motion_word_sensitivity(model, load_dataset(eval_data), target, seed=config.seed)
        timings["sensitivity_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    summary = {
        "config": asdict(config),
        "transformer_parameters": model.num_parameters(),
        "vae_parameters": sum(p.numel() for p in model.vae.parameters()),
        "clips": len(dataset),
        "final_loss_mean_last_200": float(np.mean(losses[-200:])),
        "first_loss_mean_first_50": float(np.mean(losses[:50])),
        "vae_final_mse": float(np.mean(vae_losses[-10:])) if vae_losses else None,
        "motion_word_sensitivity": sensitivity,
        "timings_s": timings,
    }
    (out / DONE_FILE).write_text(json.dumps(summary, indent=2))
    return summary
