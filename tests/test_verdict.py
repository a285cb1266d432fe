"""Verdicts that respect noise: each front point against the best paper baseline that costs
no more, with the standard error of the difference from both seed spreads."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from results.verdict import compare_to_baselines, sentence, table_md


def _frame(rows):
    cols = ["number", "label", "is_baseline", "baseline", "accuracy", "accuracy_std", "n_seeds"]
    return pd.DataFrame([dict(zip([*cols, "latency_rel"], r, strict=True)) for r in rows])


BASELINES = [
    (0, "none", True, "none", 0.90, 0.010, 3, 1.0),
    (1, "se", True, "se", 0.99, 0.010, 3, 1.5),  # more accurate, but costlier
    (2, "eca", True, "eca", 0.91, 0.020, 3, 1.1),
]


def test_each_point_meets_the_best_baseline_that_costs_no_more():
    df = _frame(
        [
            *BASELINES,
            (10, "a", False, None, 0.95, 0.010, 3, 1.2),  # beats eca by far
            (11, "b", False, None, 0.915, 0.010, 3, 1.12),  # within noise of eca
            (12, "c", False, None, 0.80, 0.010, 3, 0.9),  # cheaper than every baseline
        ]
    )
    got = {c.trial: c for c in compare_to_baselines(df, df[df["is_baseline"]], "latency_rel")}
    assert set(got) == {10, 11, 12}  # baselines themselves are not judged
    a, b, c = got[10], got[11], got[12]
    assert a.baseline == "eca" and a.baseline_trial == 2
    assert a.difference == pytest.approx(0.04)
    assert a.stderr == pytest.approx(math.sqrt(0.01**2 / 3 + 0.02**2 / 3))
    assert a.beyond_noise and not b.beyond_noise
    assert c.baseline is None and math.isnan(c.difference)
    text = sentence(list(got.values()))
    assert text.startswith("The search found 1 placement(s) more accurate")
    assert "trial 10 against eca: +0.0400" in text
    table = table_md(list(got.values()), "latency_rel")
    assert "| 12 | 0.9 | none as cheap | - | - | - |" in table


def test_tied_and_untestable_verdicts():
    tied = _frame([*BASELINES, (10, "a", False, None, 0.905, 0.01, 3, 1.0)])
    comps = compare_to_baselines(tied, tied[tied["is_baseline"]], "latency_rel")
    assert sentence(comps).startswith("No searched placement beats the best paper baseline")
    one_seed = _frame(
        [(0, "none", True, "none", 0.90, 0.0, 1, 1.0), (10, "a", False, None, 0.99, 0.0, 1, 1.2)]
    )
    comps = compare_to_baselines(one_seed, one_seed[one_seed["is_baseline"]], "latency_rel")
    assert math.isnan(comps[0].stderr) and not comps[0].beyond_noise
    assert sentence(comps).startswith("One seed per architecture gives no noise estimate")
