"""Is a searched placement better than the papers' beyond seed noise?

Each front point is compared with the most accurate uniform paper baseline that costs no more
(on the study's cost axis: latency, else FLOPs): the accuracy difference, its standard error,
and whether the difference exceeds two standard errors.

The standard error uses the seed standard deviation *pooled* over every architecture of the
study, ``s_p * sqrt(1/n_a + 1/n_b)``, not each architecture's own. A search trains each
architecture with two or three seeds: one architecture's spread then rests on one or two
degrees of freedom, and on a 359-image val split two seeds often score the very same accuracy,
a spread of exactly 0 that made any difference "beyond noise" (and a division by zero in the
sentence). Pooling assumes every placement is about as seed-sensitive as the others, the usual
one-way ANOVA assumption; a study of 14 architectures with 2 seeds gives it 14 degrees of
freedom. With one seed everywhere there is no spread at all, so no verdict beyond "untested".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from results.frame import cost_column


@dataclass(frozen=True)
class Comparison:
    trial: int
    label: str
    baseline: str | None  # the best baseline at equal or lower cost; None if none is as cheap
    baseline_trial: int | None
    difference: float  # accuracy(trial) - accuracy(baseline)
    stderr: float  # NaN when the study has no seed spread to pool
    cost: float
    baseline_cost: float

    @property
    def beyond_noise(self) -> bool:
        return not math.isnan(self.stderr) and abs(self.difference) > 2 * self.stderr


def pooled_seed_std(frame: pd.DataFrame, std: str = "accuracy_std", n: str = "n_seeds") -> float:
    """The seed standard deviation pooled over ``frame``'s rows (one per architecture):
    ``sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1))``; NaN when there is no spread to judge by:
    no row has two seeds, or every seed agreed everywhere (below what the split can
    resolve, not zero noise)."""
    dof = (frame[n].astype(float) - 1).clip(lower=0)
    if dof.sum() == 0:
        return float("nan")
    pooled = math.sqrt(float((dof * frame[std].astype(float) ** 2).sum() / dof.sum()))
    return pooled if pooled > 0 else float("nan")


def difference_stderr(pooled_std: float, n_a: int, n_b: int) -> float:
    """The standard error of the difference of two means of ``n_a`` and ``n_b`` seeds."""
    return pooled_std * math.sqrt(1 / n_a + 1 / n_b)


def compare_to_baselines(
    points: pd.DataFrame,
    baselines: pd.DataFrame,
    cost: str,
    noise_from: pd.DataFrame | None = None,
    accuracy: str = "accuracy",
    std: str = "accuracy_std",
    n: str = "n_seeds",
) -> list[Comparison]:
    """For each row of ``points`` that is not a baseline, the comparison described above;
    the seed spread is pooled over ``noise_from`` (every architecture the study trained;
    ``points`` and ``baselines`` together when not given)."""
    pool = pd.concat([points, baselines]) if noise_from is None else noise_from
    s_p = pooled_seed_std(pool.drop_duplicates("number"), std, n)
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
        out.append(compare(p, b, s_p, cost, accuracy, n))
    return out


def compare(
    point: pd.Series,
    baseline: pd.Series,
    pooled_std: float,
    cost: str,
    accuracy: str = "accuracy",
    n: str = "n_seeds",
) -> Comparison:
    """One trial against one baseline; the standard error is NaN (untested) when either
    lacks a seed count, as trials stored before it was recorded do."""
    seeds = (point.get(n), baseline.get(n))
    missing = any(k is None or pd.isna(k) for k in seeds)
    return Comparison(
        trial=int(point["number"]),
        label=point["label"],
        baseline=baseline["baseline"],
        baseline_trial=int(baseline["number"]),
        difference=float(point[accuracy] - baseline[accuracy]),
        stderr=math.nan if missing else difference_stderr(pooled_std, *map(int, seeds)),
        cost=float(point[cost]),
        baseline_cost=float(baseline[cost]),
    )


def front_comparisons(df: pd.DataFrame, names: list[str]) -> list[Comparison]:
    """Each distinct front point of a trials frame (``results.frame.trials_frame``) against
    the best baseline at equal or lower cost, the noise pooled over every feasible
    architecture."""
    ok = df[df["feasible"]].drop_duplicates("arch_hash")
    cost = cost_column(ok, names)
    return compare_to_baselines(ok[ok["is_pareto"]], ok[ok["is_baseline"]], cost, noise_from=ok)


@dataclass(frozen=True)
class Separation:
    """Whether the study's accuracies differ between architectures more than between seeds:
    a one-way ANOVA over every feasible architecture (one row each, from its seed mean,
    standard deviation and count). Where they do not, the accuracy axis of the front is seed
    noise and only cost orders it, which no per-point verdict against a baseline says. Where
    they do, it is at the study's schedule: on the quickstart's digits 5 epochs may separate
    a study's architectures while 30 epochs separate none of 30 (p 0.80, BENCHMARKS.md)."""

    architectures: int
    f: float
    p: float  # NaN: untestable (fewer than two architectures, one seed each, or no spread)

    def sentence(self) -> str:
        if math.isnan(self.p):
            return ""
        if self.p < 0.05:
            return (
                f"Accuracy at this schedule separates the study's {self.architectures} "
                f"architectures beyond seed noise (one-way ANOVA p {self.p:.2g}); whether a "
                "longer one ranks them alike is what attnas fidelity measures."
            )
        return (
            f"Accuracy at this schedule does not separate the study's {self.architectures} "
            f"architectures beyond seed noise (one-way ANOVA p {self.p:.2g}): only cost orders "
            "the front; add seeds, train longer or search a harder task before reading its "
            "accuracy axis."
        )


def separation(
    frame: pd.DataFrame,
    accuracy: str = "accuracy",
    std: str = "accuracy_std",
    n: str = "n_seeds",
) -> Separation:
    """One-way ANOVA from each architecture's mean, sample standard deviation and seed count
    (``frame``: one row per architecture): F is the spread of the means over the pooled seed
    variance (``pooled_seed_std``, the verdicts' noise)."""
    rows = frame[frame[n].notna() & (frame[n] >= 1)] if n in frame else frame.iloc[:0]
    k, total = len(rows), float(rows[n].sum()) if len(rows) else 0.0
    s_p = pooled_seed_std(rows, std, n) if k else math.nan
    if k < 2 or math.isnan(s_p):
        return Separation(k, math.nan, math.nan)
    counts, means = rows[n].astype(float), rows[accuracy].astype(float)
    grand = float((counts * means).sum() / total)
    between = float((counts * (means - grand) ** 2).sum()) / (k - 1)
    f = between / s_p**2
    from scipy.stats import f as f_distribution

    return Separation(k, f, float(f_distribution.sf(f, k - 1, total - k)))


def study_separation(df: pd.DataFrame) -> Separation:
    """``separation`` over a trials frame's distinct feasible architectures."""
    if df.empty or "feasible" not in df:
        return Separation(0, math.nan, math.nan)
    return separation(df[df["feasible"]].drop_duplicates("arch_hash"))


def sentence(comparisons: list[Comparison]) -> str:
    """One sentence: did the search find anything better than the papers beyond noise?"""
    if not comparisons:
        return (
            "Every front point is one of the papers' uniform placements: the search found "
            "nothing better than them."
        )
    judged = [c for c in comparisons if c.baseline is not None]
    if not judged:
        return (
            "No searched front point has a uniform baseline at equal or lower cost to compare with."
        )
    if all(math.isnan(c.stderr) for c in judged):
        return (
            "The seeds give no spread to judge by (one seed each, or every seed scored the "
            "same): nothing can be called better."
        )
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
