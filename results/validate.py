"""``attnas validate``: are the searched placements better than the papers' by more than noise?

The search scored every candidate on the ``val`` split with few seeds, and picked the front by
those very numbers, so its accuracies are optimistically biased. ``attnas validate`` re-trains
the front and the best uniform baselines with K fresh seeds and scores them on the ``holdout``
split, which the search never saw. This module only decides *what* to re-train (``plan``) and
reads the verdict; the re-training itself runs on the one evaluation path
(``evaluators.holdout``), because ``results/`` never trains.
"""

from __future__ import annotations

from typing import Any

import optuna
import pandas as pd

from results.export import arch_of, baseline_source
from results.frame import cost_column, objective_names, trials_frame
from results.verdict import Comparison, compare_to_baselines, sentence


def plan(study: optuna.Study) -> list[dict[str, Any]]:
    """The front (distinct architectures), and for each front point the most accurate uniform
    baseline at equal or lower cost (what its verdict compares with), and the most accurate
    baseline overall."""
    df = trials_frame(study)
    ok = df[df["feasible"]].drop_duplicates("arch_hash")
    cost = cost_column(ok, objective_names(study))
    front = ok[ok["is_pareto"]]
    base = ok[ok["is_baseline"]].sort_values(["accuracy", cost], ascending=[False, True])
    rows = [("front", r) for _, r in front.iterrows()]
    for _, r in front.iterrows():
        cheaper = base[base[cost] <= r[cost]]
        rows += [("baseline", b) for _, b in cheaper.head(1).iterrows()]
    rows += [("baseline", b) for _, b in base.head(1).iterrows()]
    out, done = [], set()
    for role, r in rows:
        if r["arch_hash"] in done:
            continue
        done.add(r["arch_hash"])
        out.append(
            {
                "trial": int(r["number"]),
                "role": "baseline" if r["is_baseline"] else role,
                "baseline": r["baseline"] if r["is_baseline"] else None,
                "source": (
                    baseline_source(study, int(r["number"]), r["baseline"])
                    if r["is_baseline"]
                    else None
                ),
                "arch": arch_of(study, int(r["number"])).to_dict(),
                "label": r["label"],
                "search_accuracy": float(r["accuracy"]),
                "cost_name": cost,
                "cost": float(r[cost]),
            }
        )
    return out


def verdict(rows: list[dict[str, Any]]) -> tuple[list[Comparison], str]:
    """Holdout comparisons of each re-trained front point with its baseline, and the
    one-sentence verdict."""
    df = pd.DataFrame(
        [
            {
                "number": r["trial"],
                "label": r["label"],
                "is_baseline": r["role"] == "baseline",
                "baseline": r["baseline"],
                "accuracy": r["mean"],
                "accuracy_std": r["std"],
                "n_seeds": len(r["accuracies"]),
                "cost": r["cost"],
            }
            for r in rows
        ]
    )
    if df.empty:
        return [], ""
    comparisons = compare_to_baselines(df, df[df["is_baseline"]], "cost")
    return comparisons, sentence(comparisons)
