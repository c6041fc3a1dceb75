"""``motive demo``: the whole pipeline on the built-in motion world and tiny model.

Stages run in order and reuse what a previous run left in the output folder (a world generated with
the same settings, a finished pretraining), so a second ``make demo`` skips straight to new work.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from motive.data.synthetic import WorldConfig, generate_world, world_exists
from motive.pretrain import PretrainConfig, VaeConfig, is_pretrained, pretrain
from motive.training import TrainConfig


@dataclass
class DemoConfig:
    """Sizes of the demo. ``quick()`` gives a seconds-long version for tests."""

    out: str = "runs/demo"
    seed: int = 0
    world: WorldConfig = field(
        default_factory=lambda: WorldConfig(seed=0, base_clips=800, pool_clips=1000, query_clips=40, eval_clips=100)
    )
    pretrain_steps: int = 3000
    vae_steps: int = 150

    @classmethod
    def quick(cls, out: str) -> DemoConfig:
        world = WorldConfig(seed=0, clips=12, query_clips=10, eval_clips=10)
        return cls(out=out, world=world, pretrain_steps=4, vae_steps=2)


def run_demo(config: DemoConfig, progress: bool = True, log=print) -> dict:
    """Run world → pretrain; returns a summary also written to ``OUT/summary.json``."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    world_dir, model_dir = out / "world", out / "base_model"

    t = time.perf_counter()
    if world_exists(world_dir, config.world):
        log(f"[demo] world: reusing {world_dir}")
    else:
        log(f"[demo] world: generating into {world_dir}")
        generate_world(config.world, world_dir, progress)
    timings["world_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if is_pretrained(model_dir):
        log(f"[demo] pretrain: reusing {model_dir}")
        summary = json.loads((model_dir / "pretrain.json").read_text())
    else:
        log(f"[demo] pretrain: training the tiny Wan model into {model_dir}")
        pcfg = PretrainConfig(
            data=str(world_dir / "base"),
            out=str(model_dir),
            seed=config.seed,
            vae=VaeConfig(steps=config.vae_steps),
            train=TrainConfig(steps=config.pretrain_steps, seed=config.seed),
        )
        summary = pretrain(pcfg, eval_data=str(world_dir / "eval"), progress=progress)
    timings["pretrain_s"] = time.perf_counter() - t

    result = {
        "config": asdict(config),
        "world": str(world_dir),
        "base_model": str(model_dir),
        "pretrain": {k: v for k, v in summary.items() if k != "config"},
        "timings_s": timings,
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    sens = summary.get("motion_word_sensitivity") or {}
    if sens:
        log(
            "[demo] motion-word check on held-out clips: motion-weighted loss "
            f"{sens['weighted_loss_true']:.4f} with the true motion words vs {sens['weighted_loss_wrong']:.4f} "
            f"with wrong ones (true lower on {100 * sens['share_of_clips_true_word_lower']:.0f}% of clips)"
        )
    log(f"[demo] done in {sum(timings.values()):.0f}s; summary: {out / 'summary.json'}")
    return result
