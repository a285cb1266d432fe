"""The replay's table diagnostic: whether a tabular table's final accuracies belong to the
architectures or to one seed, how early a rung can see them, and how much latency decides."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
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
