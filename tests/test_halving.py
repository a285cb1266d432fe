"""Pareto successive halving's rung decisions (search/halving.py)."""

from __future__ import annotations

import itertools

import pytest

from search.halving import (
    WITHIN_FRONT,
    RungEntry,
    _hv_contribution,
    kept,
    pooled_stderr,
    promotes,
    rung_epochs,
    rung_order,
)

MIN = ["minimize"]


def entry(number: int, acc: float | tuple[float, ...], *costs: float, ci=()) -> RungEntry:
    accs = acc if isinstance(acc, tuple) else (acc,)
    return RungEntry(number, accs, tuple(costs), tuple(ci))


def test_rungs_are_min_epochs_times_powers_of_eta_below_the_last_epoch():
    assert rung_epochs(1, 3, 3) == [1]
    assert rung_epochs(1, 3, 9) == [1, 3]
    assert rung_epochs(1, 3, 10) == [1, 3, 9]
    assert rung_epochs(2, 2, 16) == [2, 4, 8]
    assert rung_epochs(5, 3, 5) == []  # the first rung is the whole schedule: nothing to decide
    with pytest.raises(ValueError, match="eta >= 2"):
        rung_epochs(1, 1, 9)


def test_a_rung_promotes_everything_until_it_holds_eta_trials():
    assert promotes(entry(0, 0.1, 5.0), [], 3, MIN)
    assert promotes(entry(1, 0.0, 9.0), [entry(0, 0.9, 1.0)], 3, MIN)  # dominated, still goes on
    # the third trial makes eta: only the best of the three goes on
    assert not promotes(entry(2, 0.0, 9.0), [entry(0, 0.9, 1.0), entry(1, 0.5, 2.0)], 3, MIN)


def test_kept_is_everything_below_eta_then_the_top_floor_n_over_eta_in_order():
    assert kept([4, 2], 3) == [4, 2]
    assert kept([4, 2, 7], 3) == [4]
    assert kept([4, 2, 7, 1, 0], 3) == [4]
    assert kept(list(range(9, -1, -1)), 3) == [9, 8, 7]
    # promotes is kept applied to the rung's order, trial by trial
    pool = [entry(0, 0.9, 3.0), entry(1, 0.5, 1.0), entry(2, 0.7, 2.0), entry(3, 0.6, 2.5)]
    top = kept(rung_order(pool, MIN), 3)
    assert [e.number for e in pool if promotes(e, [p for p in pool if p is not e], 3, MIN)] == top


def test_the_order_is_non_dominated_sorting_then_crowding_then_trial_number():
    # front: 0 (most accurate), 1 (cheapest), 2 (between, crowded); dominated: 3
    pool = [entry(0, 0.9, 3.0), entry(1, 0.5, 1.0), entry(2, 0.7, 2.0), entry(3, 0.6, 2.5)]
    order = rung_order(pool, MIN)
    assert order[:2] == [0, 1]  # boundary points of the front first
    assert order[2] == 2 and order[3] == 3
    # a cheap but mediocre trial belongs to the front: accuracy alone would cut it
    others = [entry(0, 0.9, 3.0), entry(2, 0.7, 2.0), entry(4, 0.6, 2.5), entry(5, 0.55, 2.8)]
    assert promotes(entry(1, 0.5, 1.0), [*others, entry(6, 0.3, 3.5)], 3, MIN)


def test_accuracies_within_seed_noise_tie_and_the_cost_decides():
    # seed noise about 0.02: 0.80 and 0.81 are tied in accuracy, so the cheaper one dominates
    a = entry(0, (0.80, 0.84, 0.76), 2.0)
    b = entry(1, (0.81, 0.85, 0.77), 3.0)
    c = entry(2, (0.20, 0.22, 0.18), 4.0)
    assert pooled_stderr([a, b, c]) == pytest.approx(((0.0016 + 0.0016 + 0.0004) / 3 / 3) ** 0.5)
    assert rung_order([a, b, c], MIN)[0] == 0
    # a trial with another seed count pools its variance in; one seed adds none
    d = entry(3, (0.5, 0.6), 4.0)
    pooled = ((0.0016 + 0.0016 + 0.0004 + 0.005) / 4 / 3) ** 0.5
    assert pooled_stderr([a, b, c, d, entry(4, 0.3, 1.0)]) == pytest.approx(pooled)
    assert pooled_stderr([entry(0, 0.8, 1.0)]) is None
    # without seed noise (one seed) the more accurate one is on the front too
    assert set(rung_order([entry(0, 0.80, 2.0), entry(1, 0.81, 3.0)], MIN)) == {0, 1}


def test_latencies_inside_each_others_interval_tie():
    a = entry(0, 0.8, 1.00, ci=[(0.95, 1.05)])
    b = entry(1, 0.8, 1.02, ci=[(0.97, 1.07)])
    # tied in both objectives: neither dominates, both are on the front
    assert sorted(rung_order([a, b, entry(2, 0.5, 1.5, ci=[(1.45, 1.55)])], MIN)[:2]) == [0, 1]


@pytest.mark.parametrize("within_front", WITHIN_FRONT)
@pytest.mark.parametrize("eta", [2, 3, 4])
def test_ties_never_raise_the_promoted_share_above_one_over_eta(eta, within_front):
    """Every trial tied with every other: each decision still names exactly the top
    floor(n / eta), and a newcomer tied with all of them (the last in the order) is not in it."""
    pool: list[RungEntry] = []
    promoted = []
    for n in range(30):
        e = entry(n, (0.5, 0.52) if n % 2 else (0.52, 0.5), 1.0)
        pool_before = list(pool)
        promoted.append(promotes(e, pool_before, eta, MIN, within_front))
        pool.append(e)
        assert len(rung_order(pool, MIN, within_front)[: len(pool) // eta]) == len(pool) // eta
    assert promoted == [True] * (eta - 1) + [False] * (30 - eta + 1)


def test_a_later_better_trial_is_promoted_when_it_enters_the_top():
    pool = [entry(n, 0.5, 1.0) for n in range(6)]
    assert promotes(entry(6, 0.9, 1.0), pool, 3, MIN)
    assert not promotes(entry(6, 0.4, 1.0), pool, 3, MIN)


@pytest.mark.parametrize("within_front", WITHIN_FRONT)
def test_the_order_does_not_depend_on_the_order_trials_are_listed(within_front):
    pool = [entry(n, 0.5 + 0.01 * (n % 7), 1.0 + 0.1 * (n % 5)) for n in range(12)]
    expected = rung_order(pool, MIN, within_front)
    for perm in itertools.islice(itertools.permutations(pool), 0, 50, 7):
        assert rung_order(list(perm), MIN, within_front) == expected


def test_hypervolume_contributions_are_the_rectangles_each_point_alone_holds():
    """A 2-D front in (accuracy up, latency down): point i alone holds the rectangle from its
    latency to the next point's (or the reference's), and from the previous point's accuracy
    (or the reference's) to its own."""
    import numpy as np

    values = np.array([[0.5, 1.0], [0.6, 1.1], [0.9, 1.2], [0.91, 2.0]])
    acc_ref, lat_ref = 0.459, 2.1  # the rung's reference: worst + 10% of the range
    ref = np.array([-acc_ref, lat_ref])  # minimization space
    got = _hv_contribution(values, ["maximize", "minimize"], ref)
    lat = [*values[:, 1], lat_ref]
    acc = [acc_ref, *values[:, 0]]
    rect = [(lat[i + 1] - lat[i]) * (acc[i + 1] - acc[i]) for i in range(4)]
    assert got == pytest.approx(rect)  # 0.0041, 0.01, 0.24, 0.001
    # so the point holding the big step is kept first, where crowding keeps the two ends
    pool = [entry(i, a, lat_i) for i, (a, lat_i) in enumerate(values)]
    assert rung_order(pool, MIN, "hypervolume") == [2, 1, 0, 3]
    assert rung_order(pool, MIN, "crowding")[:2] == [0, 3]
    # a point another member dominates (a noise tie can put both in one front) holds nothing
    dominated = np.vstack([values, [0.55, 1.15]])
    assert _hv_contribution(dominated, ["maximize", "minimize"], ref)[-1] == pytest.approx(0)
