"""One table of a finished demo run: every method × retrieval, counterfactual test and curation.

Columns, each a mean with its 95% Student-t interval:

- same-motion / same-colour precision@10% per query (averaged over the attribution seeds whose
  stores exist), interval over the queries with motion (static queries have no ranking);
- LDS (``experiments/lds.py`` must have run: RUN/lds/lds_table.json), interval over queries;
- held-out target-motion loss, specificity (the demo's fine-tunes, interval over the fine-tuning
  seeds) and the target share of each method's selection (every gradient method: the vote over the
  target motion's queries, interval over attribution seeds);
- the motion-word check of the base model beside it, since every figure depends on it.

Rows: Motive (the paper's cosine; its centred and preconditioned scores; the temporal-difference and
appearance-deflated features when ``score_variants.py --featurize`` made their stores), w/o MM, Motive at the paper's
σ, mask similarity, motion magnitude, random, and the oracle's fine-tunes.

Also the paper's two analyses on ground truth (``analyses``): the cross-motion overlap of top-10%
selections and the relation of scores to motion magnitude, with plots.

    python experiments/experiment.py runs/demo     # RUN/experiment.{md,json}, RUN/experiment_*.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from lds import variant_scores  # experiments/lds.py: a pool store scored against its query store
from scipy import stats
from score_variants import OPTIONS  # experiments/score_variants.py: the featurize options

from motive.data.dataset import load_dataset
from motive.demo.measures import topk_precision
from motive.lds import mean_ci
from motive.scoring import majority_vote
from motive.store import Store

# (row, feature-store family, score) of the gradient-based methods
FEATURE_METHODS = (
    ("motive", "motive", "cosine"),
    ("motive_centred", "motive", "centred"),
    ("motive_preconditioned", "motive", "preconditioned"),
    *((f"motive_{o}", f"motive_{o}", "cosine") for o in OPTIONS),
    ("no_motion_mask", "no_motion_mask", "cosine"),
    ("motive_paper_sigma", "motive_paper_sigma", "cosine"),
)
FINETUNE_KEYS = ("target_motion_loss", "target_specificity", "target_fraction")


def ci_from_summary(summary: dict, key: str) -> tuple[float, float, float]:
    """(mean, low, high) over fine-tuning seeds: from the per-seed values when the run kept them, else
    from the mean and the population std over ``seeds`` values (what older results.json hold)."""
    if f"{key}_per_seed" in summary:
        return mean_ci(np.asarray(summary[f"{key}_per_seed"]))
    n, mean, std = summary["seeds"], summary[key], summary[f"{key}_std"]
    if n < 2 or not np.isfinite(std):
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * std * np.sqrt(n / (n - 1)) / np.sqrt(n))
    return mean, mean - half, mean + half


def precision_rows(run: Path, baselines: dict[str, np.ndarray], target: str) -> dict[str, dict]:
    """Per-query precision of every method, averaged over seeds → mean and interval over queries; for
    the gradient methods also the share of ``target`` clips in the selection the demo would fine-tune
    on (the vote over the target motion's queries, top 10%), interval over seeds."""
    pool, queries = load_dataset(run / "world" / "pool"), load_dataset(run / "world" / "query")
    labels = {k: (pool.table[k].to_numpy(), queries.table[k].to_numpy()) for k in ("motion", "colour")}
    cols = np.flatnonzero(labels["motion"][1] == target)  # the target motion's queries
    moving = None
    per_method: dict[str, dict[str, list[np.ndarray]]] = {}
    shares: dict[str, list[float]] = {}
    for row, family, score in FEATURE_METHODS:
        for path in sorted((run / "stores").glob(f"{family}_seed*")):
            scores = variant_scores(path, queries, score)  # [N, Q], NaN for a static query
            store, static = Store.open(path), np.isnan(scores).all(axis=0)
            moving = ~static if moving is None else moving & ~static
            for k, (train, query) in labels.items():
                prec = topk_precision(scores, train, query, 0.1, store.ok)  # [Q]
                per_method.setdefault(row, {}).setdefault(k, []).append(prec)
            top = majority_vote(scores[:, cols], 90.0, 0.1, store.ok).top
            shares.setdefault(row, []).append(float(np.mean(labels["motion"][0][top] == target)))
    ok = Store.open(run / "stores" / "motive_seed0").ok
    for row, scores in baselines.items():
        for k, (train, query) in labels.items():
            per_method.setdefault(row, {}).setdefault(k, []).append(
                topk_precision(scores, train, query, 0.1, ok)
            )
    assert moving is not None
    out = {}
    for row, by_label in per_method.items():
        out[row] = {"seeds": len(by_label["motion"]), "queries": int(moving.sum())}
        for k, precs in by_label.items():
            per_query = np.mean(precs, axis=0)[moving]  # [Q'] over seeds
            out[row][f"{k}_precision"] = mean_ci(per_query)
        if row in shares:
            out[row]["target_fraction"] = mean_ci(np.asarray(shares[row]))
    return out


def analyses(run: Path, out_dir: Path) -> dict:
    """The paper's two analyses on ground truth, for Motive and w/o MM (attribution seed 0):

    - cross-motion overlap (its Fig. 7): per pair of query motions, the share of one motion's top-10%
      selection (the vote over its queries) that is also in the other's → a motions × motions matrix;
    - score vs motion magnitude (its Fig. 6): per query, Spearman between the clips' scores and their
      mean optical flow; and each clip's mean score over the queries against its flow, as a scatter.
    Writes ``experiment_overlap.png`` and ``experiment_magnitude.png`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = load_dataset(run / "world" / "query")
    q_motion = queries.table["motion"].to_numpy()
    out: dict = {}
    fig_o, axes_o = plt.subplots(1, 2, figsize=(11, 4.8))
    fig_m, axes_m = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, family in enumerate(("motive", "no_motion_mask")):
        store = Store.open(run / "stores" / f"{family}_seed0")
        scores = variant_scores(store.path, queries)  # [N, Q], NaN for a static query
        moving = ~np.isnan(scores).all(axis=0)
        motions = [m for m in dict.fromkeys(q_motion) if (moving & (q_motion == m)).any()]
        tops = {
            m: set(majority_vote(scores[:, moving & (q_motion == m)], 90.0, 0.1, store.ok).top.tolist())
            for m in motions
        }
        overlap = np.array([[len(tops[a] & tops[b]) / len(tops[a]) for b in motions] for a in motions])
        off = overlap[~np.eye(len(motions), dtype=bool)]
        flow = store.index["mean_flow"].to_numpy(np.float64)
        ok = store.ok & np.isfinite(flow)
        rho = np.array([stats.spearmanr(scores[ok, q], flow[ok]).statistic for q in np.flatnonzero(moving)])
        out[family] = {
            "motions": motions,
            "overlap": overlap.tolist(),
            "mean_cross_motion_overlap": float(off.mean()),
            "score_vs_flow_spearman": mean_ci(rho),
        }
        ax = axes_o[i]
        im = ax.imshow(overlap, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(motions)), motions, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(motions)), motions, fontsize=8)
        ax.set_title(f"{family}: top-10% overlap (mean off-diagonal {off.mean():.2f})", fontsize=9)
        axes_m[i].scatter(flow[ok], scores[ok][:, moving].mean(axis=1), s=4, alpha=0.5)
        axes_m[i].set(
            xlabel="clip's mean optical flow (px/frame)",
            ylabel="mean score over queries",
            title=f"{family}: per-query Spearman(score, flow) {np.nanmean(rho):+.2f}",
        )
    fig_o.colorbar(im, ax=axes_o, shrink=0.8)
    fig_o.savefig(out_dir / "experiment_overlap.png", dpi=100)
    fig_m.tight_layout()
    fig_m.savefig(out_dir / "experiment_magnitude.png", dpi=100)
    plt.close(fig_o)
    plt.close(fig_m)
    return out


def fmt(ci: tuple[float, float, float] | None, digits: int = 3) -> str:
    if ci is None or not np.isfinite(ci[0]):
        return "—"
    mean, lo, hi = ci
    if not np.isfinite(lo):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a finished demo run folder")
    args = p.parse_args()
    run = Path(args.run)
    results = json.loads((run / "results.json").read_text())

    from lds import method_scores_from_run  # the baselines' scores on this run

    from motive.models.wan import VideoModel

    model = VideoModel.from_pretrained(run / "base_model")
    all_scores = method_scores_from_run(run, model)
    baselines = {k: all_scores[k] for k in ("mask_similarity", "motion_magnitude", "random")}
    rows = precision_rows(run, baselines, results["config"]["target_motions"][0])
    lds_file = run / "lds" / "lds_table.json"
    lds = json.loads(lds_file.read_text()) if lds_file.is_file() else None
    for name, row in (lds or {}).get("methods", {}).items():
        rows.setdefault(name, {})["lds"] = (row["lds"], row["ci_low"], row["ci_high"])
    for name, summary in results["finetune"].items():
        if name == "base":
            continue
        for key in FINETUNE_KEYS:
            rows.setdefault(name, {})[key] = ci_from_summary(summary, key)
    words = results["pretrain"]["motion_word_sensitivity"]
    base = results["finetune"]["base"]
    header = (
        "| method | motion precision@10% | colour precision@10% | LDS | target loss | specificity "
        "| selection's target share |"
    )
    lines = [
        f"Run `{run}`: motion-word check of the base model: wrong/true loss "
        f"{words['weighted_ratio_wrong_over_true']:.4f}, true word lower on "
        f"{words['share_of_clips_true_word_lower']:.0%} of held-out clips. Base model's target loss "
        f"{base['target_motion_loss']:.5f}. Precision over {next(iter(rows.values())).get('queries')} "
        f"queries with motion; LDS over {lds['subsets'] if lds else 0} subsets; fine-tunes over "
        f"{results['finetune']['random']['seeds']} seeds. Intervals: 95% Student-t.",
        "",
        header,
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {fmt(row.get('motion_precision'))} | {fmt(row.get('colour_precision'))} "
            f"| {fmt(row.get('lds'))} | {fmt(row.get('target_motion_loss'), 5)} "
            f"| {fmt(row.get('target_specificity'), 5)} | {fmt(row.get('target_fraction'), 2)} |"
        )
    extra = analyses(run, run)
    lines += [
        "",
        "| features | mean cross-motion overlap of top-10% selections | Spearman(score, flow) |",
        "|---|---|---|",
    ]
    for family, a in extra.items():
        lines.append(
            f"| {family} | {a['mean_cross_motion_overlap']:.2f} | {fmt(a['score_vs_flow_spearman'], 2)} |"
        )
    text = "\n".join(lines) + "\n"
    (run / "experiment.md").write_text(text)
    (run / "experiment.json").write_text(
        json.dumps({"rows": rows, "motion_words": words, "analyses": extra}, indent=2, default=float)
    )
    print(text)


if __name__ == "__main__":
    main()
