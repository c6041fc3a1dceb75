"""The demo's fine-tune + evaluate jobs: single-threaded worker processes vs one process on every thread.

Runs with no arguments: builds a random-init tiny model (saved: workers load it by path), a 160-clip
pool and a 90-clip eval split of the motion world in a temporary folder, then runs ``cores`` ×
``motive.demo.finetune_and_evaluate`` (the demo's own job: fine-tune a copy on 100 pool clips for
``FINETUNE_STEPS`` steps, then the held-out losses and 10 generated videos) one after the other in
this process, and as jobs of ``Processes(cores)``: after a warm-up, alternating, three repeats each. Also checks that
both ways give the same losses. Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

FINETUNE_STEPS = 60
REPEATS = 3


def main() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="motive_bench_"))
    os.environ["MOTIVE_CACHE"] = str(tmp / "cache")
    import torch

    from motive.cli.commands import quiet_libraries
    from motive.data.dataset import load_dataset
    from motive.demo.config import DemoConfig
    from motive.demo.render import write_split
    from motive.demo.stages import finetune_and_evaluate, held_out_clips
    from motive.demo.world import WorldConfig
    from motive.inputs import dataset_inputs
    from motive.models.tiny import build_tiny_model
    from motive.parallel import Processes, default_processes

    quiet_libraries()
    n = default_processes()
    world = WorldConfig(seed=0, pool_clips=160, eval_clips=90)
    for split in ("pool", "eval"):
        write_split(world, split, tmp / split, progress=False)
    model = build_tiny_model(seed=0)
    model_dir = model.save_pretrained(tmp / "model")
    config = DemoConfig(finetune_steps=FINETUNE_STEPS)
    held_out, _, other = held_out_clips(load_dataset(tmp / "eval"), "bounce", config)
    dataset_inputs(model, load_dataset(tmp / "pool").clips[:100] + held_out + other)  # fill the cache
    args = [
        (str(model_dir), str(tmp / "pool"), list(range(100)), s, str(tmp / "eval"), "bounce", config)
        for s in range(n)
    ]
    times: dict[str, list[float]] = {"one_process": [], "processes": []}
    losses: dict[str, list[float]] = {}
    with Processes(n) as processes:
        # warm-up outside the timing: start the workers, load the model here and in each worker
        warm = [processes.submit(finetune_and_evaluate, *a) for a in args]
        finetune_and_evaluate(*args[0])
        for job in warm:
            job.result()
        for _ in range(REPEATS):
            start = time.perf_counter()
            results = [finetune_and_evaluate(*a) for a in args]
            times["one_process"].append(time.perf_counter() - start)
            losses["one_process"] = [r["target_motion_loss"] for r in results]
            start = time.perf_counter()
            results = [job.result() for job in [processes.submit(finetune_and_evaluate, *a) for a in args]]
            times["processes"].append(time.perf_counter() - start)
            losses["processes"] = [r["target_motion_loss"] for r in results]
    med = {k: statistics.median(v) for k, v in times.items()}
    diff = max(abs(a - b) for a, b in zip(losses["one_process"], losses["processes"]))
    result = {
        "cores": os.cpu_count(),
        "processes": n,
        "torch_threads": torch.get_num_threads(),
        "jobs": n,
        "finetune_steps": FINETUNE_STEPS,
        "seconds": med,
        "speedup": med["one_process"] / med["processes"],
        "max_abs_loss_diff": diff,
        "repeats": times,
    }
    print(
        f"{n} fine-tune + evaluate jobs ({FINETUNE_STEPS} steps each): one process with "
        f"{torch.get_num_threads()} threads vs {n} single-threaded processes ({os.cpu_count()} cores)"
    )
    print(
        f"  one process {med['one_process']:.1f} s, processes {med['processes']:.1f} s: {result['speedup']:.2f}×"
    )
    print(f"  largest difference of a held-out loss: {diff:.1e}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
