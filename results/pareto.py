"""Pareto analysis on plain arrays: non-dominated sorting, hypervolume (+ history), knee point.

Every function takes ``values`` of shape ``(n, m)`` in the study's own units and the study's
``directions`` ("maximize"/"minimize", or ``optuna.study.StudyDirection``), and converts to a
*minimization space* internally (maximized columns negated), so callers never flip signs by
hand. A study is not needed: the report, the export and the tests all work on arrays.

Dominance: ``a`` dominates ``b`` when ``a`` is no worse in every objective and strictly better
in at least one. Equal points do not dominate each other, so duplicates share a rank.

Measured objectives carry confidence intervals (latency): pass ``intervals`` of shape
``(n, m, 2)`` (low, high in the study's units; NaN where a value is exact) and two values
whose intervals overlap are tied in that objective, so a point that is "faster" only by
timing noise neither dominates nor is dominated for it.

Rows with a NaN (failed or infeasible trials a caller keeps in place) are never on a front:
``pareto_mask``/``knee_point``/``hypervolume``/``hypervolume_history`` ignore them, while
``non_dominated_ranks`` refuses them, because every row must get an integer rank.

Optuna's private helpers are used where they exist (the same code its NSGA-II sampler and
hypervolume plots run), each behind one function here with a pure-NumPy fallback, so an Optuna
upgrade that moves them degrades to slower code instead of breaking imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "hypervolume",
    "hypervolume_history",
    "knee_point",
    "non_dominated_ranks",
    "pareto_mask",
    "reference_point",
    "to_minimization",
]

_DIRECTIONS = ("maximize", "minimize")


# -- directions --------------------------------------------------------------------------------
def _direction_name(d: Any) -> str:
    # Accept Optuna's StudyDirection (``study.directions``) as well as its strings.
    name = getattr(d, "name", d)
    if not isinstance(name, str) or name.lower() not in _DIRECTIONS:
        raise ValueError(f"unknown direction {d!r}; allowed: {', '.join(_DIRECTIONS)}")
    return name.lower()


def _as_values(values: Any, directions: Sequence[Any]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, len(directions))
    if arr.ndim != 2:
        raise ValueError(f"values must have shape (n, m); got shape {arr.shape}")
    if arr.shape[1] != len(directions):
        raise ValueError(
            f"values have {arr.shape[1]} objectives but {len(directions)} directions were given"
        )
    return arr


def to_minimization(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Return a float copy of ``values`` (n, m) with every maximized column negated.

    All the geometry below (dominance, reference point, hypervolume, knee) is then one case.
    """
    names = [_direction_name(d) for d in directions]
    arr = _as_values(values, names).copy()
    for j, name in enumerate(names):
        if name == "maximize":
            arr[:, j] = -arr[:, j]
    return arr


def _loss_and_valid(values: np.ndarray, directions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    loss = to_minimization(values, directions)
    return loss, ~np.isnan(loss).any(axis=1)


# -- non-dominated sorting ---------------------------------------------------------------------
def _ranks(loss: np.ndarray) -> np.ndarray:
    """Non-dominated sort of an O(n^2) dominance matrix: ours, tested against brute force,
    rather than Optuna's private ``_fast_non_domination_rank``."""
    le = (loss[:, None, :] <= loss[None, :, :]).all(axis=2)
    lt = (loss[:, None, :] < loss[None, :, :]).any(axis=2)
    return _peel(le & lt)


def _peel(dominates: np.ndarray) -> np.ndarray:
    """Ranks from ``dominates[i, j]`` (i dominates j): rank 0 is dominated by none, rank k by
    none once ranks below k are removed. Each row's dominators are counted once and counted
    down as fronts are removed (Deb's fast non-dominated sort), so the whole sort is O(n^2):
    re-scanning the matrix per front was O(fronts * n^2), 0.9 s for a 2,000-trial rung."""
    n = dominates.shape[0]
    ranks = np.full(n, -1, dtype=int)
    dominators = dominates.sum(axis=0)
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        front = remaining & (dominators == 0)
        if not front.any():  # interval dominance can cycle (a > b > c > a): they all tie
            front = remaining.copy()
        ranks[front] = rank
        remaining &= ~front
        dominators -= dominates[front].sum(axis=0)
        rank += 1
    return ranks


def _interval_loss(
    values: np.ndarray, intervals: np.ndarray, directions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) bounds of each value in minimization space; exact values bound themselves."""
    vals = np.asarray(values, dtype=float)
    iv = np.asarray(intervals, dtype=float)
    if iv.shape != (*vals.shape, 2):
        raise ValueError(f"intervals must have shape {(*vals.shape, 2)}; got {iv.shape}")
    lo = np.where(np.isnan(iv[..., 0]), vals, np.minimum(iv[..., 0], vals))
    hi = np.where(np.isnan(iv[..., 1]), vals, np.maximum(iv[..., 1], vals))
    names = [_direction_name(d) for d in directions]
    for j, name in enumerate(names):
        if name == "maximize":
            lo[:, j], hi[:, j] = -hi[:, j], -lo[:, j]
    return lo, hi


def _ranks_with_ties(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Non-dominated sorting where ``i`` beats ``j`` in an objective only when ``i``'s whole
    interval lies below ``j``'s, and overlapping intervals tie."""
    n = lo.shape[0]
    beats_somewhere = np.zeros((n, n), dtype=bool)  # [i, j]: i beats j in some objective
    for k in range(lo.shape[1]):  # one n x n plane at a time: an n x n x m array is 3x slower
        beats_somewhere |= hi[:, k, None] < lo[None, :, k]
    return _peel(beats_somewhere & ~beats_somewhere.T)


def non_dominated_ranks(
    values: np.ndarray, directions: Sequence[str], intervals: np.ndarray | None = None
) -> np.ndarray:
    """Non-dominated sorting: rank 0 is the Pareto front, rank 1 the front once 0 is removed, ...

    Rows must be NaN-free: every row gets a rank, so a NaN row is an error, not a silent guess
    (drop failed trials first, or use ``pareto_mask``, which leaves them off the front).
    """
    loss = to_minimization(values, directions)
    if np.isnan(loss).any():
        bad = np.flatnonzero(np.isnan(loss).any(axis=1)).tolist()
        raise ValueError(f"values contain NaN in rows {bad}; drop them before ranking")
    if intervals is not None:
        return _ranks_with_ties(*_interval_loss(values, intervals, directions))
    return _ranks(loss)


def pareto_mask(
    values: np.ndarray, directions: Sequence[str], intervals: np.ndarray | None = None
) -> np.ndarray:
    """True for the rows no other row dominates (rank 0); rows with a NaN are False."""
    loss, valid = _loss_and_valid(values, directions)
    mask = np.zeros(loss.shape[0], dtype=bool)
    if valid.any():
        iv = None if intervals is None else np.asarray(intervals, dtype=float)[valid]
        vals = np.asarray(values, dtype=float)[valid]
        mask[valid] = non_dominated_ranks(vals, directions, iv) == 0
    return mask


# -- hypervolume -------------------------------------------------------------------------------
def reference_point(
    values: np.ndarray, directions: Sequence[str], margin: float = 0.1
) -> np.ndarray:
    """A reference point for ``hypervolume``, returned in MINIMIZATION space.

    Per objective: the worst (largest minimization-space) value plus ``margin`` times the range,
    so the worst points still add volume. A zero range falls back to ``abs(worst) * margin``,
    or ``margin`` itself when the worst value is 0. Only rows whose values are all finite count.
    A maximized objective's reference in the study's units is the negated entry.

    Record the point with the hypervolume: values computed against different references are
    not comparable.
    """
    loss = to_minimization(values, directions)
    loss = loss[np.isfinite(loss).all(axis=1)]
    if loss.shape[0] == 0:
        raise ValueError("no row with all-finite values to derive a reference point from")
    worst = loss.max(axis=0)
    spread = worst - loss.min(axis=0)
    fallback = np.where(worst != 0, np.abs(worst) * margin, margin)
    return worst + np.where(spread > 0, spread * margin, fallback)


def _check_reference(reference: Any, m: int) -> np.ndarray:
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape[0] != m:
        raise ValueError(f"reference has {ref.shape[0]} entries but there are {m} objectives")
    if np.isnan(ref).any():
        raise ValueError(f"reference contains NaN: {ref.tolist()}")
    return ref


def _hv(loss: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of minimization-space points that all weakly dominate ``ref``, by
    slicing along the last objective: ours, tested against a sweep line (2-D) and a grid
    count (3-D), rather than Optuna's private ``optuna._hypervolume``. Fine for the fronts
    of a search (tens of points, 2-3 objectives)."""
    if loss.shape[0] == 0:
        return 0.0
    if loss.shape[1] == 1:
        return float(ref[0] - loss[:, 0].min())
    order = np.argsort(loss[:, -1], kind="stable")
    pts = loss[order]
    total = 0.0
    for i in range(pts.shape[0]):
        upper = pts[i + 1, -1] if i + 1 < pts.shape[0] else ref[-1]
        height = upper - pts[i, -1]
        if height > 0:
            total += height * _hv(pts[: i + 1, :-1], ref[:-1])
    return float(total)


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: np.ndarray) -> float:
    """Volume dominated by the rows of ``values`` and bounded by ``reference``.

    ``values`` are in the study's units; ``reference`` is in minimization space (as returned
    by ``reference_point``). Rows with a NaN, and rows worse than the reference in any
    objective, add nothing and are dropped (Optuna's routine rejects them outright).
    """
    loss, valid = _loss_and_valid(values, directions)
    ref = _check_reference(reference, loss.shape[1])
    loss = loss[valid & (loss <= ref).all(axis=1)]
    return _hv(loss, ref)


def hypervolume_history(
    values_in_trial_order: np.ndarray, directions: Sequence[str], reference: np.ndarray
) -> np.ndarray:
    """Hypervolume of the first k rows, for k = 1..n: how the search's front grew over trials.

    NaN rows (failed or infeasible trials) keep their position and repeat the previous value,
    so the history lines up with trial numbers. Only rows that enlarge the current front
    trigger a recomputation, which keeps long studies cheap.
    """
    loss, valid = _loss_and_valid(values_in_trial_order, directions)
    ref = _check_reference(reference, loss.shape[1])
    history = np.zeros(loss.shape[0], dtype=float)
    front = np.empty((0, loss.shape[1]), dtype=float)
    current = 0.0
    for k in range(loss.shape[0]):
        p = loss[k]
        if valid[k] and (p <= ref).all() and not (front <= p).all(axis=1).any():
            front = np.vstack([front[~(p <= front).all(axis=1)], p])
            current = _hv(front, ref)
        history[k] = current
    return history


# -- knee --------------------------------------------------------------------------------------
def knee_point(
    values: np.ndarray, directions: Sequence[str], intervals: np.ndarray | None = None
) -> int:
    """Index into ``values`` of the knee of the non-dominated front.

    Rule: take the front (rank 0 among rows with all-finite values), min-max normalise each
    objective over the front to [0, 1] in minimization space (an objective that is constant on
    the front becomes 0), and pick the point closest (Euclidean) to the ideal point (0, ..., 0).
    Ties (a two-point front always ties) go to the point best in the first objective, then the
    second, and so on, never to a row position: the report sorts its front and the exporter
    does not, and both must name the same trial. It is scale-free and needs no weights, which is
    why it is the default "one architecture to pick": it trades every objective off evenly
    relative to what
    the front actually spans. A single-point front returns that point. With ``intervals``, the
    front is the interval-aware one (see the module docstring).
    """
    loss = to_minimization(values, directions)
    finite = np.flatnonzero(np.isfinite(loss).all(axis=1))
    if finite.size == 0:
        raise ValueError("no row with all-finite values: there is no front to take a knee from")
    vals = np.asarray(values, dtype=float)[finite]
    iv = None if intervals is None else np.asarray(intervals, dtype=float)[finite]
    idx = finite[non_dominated_ranks(vals, directions, iv) == 0]
    front = loss[idx]
    lo, hi = front.min(axis=0), front.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    dist = np.sqrt((((front - lo) / span) ** 2).sum(axis=1))
    tied = np.flatnonzero(np.isclose(dist, dist.min(), rtol=1e-12, atol=1e-12))
    # np.lexsort sorts by its last key first: the objectives reversed, first objective decisive.
    best = tied[np.lexsort(front[tied].T[::-1])[0]]
    return int(idx[best])
