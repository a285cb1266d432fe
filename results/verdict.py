"""Is a searched placement better than the papers' beyond seed noise?

Each front point is compared with the most accurate uniform paper baseline that costs no more
(on the study's cost axis: latency, else FLOPs): the accuracy difference, its standard error
from the two seed spreads, ``sqrt(sd_a^2 / n_a + sd_b^2 / n_b)``, and whether the difference
exceeds two standard errors. One seed gives no spread, so no verdict beyond "untested".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Comparison:
    trial: int
    label: str
    baseline: str | None  # the best baseline at equal or lower cost; None if none is as cheap
    baseline_trial: int | None
    difference: float  # accuracy(trial) - accuracy(baseline)
    stderr: float  # NaN when either side has a single seed
    cost: float
    baseline_cost: float

    @property
    def beyond_noise(self) -> bool:
        return not math.isnan(self.stderr) and abs(self.difference) > 2 * self.stderr


def _stderr(std_a: float, n_a: int, std_b: float, n_b: int) -> float:
    if n_a < 2 or n_b < 2:
        return float("nan")
    return math.sqrt(std_a**2 / n_a + std_b**2 / n_b)


def compare_to_baselines(
    points: pd.DataFrame,
    baselines: pd.DataFrame,
    cost: str,
    accuracy: str = "accuracy",
    std: str = "accuracy_std",
    n: str = "n_seeds",
) -> list[Comparison]:
    """For each row of ``points`` that is not a baseline, the comparison described above."""
    out = []
    for _, p in points.iterrows():
        if p.get("is_baseline"):
            continue
        cheaper = baselines[baselines[cost] <= p[cost]]
        if cheaper.empty:
            out.append(
                Comparison(
                    int(p["number"]), p["label"], None, None, math.nan, math.nan, p[cost], math.nan
                )
            )
            continue
        b = cheaper.sort_values([accuracy, cost], ascending=[False, True]).iloc[0]
        out.append(
            Comparison(
                trial=int(p["number"]),
                label=p["label"],
                baseline=b["baseline"],
                baseline_trial=int(b["number"]),
                difference=float(p[accuracy] - b[accuracy]),
                stderr=_stderr(float(p[std]), int(p[n]), float(b[std]), int(b[n])),
                cost=float(p[cost]),
                baseline_cost=float(b[cost]),
            )
        )
    return out


def sentence(comparisons: list[Comparison]) -> str:
    """One sentence: did the search find anything better than the papers beyond noise?"""
    judged = [c for c in comparisons if c.baseline is not None]
    if not judged:
        return "No front point has a uniform baseline at equal or lower cost to compare with."
    if all(math.isnan(c.stderr) for c in judged):
        return "One seed per architecture gives no noise estimate: nothing can be called better."
    better = [c for c in judged if c.beyond_noise and c.difference > 0]
    if better:
        best = max(better, key=lambda c: c.difference / c.stderr)
        return (
            f"The search found {len(better)} placement(s) more accurate than the best paper "
            f"baseline at equal or lower cost beyond 2 standard errors, e.g. trial {best.trial} "
            f"against {best.baseline}: {best.difference:+.4f} ± {best.stderr:.4f}."
        )
    return (
        "No searched placement beats the best paper baseline at equal or lower cost by more "
        "than 2 standard errors: within seed noise they are tied."
    )


def table_md(comparisons: list[Comparison], cost: str) -> list[str]:
    lines = [
        f"| trial | {cost} | best baseline at equal or lower {cost} | accuracy difference | "
        "standard error | beyond 2 sigma |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        if c.baseline is None:
            lines.append(f"| {c.trial} | {c.cost:.4g} | none as cheap | - | - | - |")
            continue
        se = "-" if math.isnan(c.stderr) else f"{c.stderr:.4f}"
        lines.append(
            f"| {c.trial} | {c.cost:.4g} | {c.baseline} (trial {c.baseline_trial}, "
            f"{c.baseline_cost:.4g}) | {c.difference:+.4f} | {se} | "
            f"{'yes' if c.beyond_noise else 'no'} |"
        )
    return lines
