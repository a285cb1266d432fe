"""Pareto successive halving: which trials go on at a rung, decided once and for good.

The stopping variant of asynchronous successive halving (ASHA), for several objectives. A
trial reaching a rung (``min_epochs * eta**k`` epochs, below the schedule's last epoch) goes
on only if it is among the top ``1/eta`` of every trial that has reached that rung so far,
itself included; until a rung has ``eta`` trials it promotes, as ASHA does, since there is
nothing yet to compare against. The order is a total one, so the promoted share never
exceeds ``1/eta`` whatever the ties:

1. non-dominated sorting on the rung accuracy (the mean over seeds at that epoch) and the
   cost objectives (known before training); accuracies within the rung's seed noise
   (``NOISE_Z`` standard errors, the standard error pooled over the rung's trials) tie, as
   latencies inside each other's confidence interval do;
2. within a front, crowding distance (NSGA-II's: boundary points first), so a front is
   thinned evenly rather than from one end; or, with ``within_front="hypervolume"``, each
   member's exclusive hypervolume contribution (SMS-EMOA's: how much of the front's volume,
   bounded by the rung's reference point, is lost without it), which keeps the members that
   hold the most dominated area rather than the most isolated ones. The search uses crowding:
   replayed on the 3-epoch table (``bench/multifidelity.py --within-front hypervolume``),
   hypervolume contribution reached the target no sooner (BENCHMARKS.md);
3. then the earlier trial, which makes the order reproducible on a resumed study.

Single-objective rankers (Ray Tune's schedulers, Optuna's pruners) cannot do this: a trial
cheap in latency but mediocre in accuracy belongs to the front and must not be cut.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from results.pareto import hypervolume, non_dominated_ranks, reference_point, to_minimization

NOISE_Z = 2.0  # accuracies closer than this many (pooled) standard errors are tied
WITHIN_FRONT = ("crowding", "hypervolume")  # how one front's members are ordered


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """Every rung below the last epoch, where a trial is stopped or promoted: min_epochs,
    min_epochs * eta, ... (the last epoch itself ends the trial, it decides nothing)."""
    if min_epochs < 1 or eta < 2:
        raise ValueError(
            f"successive halving needs min_epochs >= 1 and eta >= 2; got {min_epochs}, {eta}"
        )
    rungs = []
    e = min_epochs
    while e < epochs:
        rungs.append(e)
        e *= eta
    return rungs


@dataclass(frozen=True)
class RungEntry:
    """One trial at one rung: what it is ranked by."""

    number: int
    seed_accuracies: tuple[float, ...]  # each seed's accuracy after the rung's epoch
    costs: tuple[float, ...]  # the cost objectives, in the study's order
    cost_intervals: tuple[tuple[float, float] | None, ...] = ()  # 95% CIs where measured

    @property
    def accuracy(self) -> float:
        return statistics.fmean(self.seed_accuracies)


def pooled_stderr(entries: Sequence[RungEntry]) -> float | None:
    """The standard error of one trial's mean accuracy, pooled over the rung's trials; None
    with a single seed (no noise can be estimated, so accuracies are exact)."""
    by_seeds: dict[int, list[tuple[float, ...]]] = {}
    for e in entries:
        if len(e.seed_accuracies) > 1:
            by_seeds.setdefault(len(e.seed_accuracies), []).append(e.seed_accuracies)
    if not by_seeds:
        return None
    # One array per seed count (seeds run in lockstep, so usually one): a rung's decision
    # ranks every trial that reached it, and per-trial variances dominated it at 2,000 trials.
    variances = np.concatenate([np.var(np.array(v), axis=1, ddof=1) for v in by_seeds.values()])
    return math.sqrt(float(variances.mean()) / max(by_seeds))


def _crowding(loss: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance within one front (boundary points get infinity)."""
    n, m = loss.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf) if n and np.ptp(loss, axis=0).any() else dist
    for j in range(m):
        order = np.argsort(loss[:, j], kind="stable")
        span = loss[order[-1], j] - loss[order[0], j]
        if span <= 0:
            continue  # all equal here: no boundary (else list order would pick one)
        dist[order[0]] = dist[order[-1]] = math.inf
        dist[order[1:-1]] += (loss[order[2:], j] - loss[order[:-2], j]) / span
    return dist


def _hv_contribution(values: np.ndarray, directions: Sequence[str], ref: np.ndarray) -> np.ndarray:
    """Each row's exclusive hypervolume contribution within one front (0 for a row another
    row dominates: fronts here are tied within noise, so that can happen)."""
    total = hypervolume(values, directions, ref)
    rows = np.arange(len(values))
    return np.array([total - hypervolume(values[rows != i], directions, ref) for i in rows])


def rung_order(
    entries: Sequence[RungEntry],
    cost_directions: Sequence[str],
    within_front: str = "crowding",
) -> list[int]:
    """Trial numbers from best to worst at one rung (module docstring)."""
    if not entries:
        return []
    directions = ["maximize", *cost_directions]
    values = np.array([[e.accuracy, *e.costs] for e in entries], dtype=float)
    se = pooled_stderr(entries)
    intervals = np.full((*values.shape, 2), np.nan)
    if se is not None:
        intervals[:, 0, 0] = values[:, 0] - NOISE_Z * se
        intervals[:, 0, 1] = values[:, 0] + NOISE_Z * se
    for i, e in enumerate(entries):
        for j, ci in enumerate(e.cost_intervals):
            if ci is not None:
                intervals[i, j + 1] = ci
    ranks = non_dominated_ranks(values, directions, intervals)
    loss = to_minimization(values, directions)
    if within_front == "hypervolume":
        ref = reference_point(values, directions)  # the rung's: every front is bounded alike
        spread = lambda members: _hv_contribution(values[members], directions, ref)  # noqa: E731
    else:
        spread = lambda members: _crowding(loss[members])  # noqa: E731
    crowd = np.zeros(len(entries))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = spread(members)
    return [
        entries[i].number
        for i in sorted(range(len(entries)), key=lambda i: (ranks[i], -crowd[i], entries[i].number))
    ]


def kept(order: Sequence[int], eta: int) -> list[int]:
    """The trials of a rung's ``order`` that go on: every one until the rung holds ``eta``
    trials, then the top floor(n/eta) (ties broken by the order, so never more)."""
    return list(order) if len(order) < eta else list(order[: len(order) // eta])


def promotes(
    entry: RungEntry,
    earlier: Sequence[RungEntry],
    eta: int,
    cost_directions: Sequence[str],
    within_front: str = "crowding",
) -> bool:
    """Does ``entry`` go on? It is ranked with every trial that reached the rung before it
    (``earlier``, whatever was decided for them), and goes on when among the top 1/eta."""
    pool = [*earlier, entry]
    if len(pool) < eta:
        return True
    return entry.number in kept(rung_order(pool, cost_directions, within_front), eta)
