"""The study's report: wins, ties and losses with 95% Wilson intervals, rater agreement (Fleiss'
kappa), as data and as Markdown (Table 2)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from motive.study.records import OUTCOMES, connect, load_study

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


# ---------------------------------------------------------------------------------------------- report


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``k / n`` (default: 95%); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def fleiss_kappa(counts: list[list[int]]) -> float | None:
    """Fleiss' kappa of per-item outcome counts (``counts[i][j]``: raters who put item i in outcome j;
    items need two or more raters, not necessarily the same number). None when it is undefined: no
    items, or every judgment in one outcome (chance agreement 1)."""
    items = [row for row in counts if sum(row) >= 2]
    if not items:
        return None
    total = sum(sum(row) for row in items)
    shares = [sum(row[j] for row in items) / total for j in range(len(items[0]))]
    expected = sum(p * p for p in shares)
    observed = _mean_agreement(items)
    if expected >= 1 - 1e-12:
        return None
    return (observed - expected) / (1 - expected)


def _mean_agreement(items: list[list[int]]) -> float:
    """Per item, the share of rater pairs that agree, averaged over items (Fleiss' P-bar)."""
    return sum((sum(c * c for c in row) - sum(row)) / (sum(row) * (sum(row) - 1)) for row in items) / len(
        items
    )


def _cell(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(k, n)
    return {
        "count": k,
        "pct": 100 * k / n if n else None,
        "ci95_pct": [100 * lo, 100 * hi] if n else None,
    }


def _row(outcomes: list[str]) -> dict[str, Any]:
    n = len(outcomes)
    return {
        "n": n,
        "wins": _cell(outcomes.count("A"), n),
        "ties": _cell(outcomes.count("tie"), n),
        "losses": _cell(outcomes.count("B"), n),
    }


def study_report(db: str | Path) -> dict[str, Any]:
    """Table 2: model A against model B from A's point of view (wins, ties, losses with percentages
    and 95% Wilson intervals) per category and overall, plus rater agreement on multiply judged pairs."""
    study = load_study(db)
    with connect(db) as conn:
        rows = conn.execute(
            "SELECT j.pair_id, j.rater, j.choice, p.category FROM judgments j JOIN pairs p ON p.id = j.pair_id "
            "ORDER BY j.id"
        ).fetchall()
    by_category: dict[str, list[str]] = {}
    by_pair: dict[int, list[str]] = {}
    for pair_id, _rater, choice, category in rows:
        by_category.setdefault(category, []).append(choice)
        by_pair.setdefault(pair_id, []).append(choice)
    multi = [[outs.count(o) for o in OUTCOMES] for outs in by_pair.values() if len(outs) >= 2]
    categories = {}  # none when no pair has a category; else every category, "(none)" for the rest
    if any(by_category):
        categories = {c or "(none)": _row(by_category[c]) for c in sorted(by_category)}
    return {
        "models": {"A": study.names[0], "B": study.names[1]},
        "pairs": len(study.pair_ids),
        "pairs_judged": len(by_pair),
        "raters": len({r[1] for r in rows}),
        "judgments": len(rows),
        "interval": "95% Wilson score interval of each proportion, judgments as independent trials",
        "overall": _row([r[2] for r in rows]),
        "categories": categories,
        "agreement": {
            "pairs": len(multi),
            "percent_agreement": 100 * _mean_agreement(multi) if multi else None,
            "fleiss_kappa": fleiss_kappa(multi),
            "outcomes": list(OUTCOMES),
        },
    }


def _fmt(cell: dict[str, Any]) -> str:
    if cell["pct"] is None:
        return "0"
    lo, hi = cell["ci95_pct"]
    return f"{cell['count']} ({cell['pct']:.1f}% [{lo:.1f}, {hi:.1f}])"


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table (one row per category, then overall) and an agreement line."""
    a, b = report["models"]["A"], report["models"]["B"]
    lines = [
        f"**{a}** vs **{b}**: {report['judgments']} judgments by {report['raters']} rater(s) of "
        f"{report['pairs_judged']}/{report['pairs']} pairs; count (% [95% Wilson CI])",
        "",
        f"| category | n | {a} wins | tie | {b} wins |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows = [*report["categories"].items(), ("**overall**", report["overall"])]
    for name, row in rows:
        cells = " | ".join(_fmt(row[k]) for k in ("wins", "ties", "losses"))
        lines.append(f"| {name} | {row['n']} | {cells} |")
    agree = report["agreement"]
    if agree["pairs"]:
        kappa = "n/a" if agree["fleiss_kappa"] is None else f"{agree['fleiss_kappa']:.3f}"
        lines.append(
            f"\nRater agreement on {agree['pairs']} pair(s) judged by 2+ raters: "
            f"{agree['percent_agreement']:.1f}% pairwise agreement, Fleiss' kappa {kappa} (3 outcomes)"
        )
    else:
        lines.append("\nRater agreement: n/a (no pair judged by 2+ raters)")
    return "\n".join(lines) + "\n"
