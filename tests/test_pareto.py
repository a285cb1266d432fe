"""results.pareto against brute force and independent hypervolumes; results.frame on a study."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from results import pareto
from results.frame import trials_frame, write_trials
from results.pareto import (
    hypervolume,
    hypervolume_history,
    knee_point,
    non_dominated_ranks,
    pareto_mask,
    reference_point,
    to_minimization,
)
from results.record import RecordError, TrialRecord, read_record

SETTINGS = settings(max_examples=100, deadline=None)


# -- independent helpers (no code shared with results.pareto) ------------------------------------
def _loss(values: np.ndarray, directions: list[str]) -> np.ndarray:
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(values, dtype=float) * sign


def _dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


@st.composite
def point_sets(draw, max_n: int = 30, hi: int = 5, m_range: tuple[int, int] = (2, 3)):
    """Integer-valued float points in the study's units, with random mixed directions."""
    m = draw(st.integers(*m_range))
    n = draw(st.integers(0, max_n))
    directions = draw(st.lists(st.sampled_from(["maximize", "minimize"]), min_size=m, max_size=m))
    coords = draw(
        st.lists(st.lists(st.integers(0, hi), min_size=m, max_size=m), min_size=n, max_size=n)
    )
    loss = np.array(coords, dtype=float).reshape(n, m)  # minimization-space coordinates
    return _loss(loss, directions), directions, loss  # _loss is its own inverse


def _hv2_sweep(loss: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume: sweep x left to right, summing rectangles under the running min y."""
    pts = [p for p in loss.tolist() if p[0] <= ref[0] and p[1] <= ref[1]]
    xs = sorted({p[0] for p in pts}) + [float(ref[0])]
    area, best_y = 0.0, float(ref[1])
    for x, x_next in itertools.pairwise(xs):
        best_y = min(best_y, min(p[1] for p in pts if p[0] == x))
        area += (x_next - x) * (ref[1] - best_y)
    return area


def _hv_grid(loss: np.ndarray, ref: int) -> int:
    """Any-D hypervolume on integer coordinates: count unit cells some point weakly dominates."""
    m = loss.shape[1]
    return sum(
        any(all(p[i] <= cell[i] for i in range(m)) for p in loss.tolist())
        for cell in itertools.product(range(ref), repeat=m)
    )


# -- directions ---------------------------------------------------------------------------------
def test_to_minimization_flips_maximized_columns_and_names_bad_directions() -> None:
    v = np.array([[0.9, 10.0], [0.8, 5.0]])
    np.testing.assert_array_equal(
        to_minimization(v, ["maximize", "minimize"]), [[-0.9, 10.0], [-0.8, 5.0]]
    )
    np.testing.assert_array_equal(
        to_minimization(v, list(optuna.create_study(directions=["maximize"] * 2).directions)), -v
    )
    with pytest.raises(ValueError, match="'fastest'"):
        to_minimization(v, ["maximize", "fastest"])
    with pytest.raises(ValueError, match="3 directions"):
        to_minimization(v, ["maximize"] * 3)


# -- (a) Pareto mask ----------------------------------------------------------------------------
@SETTINGS
@given(point_sets())
def test_pareto_mask_matches_brute_force(case) -> None:
    values, directions, loss = case
    expected = [
        not any(_dominates(loss[j], loss[i]) for j in range(len(loss))) for i in range(len(loss))
    ]
    assert pareto_mask(values, directions).tolist() == expected


def test_pareto_mask_leaves_nan_rows_off_the_front() -> None:
    v = np.array([[1.0, 1.0], [np.nan, 0.0], [2.0, 0.0], [0.0, 3.0]])
    assert pareto_mask(v, ["minimize", "minimize"]).tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        non_dominated_ranks(v, ["minimize", "minimize"])


# -- (b) ranks ----------------------------------------------------------------------------------
@SETTINGS
@given(point_sets())
def test_ranks_are_a_non_dominated_sorting(case) -> None:
    values, directions, loss = case
    ranks = non_dominated_ranks(values, directions)
    assert ranks.shape == (len(loss),)
    if len(loss) == 0:
        return
    assert set(ranks.tolist()) == set(range(ranks.max() + 1))  # contiguous from 0
    assert (pareto_mask(values, directions) == (ranks == 0)).all()
    for r in range(ranks.max() + 1):
        same = loss[ranks == r]
        assert not any(_dominates(a, b) for a in same for b in same)
        if r > 0:
            above = loss[ranks == r - 1]
            assert all(any(_dominates(a, b) for a in above) for b in same)


# -- (c) hypervolume ----------------------------------------------------------------------------
@SETTINGS
@given(point_sets(max_n=12, hi=20, m_range=(2, 2)))
def test_hypervolume_2d_matches_sweep_line(case) -> None:
    values, directions, loss = case
    ref = np.array([15.0, 15.0])  # some points lie beyond it and must add nothing
    expected = _hv2_sweep(loss, ref)
    assert hypervolume(values, directions, ref) == pytest.approx(expected)
    keep = (loss <= ref).all(axis=1)
    assert pareto._hv(loss[keep], ref) == pytest.approx(expected)


@SETTINGS
@given(point_sets(max_n=7, hi=8, m_range=(3, 3)))
def test_hypervolume_3d_matches_grid_cell_count(case) -> None:
    values, directions, loss = case
    ref = np.array([7.0, 7.0, 7.0])  # coordinates 7 and 8 sit on or beyond the reference
    expected = _hv_grid(loss, 7)
    assert hypervolume(values, directions, ref) == pytest.approx(expected)
    keep = (loss <= ref).all(axis=1)
    assert pareto._hv(loss[keep], ref) == pytest.approx(expected)


def test_reference_point_is_in_minimization_space_with_a_margin() -> None:
    v = np.array([[0.9, 10.0], [0.8, 5.0], [np.nan, 1.0]])
    ref = reference_point(v, ["maximize", "minimize"])
    np.testing.assert_allclose(ref, [-0.8 + 0.01, 10.0 + 0.5])
    # zero range: abs(worst) * margin, or margin itself when the worst value is 0
    np.testing.assert_allclose(
        reference_point(np.array([[2.0, 0.0]]), ["minimize"] * 2), [2.2, 0.1]
    )
    assert hypervolume(v, ["maximize", "minimize"], ref) > 0
    with pytest.raises(ValueError, match="finite"):
        reference_point(np.array([[np.nan, 1.0]]), ["minimize"] * 2)


# -- (d) hypervolume history --------------------------------------------------------------------
@SETTINGS
@given(point_sets(max_n=20, hi=8), st.data())
def test_hypervolume_history_grows_to_the_full_hypervolume(case, data) -> None:
    values, directions, loss = case
    failed = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    values = values.copy()
    values[np.array(failed, dtype=bool)] = np.nan
    ref = np.full(len(directions), 7.0)
    hist = hypervolume_history(values, directions, ref)
    assert hist.shape == (len(values),)
    assert (np.diff(hist) >= 0).all()
    for k in range(len(values)):
        assert hist[k] == pytest.approx(hypervolume(values[: k + 1], directions, ref))
    if len(values):
        assert hist[-1] == pytest.approx(hypervolume(values, directions, ref))


# -- (e) knee -----------------------------------------------------------------------------------
def test_knee_on_a_known_front() -> None:
    mm = ["minimize", "minimize"]
    # Normalised by the span 10: (0,1), (.1,.3), (.3,.1), (1,0). (1,3) and (3,1) tie at
    # sqrt(0.1) from the ideal point; the tie goes to the better first objective, (1,3), and
    # not to a row position, so reversing the rows picks the same point.
    front = np.array([[0.0, 10.0], [1.0, 3.0], [3.0, 1.0], [10.0, 0.0]])
    assert knee_point(front, mm) == 1
    assert knee_point(front[::-1], mm) == 2
    # A two-point front always ties: the more accurate point wins whichever row comes first.
    two = np.array([[0.9, 2.0], [0.8, 1.0]])
    mx = ["maximize", "minimize"]
    assert knee_point(two, mx) == 0 and knee_point(two[::-1], mx) == 1
    # (2,3) -> (.2,.3), distance sqrt(.13); (3,1) -> (.3,.1), sqrt(.10): index 2 wins.
    assert knee_point(np.array([[0.0, 10.0], [2.0, 3.0], [3.0, 1.0], [10.0, 0.0]]), mm) == 2
    # Dominated and NaN rows are never the knee; indices refer to the input rows.
    rows = np.array([[5.0, 5.0], [np.nan, 0.0], *front.tolist()])
    assert knee_point(rows, mm) == 3
    # Directions are honoured: maximising the first objective mirrors it.
    assert knee_point(np.array([[0.0, 10.0], [-2.0, 3.0], [-3.0, 1.0], [-10.0, 0.0]]),
                      ["maximize", "minimize"]) == 2  # fmt: skip
    assert knee_point(np.array([[4.0, 4.0], [5.0, 5.0]]), mm) == 0  # one-point front


# -- (f) the trials frame -----------------------------------------------------------------------
def _arch(attention: str, kernel_size: int | str | None = None) -> dict:
    stage = {
        "attention": attention,
        "position": None if attention == "none" else "post",
        "kernel_size": kernel_size,
        "spatial_kernel_size": None,
        "variant": None,
        "reduction": 16 if attention == "se" else None,
    }
    return {
        "backbone": "resnet18",
        "stages": [stage, {**stage, "attention": "none", "position": None}],
    }


def _metrics(acc: float, lat: float) -> dict:
    return {
        "accuracy": acc,
        "accuracy_std": 0.01,
        "accuracies": [acc / 2, acc],
        "latency_ms": lat,
        "latency_iqr_ms": 0.1,
        "latency_rel": lat / 10,
        "flops": 1000,
        "params": 100,
        "train_seconds": 3.5,
        "device": "cpu",
        "hardware": {"device": "cpu", "name": "Test CPU"},
    }


def _add(study, values, attrs, state=TrialState.COMPLETE) -> None:
    trial = study.ask()
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    if state == TrialState.COMPLETE:
        study.tell(trial, values)
    elif state == TrialState.FAIL:
        study.tell(trial, state=TrialState.FAIL)


def _driven(
    attention: str, acc: float, lat: float, constraints: list[float], kernel_size=None, **record
) -> dict:
    """The user attrs the driver writes: the typed record, and the samplers' constraints."""
    bounds = ("max_latency_ms", "max_flops")
    full = TrialRecord(
        arch=_arch(attention, kernel_size),
        arch_hash=f"h-{attention}-{acc}",
        label=f"{attention}@post",
        eval_fingerprint="fp",
        status="ok" if max(constraints) <= 0 else "infeasible",
        constraints=dict(zip(bounds, constraints, strict=False)),
        **_metrics(acc, lat),
    ).model_copy(update=record)
    return {"record": full.model_dump(mode="json"), "constraints": constraints}


@pytest.fixture
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s.set_metric_names(["accuracy", "latency_ms"])
    _add(s, [0.90, 10.0], _driven("none", 0.90, 10.0, [0.0], baseline="plain"))  # front
    _add(s, [0.80, 5.0], _driven("eca", 0.80, 5.0, [0.0], "auto", duplicate_of=0))  # front
    _add(s, [0.70, 8.0], _driven("eca", 0.70, 8.0, [-1.0, 0.0], 3))  # dominated by #1
    _add(s, [0.95, 4.0], _driven("cbam", 0.95, 4.0, [0.5]))  # would dominate all: infeasible
    failed = TrialRecord(
        arch=None,
        arch_hash=None,
        label=None,
        eval_fingerprint=None,
        status="failed",
        fail_reason="nan_loss at epoch 2",
    )
    _add(s, None, {"record": failed.model_dump(mode="json")}, state=TrialState.FAIL)
    _add(s, [0.60, 2.0], {})  # no record at all: still a feasible front member
    _add(s, None, {}, state=TrialState.RUNNING)
    return s


def test_trials_frame_columns_front_and_missing_attrs(study: optuna.Study) -> None:
    df = trials_frame(study)
    assert df["number"].tolist() == list(range(7))
    expected = {
        "number", "state", "datetime_start", "datetime_complete", "duration_s",
        "accuracy", "latency_ms", "label", "arch_hash", "baseline",
        "stage0_attention", "stage0_position", "stage0_kernel_size", "stage0_variant",
        "stage1_attention", "stage1_kernel_size", "accuracy_std", "latency_iqr_ms",
        "latency_rel", "flops", "params", "train_seconds", "device", "status", "device_name",
        "constraint_violation", "feasible", "fail_reason", "duplicate_of", "is_baseline",
        "is_pareto", "pareto_rank",
    }  # fmt: skip
    assert expected <= set(df.columns)
    assert not {"accuracies", "hardware"} & set(df.columns)
    assert len(set(df.columns)) == len(df.columns)
    d = df.set_index("number")

    assert d.loc[d["is_pareto"]].index.tolist() == [0, 1, 5]
    assert d["is_pareto"].dtype == bool
    ranks = d["pareto_rank"]
    assert ranks[[0, 1, 2, 5]].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert ranks[[3, 4, 6]].isna().all()
    assert d["feasible"].tolist() == [True, True, True, False, False, True, False]
    assert d.loc[3, "constraint_violation"] == 0.5
    assert d.loc[2, "constraint_violation"] == 0.0
    assert d.loc[3, "status"] == "infeasible"

    assert d["is_baseline"].tolist() == [True] + [False] * 6
    assert d.loc[0, "baseline"] == "plain"
    assert d.loc[1, "duplicate_of"] == 0 and d["duplicate_of"].drop(index=1).isna().all()
    assert d.loc[4, "state"] == "FAIL"
    assert d.loc[4, "fail_reason"] == "nan_loss at epoch 2"
    assert pd.isna(d.loc[0, "fail_reason"])
    assert math.isnan(d.loc[4, "accuracy"])
    assert d.loc[6, "state"] == "RUNNING" and math.isnan(d.loc[6, "duration_s"])

    assert d.loc[0, "accuracy"] == 0.90 and d.loc[1, "latency_ms"] == 5.0
    assert d.loc[1, "stage0_attention"] == "eca" and d.loc[1, "stage0_kernel_size"] == "auto"
    assert d.loc[1, "stage1_attention"] == "none"
    assert d.loc[1, "arch_hash"] == "h-eca-0.8"
    assert d.loc[1, "device_name"] == "Test CPU" and d.loc[1, "flops"] == 1000
    assert pd.isna(d.loc[5, "label"]) and pd.isna(d.loc[5, "stage0_attention"])


def test_a_record_of_an_unknown_version_is_an_error_not_a_guess(study: optuna.Study) -> None:
    future = _driven("se", 0.5, 1.0, [0.0])
    future["record"]["version"] = 7
    _add(study, [0.5, 1.0], future)
    with pytest.raises(RecordError, match="trial 7 has a record of version 7; this attnas reads"):
        trials_frame(study)


def test_a_record_with_an_untyped_key_is_refused(study: optuna.Study) -> None:
    extra = _driven("se", 0.5, 1.0, [0.0])
    extra["record"]["colour"] = "blue"
    _add(study, [0.5, 1.0], extra)
    with pytest.raises(RecordError, match="trial 7 has a malformed record: colour"):
        trials_frame(study)


def test_trials_frame_default_value_names_and_empty_study() -> None:
    s = optuna.create_study(directions=["minimize", "minimize"])
    df = trials_frame(s)
    assert len(df) == 0 and {"value0", "value1", "is_pareto", "pareto_rank"} <= set(df.columns)
    _add(s, [1.0, 2.0], {})
    assert trials_frame(s)["is_pareto"].tolist() == [True]


def test_write_trials_round_trips(study: optuna.Study, tmp_path) -> None:
    csv = write_trials(study, tmp_path / "out")
    assert csv == tmp_path / "out" / "trials.csv"
    back = pd.read_csv(csv)
    df = trials_frame(study)
    assert len(back) == len(df) == 7
    assert back.columns.tolist() == df.columns.tolist()
    assert back.loc[back["is_pareto"], "number"].tolist() == [0, 1, 5]
    pytest.importorskip("pyarrow")
    pq = pd.read_parquet(tmp_path / "out" / "trials.parquet")  # kernel_size mixes 3 and "auto"
    assert len(pq) == 7 and pq["stage0_kernel_size"].tolist()[1:3] == ["auto", "3"]


# -- (f) latencies inside each other's interval are tied ----------------------------------------
def test_overlapping_latency_intervals_tie_on_the_front():
    mx = ["maximize", "minimize"]
    # B is 1% faster than A by its point value and 0.01 less accurate.
    values = np.array([[0.90, 1.00], [0.89, 0.99]])
    assert pareto_mask(values, mx).tolist() == [True, True]  # by points, both on the front
    exact = np.full((2, 2, 2), np.nan)
    tied = exact.copy()
    tied[:, 1] = [[0.98, 1.02], [0.97, 1.01]]  # the intervals overlap: as fast as each other
    # Tied in latency, A is more accurate: A alone is on the front.
    assert pareto_mask(values, mx, tied).tolist() == [True, False]
    assert non_dominated_ranks(values, mx, tied).tolist() == [0, 1]
    apart = exact.copy()
    apart[:, 1] = [[0.995, 1.005], [0.985, 0.995]]  # touching, not overlapping: both stay
    apart[1, 1] = [0.985, 0.994]
    assert pareto_mask(values, mx, apart).tolist() == [True, True]
    # NaN intervals mean exact values: the same as passing none.
    assert pareto_mask(values, mx, exact).tolist() == pareto_mask(values, mx).tolist()
    assert knee_point(values, mx, tied) == 0


@SETTINGS
@given(point_sets(), st.integers(0, 2**32 - 1))
def test_ranks_with_intervals_are_a_sorting_where_overlap_ties(case, seed) -> None:
    """Against the definition: i dominates j when its interval is wholly better in one
    objective and wholly worse in none; ranks peel fronts of that relation."""
    values, directions, loss = case
    rng = np.random.default_rng(seed)
    width = (
        rng.uniform(0, 2, size=(*values.shape, 1))
        * rng.integers(0, 2, size=values.shape)[..., None]
    )
    intervals = np.concatenate([values[..., None] - width, values[..., None] + width], axis=2)
    ranks = non_dominated_ranks(values, directions, intervals)
    if len(loss) == 0:
        return
    low, high = loss - width[..., 0], loss + width[..., 0]  # symmetric: the same when flipped

    def beats(i: int, j: int) -> bool:
        better = (high[i] < low[j]).any()
        return bool(better and not (high[j] < low[i]).any())

    assert set(ranks.tolist()) == set(range(ranks.max() + 1))
    for r in range(ranks.max() + 1):
        left = np.flatnonzero(ranks >= r)  # what remains once the better fronts are peeled
        unbeaten = [b for b in left if not any(beats(a, b) for a in left)]
        # interval dominance is not transitive and can cycle; then everything left ties
        assert np.flatnonzero(ranks == r).tolist() == (unbeaten or left.tolist())


def test_intervals_must_match_the_values():
    with pytest.raises(ValueError, match=r"intervals must have shape \(2, 2, 2\)"):
        non_dominated_ranks(np.zeros((2, 2)), ["minimize", "minimize"], np.zeros((2, 2)))


def test_min_latency_picks_the_most_accurate_of_those_tied_with_the_fastest():
    import pandas as pd

    from results.export import fastest

    ok = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "accuracy": [0.90, 0.95, 0.99],
            "latency_rel": [1.00, 1.01, 1.20],
            "latency_rel_lo": [0.99, 1.00, 1.18],
            "latency_rel_hi": [1.01, 1.02, 1.22],
        }
    )
    assert fastest(ok, "latency_rel")["number"] == 1  # 1.01 is within 1.00's interval
    no_intervals = ok.drop(columns=["latency_rel_lo", "latency_rel_hi"])
    assert fastest(no_intervals, "latency_rel")["number"] == 0


def test_a_version_1_record_reads_as_the_current_one_without_rungs(study: optuna.Study) -> None:
    old = _driven("se", 0.5, 1.0, [0.0])
    old["record"]["version"] = 1
    _add(study, [0.5, 1.0], old)
    record = read_record(study.trials[-1])
    assert record is not None and record.rungs == [] and record.version == 2


def test_the_stage_chart_tells_ela_variants_apart() -> None:
    from results.report import stage_counts

    s = optuna.create_study(directions=["maximize", "minimize"])
    for variant, acc, lat in (("B", 0.9, 1.2), ("S", 0.95, 1.3), ("S", 0.97, 1.4)):
        attrs = _driven("ela", acc, lat, [0.0])
        attrs["record"]["arch"]["stages"][0]["variant"] = variant
        attrs["record"]["arch_hash"] = f"ela-{variant}-{acc}"
        _add(s, [acc, lat], attrs)
    counts = stage_counts(trials_frame(s))
    assert counts[0].to_dict() == {"ela-B@post": 1, "ela-S@post": 2}
    assert counts[1].to_dict() == {"none": 3}


@pytest.mark.parametrize(("objective", "fastest"), [("latency_rel", 1), ("latency_ms", 0)])
def test_pickers_rank_by_the_studys_own_cost_objective(objective, fastest) -> None:
    from results.export import pick

    s = optuna.create_study(directions=["maximize", "minimize"])
    s.set_metric_names(["accuracy", objective])
    # trial 0 has the lower latency_ms, trial 1 the lower latency_rel
    for number, (acc, ms, rel) in enumerate(((0.90, 1.0, 0.924), (0.91, 2.0, 0.900))):
        attrs = _driven("se", acc, ms, [0.0])
        attrs["record"]["latency_rel"] = rel
        attrs["record"]["arch_hash"] = f"h{number}"
        _add(s, [acc, rel if objective == "latency_rel" else ms], attrs)
    assert int(pick(s, "min-latency")["number"]) == fastest
