"""Fine-tuning memory and speed at real shape: full fine-tuning and LoRA of Wan2.1-1.3B-shaped weights.

Builds a pipeline folder with ``motive.models.shapes`` (released configs, random weights) and a dataset
of real clips from ../shared/data, then, for each mode in its own subprocess (clean peaks): loads the
model, caches the clips' latents and prompts, and times ``motive.finetune.train_on`` — seconds per
optimiser step (the difference between an N-step and a 1-step run, so loading and encoding cancel),
peak device memory during training (``torch.cuda.max_memory_allocated``) and peak host memory (VmHWM).
A first, untimed run fills the input and prompt caches. One transformer is resident at a time: each run
loads the base weights afresh and frees them before the next. ``--pipeline DIR`` reuses the folder that
``real_path.py --pipeline DIR`` built (or builds it there). Each mode's row is printed as it ends.
Batch 1, gradient checkpointing, AdamW; bf16 autocast on CUDA (fp32 on a CPU).

On a CPU it runs the reduced model (the 1.3B transformer's width/heads/FFN with ``--layers`` blocks,
clips at 17×128×224); on a GPU (``--full``, the default there) full depth at 81×480×832. Targets on an
H200: full fine-tuning fits in 80 GiB at batch 1, LoRA (rank 32) in 24 GiB.

    python benchmarks/finetune_scale.py            # CPU: reduced model
    python benchmarks/finetune_scale.py --full     # GPU: Wan2.1-1.3B at 81×480×832
    python benchmarks/finetune_scale.py --smoke    # seconds: checks the script runs

Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from real_path import CLIPS, child_env, dataset, pipeline  # noqa: E402  (the same folder and real clips)


def child(folder: str, data: str, mode: str, steps: int, frames: int, height: int, width: int) -> dict:
    """One mode in this process: {"step_s", "device_gib", "host_gib", "trainable"}."""
    import gc

    from motive.data.dataset import load_dataset
    from motive.finetune import FinetuneConfig, train_on
    from motive.log import peak_host_gib
    from motive.models.checkpoint import ModelSettings
    from motive.models.wan import VideoModel

    settings = ModelSettings(text_len=512, frames=frames, height=height, width=width, fps=16.0)
    clips = load_dataset(data)
    cuda = False
    with tempfile.TemporaryDirectory() as cache:
        times = {}
        for n in (1, 1, steps):  # the first run fills the input and prompt caches; not timed
            model = VideoModel.from_pretrained(folder)  # each run starts from the base weights
            model.settings, model.text_cache = settings, Path(cache) / "text"
            cuda = model.device.type == "cuda"
            config = FinetuneConfig(
                model=folder, data=data, out=cache, steps=n, batch_size=1, lr=1e-5,
                lora_rank=32 if mode == "lora" else 0, checkpoint_every=0,
            )  # fmt: skip
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            train_on(model, clips, config, progress=False)
            if cuda:
                torch.cuda.synchronize()
            times[n] = time.perf_counter() - start
            trainable = sum(p.numel() for p in model.transformer.parameters() if p.requires_grad)
            device_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
            del model, config  # this run's model (and optimiser) go before the next run loads its own
            gc.collect()
            torch.cuda.empty_cache() if cuda else None
    out = {
        "step_s": round((times[steps] - times[1]) / (steps - 1), 3),
        "host_gib": round(peak_host_gib(), 2),
        "trainable": trainable,
    }
    if cuda:
        out["device_gib"] = round(device_gib, 2)
    return out


def main() -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action=argparse.BooleanOptionalAction, default=cuda)
    ap.add_argument("--layers", type=int, default=1, help="transformer blocks of the reduced model")
    ap.add_argument("--steps", type=int, default=4, help="optimiser steps timed (minus a 1-step run)")
    ap.add_argument("--modes", default="full,lora", help="which of full, lora, in this order")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--pipeline", default=None, help="pipeline folder to reuse (built there if absent)")
    ap.add_argument("--videos", type=Path, default=CLIPS, help="folder of the real clips")
    ap.add_argument("--child", nargs=7, metavar=("FOLDER", "DATA", "MODE", "STEPS", "F", "H", "W"))
    args = ap.parse_args()
    if args.child:
        folder, data, mode, steps, f, h, w = args.child
        print(json.dumps(child(folder, data, mode, int(steps), int(f), int(h), int(w))))
        return
    fmt = (81, 480, 832) if args.full else (5, 64, 64) if args.smoke else (17, 128, 224)
    device = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"Wan2.1-1.3B-shaped ({'full depth' if args.full else 'reduced'}), batch 1 at {fmt[0]}×{fmt[1]}×{fmt[2]}, on {device}")  # fmt: skip
    print("| mode | trainable parameters | s / step | peak device GiB | peak host GiB |")
    print("|---|---|---|---|---|", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = Path(args.pipeline) if args.pipeline else work / "pipeline"
        folder = pipeline(
            folder, "wan2.1-t2v-1.3b", args.full, args.layers, args.smoke, "cuda" if cuda else "cpu"
        )
        data = dataset(work / "data", 2, args.videos)
        for mode in args.modes.split(","):
            cmd = [sys.executable, __file__, "--child", str(folder), str(data), mode, str(args.steps), *map(str, fmt)]  # fmt: skip
            env = {**child_env(), "MOTIVE_CACHE": str(work / "cache")}  # not the user's cache
            run = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if run.returncode:
                sys.exit(f"{mode} failed:\n{run.stderr[-3000:]}")
            r = results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            step = (
                r["step_s"] if r["step_s"] > 0 else f"below timing noise ({r['step_s']})"
            )  # N − 1 steps ≤ noise
            print(f"| {mode} | {r['trainable']:,} | {step} | {r.get('device_gib', '–')} | {r['host_gib']} |", flush=True)  # fmt: skip
    print(json.dumps({"full": args.full, "device": device, "format": fmt, "steps": args.steps, **results}))


if __name__ == "__main__":
    main()
