"""Getting an architecture out of a study: pick one (or the whole front) and write a config
that ``spaces.build_model`` and ``attnas evaluate`` load as they are, optionally as ONNX.

The exported YAML holds ``arch:`` (a plain ArchConfig) and ``source:`` (where it came from and
what it scored), so it is both buildable and self-describing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from results.frame import cost_column, objective_intervals, objective_names, trials_frame
from results.pareto import knee_point
from results.record import TrialRecord, read_record
from spaces import REGISTRY, ArchConfig, build_model, deploy
from spaces.baselines import provenance_of
from spaces.onnx import ONNX_TOLERANCE, OnnxExportError, onnx_bytes, onnx_difference

PICKS = ("knee", "max-accuracy", "min-latency", "trial:N")


class ExportError(ValueError):
    pass


def inferred_modules(arch: ArchConfig) -> list[str]:
    """Modules designed from a paper's abstract only; reports and exports say so."""
    names = sorted(
        {s.attention for s in arch.stages if REGISTRY[s.attention].confidence == "inferred"}
    )
    return [f"{n}: design inferred from the paper's abstract (no public code)" for n in names]


def baseline_source(study: optuna.Study, number: int, name: str) -> str:
    """Where baseline trial ``number``'s placement and settings come from (paper; table;
    settings), derived from its recorded architecture."""
    provenance = provenance_of(name, arch_of(study, number))
    return provenance.line() if provenance else "unknown baseline (not a paper placement)"


def _latency_column(df: pd.DataFrame, study: optuna.Study) -> str:
    """The cost the study optimises (latency_rel when it does), else the first one measured."""
    try:
        return cost_column(df, objective_names(study))
    except ValueError:
        raise ExportError("the study has no latency or FLOPs numbers to pick by") from None


def fastest(ok: pd.DataFrame, lat: str) -> pd.Series:
    """The most accurate of the rows tied with the fastest: a row whose latency interval
    reaches below the fastest row's upper bound is as fast as the measurement can tell."""
    order = ok.sort_values([lat, "accuracy"], ascending=[True, False])
    best = order.iloc[0]
    if f"{lat}_lo" not in ok or np.isnan(best.get(f"{lat}_hi", np.nan)):
        return best
    lo = ok[f"{lat}_lo"].fillna(ok[lat])
    tied = ok[lo <= best[f"{lat}_hi"]]
    return tied.sort_values(["accuracy", lat], ascending=[False, True]).iloc[0]


def candidates(
    study: optuna.Study, max_latency_ms: float | None = None, max_flops: float | None = None
) -> pd.DataFrame:
    """Feasible COMPLETE trials within the caps, one row per distinct architecture."""
    df = trials_frame(study)
    if df.empty:
        raise ExportError("the study has no trials")
    ok = df[df["feasible"]].drop_duplicates("arch_hash")
    if max_latency_ms is not None:
        ok = ok[ok["latency_ms"] <= max_latency_ms]
    if max_flops is not None:
        ok = ok[ok["flops"] <= max_flops]
    if ok.empty:
        raise ExportError("no feasible trial satisfies the caps")
    return ok


def pick(
    study: optuna.Study,
    how: str,
    *,
    max_latency_ms: float | None = None,
    max_flops: float | None = None,
) -> pd.Series:
    """One trial's row: the knee of the (capped) front, the most accurate, the fastest, or #N."""
    if how.startswith("trial:"):
        try:
            number = int(how.split(":", 1)[1])
        except ValueError:
            raise ExportError(f"--pick {how!r}: expected trial:N with N an integer") from None
        df = trials_frame(study)
        row = df[df["number"] == number]
        if row.empty or not bool(row.iloc[0]["feasible"]):
            raise ExportError(f"trial {number} is not a feasible COMPLETE trial of this study")
        return row.iloc[0]
    ok = candidates(study, max_latency_ms, max_flops)
    if how == "max-accuracy":
        lat = _latency_column(ok, study)
        return ok.sort_values(["accuracy", lat], ascending=[False, True]).iloc[0]
    if how == "min-latency":
        return fastest(ok, _latency_column(ok, study))
    if how == "knee":
        names = objective_names(study)
        values = ok[names].to_numpy(dtype=float)
        directions = [d.name.lower() for d in study.directions]
        return ok.iloc[knee_point(values, directions, objective_intervals(ok, names))]
    raise ExportError(f"unknown --pick {how!r}; allowed: {', '.join(PICKS)}")


def _record_of(study: optuna.Study, number: int) -> TrialRecord:
    record = read_record(study.trials[number])
    if record is None or record.arch is None:
        raise ExportError(f"trial {number} has no architecture on record")
    return record


def arch_of(study: optuna.Study, number: int) -> ArchConfig:
    return ArchConfig.model_validate(_record_of(study, number).arch)


_SOURCE_METRICS = (
    "accuracy",
    "accuracy_std",
    "latency_ms",
    "latency_iqr_ms",
    "latency_rel",
    "flops",
    "params",
    "seeds",
    "eval_fingerprint",
)


def trial_source(study: optuna.Study, row: pd.Series, how: str) -> dict[str, Any]:
    number = int(row["number"])
    record = _record_of(study, number)
    arch = ArchConfig.model_validate(record.arch)
    return {
        "study": study.study_name,
        "trial": number,
        "pick": how,
        "label": arch.label(),
        "baseline": record.baseline,
        "duplicate_of": record.duplicate_of,
        "metrics": record.model_dump(include=set(_SOURCE_METRICS)),
        "device": record.device_name,
        "notes": inferred_modules(arch),
    }


def export_onnx(arch: ArchConfig, path: Path, seed: int = 0) -> Path:
    """The deployable graph (RCAM fused) with seed-``seed`` weights: for latency profiling and
    as the skeleton to load trained weights into; the search keeps no trained weights."""
    import torch

    model = deploy(build_model(arch, seed=seed))
    x = torch.randn(2, arch.in_chans, arch.image_size, arch.image_size)
    try:
        graph = onnx_bytes(model, x)
    except OnnxExportError as exc:
        raise ExportError(str(exc)) from None
    check_onnx(graph, model, x)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph)
    return path


def check_onnx(graph: bytes, model: object, x: object) -> float:
    """Refuse a graph ONNX Runtime does not run as PyTorch does (relative to the largest
    absolute output, above ``ONNX_TOLERANCE``), printing the difference; else return it."""
    difference = onnx_difference(graph, model, x)
    if difference > ONNX_TOLERANCE:
        raise ExportError(
            f"ONNX Runtime's output differs from PyTorch's by {difference:.2e} of the largest "
            f"output (allowed {ONNX_TOLERANCE:.0e}); not writing the ONNX file"
        )
    return difference


def export_pick(
    study: optuna.Study,
    how: str,
    out: Path,
    *,
    onnx: bool = False,
    max_latency_ms: float | None = None,
    max_flops: float | None = None,
) -> list[Path]:
    row = pick(study, how, max_latency_ms=max_latency_ms, max_flops=max_flops)
    arch = arch_of(study, int(row["number"]))
    written = [arch.save(out, trial_source(study, row, how))]
    if onnx:
        written.append(export_onnx(arch, out.with_suffix(".onnx")))
    return written


def export_front(study: optuna.Study, out_dir: Path, *, onnx: bool = False) -> list[Path]:
    df = trials_frame(study)
    front = df[df["is_pareto"]].drop_duplicates("arch_hash")
    if front.empty:
        raise ExportError("the study has no feasible Pareto front yet")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for _, row in front.iterrows():
        n = int(row["number"])
        arch = arch_of(study, n)
        written.append(arch.save(out_dir / f"trial_{n}.yaml", trial_source(study, row, "front")))
        if onnx:
            written.append(export_onnx(arch, out_dir / f"trial_{n}.onnx"))
    cols = ["number", *objective_names(study), "label", "baseline", "flops", "params", "arch_hash"]
    front[[c for c in cols if c in front]].to_csv(out_dir / "pareto.csv", index=False)
    written.append(out_dir / "pareto.csv")
    return written
