"""What runs inside a Ray Tune trial: a thin adapter around ``evaluators.evaluate``.

The evaluation does the durable work (cost, lockstep epochs, a checkpoint after each, a
verified outcome in its workdir); the worker only reports each epoch to Tune and, at the end,
the typed outcome, which the driver checks against the request before telling Optuna.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from evaluators import EpochReport, EvalConfig, Outcome, eval_dir, evaluate
from evaluators.faults import crash_point
from evaluators.hygiene import node_gate
from evaluators.workdir import EvalDir
from search.logfiles import logs_to_file, trial_log_path
from spaces import ArchConfig

log = logging.getLogger(__name__)


class TrialSpec(BaseModel):
    """Everything a worker needs; plain data, so it travels through Ray as the trial config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    arch: dict[str, Any]
    eval: dict[str, Any]
    evals_dir: str  # the study's evals/ folder (shared storage on a cluster)
    logs_dir: str  # the study's logs/ folder: this trial logs to trial-<number>.log there
    constraints: dict[str, float]


def _node_id() -> str:
    """The Ray node that ran the trial (its hostname is not unique on a one-machine cluster)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except Exception:
        return "unknown"


def execute(spec: TrialSpec, report: Callable[[dict[str, Any]], None]) -> Outcome:
    """Evaluate ``spec.arch``, reporting each epoch and then the outcome through ``report``;
    what the trial logs, warns or prints goes to its own file in the study's logs/."""
    with logs_to_file(trial_log_path(Path(spec.logs_dir), spec.number), capture_output=True):
        log.info("trial %d: %s", spec.number, ArchConfig.model_validate(spec.arch).label())
        return _execute(spec, report)


def _report_epoch(e: EpochReport, report: Callable[[dict[str, Any]], None]) -> None:
    log.info("epoch %d: accuracy %.4f (per seed %s)", e.epoch, e.accuracy, e.accuracies)
    # the training time so far: a trial stopped at a rung has no outcome to carry it
    report(
        {"epoch": e.epoch, "accuracy": e.accuracy, "accuracies": e.accuracies}
        | ({"train_seconds": e.seconds} if math.isfinite(e.seconds) else {})
    )


def _execute(spec: TrialSpec, report: Callable[[dict[str, Any]], None]) -> Outcome:
    arch = ArchConfig.model_validate(spec.arch)
    cfg = EvalConfig.model_validate(spec.eval)
    workdir = eval_dir(Path(spec.evals_dir), arch, cfg)
    store = EvalDir(workdir, arch.hash, cfg.fingerprint())
    store.clear_error()
    try:
        outcome = evaluate(
            arch,
            cfg,
            workdir,
            constraints=spec.constraints,
            gate=node_gate(),
            on_epoch=lambda e: _report_epoch(e, report),
        )
    except Exception:
        log.exception("trial %d failed", spec.number)
        store.record_error(traceback.format_exc())
        raise
    crash_point("before_result")
    report({"outcome": outcome.model_dump_json(), "node": _node_id()})
    crash_point("after_result")
    return outcome


def run_trial(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable."""
    from ray import tune

    execute(TrialSpec.model_validate(config), tune.report)
