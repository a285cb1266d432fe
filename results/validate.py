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

from results.export import arch_of
from results.frame import trials_frame


def plan(study: optuna.Study, n_baselines: int = 2) -> list[dict[str, Any]]:
    """The front (distinct architectures) plus the most accurate uniform baselines."""
    df = trials_frame(study)
    ok = df[df["feasible"]].drop_duplicates("arch_hash")
    rows = [("front", r) for _, r in ok[ok["is_pareto"]].iterrows()]
    seen = {r["arch_hash"] for _, r in rows}
    base = ok[ok["is_baseline"] & ~ok["arch_hash"].isin(seen)].sort_values(
        "accuracy", ascending=False
    )
    rows += [("baseline", r) for _, r in base.head(n_baselines).iterrows()]
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
                "arch": arch_of(study, int(r["number"])).to_dict(),
                "label": r["label"],
                "search_accuracy": float(r["accuracy"]),
            }
        )
    return out


def verdict(rows: list[dict[str, Any]]) -> str:
    searched = [r for r in rows if r["role"] == "front"]
    base = [r for r in rows if r["role"] == "baseline"]
    if not searched or not base:
        return ""
    s = max(searched, key=lambda r: r["mean"])
    b = max(base, key=lambda r: r["mean"])
    gap = s["mean"] - b["mean"]
    noise = 2 * max(s["std"], b["std"])
    if noise == 0:
        return f"Best searched (trial {s['trial']}) vs best baseline ({b['baseline']}): {gap:+.4f}; one seed gives no noise estimate."
    beats = "beats" if gap > noise else "does not beat"
    return (
        f"Best searched placement (trial {s['trial']}, {s['mean']:.4f}) {beats} the best uniform "
        f"baseline ({b['baseline']}, {b['mean']:.4f}) by more than 2 sigma: gap {gap:+.4f}, "
        f"2 sigma = {noise:.4f}."
    )
