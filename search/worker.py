"""What runs inside a Ray Tune trial: score one architecture durably.

Every step leaves a file behind before the next begins, so a trial killed at any point can be
finished by the next launch without redoing finished work: a cost record, one line per seed
trained to completion, a checkpoint after every epoch of the seed in training, and finally the
trial's ``result.json`` (atomic), which the driver tells Optuna.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from evaluators import EvalConfig
from evaluators.evaluate import Cost, combine, measure_cost, train_seeds, write_json_atomic
from evaluators.hygiene import NodeGate
from evaluators.train import EpochState, TrainResult, checkpoint_state
from search.faults import crash_point
from search.paths import StudyPaths
from spaces import ArchConfig

log = logging.getLogger(__name__)


class TrialSpec(BaseModel):
    """Everything a worker needs; plain data, so it travels through Ray as the trial config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    arch: dict[str, Any]
    eval: dict[str, Any]
    study_dir: str
    constraints: dict[str, float]
    pessimistic_accuracy: float = 0.0


def constraint_values(cost: Cost, bounds: dict[str, float]) -> dict[str, float]:
    """Positive = violated by that much (Optuna's convention), one entry per active bound."""
    measured = {
        "max_flops": cost.flops,
        "max_params": cost.params,
        "max_latency_ms": cost.latency.latency_ms if cost.latency else None,
        "max_latency_rel": cost.latency.latency_rel if cost.latency else None,
    }
    return {k: float(measured[k]) - v for k, v in bounds.items() if measured[k] is not None}


def _append_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write: that seed is simply not done
    return out


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint, or None when absent or unreadable (torn write, or anything that is not
    plain tensors: ``weights_only`` refuses to unpickle objects, so a crafted file cannot run
    code). An unreadable one is set aside and the seed restarts from scratch."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:
        path.rename(path.with_suffix(".rejected"))
        log.warning("checkpoint %s rejected (%s); restarting the seed", path, type(exc).__name__)
        return None


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    crash_point("checkpoint_write")
    torch.save(state, tmp)
    os.replace(tmp, path)


class _SeedRunner:
    """Trains the seeds not yet recorded, resuming each from its last epoch checkpoint."""

    def __init__(self, arch: ArchConfig, cfg: EvalConfig, eval_dir: Path, number: int) -> None:
        self.arch, self.cfg, self.dir, self.number = arch, cfg, eval_dir, number
        self.records = eval_dir / "seeds.jsonl"

    def run(self, gate: NodeGate) -> tuple[list[TrainResult], float]:
        done = {r["seed"]: r for r in _read_lines(self.records)}
        results, seconds = [], 0.0
        for seed in self.cfg.seeds:
            if seed in done:
                r = done[seed]
                results.append(
                    TrainResult(r["status"], r["accuracies"], r.get("failed_epoch"), r["seconds"])
                )
                seconds += r["seconds"]
                if r["status"] != "ok":
                    break
                continue
            ckpt = self.dir / f"seed{seed}.pt"
            resume = {seed: state} if (state := load_checkpoint(ckpt)) is not None else None
            one = self.cfg.model_copy(update={"seeds": (seed,)})
            accs = list(resume[seed]["accuracies"]) if resume else []

            def on_epoch(
                _seed: int, state: EpochState, ckpt: Path = ckpt, accs: list = accs
            ) -> None:
                accs.append(state.accuracy)
                _save_checkpoint(ckpt, checkpoint_state(state, accs))

            (r,), secs = train_seeds(self.arch, one, on_epoch=on_epoch, resume=resume, gate=gate)
            record = {
                "trial": self.number,
                "arch_hash": self.arch.hash,
                "seed": seed,
                "status": r.status,
                "accuracies": r.accuracies,
                "failed_epoch": r.failed_epoch,
                "seconds": secs,
            }
            _append_line(self.records, record)
            ckpt.unlink(missing_ok=True)
            results.append(r)
            seconds += secs
            if r.status != "ok":
                break
        return results, seconds


def _node_id() -> str:
    """The Ray node that ran the trial (its hostname is not unique on a one-machine cluster)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except Exception:
        return "unknown"


def execute(spec: TrialSpec) -> dict[str, Any]:
    """Score ``spec.arch``; returns (and durably writes) the trial's result record."""
    paths = StudyPaths(Path(spec.study_dir))
    result_path = paths.result(spec.number)
    if result_path.is_file():  # re-dispatched after the driver died: the work is done
        return json.loads(result_path.read_text())
    arch = ArchConfig.model_validate(spec.arch)
    cfg = EvalConfig.model_validate(spec.eval)
    eval_dir = paths.eval_dir(arch.hash, cfg.fingerprint())
    eval_dir.mkdir(parents=True, exist_ok=True)
    outcome_path = eval_dir / "outcome.json"
    try:
        if outcome_path.is_file():
            outcome = json.loads(outcome_path.read_text())
        else:
            outcome = _evaluate(arch, cfg, eval_dir, spec)
            write_json_atomic(outcome_path, json.dumps(outcome))
        crash_point("before_result")
        result = {"number": spec.number, "node": _node_id(), **outcome}
        write_json_atomic(result_path, json.dumps(result, indent=2))
        crash_point("after_result")
        return result
    except Exception:
        paths.trial_dir(spec.number).mkdir(parents=True, exist_ok=True)
        paths.error(spec.number).write_text(traceback.format_exc())
        raise


def _evaluate(arch: ArchConfig, cfg: EvalConfig, eval_dir: Path, spec: TrialSpec) -> dict[str, Any]:
    gate = NodeGate()
    cost_path = eval_dir / "cost.json"
    if cost_path.is_file():
        cost = Cost.model_validate_json(cost_path.read_text())
    else:
        cost = measure_cost(arch, cfg, gate)
        write_json_atomic(cost_path, cost.model_dump_json())
    violations = constraint_values(cost, spec.constraints)
    if any(v > 0 for v in violations.values()):
        metrics = combine(arch, cfg, cost, [], 0.0).model_dump(mode="json")
        metrics |= {"accuracy": spec.pessimistic_accuracy, "accuracy_std": 0.0}
        return {
            "status": "infeasible",
            "constraints": violations,
            "metrics": metrics,
            "arch_hash": arch.hash,
        }
    results, seconds = _SeedRunner(arch, cfg, eval_dir, spec.number).run(gate)
    metrics = combine(arch, cfg, cost, results, seconds)
    return {
        "status": metrics.status,
        "constraints": violations,
        "metrics": metrics.model_dump(mode="json"),
        "arch_hash": arch.hash,
    }


def run_trial(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable."""
    from ray import tune

    result = execute(TrialSpec.model_validate(config))
    metrics = result["metrics"]
    tune.report(
        {
            "status": result["status"],
            "accuracy": metrics.get("accuracy"),
            "latency_ms": metrics.get("latency_ms"),
            "flops": metrics.get("flops"),
        }
    )
