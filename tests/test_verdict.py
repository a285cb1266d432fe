"""Verdicts that respect noise: each front point against the best paper baseline that costs
no more, with the standard error of the difference from the seed spread pooled over the
study."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from results.verdict import compare_to_baselines, pooled_seed_std, sentence, table_md


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
    # pooled over all six architectures, 2 degrees of freedom each: (5 * 0.01^2 + 0.02^2) / 6
    pooled = math.sqrt((5 * 0.01**2 + 0.02**2) / 6)
    assert a.stderr == pytest.approx(pooled * math.sqrt(1 / 3 + 1 / 3))
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
    assert sentence(comps).startswith("The seeds give no spread to judge by")
    agreed = _frame(
        [(0, "none", True, "none", 0.90, 0.0, 2, 1.0), (10, "a", False, None, 0.99, 0.0, 2, 1.2)]
    )  # two seeds each that scored the same: below what the split resolves, not zero noise
    comps = compare_to_baselines(agreed, agreed[agreed["is_baseline"]], "latency_rel")
    assert math.isnan(comps[0].stderr) and not comps[0].beyond_noise


def test_the_seed_spread_is_pooled_by_degrees_of_freedom():
    df = pd.DataFrame(
        {"accuracy_std": [0.0, 0.03, 0.5], "n_seeds": [2, 4, 1]}  # one seed: no spread to pool
    )
    assert pooled_seed_std(df) == pytest.approx(math.sqrt((1 * 0.0 + 3 * 0.03**2) / 4))
    assert math.isnan(pooled_seed_std(df.iloc[[2]]))
    assert math.isnan(pooled_seed_std(df.iloc[[0, 2]]))  # two seeds that agreed: no spread


def test_two_seeds_that_agree_exactly_do_not_make_a_difference_significant():
    """On a small val split two seeds often score the same accuracy (std 0). Judged by their
    own spreads, point and baseline gave a standard error of 0, so any difference was "beyond
    noise" and the sentence divided by zero; the pooled spread judges it by the study's noise."""
    df = _frame(
        [
            (0, "none", True, "none", 0.9819, 0.0020, 2, 1.0),
            (1, "eca", True, "eca", 0.9861, 0.0000, 2, 1.2),
            (2, "cbam", True, "cbam", 0.9749, 0.0079, 2, 2.1),
            (13, "a", False, None, 0.9889, 0.0000, 2, 1.3),
        ]
    )
    (c,) = compare_to_baselines(df, df[df["is_baseline"]], "latency_rel")
    assert c.baseline == "eca" and c.difference == pytest.approx(0.0028)
    assert c.stderr == pytest.approx(pooled_seed_std(df)) and c.stderr > 0.004
    assert not c.beyond_noise
    assert sentence([c]).startswith("No searched placement beats the best paper baseline")


def test_a_front_of_baselines_alone_says_the_search_found_nothing_better():
    df = _frame([*BASELINES, (10, "a", False, None, 0.85, 0.01, 3, 1.2)])  # not on the front
    front = df[df["number"].isin([0, 1, 2])]
    comps = compare_to_baselines(front, df[df["is_baseline"]], "latency_rel", noise_from=df)
    assert comps == []
    assert sentence(comps).startswith("Every front point is one of the papers' uniform placements")


def test_the_reports_best_searched_line_judges_by_the_verdicts_rule():
    """The summary's best-searched line once tested "beyond 2 standard errors" itself; it now
    formats one ``Comparison``, and a trial stored without a seed count is untested."""
    from results.report import _difference
    from results.verdict import compare

    df = _frame([*BASELINES, (10, "a", False, None, 0.95, 0.010, 2, 1.2)])
    point, eca = df.iloc[3], df.iloc[2]
    c = compare(point, eca, 0.01, "latency_rel")
    assert c.stderr == pytest.approx(0.01 * math.sqrt(1 / 2 + 1 / 3))  # 0.0091
    assert _difference(c) == "+0.0400 ± 0.0091 (beyond 2 standard errors)"
    close = compare(point, eca, 0.03, "latency_rel")  # 2 x 0.0274 > 0.04
    assert _difference(close) == "+0.0400 ± 0.0274 (within 2 standard errors)"
    unknown = compare(point.drop("n_seeds"), eca, 0.01, "latency_rel")
    assert _difference(unknown) == "+0.0400 (no seed spread to judge it by)"
    assert not unknown.beyond_noise


def test_separation_is_scipys_one_way_anova_from_means_stds_and_counts():
    """A study keeps each architecture's seed mean, standard deviation and count, not its
    seeds: the ANOVA from those must equal scipy's on the seeds themselves."""
    import statistics

    from scipy.stats import f_oneway

    from results.verdict import separation

    seeds = {  # unequal counts on purpose
        "a": [0.91, 0.93, 0.92],
        "b": [0.95, 0.96],
        "c": [0.90, 0.94, 0.93, 0.92],
    }
    frame = pd.DataFrame(
        [
            {
                "accuracy": statistics.fmean(v),
                "accuracy_std": statistics.stdev(v),
                "n_seeds": len(v),
            }
            for v in seeds.values()
        ]
    )
    got, want = separation(frame), f_oneway(*seeds.values())
    assert got.architectures == 3
    assert got.f == pytest.approx(want.statistic) and got.p == pytest.approx(want.pvalue)


def test_separation_sentence_says_when_accuracy_orders_nothing():
    from results.verdict import Separation, separation, study_separation

    apart = Separation(12, 4.0, 0.001).sentence()
    assert apart.startswith("Accuracy at this schedule separates the study's 12 architectures")
    assert "attnas fidelity" in apart  # separated at this schedule is not ranked as a longer one
    tied = Separation(30, 0.75, 0.80).sentence()
    assert tied.startswith("Accuracy at this schedule does not separate the study's 30")
    assert "p 0.8)" in tied and "only cost orders the front" in tied
    one_seed = pd.DataFrame({"accuracy": [0.9, 0.8], "accuracy_std": [0.0, 0.0], "n_seeds": [1, 1]})
    assert separation(one_seed).sentence() == ""  # no spread: untestable, not "tied"
    # The study's view: feasible trials, each architecture once (a cached repeat is one network).
    df = pd.DataFrame(
        {
            "arch_hash": ["x", "x", "y", "z"],
            "feasible": [True, True, True, False],
            "accuracy": [0.90, 0.90, 0.95, 0.10],
            "accuracy_std": [0.01, 0.01, 0.01, 0.01],
            "n_seeds": [2, 2, 2, 2],
        }
    )
    assert study_separation(df).architectures == 2
    assert math.isnan(study_separation(pd.DataFrame()).p)
