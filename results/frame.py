"""A study as one table: a row per trial with its decoded architecture, metrics and front rank.

Everything comes from the Optuna storage (the single record): state and told values from the
trial, the rest from its typed ``TrialRecord`` (``results.record``). A trial without a record
(it failed before it was dispatched) has empty cells; a record this version cannot read is an
error naming the trial, never a guess.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from results.pareto import non_dominated_ranks
from results.record import TrialRecord, read_record

__all__ = [
    "STAGE_KEYS",
    "cost_column",
    "objective_intervals",
    "objective_names",
    "trials_frame",
    "write_trials",
]

# The keys of one stage of ``ArchConfig.stages``, in column order.
STAGE_KEYS = ("attention", "position", "kernel_size", "spatial_kernel_size", "variant", "reduction")

# Scalar record fields copied as columns (an objective's column holds the told value instead).
METRIC_KEYS = (
    "accuracy",
    "accuracy_std",
    "latency_ms",
    "latency_iqr_ms",
    "latency_rel",
    "reference_latency_ms",
    "flops",
    "params",
    "train_seconds",
    "device",
    "failed_epoch",
    "eval_fingerprint",
    "node",
)
# Measured objectives and the record field holding their 95% confidence interval.
INTERVALS = {"latency_rel": "latency_rel_ci", "latency_ms": "latency_ci_ms"}
TAIL = (
    "status",
    "device_name",
    "constraint_violation",
    "feasible",
    "fail_reason",
    "duplicate_of",
    "is_baseline",
)


def objective_names(study: optuna.Study) -> list[str]:
    names = study.metric_names
    return list(names) if names else [f"value{i}" for i in range(len(study.directions))]


def objective_intervals(df: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """(n, m, 2) confidence bounds of each objective value, NaN where it is exact (accuracy,
    FLOPs, or a record from before intervals were measured): what makes two latencies inside
    each other's interval a tie on the front, for the knee and for the pickers."""
    out = np.full((len(df), len(objectives), 2), np.nan)
    for j, name in enumerate(objectives):
        if name.split("@")[0] in INTERVALS and f"{name}_lo" in df:
            out[:, j, 0] = df[f"{name}_lo"].to_numpy(dtype=float)
            out[:, j, 1] = df[f"{name}_hi"].to_numpy(dtype=float)
    return out


def cost_column(df: pd.DataFrame, objectives: list[str]) -> str:
    """The cost a front is read against: the study's cost objective (latency_rel, latency_ms,
    FLOPs or params, in the study's order), else the first measured cost."""
    for col in [n for n in objectives if n != "accuracy"] + ["latency_ms", "latency_rel", "flops"]:
        if col in df and df[col].notna().any():
            return col
    raise ValueError("no cost column (latency or FLOPs) to compare by")


def _stages(record: TrialRecord | None) -> list[dict[str, Any]]:
    return list((record.arch or {}).get("stages", [])) if record is not None else []


def _row(
    t: FrozenTrial, record: TrialRecord | None, objectives: list[str], n_stages: int
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "number": t.number,
        "state": t.state.name,
        "datetime_start": t.datetime_start,
        "datetime_complete": t.datetime_complete,
        "duration_s": t.duration.total_seconds() if t.duration is not None else math.nan,
    }
    values = t.values if t.state == TrialState.COMPLETE and t.values else None
    for i, name in enumerate(objectives):
        row[name] = float(values[i]) if values is not None and i < len(values) else math.nan
    row["label"] = record.label if record else None
    row["arch_hash"] = record.arch_hash if record else None
    row["baseline"] = record.baseline if record else t.user_attrs.get("baseline")
    stages = _stages(record)
    for i in range(n_stages):
        stage = stages[i] if i < len(stages) else {}
        for key in STAGE_KEYS:
            row[f"stage{i}_{key}"] = stage.get(key)
    for key in METRIC_KEYS:
        if key not in row:
            row[key] = getattr(record, key) if record else None
    for name, ci in INTERVALS.items():
        bounds = getattr(record, ci) if record else None
        row[f"{name}_lo"], row[f"{name}_hi"] = bounds if bounds else (math.nan, math.nan)
    for target, measured in (record.latencies if record else {}).items():
        for name, ci in INTERVALS.items():
            col = f"{name}@{target}"
            row.setdefault(col, measured.get(name))  # an objective column keeps its told value
            bounds = measured.get(ci)
            row[f"{col}_lo"], row[f"{col}_hi"] = bounds if bounds else (math.nan, math.nan)
    row["n_seeds"] = len(record.seeds) if record else None
    violation = max(record.constraints.values(), default=0.0) if record else 0.0
    row |= {
        "status": record.status if record else None,
        "device_name": record.device_name if record else None,
        "constraint_violation": violation,
        "feasible": bool(t.state == TrialState.COMPLETE and violation <= 0),
        "fail_reason": record.fail_reason if record else None,
        "duplicate_of": record.duplicate_of if record else None,
        "is_baseline": row["baseline"] is not None,
    }
    return row


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial (see the module docstring for where each column comes from).

    ``is_pareto``/``pareto_rank`` rank only feasible COMPLETE trials (constraint violation
    <= 0) with the study's directions; an infeasible trial is never on the front even when its
    values would dominate, which is the point of a constraint. ``pareto_rank`` is NaN off the
    feasible set. Objective columns are named by ``study.metric_names`` (``value{i}`` when
    unset) and are NaN unless the trial is COMPLETE.
    """
    objectives = objective_names(study)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    records = [read_record(t) for t in trials]
    n_stages = max((len(_stages(r)) for r in records), default=0)
    rows = [_row(t, r, objectives, n_stages) for t, r in zip(trials, records, strict=True)]
    head = ["number", "state", "datetime_start", "datetime_complete", "duration_s", *objectives]
    head += ["label", "arch_hash", "baseline"]
    stage_cols = [f"stage{i}_{k}" for i in range(n_stages) for k in STAGE_KEYS]
    metric_cols = [k for k in METRIC_KEYS if k not in head] + ["n_seeds"]
    metric_cols += [f"{name}_{end}" for name in INTERVALS for end in ("lo", "hi")]
    targets = list(dict.fromkeys(t for r in records if r is not None for t in r.latencies))
    for target in targets:
        for name in INTERVALS:
            col = f"{name}@{target}"
            metric_cols += [c for c in (col, f"{col}_lo", f"{col}_hi") if c not in head]
    df = pd.DataFrame(rows, columns=[*head, *stage_cols, *metric_cols, *TAIL])

    df["is_pareto"] = False
    df["pareto_rank"] = np.nan
    feasible = df["feasible"].to_numpy(dtype=bool)
    if feasible.any():
        values = df.loc[feasible, objectives].to_numpy(dtype=float)
        intervals = objective_intervals(df.loc[feasible], objectives)
        ranks = non_dominated_ranks(values, study.directions, intervals)
        df.loc[feasible, "pareto_rank"] = ranks.astype(float)
        df.loc[feasible, "is_pareto"] = ranks == 0
    df["is_pareto"] = df["is_pareto"].astype(bool)
    return df


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    # Parquet needs one type per column; ``kernel_size`` mixes ints and "auto", so any object
    # column holding more than one type is written as strings (missing cells stay missing).
    out = df.copy()
    for col in [c for c in out.columns if pd.api.types.is_object_dtype(out[c])]:
        kinds = {type(v) for v in out[col] if v is not None and not pd.isna(v)}
        if len(kinds) > 1:
            out[col] = out[col].map(lambda v: None if v is None or pd.isna(v) else str(v))
    return out


def write_trials(study: optuna.Study, out_dir: Path) -> Path:
    """Write ``trials.csv`` (and ``trials.parquet`` when pyarrow is installed) into ``out_dir``.

    The CSV is the portable record; parquet keeps dtypes for whoever reloads it. Returns the
    CSV path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = trials_frame(study)
    csv = out_dir / "trials.csv"
    df.to_csv(csv, index=False)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return csv
    _parquet_safe(df).to_parquet(out_dir / "trials.parquet", index=False)
    return csv
