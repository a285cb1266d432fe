"""The search loop: Ray Tune schedules trials, Optuna (ask/tell on the stored study) decides.

Stock ``OptunaSearch`` failure modes this loop avoids by construction:
- a NaN, missing metric or crashed worker is told FAIL with a reason; nothing stays RUNNING;
- baselines are enqueued with ``skip_if_exists``, so relaunches never duplicate them;
- trials left RUNNING by a dead driver are re-dispatched under the same number (or told
  from the evaluation's verified durable outcome), instead of being unknown to a fresh
  searcher;
- what is told is the outcome the worker reported to Tune, checked to be for the very
  architecture and evaluation settings the trial asked for;
- constraint values travel in the outcome and are set as user attrs before ``tell``;
- a repeat proposal of an evaluated architecture is answered from it without spending budget.
- no ``Tuner.restore`` or pickled searcher: every launch is a new Tune run over the study.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from evaluators import Outcome, eval_dir
from evaluators.evaluate import Cost
from evaluators.faults import crash_point
from evaluators.workdir import EvalDir
from results.record import RECORD_ATTR, RungResult, TrialRecord, read_record
from search.config import SearchConfig
from search.events import EventKind, SearchEvent
from search.halving import RungEntry, kept, rung_order
from search.logfiles import logs_to_file
from search.paths import StudyPaths
from search.study import (
    TARGET_ATTR,
    acquire_lock,
    claim_folder,
    frozen_by_number,
    open_or_create,
    trial_by_number,
)
from spaces import ArchConfig, SearchSpace

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


# A sampler that proposes only architectures already evaluated this many times in a row has
# nothing new to offer: the search stops with a message instead of looping.
DUPLICATE_STREAK_LIMIT = 100


@dataclass
class SearchOutcome:
    study: optuna.Study
    completed: int  # distinct architectures trained or rejected by a constraint (n_trials)
    target: int
    duplicates: int  # proposals answered from an earlier trial's evaluation, not counted
    pruned: int  # trials stopped at a rung of successive halving (not counted either)
    epochs_spent: int  # epochs trained by the study's trials (each epoch trains every seed)
    told_this_run: int
    failed_this_run: int
    stop_reason: str | None
    exhausted: bool  # the sampler had nothing new to propose: resuming would not help
    seconds: float
    paths: StudyPaths
    moved_aside: Path | None = None  # where an earlier study's files in the folder went
    budget_spent: bool = False  # schedule.budget_epochs reached: raise it to go on

    @property
    def resumable(self) -> bool:
        return self.completed < self.target and not self.exhausted and not self.budget_spent


@dataclass
class _Dispatch:
    number: int
    trial: optuna.Trial
    record: TrialRecord  # status "running": what the trial asked for

    @property
    def arch(self) -> ArchConfig:
        return ArchConfig.model_validate(self.record.arch)

    @property
    def arch_hash(self) -> str:
        return str(self.record.arch_hash)


@dataclass(frozen=True)
class _Evaluated:
    """A counted trial of the study, whose answer a duplicate proposal repeats."""

    number: int
    values: list[float]
    record: TrialRecord
    constraints: list[float]


# The fields a settled record takes from the evaluation's outcome.
_OUTCOME_FIELDS = set(TrialRecord.model_fields) & set(Outcome.model_fields)


@dataclass
class SearchRun:
    """The driver's state for one launch; the study in storage is the record."""

    cfg: SearchConfig
    study: optuna.Study
    space: SearchSpace
    paths: StudyPaths
    on_event: Callable[[SearchEvent], None] = lambda event: None
    in_flight: dict[str, _Dispatch] = field(default_factory=dict)  # tune trial id -> dispatch
    redispatch: deque[int] = field(default_factory=deque)
    held: dict[str, list[_Dispatch]] = field(default_factory=dict)  # arch hash -> duplicates
    evaluated: dict[str, _Evaluated] = field(default_factory=dict)  # arch hash -> first trial
    completed: int = 0
    duplicates: int = 0
    pruned: int = 0
    pruned_archs: dict[str, int] = field(default_factory=dict)  # arch hash -> pruned trial
    # Successive halving: every decision taken, by (arch hash, rung epoch), and the entries
    # each rung ranks a newcomer against (one per architecture).
    rung_decisions: dict[tuple[str, int], RungResult] = field(default_factory=dict)
    rung_entries: dict[int, list[RungEntry]] = field(default_factory=dict)
    stopped: dict[str, int] = field(default_factory=dict)  # tune trial id -> rung epoch
    # Epochs trained per architecture: its evaluation resumes from its own checkpoint, so a
    # re-queued or re-dispatched copy never trains an epoch twice.
    epochs_by_arch: dict[str, int] = field(default_factory=dict)
    duplicate_streak: int = 0
    told: int = 0
    failed_this_run: int = 0
    stop_reason: str | None = None
    exhausted: bool = False

    def __post_init__(self) -> None:
        self.eval_fp = self.cfg.eval.fingerprint()
        self.space_size = self.space.size()
        self.rung_epochs = self.cfg.schedule.rungs(self.cfg.eval.train.epochs)
        self.cost_objectives = [o for o in self.cfg.objectives if o != "accuracy"]
        self.cost_directions = [
            d
            for o, d in zip(self.cfg.objectives, self.cfg.directions, strict=True)
            if o != "accuracy"
        ]
        for t in self.study.get_trials(deepcopy=False):
            record = read_record(t)
            if record is None:
                continue
            self._remember_rungs(t.number, record)
            if record.duplicate_of is None and record.arch_hash is not None:
                self._count_epochs(record.arch_hash, self._epochs_trained(record))
            if t.state == TrialState.PRUNED and record.duplicate_of is None:
                self.pruned += 1
                self.pruned_archs.setdefault(str(record.arch_hash), t.number)
            if t.state != TrialState.COMPLETE:
                continue
            if record.counts:
                self.completed += 1
                self.evaluated.setdefault(
                    str(record.arch_hash),
                    _Evaluated(t.number, list(t.values), record, list(t.user_attrs["constraints"])),
                )
            elif record.duplicate_of is not None:
                self.duplicates += 1

    # -- bookkeeping -----------------------------------------------------------------------
    def _trial(self, number: int) -> optuna.Trial:
        return trial_by_number(self.study, number)

    # -- successive halving -------------------------------------------------------------------
    @staticmethod
    def _epochs_trained(record: TrialRecord) -> int:
        """Epochs a settled or interrupted trial trained (every seed, in lockstep)."""
        return max(len(record.accuracies), max((r.epoch for r in record.rungs), default=0))

    @property
    def epochs_spent(self) -> int:
        return sum(self.epochs_by_arch.values())

    def _count_epochs(self, arch_hash: str, epoch: int) -> None:
        self.epochs_by_arch[arch_hash] = max(self.epochs_by_arch.get(arch_hash, 0), epoch)

    def _remember_rungs(self, number: int, record: TrialRecord) -> None:
        for r in record.rungs:
            key = (str(record.arch_hash), r.epoch)
            if key in self.rung_decisions:
                continue  # a re-queued copy of the same architecture carries the same decision
            self.rung_decisions[key] = r
            self.rung_entries.setdefault(r.epoch, []).append(
                RungEntry(number, tuple(r.accuracies), tuple(r.costs), tuple(r.cost_intervals))
            )

    def _costs(self, d: _Dispatch) -> tuple[list[float], list[tuple[float, float] | None]]:
        """The cost objectives of ``d`` (measured before training), with their intervals."""
        cost = self._evaluation(d.arch).read("cost.json", Cost)
        if cost is None:
            raise RuntimeError(f"trial {d.number} reached a rung with no cost.json")
        measured = cost.measured()
        values, intervals = [], []
        for name in self.cost_objectives:
            values.append(float(measured[name]))
            key, _, target = name.partition("@")
            result = cost.latencies.get(target) if target else cost.latency
            ci = None
            if result is not None and key == "latency_rel":
                ci = tuple(result.latency_rel_ci)
            elif result is not None and key == "latency_ms":
                ci = tuple(result.latency_ci_ms)
            intervals.append(ci)
        return values, intervals

    def on_result(self, tune_trial_id: str, result: dict[str, Any]) -> bool:
        """An epoch report from a worker: count it, and at a rung stop or promote the trial
        (True stops it). The decision is stored before it is acted on."""
        d = self.in_flight.get(tune_trial_id)
        epoch = result.get("epoch")
        if d is None or not isinstance(epoch, int):
            return False
        self._count_epochs(d.arch_hash, epoch)
        if isinstance(seconds := result.get("train_seconds"), int | float):
            # kept for a trial stopped at a rung, whose record has no outcome to take it from
            d.record = d.record.model_copy(update={"train_seconds": float(seconds)})
        self.emit("epoch", d, epoch=epoch, accuracy=result.get("accuracy"))
        if epoch not in self.rung_epochs:
            return False
        decision = self.rung_decisions.get((d.arch_hash, epoch))
        if decision is None:
            decision = self._decide(d, epoch, [float(a) for a in result["accuracies"]])
        elif all(r.epoch != epoch for r in d.record.rungs):  # a re-queued copy: carry it over
            d.record = d.record.model_copy(update={"rungs": [*d.record.rungs, decision]})
            self._store(d.trial, d.record)
        if decision.promoted:
            return False
        self.stopped[tune_trial_id] = epoch
        return True

    def _decide(self, d: _Dispatch, epoch: int, accuracies: list[float]) -> RungResult:
        crash_point("before_rung_decision")
        costs, intervals = self._costs(d)
        entry = RungEntry(d.number, tuple(accuracies), tuple(costs), tuple(intervals))
        earlier = self.rung_entries.setdefault(epoch, [])
        # A paper baseline always runs the full schedule, but it joins the rung's ranking:
        # searched trials are judged against the papers' placements too.
        order = rung_order([*earlier, entry], self.cost_directions)
        went_on = bool(d.record.baseline) or d.number in kept(order, self.cfg.schedule.eta)
        decision = RungResult(
            epoch=epoch,
            accuracy=entry.accuracy,
            accuracies=accuracies,
            costs=costs,
            cost_intervals=intervals,
            promoted=went_on,
            rank=order.index(d.number),
            of=len(order),
        )
        d.record = d.record.model_copy(update={"rungs": [*d.record.rungs, decision]})
        self._store(d.trial, d.record)  # stored before acted on: a resume follows it
        crash_point("after_rung_decision")
        earlier.append(entry)
        self.rung_decisions[(d.arch_hash, epoch)] = decision
        if went_on:  # a stop is told when the worker has stopped (``_prune``)
            rank = f"rank {decision.rank + 1} of {decision.of}"
            self.emit("promoted", d, epoch=epoch, accuracy=decision.accuracy, detail=rank)
        return decision

    def _stop_decided(self, d: _Dispatch) -> bool:
        """The trial's last rung decision says stop (perhaps taken by a dead driver)."""
        return bool(d.record.rungs) and not d.record.rungs[-1].promoted

    def _prune(self, d: _Dispatch) -> None:
        """Tell a trial stopped at a rung PRUNED, with its rung values in its record."""
        rung = d.record.rungs[-1]
        cost = self._evaluation(d.arch).read("cost.json", Cost)
        measured = (
            {"params": cost.params, "flops": cost.flops}
            | {k: v for k, v in cost.measured().items() if "@" not in k}
            if cost
            else {}
        )
        record = d.record.model_copy(
            update={
                "status": "pruned",
                "accuracy": rung.accuracy,
                "seeds": list(self.cfg.eval.seeds),
            }
            | measured
        )
        self._store(d.trial, record)
        self.study.tell(d.trial, state=TrialState.PRUNED)
        self.pruned += 1
        self.pruned_archs.setdefault(d.arch_hash, d.number)
        self.emit("stopped", d, epoch=rung.epoch, accuracy=rung.accuracy)

    def _answer_pruned_duplicate(self, d: _Dispatch) -> None:
        """A repeat proposal of an architecture stopped at a rung: PRUNED again, uncounted."""
        first = self.pruned_archs[d.arch_hash]
        record = d.record.model_copy(update={"status": "pruned", "duplicate_of": first})
        self._store(d.trial, record)
        self.study.tell(d.trial, state=TrialState.PRUNED)
        self.duplicates += 1
        self.duplicate_streak += 1
        self.emit("duplicate", d, detail=f"of #{first} (stopped at a rung)")

    def _held(self) -> int:
        return sum(len(v) for v in self.held.values())

    def _pending(self) -> int:
        return len(self.in_flight) + self._held() + len(self.redispatch)

    def _store(self, trial: optuna.Trial, record: TrialRecord) -> None:
        trial.set_user_attr(RECORD_ATTR, record.model_dump(mode="json"))

    def _evaluation(self, arch: ArchConfig) -> EvalDir:
        """The durable folder of ``arch``'s evaluation with this study's settings."""
        workdir = eval_dir(self.paths.evals, arch, self.cfg.eval)
        return EvalDir(workdir, arch.hash, self.eval_fp)

    def _durable_outcome(self, arch: ArchConfig) -> Outcome | None:
        """A finished evaluation of exactly ``arch`` with this study's settings, if any."""
        return self._evaluation(arch).read("outcome.json", Outcome)

    def _answer_known(self, d: _Dispatch) -> bool:
        """Tell ``d`` without running it when the study already evaluated its architecture or
        a verified durable outcome exists; False when it still has to run."""
        if d.arch_hash in self.evaluated:
            self._answer_duplicate(d)
        elif self._stop_decided(d):
            self._prune(d)
        elif d.arch_hash in self.pruned_archs:
            self._answer_pruned_duplicate(d)
        elif (outcome := self._durable_outcome(d.arch)) is not None:
            self._tell(d, outcome)
        else:
            return False
        return True

    def enqueue_baselines(self) -> None:
        for b in self.space.baselines():
            self.study.enqueue_trial(
                self.space.encode_baseline(b), user_attrs={"baseline": b.name}, skip_if_exists=True
            )

    def reconcile(self) -> None:
        """Settle trials a dead driver left RUNNING: tell durable results, re-run the rest."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            record = read_record(t)
            if record is None or record.arch is None:
                self._fail(self._trial(t.number), "driver died before the trial was dispatched")
                continue
            if not self._answer_known(_Dispatch(t.number, self._trial(t.number), record)):
                self.redispatch.append(t.number)

    # -- the searcher's side -----------------------------------------------------------------
    def next_config(self, tune_trial_id: str) -> dict[str, Any] | str | None:
        while True:
            if self.stop_reason or self.completed >= self.cfg.n_trials:
                return Searcher.FINISHED if not self._pending() else None
            budget = self.cfg.schedule.budget_epochs
            if budget is not None and self.epochs_spent >= budget and not self.stop_reason:
                self.stop_reason = f"the epoch budget is spent ({self.epochs_spent} of {budget})"
                continue
            if self.failed_this_run > self.cfg.max_failures:
                self.stop_reason = (
                    f"{self.failed_this_run} trials failed (max_failures={self.cfg.max_failures}); "
                    "see fail_reason in `attnas status`"
                )
                continue
            # Re-dispatches are already counted in the budget: they must go out even when it is
            # full, or a resume whose last trials wait there would wait for ever. Duplicates held
            # behind a twin in flight do not count, but they must not pile up either.
            if not self.redispatch and (
                self.completed + len(self.in_flight) >= self.cfg.n_trials
                or self._held() >= self.cfg.concurrency
            ):
                return None
            d = self._next_dispatch()
            if d is None:
                continue
            if d.arch_hash in self.evaluated:  # identical architecture already scored
                self._answer_duplicate(d)
                continue
            if d.arch_hash in self.pruned_archs:  # ... or already stopped at a rung
                self._answer_pruned_duplicate(d)
                continue
            if any(x.arch_hash == d.arch_hash for x in self.in_flight.values()):
                self.held.setdefault(d.arch_hash, []).append(d)
                return None
            self.duplicate_streak = 0
            self.in_flight[tune_trial_id] = d
            self.emit("started", d)
            return self._trial_config(d)

    def _stored_dispatch(self, number: int) -> _Dispatch:
        """A trial already asked (by this or a dead driver), rebuilt from its stored record."""
        trial = self._trial(number)
        record = read_record(frozen_by_number(self.study, number))
        assert record is not None  # only trials with a record are queued for re-dispatch
        return _Dispatch(number, trial, record)

    def _next_dispatch(self) -> _Dispatch | None:
        if self.redispatch:
            return self._stored_dispatch(self.redispatch.popleft())
        trial = self.study.ask()
        crash_point("after_ask")
        try:
            arch = self.space.suggest(trial)
        except ValueError as exc:  # cannot happen with a consistent space; never leave RUNNING
            self._fail(trial, f"could not decode parameters: {exc}")
            return None
        # A paper baseline runs as its authors built it (released kernels, reductions), which
        # the space's option lists need not hold; its parameters only approximate it for the
        # sampler.
        paper = self.space.baseline(trial.user_attrs.get("baseline") or "")
        if paper is not None:
            arch = paper.arch
        record = TrialRecord(
            arch=arch.to_dict(),
            arch_hash=arch.hash,
            label=arch.label(),
            baseline=trial.user_attrs.get("baseline"),
            eval_fingerprint=self.eval_fp,
        )
        self._store(trial, record)
        return _Dispatch(trial.number, trial, record)

    def _trial_config(self, d: _Dispatch) -> dict[str, Any]:
        return {
            "number": d.number,
            "arch": d.record.arch,
            "eval": self.cfg.eval.model_dump(mode="json"),
            "evals_dir": str(self.paths.evals),
            "logs_dir": str(self.paths.logs),
            "constraints": self.cfg.constraints.active(),
        }

    def trial_finished(self, tune_trial_id: str, result: dict | None, error: bool) -> None:
        d = self.in_flight.pop(tune_trial_id, None)
        if d is None:
            return
        if self.stopped.pop(tune_trial_id, None) is not None:
            self._prune(d)
            for dup in self.held.pop(d.arch_hash, []):
                self.redispatch.append(dup.number)
            return
        outcome = self._reported_outcome(d, result) or self._durable_outcome(d.arch)
        if outcome is not None:
            self._tell(d, outcome, node=(result or {}).get("node"))
        else:
            reason = "worker crashed" if error else "worker reported no result"
            last = self._evaluation(d.arch).last_error()
            self._fail(d.trial, f"{reason}: {last}" if last else reason, d.record)
        for dup in self.held.pop(d.arch_hash, []):
            self.redispatch.append(dup.number)

    def _reported_outcome(self, d: _Dispatch, result: dict | None) -> Outcome | None:
        """The outcome the worker reported to Tune, if it is for this trial's request."""
        raw = (result or {}).get("outcome")
        if not raw:
            return None
        outcome = Outcome.model_validate_json(raw)
        if (outcome.arch_hash, outcome.eval_fingerprint) != (d.arch_hash, self.eval_fp):
            log.warning(
                "trial %d: the worker reported arch %s / eval %s, not the %s / %s asked for; "
                "ignored",
                d.number,
                outcome.arch_hash,
                outcome.eval_fingerprint,
                d.arch_hash,
                self.eval_fp,
            )
            return None
        return outcome

    # -- telling Optuna ----------------------------------------------------------------------
    def _tell(self, d: _Dispatch, outcome: Outcome, node: str | None = None) -> None:
        record = TrialRecord.model_validate(
            d.record.model_dump()
            | outcome.model_dump(include=_OUTCOME_FIELDS)
            | {"node": node or d.record.node}
        )
        if outcome.status == "nan_loss":
            self._fail(d.trial, f"nan_loss at epoch {outcome.failed_epoch}", record)
            return
        told = {"accuracy": self.cfg.pessimistic_accuracy} if outcome.status == "infeasible" else {}
        values = []
        for name in self.cfg.objectives:
            v = told.get(name, record.metric(name))
            if v is None or not math.isfinite(float(v)):
                self._fail(d.trial, f"missing or non-finite metric {name!r}: {v!r}", record)
                return
            values.append(float(v))
        constraints = [outcome.constraints.get(k, 0.0) for k in self.cfg.constraints.active()]
        self._complete(d.trial, record, values, constraints or [0.0])
        self.completed += 1
        self.evaluated.setdefault(
            d.arch_hash, _Evaluated(d.number, values, record, constraints or [0.0])
        )
        told_values = " ".join(
            f"{name} {v:.4g}" for name, v in zip(self.cfg.objectives, values, strict=True)
        )
        status = "" if outcome.status == "ok" else f"{outcome.status}: "
        self.emit("finished", d, detail=status + told_values)

    def _answer_duplicate(self, d: _Dispatch) -> None:
        """Tell a repeat proposal the answer of the trial that evaluated its architecture: the
        sampler learns the point is taken, and the budget is not spent."""
        first = self.evaluated[d.arch_hash]
        record = first.record.model_copy(
            update={"duplicate_of": first.number, "baseline": d.record.baseline, "node": None}
        )
        self._complete(d.trial, record, first.values, first.constraints)
        self.duplicates += 1
        self.duplicate_streak += 1
        self.emit("duplicate", d, detail=f"of #{first.number}")
        if self.duplicate_streak >= DUPLICATE_STREAK_LIMIT:
            self.exhausted = True
            self.stop_reason = (
                f"the sampler proposed {self.duplicate_streak} already-evaluated architectures "
                f"in a row ({len(self.evaluated)} distinct of {self.space_size:,} in the space); "
                "widen the space or change the sampler"
            )
        elif len(self.evaluated) >= self.space_size:
            self.stop_reason = f"every architecture of the space ({self.space_size:,}) is evaluated"

    def _complete(
        self, trial: optuna.Trial, record: TrialRecord, values: list[float], constraints: list
    ) -> None:
        trial.set_user_attr("constraints", constraints)  # what constrained samplers read
        self._store(trial, record)
        crash_point("before_tell")
        self.study.tell(trial, values)
        crash_point("after_tell")
        self.told += 1

    def emit(self, kind: EventKind, d: _Dispatch | int | None = None, **fields: Any) -> None:
        """Tell ``on_event`` (the live display, a program's callback) and the driver log."""
        if isinstance(d, _Dispatch):
            fields |= {"number": d.number, "label": d.record.label or ""}
        elif d is not None:
            fields["number"] = d
        epochs = self.cfg.eval.train.epochs
        event = SearchEvent(kind, self.completed, self.cfg.n_trials, epochs=epochs, **fields)
        level = logging.WARNING if kind == "failed" else logging.INFO
        log.log(level, "%s", event.line())  # logs/driver.log keeps every event
        self.on_event(event)

    def _fail(self, trial: optuna.Trial, reason: str, record: TrialRecord | None = None) -> None:
        base = record or TrialRecord(arch=None, arch_hash=None, label=None, eval_fingerprint=None)
        self._store(trial, base.model_copy(update={"status": "failed", "fail_reason": reason}))
        self.study.tell(trial, state=TrialState.FAIL)
        self.failed_this_run += 1
        self.emit("failed", trial.number, label=base.label or "", detail=reason)

    def settle_interrupted(self, reason: str) -> None:
        """After Tune returns: nothing may stay RUNNING; unfinished work is re-queued."""
        leftovers = list(self.in_flight.values()) + [d for ds in self.held.values() for d in ds]
        self.in_flight.clear()
        self.held.clear()
        leftovers += [self._stored_dispatch(n) for n in self.redispatch]
        self.redispatch.clear()
        for d in leftovers:
            if self._answer_known(d):
                continue
            # Re-queue the same architecture first: it resumes from its epoch checkpoint. A
            # paper baseline's options may lie outside the space: it re-runs by its name.
            paper = self.space.baseline(d.record.baseline or "")
            self.study.enqueue_trial(
                self.space.encode_baseline(paper) if paper else self.space.encode(d.arch),
                user_attrs={"requeued_from": d.number}
                | ({"baseline": d.record.baseline} if d.record.baseline else {}),
            )
            self._store(
                d.trial, d.record.model_copy(update={"status": "failed", "fail_reason": reason})
            )
            self.study.tell(d.trial, state=TrialState.FAIL)


class _Unpicklable:
    """Tune pickles its searcher and stopper for ``Tuner.restore``, which attnas never uses
    (the study is the record); the live driver state must not be serialised."""

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.run = None


class _StudySearcher(_Unpicklable, Searcher):
    def __init__(self, run: SearchRun) -> None:
        super().__init__()
        self.run = run

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        return self.run.next_config(trial_id)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self.run.trial_finished(trial_id, result, error)

    # The study in storage is the searcher's whole state: Tune's searcher checkpoints have
    # nothing to hold (and Tune warns on every launch when these are not implemented).
    def save(self, checkpoint_path: str) -> None:
        return None

    def restore(self, checkpoint_path: str) -> None:
        return None


class _StopOnRequest(_Unpicklable, Stopper):
    def __init__(self, run: SearchRun) -> None:
        self.run = run

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.run.on_result(trial_id, result)

    def stop_all(self) -> bool:
        return self.run.stop_reason is not None and self.run.stop_reason.startswith("interrupted")


def check_ray_address(address: str | None, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, when nobody listens at ``address`` (ray.init would
    retry for a long time); ``auto`` and ``ray://`` addresses are left to Ray."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    from search.config import ConfigError

    if not host or not port.isdigit():
        raise ConfigError(f"ray_address {address!r} is not host:port, auto or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address!r}: {exc.strerror or exc}"
        ) from None


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    check_ray_address(address)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    # Ray 2.60 announces on every local start that token authentication is on by default;
    # it stays on (a local cluster open to anyone on the network runs arbitrary code), and
    # the notice stays out of the terminal. Real warnings from that module still show.
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(
        lambda record: (
            "Token authentication is enabled for this Ray cluster" not in record.getMessage()
        )
    )
    try:
        context = ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            # ATTNAS_* settings (gate dir, fault injection) reach the workers too.
            runtime_env={
                "env_vars": {k: v for k, v in os.environ.items() if k.startswith("ATTNAS_")}
            },
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        from search.config import ConfigError

        raise ConfigError(
            f"cannot reach a Ray cluster at {address!r}: {str(exc).splitlines()[0]}"
        ) from None
    # Ray's own processes (raylet, GCS, workers' stdout) log on each node; say where.
    session = context.address_info.get("session_dir")
    log.info("Ray's own logs on this node (raylet, GCS, worker output): %s/logs", session)


def _gpus_per_trial(cfg: SearchConfig) -> int:
    import ray

    if cfg.resources.gpus_per_trial is not None:
        return cfg.resources.gpus_per_trial
    return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0


def run_search(
    cfg: SearchConfig,
    *,
    resume: bool = False,
    on_event: Callable[[SearchEvent], None] = lambda event: None,
    trainable: Callable[[dict[str, Any]], None] | None = None,
) -> SearchOutcome:
    """Run ``cfg``'s study until it holds ``n_trials`` distinct evaluated architectures.

    An existing study is resumed (same config required); ``resume=True`` refuses to create
    one. A new study started in a folder holding another study's files moves them aside
    first (``SearchOutcome.moved_aside`` says where). ``trainable`` replaces the Ray Tune
    function that evaluates a trial (``search.worker.run_trial``); ``bench/scale.py`` drives
    the real driver with a stub that trains nothing.
    """
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # our handler stops gracefully
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's CSV/JSON/TensorBoard loggers duplicate what the study and the durable trial files
    # already hold, and cost time per result; the bench/overhead.py numbers are with them off.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # ... which makes Tune's end-of-run analysis warn that it found no logger files.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    from ray import tune

    from search.worker import run_trial

    t0 = time.perf_counter()
    import ray

    if not ray.is_initialized():
        check_ray_address(cfg.ray_address)  # before anything is written to the study
    from evaluators.data import check_data_dir

    check_data_dir(cfg.eval.dataset, cfg.eval.data_dir, cfg.eval.download)
    from evaluators.evaluate import check_latency_targets

    # A runtime that cannot run here is one line now, not a failed trial later.
    check_latency_targets([b.arch for b in SearchSpace(cfg.space).baselines()], cfg.eval)
    paths = StudyPaths(cfg.study_dir)
    lock = acquire_lock(paths, cfg.study, cfg.storage_url)
    try:
        study, created = open_or_create(cfg, must_exist=resume)
        moved = claim_folder(paths, cfg, study, created)
        study.set_user_attr(TARGET_ATTR, cfg.n_trials)  # what `attnas status` shows
        with logs_to_file(paths.logs / "driver.log"):
            run = SearchRun(cfg, study, SearchSpace(cfg.space), paths, on_event)
            run.reconcile()
            run.enqueue_baselines()
            run.emit("launch", detail="resuming" if run.completed else "starting")
            if run.completed < cfg.n_trials:
                _fit(run, cfg, paths, tune, trainable or run_trial)
        return SearchOutcome(
            study=study,
            completed=run.completed,
            target=cfg.n_trials,
            duplicates=run.duplicates,
            pruned=run.pruned,
            epochs_spent=run.epochs_spent,
            told_this_run=run.told,
            failed_this_run=run.failed_this_run,
            stop_reason=run.stop_reason,
            exhausted=run.exhausted,
            seconds=time.perf_counter() - t0,
            paths=paths,
            moved_aside=moved,
            budget_spent=cfg.schedule.budget_epochs is not None
            and run.epochs_spent >= cfg.schedule.budget_epochs,
        )
    finally:
        lock.release()


def _fit(run: SearchRun, cfg: SearchConfig, paths: StudyPaths, tune: Any, run_trial: Any) -> None:
    init_ray(cfg.ray_address)
    resources = {"cpu": cfg.resources.cpus_per_trial, "gpu": _gpus_per_trial(cfg)}

    def request_stop(signum: int, frame: Any) -> None:
        run.stop_reason = f"interrupted by {signal.Signals(signum).name}"

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        tuner = tune.Tuner(
            tune.with_resources(run_trial, resources),
            tune_config=tune.TuneConfig(
                search_alg=_StudySearcher(run),
                num_samples=-1,
                max_concurrent_trials=cfg.concurrency,
                reuse_actors=True,
                time_budget_s=cfg.timeout_s,
            ),
            run_config=tune.RunConfig(
                name=f"launch-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(paths.root / "ray"),
                stop=_StopOnRequest(run),
                failure_config=tune.FailureConfig(max_failures=0),
                verbose=0,
            ),
        )
        tuner.fit()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if run.in_flight or run.held or run.redispatch:
        reason = run.stop_reason or ("timeout" if cfg.timeout_s else "stopped")
        run.stop_reason = run.stop_reason or reason
        run.settle_interrupted(reason)
