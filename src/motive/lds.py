"""The linear datamodeling score (LDS): a counterfactual test of attribution scores.

Attribution scores claim "training on clip n helps query q by about S[n, q]". The LDS (TRAK, Park et
al. 2023; D-TRAK for diffusion models) checks the claim against retraining: draw M random subsets of
the training pool, each of exactly round(α·N) clips; fine-tune a fresh copy of the base model on each;
measure every query's loss. If the scores are additive predictions of the effect, the summed scores of
a subset's clips, Σ_{n ∈ S_m} S[n, q], should rank the M subsets as the measured effect ranks them.
LDS(q) is Spearman's ρ over the M subsets between the two; the table reports its mean over queries.

Sign convention: a positive score means training on the clip *helps* the query, so the measured
outcome is the query's loss DECREASE, ``outcome[m, q] = base_loss[q] − finetuned_loss[m, q]`` (larger
= the subset helped more). A perfect attribution method has LDS → 1; random scores ≈ 0; scores of the
wrong sign → −1. dattri (``dattri.metric.lds``) uses the same convention through its ground truth, the
negated loss of each retrained model (``calculate_lds_ground_truth``); the base loss is a per-query
constant, which Spearman ignores, so the two give the same numbers (tests/test_lds.py checks it).

The loss is the motion-weighted flow-matching loss (``motive.loss``) of each query clip averaged over a
fixed grid of (σ, ε) that every model shares (common random numbers, as ``evaluate.held_out_losses``):
differences between subsets' models are not noise-draw luck. Every subset's fine-tune uses the same
training seed, so batch positions, σ and ε are drawn identically and only which clip sits at a position
differs. Each subset's result is written to ``OUT/subsets/{m:03d}.json`` when it is done; a rerun
skips finished subsets (a file written under other settings is refused with ``LDSMismatch``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from motive.data.dataset import Clip, Dataset, load_dataset
from motive.evaluate import LossGrid, clip_losses
from motive.files import write_text_atomic
from motive.finetune import FinetuneConfig, train_on
from motive.log import logger
from motive.models.devices import resolve_device
from motive.models.wan import VideoModel, model_fingerprint
from motive.store import dataset_fingerprint

SUBSETS = "subsets"  # OUT/subsets/{m:03d}.json: one file per finished subset
BASE = "base.json"  # OUT/base.json: the base model's query losses
SUMMARY = "lds.json"


class LDSMismatch(ValueError):
    """A result in the output folder was computed under other settings (model, data or recipe)."""


@dataclass
class LDSConfig:
    """A counterfactual test: M subsets of α·N pool clips, each fine-tuned from the base model.

    The recipe defaults to the demo's fine-tune (``DemoConfig``: 150 steps of 8 clips at lr 1e-4, the
    rate that moves the tiny model within 150 steps), so a subset's model is trained as the demo's
    selections are; the loss grid defaults to the demo's evaluation grid (6 σ × 4 draws)."""

    subsets: int = field(default=32, metadata={"help": "number of random subsets M (≥ 2)"})
    alpha: float = field(default=0.5, metadata={"help": "share of the pool in each subset, 0 < α < 1"})
    seed: int = field(default=0, metadata={"help": "seed of the subset draws"})
    steps: int = field(default=150, metadata={"help": "fine-tuning steps per subset"})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate of each fine-tune"})
    batch_size: int = field(default=8, metadata={"help": "clips per fine-tuning step"})
    train_seed: int = field(default=0, metadata={"help": "training seed, shared by every subset"})
    grid: LossGrid = field(default_factory=LossGrid)
    device: str = field(default="auto", metadata={"help": "torch device (auto: cuda when present)"})

    def __post_init__(self) -> None:
        if self.subsets < 2:
            raise ValueError(f"subsets (M) must be ≥ 2 for a rank correlation, not {self.subsets}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), not {self.alpha}")
        if isinstance(self.grid, dict):  # read back from json
            self.grid = LossGrid(**self.grid)

    def settings(self) -> dict:
        """What a subset's result depends on (not M: subset m is the same whatever M is)."""
        d = asdict(self)
        d.pop("subsets")
        return d


def subset_size(n: int, alpha: float) -> int:
    """Clips per subset: round(α·N) (Python's round), at least 1 and at most N − 1."""
    return min(max(1, round(alpha * n)), n - 1)


def sample_subsets(n: int, m: int, alpha: float, seed: int) -> np.ndarray:
    """M random subsets of N clips as a mask [M, N], each exactly ``subset_size(n, alpha)`` clips.
    Subset i is drawn from its own generator (seed, i), so it does not depend on M."""
    if n < 2:
        raise ValueError(f"need at least 2 clips to draw subsets from, not {n}")
    k = subset_size(n, alpha)
    out = np.zeros((m, n), dtype=bool)  # [M, N]
    for i in range(m):
        out[i, np.random.default_rng([seed, i]).choice(n, size=k, replace=False)] = True
    return out


def query_losses(model: VideoModel, queries: list[Clip], grid: LossGrid) -> np.ndarray:
    """Each query clip's motion-weighted loss averaged over ``grid`` → [Q] (``evaluate.clip_losses``)."""
    return clip_losses(model, queries, grid)[0]


def undefined_queries(predicted: np.ndarray, outcomes: np.ndarray) -> dict[int, str]:
    """Queries whose rank correlation is undefined, with why: a constant column of the predicted
    effects [M, Q] or of the outcomes [M, Q] (all tied: no ranking), or a non-finite value."""
    reasons: dict[int, str] = {}
    for q in range(outcomes.shape[1]):
        if not (np.isfinite(predicted[:, q]).all() and np.isfinite(outcomes[:, q]).all()):
            reasons[q] = "non-finite predicted effect or outcome"
            continue
        why = [
            f"the {what} is equal for every subset (no ranking)"
            for what, column in (("summed score", predicted[:, q]), ("measured outcome", outcomes[:, q]))
            if np.ptp(column) == 0
        ]
        if why:
            reasons[q] = "; ".join(why)
    return reasons


def predicted_effects(scores: np.ndarray, subsets: np.ndarray, queries: int) -> np.ndarray:
    """Summed scores of each subset's clips, Σ_{n ∈ S_m} S[n, q] → [M, Q]; a one-column score (a
    query-independent baseline) is broadcast to all ``queries``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != subsets.shape[1]:
        raise ValueError(f"scores must be [N={subsets.shape[1]}, Q], got {scores.shape}")
    if scores.shape[1] == 1 and queries != 1:
        scores = np.repeat(scores, queries, axis=1)  # [N, Q]
    if scores.shape[1] != queries:
        raise ValueError(f"scores have {scores.shape[1]} columns, the outcomes {queries} queries")
    return subsets.astype(np.float64) @ scores  # [M, Q]


def lds_scores(scores: np.ndarray, subsets: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """LDS per query → [Q]: Spearman's ρ over the M subsets between the summed scores of each subset's
    clips (``scores`` [N, Q] or [N, 1], ``subsets`` [M, N] bool) and the measured outcome [M, Q] (the
    loss decrease: base − fine-tuned; see the module docstring). Ties get average ranks; a query whose
    ρ is undefined (``undefined_queries``) is NaN."""
    outcomes = np.asarray(outcomes, dtype=np.float64)
    if outcomes.shape[0] != subsets.shape[0]:
        raise ValueError(f"outcomes have {outcomes.shape[0]} rows, subsets {subsets.shape[0]}")
    pred = predicted_effects(scores, subsets, outcomes.shape[1])  # [M, Q]
    undefined = undefined_queries(pred, outcomes)
    out = np.full(outcomes.shape[1], np.nan)  # [Q]
    for q in range(outcomes.shape[1]):
        if q not in undefined:
            out[q] = stats.spearmanr(pred[:, q], outcomes[:, q]).statistic
    return out


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) over the finite values: a Student-t interval, mean ± t·sd/√n. NaNs (undefined
    queries) are left out; with fewer than 2 values the bounds are NaN. The queries share the same M
    models, so they are not independent draws: the interval shows the spread over queries, not the
    uncertainty from the finite number of subsets."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def _subset_dataset(pool: Dataset, members: np.ndarray) -> Dataset:
    """A shallow copy of ``pool`` holding only the clips at ``members`` (as the demo's fine-tunes)."""
    selected = copy.copy(pool)
    selected.clips = [pool.clips[j] for j in members]
    return selected


def _read_result(file: Path, settings: dict, what: str) -> dict | None:
    """A finished result file, or None when absent; one from other settings raises ``LDSMismatch``."""
    if not file.is_file():
        return None
    saved = json.loads(file.read_text())
    if saved.get("settings") != settings:
        old = saved.get("settings") or {}
        diffs = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        raise LDSMismatch(
            f"{file}: {what} was computed under other settings (differs in: {', '.join(diffs)}); "
            "use another output folder or delete it"
        )
    return saved


def _digest(members: np.ndarray) -> str:
    """Identifies a subset's clip indices, so a file of another draw is noticed."""
    return hashlib.sha256(np.asarray(members, dtype=np.int64).tobytes()).hexdigest()[:16]


def run_lds(
    base_model_dir: str | Path,
    pool_dir: str | Path,
    query_dir: str | Path,
    out: str | Path,
    config: LDSConfig | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune a fresh copy of the base model on each of M subsets of the pool and measure every
    query's loss → the summary also written to ``OUT/lds.json``, with ``OUT/outcomes.npy`` [M, Q]
    (loss decrease: base − fine-tuned) and ``OUT/subsets.npy`` [M, N] bool. Resumable: see the module
    docstring."""
    from tqdm.auto import tqdm

    config = config or LDSConfig()
    out = Path(out)
    (out / SUBSETS).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool, queries = load_dataset(pool_dir), load_dataset(query_dir)
    base = VideoModel.from_pretrained(str(base_model_dir), device=resolve_device(config.device))
    settings = {
        **config.settings(),
        "model": model_fingerprint(base),
        "pool": dataset_fingerprint(pool),
        "queries": dataset_fingerprint(queries),
    }
    query_clips = list(queries)
    # every prompt embedded once, kept in the base model's memo (each copy inherits it), encoder freed
    base.cache_prompts([c.prompt for c in pool] + [c.prompt for c in query_clips] + [""])
    recipe = FinetuneConfig(
        lr=config.lr,
        steps=config.steps,
        batch_size=config.batch_size,
        seed=config.train_seed,
        device=config.device,
        checkpointing=False,  # recomputing activations only saves memory; these runs are short
    )
    # the base losses depend on the model, the queries, the grid and the device, not on the recipe
    base_settings = {k: settings[k] for k in ("grid", "device", "model", "queries")}
    saved = _read_result(out / BASE, base_settings, "the base model's losses")
    if saved is None:
        losses = query_losses(base, query_clips, config.grid).tolist()
        saved = {"settings": base_settings, "losses": losses}
        write_text_atomic(out / BASE, json.dumps(saved, indent=2))
    base_losses = np.array(saved["losses"])  # [Q]
    subsets = sample_subsets(len(pool), config.subsets, config.alpha, config.seed)  # [M, N]
    losses = np.empty((config.subsets, len(queries)))  # [M, Q]
    computed: list[int] = []
    for m in tqdm(range(config.subsets), desc="lds subsets", disable=not progress):
        members = np.flatnonzero(subsets[m])
        file = out / SUBSETS / f"{m:03d}.json"
        result = _read_result(file, settings, f"subset {m}")
        if result is not None and result.get("clips") != _digest(members):
            raise LDSMismatch(f"{file}: holds another draw of subset {m}; delete it to recompute")
        if result is None:
            t1 = time.perf_counter()
            model = copy.deepcopy(base)  # the base weights, untouched by earlier subsets
            train, _ = train_on(model, _subset_dataset(pool, members), recipe, progress=False)
            result = {
                "settings": settings,
                "subset": m,
                "clips": _digest(members),
                "losses": query_losses(model, query_clips, config.grid).tolist(),
                "train_loss": float(np.mean(train[-20:])),
                "seconds": time.perf_counter() - t1,
            }
            write_text_atomic(file, json.dumps(result, indent=2))
            computed.append(m)
            logger.info("lds subset %d: %.1fs", m, result["seconds"])
        losses[m] = result["losses"]
    outcomes = base_losses[None, :] - losses  # [M, Q] loss decrease: > 0 when the subset helped
    np.save(out / "outcomes.npy", outcomes)
    np.save(out / "subsets.npy", subsets)
    summary = {
        "config": asdict(config),
        "settings": settings,
        "base_model": str(base_model_dir),
        "pool": str(pool_dir),
        "query": str(query_dir),
        "pool_clips": [c.relpath for c in pool],
        "query_clips": [c.relpath for c in queries],
        "subset_size": int(subsets[0].sum()),
        "base_losses": base_losses.tolist(),
        "mean_loss_decrease": outcomes.mean(axis=1).tolist(),  # per subset
        "computed": computed,  # subsets fine-tuned by this call (the rest were read back)
        "seconds": time.perf_counter() - t0,
    }
    write_text_atomic(out / SUMMARY, json.dumps(summary, indent=2))
    return summary


def _aligned_scores(scores: np.ndarray | str | Path, pool: list[str], queries: list[str]) -> np.ndarray:
    """Scores [N, Q] or [N, 1] as an array in the run's pool order; a ``scores.parquet`` (``video``
    column, then one column per query, or one query-independent column) is aligned by clip name."""
    if not isinstance(scores, (str, Path)):
        return np.asarray(scores, dtype=np.float64)
    df = pd.read_parquet(scores).set_index("video")
    missing = sorted(set(pool) - set(df.index))
    if missing:
        raise ValueError(f"{scores}: no score for {len(missing)} pool clips (e.g. {missing[0]})")
    df = df.loc[pool]
    if df.shape[1] == 1 and df.columns[0] not in queries:
        return df.to_numpy(np.float64)  # [N, 1]
    absent = [q for q in queries if q not in df.columns]
    if absent:
        raise ValueError(f"{scores}: no column for {len(absent)} queries (e.g. {absent[0]})")
    return df[queries].to_numpy(np.float64)  # [N, Q]


def lds_table(out: str | Path, methods: dict[str, np.ndarray | str | Path]) -> dict:
    """LDS of each method's scores (an array [N, Q] / [N, 1] in the run's pool and query order, or a
    ``scores.parquet`` path) against a finished ``run_lds`` folder → per method: mean, 95% t-interval
    over queries, the per-query values and the undefined queries with why. A query whose scores are
    all non-finite (left out of the vote: no motion) is undefined; other non-finite scores (a clip
    that failed) count as 0, as a failed clip's zero feature scores."""
    out = Path(out)
    summary = json.loads((out / SUMMARY).read_text())
    outcomes, subsets = np.load(out / "outcomes.npy"), np.load(out / "subsets.npy")  # [M, Q], [M, N]
    queries = summary["query_clips"]
    table: dict[str, dict] = {}
    for name, given in methods.items():
        scores = _aligned_scores(given, summary["pool_clips"], queries)
        if scores.shape[1] == 1:
            scores = np.repeat(scores, len(queries), axis=1)  # [N, Q]
        finite = np.isfinite(scores)
        no_scores = ~finite.any(axis=0)  # [Q]
        replaced = int((~finite[:, ~no_scores]).sum())
        values = lds_scores(np.where(finite, scores, 0.0), subsets, outcomes)  # [Q]
        pred = predicted_effects(np.where(finite, scores, 0.0), subsets, len(queries))
        reasons = undefined_queries(pred, outcomes)
        for q in np.flatnonzero(no_scores):
            values[q] = np.nan
            reasons[int(q)] = "no scores for this query (left out of the vote)"
        mean, lo, hi = mean_ci(values)
        table[name] = {
            "lds": mean,
            "ci_low": lo,
            "ci_high": hi,
            "queries": int(np.isfinite(values).sum()),
            "per_query": [None if not np.isfinite(v) else float(v) for v in values],
            "undefined": {queries[q]: why for q, why in sorted(reasons.items())},
            "nonfinite_scores_as_zero": replaced,
        }
    return {"subsets": int(len(subsets)), "interval": "95% Student-t over queries", "methods": table}
