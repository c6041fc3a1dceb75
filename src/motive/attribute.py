"""``attribute``: score a feature store's clips against query clips, vote, select, write the files.

Every method — Motive itself and the baselines ``random`` (seeded), ``motion_magnitude`` (highest
mean flow) and ``mask_similarity`` (cosine between latent-grid motion masks, no gradients) — gives
scores of the same [N, Q] form through ``method_scores``, and one majority vote turns them into a
selection (docs/method.md §6). "w/o MM" is ``motive`` on a store featurized with ``use_mask=False``.
``motive`` scores by cosine (the paper's) or, as options, centred or preconditioned
(``AttributionConfig.score``); a query with a zero feature (no motion) is left out of the vote.
Outputs are described in docs/formats.md "Attribution outputs".
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from motive.data.dataset import Dataset, load_dataset
from motive.data.standardise import StandardiseTarget
from motive.data.video import VideoError
from motive.flags import FLAGS, check_flags, excluded_clips
from motive.gradients import GradientConfig
from motive.inputs import ClipInputs, dataset_inputs
from motive.models.wan import VideoModel, model_fingerprint
from motive.report import write_report
from motive.scoring import (
    SCORES,
    PoolStats,
    Selection,
    centred_scores,
    linear_scores,
    majority_vote,
    mask_similarity,
    pool_stats,
    preconditioner,
    random_scores,
    static_queries,
)
from motive.store import (
    FeaturizeOptions,
    Store,
    StoreMismatch,
    check_compatible,
    dataset_fingerprint,
    featurize,
    is_store,
)

METHODS = ("motive", "random", "motion_magnitude", "mask_similarity")


@dataclass
class AttributionConfig:
    """How a selection is made; saved as ``attribution.json`` beside the outputs."""

    method: str = field(default="motive", metadata={"help": "scoring method", "choices": METHODS})
    percentile: float = field(default=90.0, metadata={"help": "per-query vote threshold percentile τ_q"})
    fraction: float = field(default=0.1, metadata={"help": "share of the pool to select"})
    seed: int = field(default=0, metadata={"help": "seed of the random baseline"})
    report: bool = field(default=True, metadata={"help": "do not write the HTML report (report/index.html)"})
    score: str = field(
        default="cosine",
        metadata={
            "help": "method motive's score: cosine (the paper's), centred (cosine after subtracting the "
            "pool's mean feature) or preconditioned (TRAK-style, (ΦᵀΦ + λI)⁻¹)",
            "choices": SCORES,
        },
    )
    damping: float = field(
        default=0.1,
        metadata={"help": "score preconditioned: λ = damping × trace(ΦᵀΦ) / D' (the mean eigenvalue)"},
    )
    exclude: list[str] = field(
        default_factory=list,
        metadata={
            "help": "flagged clips to keep out of the selection, comma-separated: "
            f"{', '.join(FLAGS)} (listed in excluded.csv with the reason; the vote's thresholds and "
            "--fraction then count the remaining clips)"
        },
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {METHODS}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; choose from {SCORES}")
        if self.score != "cosine" and self.method != "motive":
            raise ValueError(f"score {self.score!r} applies to method 'motive' only, not {self.method!r}")
        if not self.damping > 0:
            raise ValueError(f"damping must be > 0, not {self.damping}")
        check_flags(self.exclude)


def write_selection(
    out: Path,
    table: pd.DataFrame,
    scores: np.ndarray,
    query_names: list[str],
    selection: Selection,
    config: AttributionConfig,
    extra: dict | None = None,
) -> dict[str, Path]:
    """Write scores.parquet, selection.csv (a valid metadata.csv subset + score/votes/rank), bottom.csv."""
    out.mkdir(parents=True, exist_ok=True)
    score_df = pd.DataFrame(scores, columns=query_names)
    score_df.insert(0, "video", table["video"].to_numpy())
    score_df.to_parquet(out / "scores.parquet", index=False)
    rank = np.empty(len(table), int)
    rank[selection.order] = np.arange(1, len(selection.order) + 1)
    full = table.copy()
    full["score"] = selection.mean_score
    full["votes"] = selection.votes
    full["rank"] = np.where(np.isin(np.arange(len(table)), selection.order), rank, -1)
    full.iloc[selection.top].to_csv(out / "selection.csv", index=False)
    full.iloc[selection.bottom].to_csv(out / "bottom.csv", index=False)
    full.iloc[selection.order].to_csv(out / "ranking.csv", index=False)
    summary = {
        "config": asdict(config),
        "clips": len(table),
        "selected": len(selection.top),
        "thresholds": [float(t) if np.isfinite(t) else None for t in selection.thresholds],  # null: skipped
    }
    summary.update(extra or {})
    (out / "attribution.json").write_text(json.dumps(summary, indent=2))
    return {
        "scores": out / "scores.parquet",
        "selection": out / "selection.csv",
        "bottom": out / "bottom.csv",
    }


def dataset_masks(model: VideoModel, dataset: Dataset, store: Store) -> np.ndarray:
    """Latent-grid motion masks of every clip [N, f·h·w] at the store's clip format (through the store's
    input cache); a clip that cannot be read gets a zero mask (it scores 0, as a failed clip's zero
    feature does) and a warning. The masks use the store's mask settings and input cache too."""
    target = StandardiseTarget(**store.meta["standardise"])
    cache = Path(store.meta.get("cache") or store.path / "cache") / "inputs"
    mask = GradientConfig.from_meta(store.meta).mask
    inputs = dataset_inputs(model, list(dataset), mask, keep_errors=True, cache=cache, target=target)
    good = [x for x in inputs if isinstance(x, ClipInputs)]
    if not good:
        raise ValueError(f"{dataset.root}: no clip could be read for its motion mask")
    zero = np.zeros(good[0].mask.numel(), np.float32)
    for x in inputs:
        if isinstance(x, VideoError):
            warnings.warn(f"mask_similarity: {x} (scored as a zero mask)", stacklevel=2)
    return np.stack([x.mask.numpy().ravel() if isinstance(x, ClipInputs) else zero for x in inputs])


def query_features(
    model: VideoModel | None,
    store: Store,
    queries: Dataset,
    query_store: Store | str | Path | None,
    progress: bool = True,
) -> Store:
    """The queries' feature store for ``motive``: ``query_store`` itself when it is a finished
    ``Store`` (no gradient is computed), else a folder that the queries are featurized into with exactly
    the store's settings (read from its meta.json; a finished query store with those settings is
    reused). Either way a query store built otherwise, or a model other than the store's, is refused."""
    if query_store is None:
        raise ValueError("method 'motive' needs the query store or a folder for it")
    if model is not None and (fp := model_fingerprint(model)) != store.meta["model"]["fingerprint"]:
        raise StoreMismatch(
            f"{store.path} was built with another model: {store.meta['model'].get('source')} (fingerprint "
            f"{store.meta['model']['fingerprint']}), not {model.source} ({fp}); give that --model"
        )
    qstore = query_store
    if not isinstance(qstore, Store):
        if model is None:
            raise ValueError("featurizing the queries needs the model")
        config = GradientConfig.from_meta(store.meta)
        target = StandardiseTarget(**store.meta["standardise"])
        options = FeaturizeOptions(overwrite=True)
        qstore = featurize(model, queries.root, query_store, config, target, options, progress)
    check_compatible(store.meta, qstore.meta, "query store")
    return qstore


def _shards(store: Store) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per shard: (memory-mapped rows [n_r, D'], clip ids [m], their rows in the shard [m], which of the
    shard's rows hold a valid clip [n_r])."""
    ok = store.ok  # [N], clip ids are 0..N-1
    out = []
    for s, shard in enumerate(store.shards):
        part = store.index[store.index["shard"] == s]
        ids, rows = part["id"].to_numpy(), part["row"].to_numpy()
        valid = np.zeros(len(shard), bool)
        valid[rows[ok[ids]]] = True
        out.append((shard, ids, rows, valid))
    return out


def store_scores(
    store: Store, queries: np.ndarray, score: str = "cosine", damping: float = 0.1
) -> np.ndarray:
    """Scores [N, Q] (clip order) of the store's clips against query vectors [Q, D'] by ``score``
    (``motive.scoring.SCORES``). ``cosine`` is ``Store.scores``; ``centred`` and ``preconditioned``
    first sum the valid clips' rows over every shard (their mean, and ΦᵀΦ for preconditioned), then
    score shard by shard, a chunk of rows at a time. Failed clips score 0."""
    if score == "cosine":
        return store.scores(queries)
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose from {SCORES}")
    shards = _shards(store)
    d = store.meta["projection"]["d_out"]
    stats = PoolStats(0, np.zeros(d), np.zeros((d, d)) if score == "preconditioned" else None)
    for shard, _, _, valid in shards:
        pool_stats(shard, valid, gram=score == "preconditioned", into=stats)
    if score == "preconditioned":
        weights, _ = preconditioner(stats, queries, damping)  # [D', Q]
    out = np.zeros((len(store.index), len(queries)), np.float32)
    for shard, ids, rows, valid in shards:
        if score == "centred":
            part = centred_scores(shard, queries, valid, mean=stats.mean)
        else:
            part = linear_scores(shard, weights, valid)
        out[ids] = part[rows]
    return out


def method_scores(
    method: str,
    model: VideoModel,
    store: Store,
    queries: Dataset,
    query_store: Store | str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    score: str = "cosine",
    damping: float = 0.1,
) -> tuple[np.ndarray, list[str]]:
    """Scores [N, Q] of the store's clips by ``method``, and a name per column.

    ``motive`` scores against ``query_store`` (``query_features``) by ``score`` with ``damping``
    (``store_scores``; the options apply to ``motive`` only). The query-independent baselines give one
    column."""
    if method != "motive" and score != "cosine":
        raise ValueError(f"score {score!r} applies to method 'motive' only, not {method!r}")
    if method == "motive":
        qstore = query_features(model, store, queries, query_store, progress)
        return store_scores(store, qstore.vectors, score, damping), qstore.index["video"].tolist()
    if method == "random":
        return random_scores(len(store.index), seed), ["random"]
    if method == "motion_magnitude":
        return store.index["mean_flow"].fillna(-np.inf).to_numpy()[:, None], ["mean_flow"]
    if method == "mask_similarity":
        train = load_dataset(store.meta["data"])
        return mask_similarity(dataset_masks(model, train, store), dataset_masks(model, queries, store)), [
            c.relpath for c in queries
        ]
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def skipped_queries(qstore: Store) -> dict[str, str]:
    """The queries that cannot vote, by name, with why: a zero feature (``static_queries``), from a
    clip without motion (W̃ ≡ 0 gives a zero gradient) or a clip that failed (stored as zeros)."""
    static = static_queries(qstore.vectors)  # [Q]
    out = {}
    for name, status, error, flag in zip(
        qstore.index["video"], qstore.index["status"], qstore.index["error"], static
    ):
        if status != "ok":
            out[name] = f"failed ({error})"
        elif flag:
            out[name] = "no motion: its motion mask is empty, so its gradient is zero"
    return out


def ensemble_scores(
    model: VideoModel | None,
    stores: list[Store],
    queries: Dataset,
    query_store: Store | Path,
    config: AttributionConfig,
    progress: bool = True,
) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """``motive``'s scores [N, Q] of the stores' clips by ``config.score``, averaged over ``stores``
    (one store: its scores), with the query names and the queries that cannot vote (``skipped_queries``
    of any store). Each store scores against the queries featurized with its own settings: the first
    into ``query_store``, store i into ``query_store_i`` beside it. Several stores of the same clips
    under other attribution seeds form an ensemble (TRAK averages over projections the same way); the
    scores are summed as each store is read, so memory is one store's [N, Q] beyond the sum."""
    if len(stores) > 1:
        if isinstance(query_store, Store):
            raise ValueError(
                "an ensemble of stores needs the queries' dataset folder (each store featurizes them "
                "with its own settings), not one query store"
            )
        first = stores[0]
        for other in stores[1:]:
            if (
                other.meta["dataset"]["fingerprint"] != first.meta["dataset"]["fingerprint"]
                or other.index["video"].tolist() != first.index["video"].tolist()
            ):
                raise StoreMismatch(f"{other.path}: not a store of the same clips as {first.path}")
    total, skipped, names = None, {}, []
    for i, store in enumerate(stores):
        where = query_store if i == 0 else Path(query_store).with_name(f"query_store_{i}")
        qstore = query_features(model, store, queries, where, progress)
        part = store_scores(store, qstore.vectors, config.score, config.damping)  # [N, Q]
        total = part if total is None else total + part
        skipped |= skipped_queries(qstore)
        names = qstore.index["video"].tolist()
    assert total is not None
    return total / len(stores), names, skipped


def attribute(
    model: VideoModel,
    store_path: str | Path | list[str | Path],
    queries: str | Path,
    out: str | Path,
    config: AttributionConfig | None = None,
    progress: bool = True,
) -> dict:
    """Score the store's clips against ``queries`` with ``config.method`` and write the selection
    (scores.parquet, selection.csv, bottom.csv, ranking.csv, attribution.json) into ``out``.

    ``queries`` is a dataset folder of query clips, or a finished feature store of them (built with
    the same settings), which a second attribution with the same queries reuses at no gradient cost;
    ``model`` may then be None for every method but ``mask_similarity``. ``store_path`` may list several
    stores of the same clips (``motive`` only; e.g. other attribution seeds): their scores are averaged
    (``ensemble_scores``) and the first store stands for them in the outputs.

    With ``motive``, a query whose feature is zero (no motion, or a failed clip: ``skipped_queries``)
    is left out of the vote with a warning naming it; its column in scores.parquet is NaN and
    attribution.json lists it under ``skipped_queries``. When no query is left, a ``ValueError``."""
    config = config or AttributionConfig()
    out = Path(out)
    store_paths = [store_path] if isinstance(store_path, (str, Path)) else list(store_path)
    if not store_paths:
        raise ValueError("no feature store given")
    if len(store_paths) > 1 and config.method != "motive":
        raise ValueError(f"an ensemble of stores applies to method 'motive' only, not {config.method!r}")
    stores = [Store.open(p) for p in store_paths]
    store = stores[0]
    train = load_dataset(store.meta["data"])
    query_store: Store | Path = out / "query_store"
    if is_store(queries):
        query_store = Store.open(queries)
        query_set = load_dataset(query_store.meta["data"])
    else:
        query_set = load_dataset(queries)
    if len(train) != len(store.index) or dataset_fingerprint(train) != store.meta["dataset"]["fingerprint"]:
        raise StoreMismatch(
            f"{store.path}: the dataset at {store.meta['data']} changed since the store was written"
        )
    extra: dict = {"store": str(Path(store_paths[0]).resolve()), "queries": str(Path(queries).resolve())}
    if len(store_paths) > 1:
        extra["ensemble"] = [str(Path(p).resolve()) for p in store_paths]
    kept = None  # [Q] the columns that vote; None: all
    if config.method == "motive":
        scores, names, skipped = ensemble_scores(model, stores, query_set, query_store, config, progress)
        extra["use_mask"] = store.meta["gradient"]["use_mask"]
        if len(skipped) == len(names):
            raise ValueError(
                f"every query has a zero feature (no motion, or failed): nothing to vote on ({', '.join(names)})"
            )
        for name, why in skipped.items():
            warnings.warn(f"query {name}: {why}; left out of the vote (its scores are NaN)", stacklevel=2)
        if skipped:
            kept = ~np.isin(names, list(skipped))
            scores[:, ~kept] = np.nan
        extra["skipped_queries"] = skipped
    else:
        scores, names = method_scores(
            config.method, model, store, query_set, query_store, config.seed, progress
        )
    valid = np.logical_and.reduce([one.ok for one in stores])  # [N] a clip failed in any store: out
    if config.exclude:  # the first store's motion record stands for all (same clips)
        out_mask, reasons = excluded_clips(store.index, config.exclude)  # [N]
        valid &= ~out_mask
        out.mkdir(parents=True, exist_ok=True)
        listed = train.table.assign(reason=["; ".join(r) for r in reasons])[out_mask]
        listed.to_csv(out / "excluded.csv", index=False)
        extra["excluded"] = {f: sum(f in r for r in reasons) for f in config.exclude}
        extra["excluded_clips"] = int(out_mask.sum())
    selection = majority_vote(scores, config.percentile, config.fraction, valid=valid, kept=kept)
    paths = write_selection(out, train.table, scores, names, selection, config, extra)
    if config.report:
        paths["report"] = write_report(out)
    return {"selection": selection, "scores": scores, "paths": paths, "train": train, "queries": query_set}
