"""Oracle vs random fine-tunes on one base model: does the harness tell them apart?

The development measurement behind docs/demo.md "The fine-tuning harness". For 3 seeds each, fine-tune a
copy of MODEL on 100 pool clips of exactly MOTION (oracle) or 100 random pool clips, then report the
change against the base of the held-out motion-weighted loss on MOTION's eval clips ("target"), on
every other moving motion's eval clips ("other"), and their difference (specificity), all on one
(σ, ε) grid with 4 draws per σ.

    python experiments/finetune_harness.py --model runs/demo/base_model \
        --pool runs/demo/world/pool --eval runs/demo/world/eval [--motion bounce --lr 1e-4 --steps 150]
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from motive.data.dataset import load_dataset
from motive.evaluate import EvalConfig, LossGrid, held_out_losses
from motive.finetune import FinetuneConfig, train_on
from motive.models.wan import VideoModel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--eval", required=True)
    p.add_argument("--motion", default="bounce")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()

    torch.set_num_threads(2)
    model = VideoModel.from_pretrained(args.model)
    pool = load_dataset(args.pool)
    ev = load_dataset(args.eval)
    pool_motion = pool.table["motion"].to_numpy()
    held = [c for c in ev if c.extra.get("motion") == args.motion]
    other = [c for c in ev if c.extra.get("motion") not in (args.motion, "static")]
    cfg = EvalConfig(grid=LossGrid(draws_per_sigma=4))

    def both(m: VideoModel) -> tuple[float, float]:
        return held_out_losses(m, held, cfg)[0], held_out_losses(m, other, cfg)[0]

    base = both(model)
    print(f"{args.motion} lr {args.lr} steps {args.steps}: base target {base[0]:.5f} other {base[1]:.5f}")
    deltas: dict[str, list[tuple[float, float]]] = {}
    for method in ("oracle", "random"):
        for seed in (0, 1, 2):
            rng = np.random.default_rng(seed)
            if method == "oracle":
                idx = rng.permutation(np.flatnonzero(pool_motion == args.motion))[:100]
            else:
                idx = rng.permutation(len(pool))[:100]
            selected = copy.copy(pool)
            selected.clips = [pool.clips[j] for j in idx]
            tuned = copy.deepcopy(model)
            ft = FinetuneConfig(lr=args.lr, steps=args.steps, batch_size=8, seed=seed)
            train_on(tuned, selected, ft, progress=False)
            t, o = both(tuned)
            deltas.setdefault(method, []).append((t - base[0], o - base[1]))
            print(f"  {method} seed {seed}: Δtarget {t - base[0]:+.5f} Δother {o - base[1]:+.5f}")
    oracle, random = np.array(deltas["oracle"]), np.array(deltas["random"])  # [3, 2]
    for name, o, r in (
        ("Δtarget", oracle[:, 0], random[:, 0]),
        ("Δother", oracle[:, 1], random[:, 1]),
        ("specificity", oracle[:, 0] - oracle[:, 1], random[:, 0] - random[:, 1]),
    ):
        print(f"{name}: oracle {o.mean():+.5f} ± {o.std():.5f}  random {r.mean():+.5f} ± {r.std():.5f}")


if __name__ == "__main__":
    main()
