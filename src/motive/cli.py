"""The ``motive`` command: a thin layer that parses arguments and calls the Python API."""

from __future__ import annotations

import argparse
import json
import os
import sys

from motive import __version__


def _quiet_libraries() -> None:
    """Keep diffusers/transformers from printing per-load progress bars and deprecation chatter."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def _cmd_world(args: argparse.Namespace) -> int:
    from motive.data.synthetic import MOTIONS, WorldConfig, generate_world

    motions = args.motions.split(",") if args.motions else list(MOTIONS)
    config = WorldConfig(
        seed=args.seed,
        clips=args.clips,
        base_clips=args.base_clips,
        pool_clips=args.pool_clips,
        query_clips=args.query_clips,
        eval_clips=args.eval_clips,
        height=args.height,
        width=args.width,
        frames=args.frames,
        fps=args.fps,
        variable_length=args.variable_length,
        pan_fraction=args.pan_fraction,
        motions=motions,
    )
    paths = generate_world(config, args.out, progress=not args.quiet)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from motive.models.tiny import TinyConfig
    from motive.pretrain import PretrainConfig, VaeConfig, is_pretrained, pretrain
    from motive.training import TrainConfig

    if is_pretrained(args.out) and not args.force:
        print(f"{args.out} already holds a pretrained model; use --force to retrain")
        return 0
    tiny = TinyConfig(dim=args.dim, heads=args.heads, layers=args.layers, ffn=args.ffn)
    config = PretrainConfig(
        data=args.data,
        out=args.out,
        seed=args.seed,
        tiny=tiny,
        vae=VaeConfig(steps=args.vae_steps),
        train=TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed),
        sample_prompts=args.samples,
    )
    summary = pretrain(config, eval_data=args.eval_data, progress=not args.quiet)
    summary.pop("config")
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from motive.demo import DemoConfig, run_demo

    config = DemoConfig.quick(args.out) if args.quick else DemoConfig(out=args.out, seed=args.seed)
    if args.steps is not None:
        config.pretrain_steps = args.steps
    run_demo(config, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motive", description="Motion attribution for video generation (Motive).")
    parser.add_argument("--version", action="version", version=f"motive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("world", help="generate the synthetic motion world (base/pool/query/eval datasets)")
    p.add_argument("--out", required=True, help="output folder; one dataset folder per split is written inside")
    p.add_argument("--seed", type=int, default=0, help="world seed (same seed, same clips)")
    p.add_argument("--clips", type=int, default=200, help="clips per split (default 200)")
    for split in ("base", "pool", "query", "eval"):
        p.add_argument(f"--{split}-clips", type=int, default=None, help=f"clips in the {split} split (overrides --clips)")
    p.add_argument("--height", type=int, default=64, help="frame height, multiple of 16")
    p.add_argument("--width", type=int, default=64, help="frame width, multiple of 16")
    p.add_argument("--frames", type=int, default=17, help="frames per clip, 4n+1")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the written clips")
    p.add_argument("--variable-length", action="store_true", help="vary clip length around --frames (4n+1 values)")
    p.add_argument("--pan-fraction", type=float, default=0.15, help="share of base/pool clips with an added camera pan")
    p.add_argument("--motions", default="", help="comma-separated subset of motions (default: all ten)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_world)

    p = sub.add_parser("pretrain", help="pretrain the tiny Wan demo model on a dataset (the world's base split)")
    p.add_argument("--data", required=True, help="dataset folder with metadata.csv")
    p.add_argument("--out", required=True, help="model folder to write (a diffusers WanPipeline)")
    p.add_argument("--steps", type=int, default=3000, help="transformer training steps (default 3000)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per step")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of the transformer")
    p.add_argument("--vae-steps", type=int, default=150, help="autoencoder steps of the tiny VAE")
    p.add_argument("--dim", type=int, default=128, help="transformer hidden size")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--layers", type=int, default=4, help="transformer blocks")
    p.add_argument("--ffn", type=int, default=256, help="feed-forward size")
    p.add_argument("--samples", type=int, default=4, help="sample videos to generate at the end")
    p.add_argument("--eval-data", default=None, help="held-out labelled dataset for the motion-word check")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--force", action="store_true", help="retrain even if --out holds a finished model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("demo", help="run the whole pipeline on the built-in motion world and tiny model")
    p.add_argument("--out", default="runs/demo", help="run folder (reused between runs)")
    p.add_argument("--seed", type=int, default=0, help="seed of training")
    p.add_argument("--steps", type=int, default=None, help="override pretraining steps")
    p.add_argument("--quick", action="store_true", help="a seconds-long miniature (for tests and smoke checks)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:  # our errors carry the file and the reason
        print(f"motive {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
