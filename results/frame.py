"""A study as one table: a row per trial with its decoded architecture, metrics and front rank.

Everything comes from the Optuna storage (the single record): values and state from the
trial, the rest from the user attrs the search driver sets (``arch``, ``label``,
``arch_hash``, ``metrics``, ``constraints``, ``status``, ``cached``, ``baseline``,
``fail_reason``). Any of those may be missing (a trial that failed before dispatch has none),
so every lookup is tolerant and leaves the cell empty instead of raising.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from results.pareto import non_dominated_ranks

__all__ = ["STAGE_KEYS", "objective_names", "trials_frame", "write_trials"]

# The keys of one stage of ``ArchConfig.stages``, in column order.
STAGE_KEYS = ("attention", "position", "kernel_size", "spatial_kernel_size", "variant", "reduction")

# Metric keys that are not copied as columns: the core columns hold them already.
_METRICS_SKIPPED = {"arch_hash", "cached", "hardware"}
_STAGE_COL = re.compile(r"stage\d+_\w+")


def objective_names(study: optuna.Study) -> list[str]:
    names = study.metric_names
    return list(names) if names else [f"value{i}" for i in range(len(study.directions))]


def _mapping(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _stages(arch: Any) -> list[Mapping[str, Any]]:
    stages = _mapping(arch).get("stages")
    if not isinstance(stages, list | tuple):
        return []
    return [_mapping(s) for s in stages]


def _violation(t: FrozenTrial) -> float:
    # The driver records constraints as a user attr; a study run with Optuna's own
    # ``constraints_func`` keeps them in the system attrs.
    cons = t.user_attrs.get("constraints", t.system_attrs.get("constraints"))
    if isinstance(cons, int | float):
        cons = [cons]
    if not isinstance(cons, list | tuple) or not cons:
        return 0.0
    try:
        return float(max(float(c) for c in cons))
    except (TypeError, ValueError):
        return math.nan


def _row(t: FrozenTrial, objectives: list[str]) -> dict[str, Any]:
    ua = t.user_attrs
    metrics = _mapping(ua.get("metrics"))
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
    row["label"] = ua.get("label")
    row["arch_hash"] = ua.get("arch_hash", metrics.get("arch_hash"))
    row["baseline"] = ua.get("baseline")
    for i, stage in enumerate(_stages(ua.get("arch"))):
        for key in (*STAGE_KEYS, *(k for k in stage if k not in STAGE_KEYS)):
            row[f"stage{i}_{key}"] = stage.get(key)
    for key, v in metrics.items():
        # An objective's column already holds the value told to Optuna: do not repeat it.
        if key in _METRICS_SKIPPED or key in row or isinstance(v, list | tuple | Mapping):
            continue
        row[key] = v
    if "status" in ua:  # the worker's verdict ("ok", "infeasible", ...) beats metrics' status
        row["status"] = ua["status"]
    row["device_name"] = _mapping(metrics.get("hardware")).get("name")
    violation = _violation(t)
    row["constraint_violation"] = violation
    row["feasible"] = bool(t.state == TrialState.COMPLETE and violation <= 0)
    row["fail_reason"] = ua.get("fail_reason")
    row["cached"] = bool(ua.get("cached") or metrics.get("cached"))
    row["is_baseline"] = ua.get("baseline") is not None
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
    rows = [_row(t, objectives) for t in trials]

    head = ["number", "state", "datetime_start", "datetime_complete", "duration_s", *objectives]
    head += ["label", "arch_hash", "baseline"]
    tail = ["device_name", "constraint_violation", "feasible", "fail_reason", "cached"]
    tail += ["is_baseline"]
    n_stages = max((len(_stages(t.user_attrs.get("arch"))) for t in trials), default=0)
    stage_cols = [f"stage{i}_{k}" for i in range(n_stages) for k in STAGE_KEYS]
    middle: list[str] = []
    for row in rows:
        middle += [k for k in row if k not in head and k not in tail and k not in middle]
    stage_cols += [k for k in middle if _STAGE_COL.fullmatch(k) and k not in stage_cols]
    metric_cols = [k for k in middle if k not in stage_cols]
    df = pd.DataFrame(rows, columns=[*head, *stage_cols, *metric_cols, *tail])

    df["is_pareto"] = False
    df["pareto_rank"] = np.nan
    feasible = df["feasible"].to_numpy(dtype=bool)
    if feasible.any():
        values = df.loc[feasible, objectives].to_numpy(dtype=float)
        ranks = non_dominated_ranks(values, study.directions)
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
