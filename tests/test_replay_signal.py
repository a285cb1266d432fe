"""The replay's table diagnostic: whether a tabular table's final accuracies belong to the
architectures or to one seed, how early a rung can see them, and how much latency decides."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _multifidelity():
    sys.path.insert(0, str(ROOT / "bench"))
    import multifidelity

    return multifidelity


def _table(curves: np.ndarray, latency: np.ndarray) -> dict[str, dict]:
    """A table as bench/tabular.load_table returns it: curves are arch x seed x epoch."""
    return {
        f"a{i}": {
            "curves": curves[i].tolist(),
            "accuracy": float(curves[i, :, -1].mean()),
            "latency_rel": float(latency[i]),
        }
        for i in range(len(latency))
    }


def _learning_curves(quality: np.ndarray, noise: np.ndarray, epochs: int) -> np.ndarray:
    """Each architecture climbs to its quality; ``noise`` (arch x seed) is added at every epoch."""
    ramp = np.linspace(0.2, 1.0, epochs)
    return quality[:, None, None] * ramp[None, None, :] + noise[:, :, None]


def test_seeds_that_agree_give_a_perfect_ceiling_and_taus_of_one():
    rng = np.random.default_rng(0)
    n = 40
    quality = rng.uniform(0.5, 0.9, n)
    latency = rng.uniform(1.0, 2.0, n)
    table = _table(_learning_curves(quality, np.zeros((n, 2)), 4), latency)
    sig = _multifidelity().table_signal(table)
    assert [e["epoch"] for e in sig["epoch_tau"]] == [1, 2, 3, 4]
    for e in sig["epoch_tau"]:
        assert e["tau_with_final"] == pytest.approx(1.0)
        assert e["tau_between_seeds"] == pytest.approx(1.0)
    assert sig["split_seed_front"] == pytest.approx([1.0, 1.0])
    # the front: rank-0 rows of (accuracy up, latency down), counted by brute force
    acc = quality
    front = sum(
        not np.any(
            (acc >= acc[i]) & (latency <= latency[i]) & ((acc > acc[i]) | (latency < latency[i]))
        )
        for i in range(n)
    )
    assert sig["true_front_size"] == front


def test_seed_noise_alone_leaves_the_ceiling_below_one_and_the_seeds_unrelated():
    rng = np.random.default_rng(1)
    n = 200
    latency = rng.uniform(1.0, 2.0, n)
    noise = rng.normal(0, 0.01, (n, 2))  # every architecture is the same; only seeds differ
    table = _table(_learning_curves(np.full(n, 0.9), noise, 3), latency)
    sig = _multifidelity().table_signal(table)
    assert abs(sig["epoch_tau"][-1]["tau_between_seeds"]) < 0.15
    assert all(x < 0.99 for x in sig["split_seed_front"])


def test_when_latency_alone_decides_the_cheapest_carry_the_whole_front():
    n = 30
    latency = np.linspace(1.0, 2.0, n)
    quality = np.linspace(0.9, 0.6, n)  # the cheaper, the better: one-point front
    table = _table(_learning_curves(quality, np.zeros((n, 2)), 2), latency)
    sig = _multifidelity().table_signal(table, cheapest=1)
    assert sig["true_front_size"] == 1 and sig["cheapest_share"] == pytest.approx(1.0)


def test_the_report_says_whether_the_target_lies_inside_seed_noise():
    _multifidelity()
    import report

    def result(split: list[float]) -> dict:
        epochs = [
            {"epoch": 1, "mean_accuracy": 0.5, "tau_with_final": 1.0, "tau_between_seeds": 0.3}
        ]
        signal = {"epoch_tau": epochs, "split_seed_front": split, "true_front_size": 2}
        signal |= {"cheapest": 10, "cheapest_share": 0.9}
        return {"table": "t.csv", "target": 0.95, "table_signal": signal}

    assert "cannot judge a schedule" in report._table_signal(result([0.80, 0.94]))
    assert "can judge schedules" in report._table_signal(result([0.948, 0.987]))
    assert "one seed" in report._table_signal(result([]))


def test_epochs_to_target_is_a_median_over_every_seed_never_counting_as_never():
    median_epochs = _multifidelity().median_epochs
    # 8 of 10 reach it: the two that never do sit above every finite value
    reach = [100, 110, 120, 130, 140, 150, 160, 170, None, None]
    assert median_epochs(reach) == 145  # (140 + 150) / 2; the reached-only median is 135
    assert median_epochs([100, 200, None]) == 200
    assert median_epochs([100, None]) is None  # half never reach it: no median
    assert median_epochs([None, None, 50]) is None


def test_the_halving_ratio_carries_its_interval_over_seeds():
    ratio_interval = _multifidelity().ratio_interval
    # No spread in either row: every resample gives the same ratio
    assert ratio_interval([10] * 10, [30] * 10) == pytest.approx((1 / 3, 1 / 3))
    # Spread widens it, and it holds the point estimate (median 30 / median 60)
    lo, hi = ratio_interval([10, 20, 30, 40, 50], [20, 40, 60, 80, 100])
    assert lo < 0.5 < hi
    # A halving median that never reaches the target is unbounded; a full one that never does
    # reads 0 (halving is infinitely better there)
    assert ratio_interval([None] * 4, [30] * 4) == (np.inf, np.inf)
    assert ratio_interval([10] * 4, [None] * 4) == (0.0, 0.0)


def _row(sampler: str, schedule: str, runs: list[int | None]) -> dict:
    mf = _multifidelity()
    return {
        "sampler": sampler, "schedule": schedule, "seeds": len(runs),
        "epochs_to_target_runs": runs, "epochs_to_target_median": mf.median_epochs(runs),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("halving", "goal"),
    [([10] * 6, "met"), ([50] * 6, "missed"), ([5, 10, 15, 20, 60, 90], "inside the interval")],
)
def test_the_headline_takes_the_best_row_of_each_schedule_and_places_the_goal(halving, goal):
    mf = _multifidelity()
    result = {
        "epochs_per_trial": 3,
        "rungs": [1],
        "eta": 3,
        "rows": [
            _row("random", "full", [60] * 6),
            _row("tpe", "full", [45] * 6),
            _row("random", "successive_halving", [None] * 6),  # never: not a candidate
            _row("tpe", "successive_halving", halving),
        ],
    }
    h = mf.headline(result)
    assert (h["full_sampler"], h["halving_sampler"]) == ("tpe", "tpe")
    assert h["ratio"] == pytest.approx(statistics.median(halving) / 45)
    assert h["goal"] == goal
    sys.path.insert(0, str(ROOT / "bench"))
    import report

    text = report._halving_verdict(result | {"target": 0.95})
    lo, hi = h["ci95"]
    assert f"{h['ratio']:.2f}x" in text and f"95% interval {lo:.2f}x to {hi:.2f}x" in text
    assert f"in {statistics.median(halving)} epochs" in text and "against 45.0 for" in text
    assert "saves at most 0.56x" in text  # (1 + 2/3) / 3 epochs per architecture


def test_epochs_per_architecture_follows_the_rung_ladder():
    per_arch = _multifidelity().epochs_per_architecture
    assert per_arch([1], 3, 3) == pytest.approx(1 + 2 / 3)
    assert per_arch([1, 3], 3, 9) == pytest.approx(1 + 2 / 3 + 6 / 9)
    assert per_arch([], 3, 5) == 5  # the full schedule: no rung, no saving
    assert per_arch([2], 4, 8) == pytest.approx(2 + 6 / 4)


def test_the_headline_is_absent_when_a_schedule_never_reaches_the_target():
    result = {"rows": [_row("tpe", "full", [None] * 4), _row("tpe", "successive_halving", [9] * 4)]}
    result |= {"epochs_per_trial": 3, "rungs": [1], "eta": 3}
    assert _multifidelity().headline(result) is None


class _AlwaysTheFirstChoice(optuna.samplers.BaseSampler):
    """A sampler that proposes one architecture for ever: each categorical's first choice."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, distribution):
        return distribution.choices[0]


@pytest.mark.parametrize("fill, finished", [(False, 1), (True, 10)])
def test_fill_repeats_follows_a_repeat_with_an_architecture_not_yet_answered(
    monkeypatch, fill, finished
):
    """Without filling, a sampler that only repeats itself ends the replay after its one
    architecture; with it, every repeat is followed by a new one until the budget is spent."""
    mf = _multifidelity()
    import tabular

    monkeypatch.setattr(mf, "make_sampler", lambda name, seed: _AlwaysTheFirstChoice())
    table = tabular.load_table(tabular.TABLE)
    run = mf.replay("same", 0, table, budget=30, rungs=[], eta=3, fill_repeats=fill)
    epochs = len(next(iter(table.values()))["curves"][0])
    assert len(run["finished"]) == finished
    assert [e for e, *_ in run["finished"]] == [epochs * (k + 1) for k in range(finished)]
    assert run["asks"] == (1 + mf.DUPLICATE_STREAK_LIMIT if not fill else 2 * finished - 1)
