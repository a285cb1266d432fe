"""The search loop: Ray Tune schedules trials, Optuna (ask/tell on the stored study) decides.

Stock ``OptunaSearch`` failure modes this loop avoids by construction:
- a NaN, missing metric or crashed worker is told FAIL with a reason; nothing stays RUNNING;
- baselines are enqueued with ``skip_if_exists``, so relaunches never duplicate them;
- trials left RUNNING by a dead driver are re-dispatched under the same number (or told
  from the worker's durable result), instead of being unknown to a fresh searcher;
- constraint values travel in the worker's result and are set as user attrs before ``tell``;
- no ``Tuner.restore`` or pickled searcher: every launch is a new Tune run over the study.
"""

from __future__ import annotations

import json
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

from search.config import SearchConfig
from search.faults import crash_point
from search.paths import StudyPaths
from search.study import acquire_lock, open_study
from spaces import ArchConfig, SearchSpace

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass
class SearchOutcome:
    study: optuna.Study
    completed: int  # COMPLETE trials in the study at the end
    target: int
    told_this_run: int
    failed_this_run: int
    stop_reason: str | None
    seconds: float
    paths: StudyPaths


@dataclass
class _Dispatch:
    number: int
    trial: optuna.Trial
    arch: ArchConfig


@dataclass
class SearchRun:
    """The driver's state for one launch; the study in storage is the record."""

    cfg: SearchConfig
    study: optuna.Study
    space: SearchSpace
    paths: StudyPaths
    on_progress: Callable[[int, int, str], None] = lambda done, total, msg: None
    in_flight: dict[str, _Dispatch] = field(default_factory=dict)  # tune trial id -> dispatch
    redispatch: deque[int] = field(default_factory=deque)
    held: dict[str, list[_Dispatch]] = field(default_factory=dict)  # arch hash -> duplicates
    completed: int = 0
    failed: int = 0
    told: int = 0
    failed_this_run: int = 0
    stop_reason: str | None = None

    def __post_init__(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        self.completed = sum(t.state == TrialState.COMPLETE for t in trials)
        self.failed = sum(t.state == TrialState.FAIL for t in trials)
        self.eval_fp = self.cfg.eval.fingerprint()

    # -- bookkeeping -----------------------------------------------------------------------
    def _trial(self, number: int) -> optuna.Trial:
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, number
        )
        return optuna.Trial(self.study, trial_id)

    def _pending(self) -> int:
        return len(self.in_flight) + sum(len(v) for v in self.held.values()) + len(self.redispatch)

    def enqueue_baselines(self) -> None:
        for b in self.space.baselines():
            self.study.enqueue_trial(
                self.space.encode(b.arch), user_attrs={"baseline": b.name}, skip_if_exists=True
            )

    def reconcile(self) -> None:
        """Settle trials a dead driver left RUNNING: tell durable results, re-run the rest."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            result = self.paths.result(t.number)
            if result.is_file():
                self._tell(self._trial(t.number), json.loads(result.read_text()))
            elif "arch" in t.user_attrs:
                self.redispatch.append(t.number)
            else:
                self._fail(self._trial(t.number), "driver died before the trial was dispatched")

    # -- the searcher's side -----------------------------------------------------------------
    def next_config(self, tune_trial_id: str) -> dict[str, Any] | str | None:
        while True:
            if self.stop_reason or self.completed >= self.cfg.n_trials:
                return Searcher.FINISHED if not self._pending() else None
            if self.failed_this_run > self.cfg.max_failures:
                self.stop_reason = (
                    f"{self.failed_this_run} trials failed (max_failures={self.cfg.max_failures}); "
                    "see fail_reason in `attnas status`"
                )
                continue
            # Re-dispatches are already counted in the budget: they must go out even when it is
            # full, or a resume whose last trials wait there would wait for ever.
            if not self.redispatch and self.completed + self._pending() >= self.cfg.n_trials:
                return None
            d = self._next_dispatch()
            if d is None:
                continue
            outcome = self.paths.outcome(d.arch.hash, self.eval_fp)
            if outcome.is_file():  # identical architecture already scored: reuse it
                self._tell(
                    d.trial, {"number": d.number, "cached": True, **json.loads(outcome.read_text())}
                )
                continue
            if any(x.arch.hash == d.arch.hash for x in self.in_flight.values()):
                self.held.setdefault(d.arch.hash, []).append(d)
                return None
            self.in_flight[tune_trial_id] = d
            return self._trial_config(d)

    def _stored_dispatch(self, number: int) -> _Dispatch:
        """A trial already asked (by this or a dead driver), rebuilt from its stored arch."""
        trial = self._trial(number)
        frozen = self.study._storage.get_trial(trial._trial_id)
        return _Dispatch(number, trial, ArchConfig.model_validate(frozen.user_attrs["arch"]))

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
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("arch_hash", arch.hash)
        trial.set_user_attr("label", arch.label())
        return _Dispatch(trial.number, trial, arch)

    def _trial_config(self, d: _Dispatch) -> dict[str, Any]:
        return {
            "number": d.number,
            "arch": d.arch.to_dict(),
            "eval": self.cfg.eval.model_dump(mode="json"),
            "study_dir": str(self.paths.root),
            "constraints": self.cfg.constraints.active(),
            "pessimistic_accuracy": self.cfg.pessimistic_accuracy,
        }

    def trial_finished(self, tune_trial_id: str, error: bool) -> None:
        d = self.in_flight.pop(tune_trial_id, None)
        if d is None:
            return
        self._settle(d, reason="worker crashed" if error else "worker reported no result")
        for dup in self.held.pop(d.arch.hash, []):
            self.redispatch.append(dup.number)

    def _settle(self, d: _Dispatch, reason: str) -> None:
        result = self.paths.result(d.number)
        if result.is_file():
            self._tell(d.trial, json.loads(result.read_text()))
            return
        err = self.paths.error(d.number)
        if err.is_file():
            lines = [ln for ln in err.read_text().splitlines() if ln.strip()]
            reason = f"{reason}: {lines[-1]}" if lines else reason
        self._fail(d.trial, reason)

    # -- telling Optuna ----------------------------------------------------------------------
    def _tell(self, trial: optuna.Trial, result: dict[str, Any]) -> None:
        metrics = result.get("metrics", {})
        status = result.get("status")
        trial.set_user_attr("status", status)
        trial.set_user_attr("metrics", metrics)
        if result.get("cached"):
            trial.set_user_attr("cached", True)
        if result.get("node"):
            trial.set_user_attr("node", result["node"])
        if status == "nan_loss":
            self._fail(trial, f"nan_loss at epoch {metrics.get('failed_epoch')}")
            return
        if status not in ("ok", "infeasible"):
            self._fail(trial, f"unknown worker status {status!r}")
            return
        values = []
        for name in self.cfg.objectives:
            v = metrics.get(name)
            if v is None or not math.isfinite(float(v)):
                self._fail(trial, f"missing or non-finite metric {name!r}: {v!r}")
                return
            values.append(float(v))
        constraints = result.get("constraints", {})
        trial.set_user_attr(
            "constraints", [constraints.get(k, 0.0) for k in self.cfg.constraints.active()] or [0.0]
        )
        crash_point("before_tell")
        self.study.tell(trial, values)
        crash_point("after_tell")
        self.completed += 1
        self.told += 1
        label = trial.user_attrs.get("label") or metrics.get("arch_hash", "")
        self.on_progress(self.completed, self.cfg.n_trials, f"#{trial.number} {status} {label}")

    def _fail(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr("fail_reason", reason)
        self.study.tell(trial, state=TrialState.FAIL)
        self.failed += 1
        self.failed_this_run += 1
        log.warning("trial %d failed: %s", trial.number, reason)
        self.on_progress(self.completed, self.cfg.n_trials, f"#{trial.number} FAIL {reason}")

    def settle_interrupted(self, reason: str) -> None:
        """After Tune returns: nothing may stay RUNNING; unfinished work is re-queued."""
        leftovers = list(self.in_flight.values()) + [d for ds in self.held.values() for d in ds]
        self.in_flight.clear()
        self.held.clear()
        leftovers += [self._stored_dispatch(n) for n in self.redispatch]
        self.redispatch.clear()
        for d in leftovers:
            if self.paths.result(d.number).is_file():
                self._tell(d.trial, json.loads(self.paths.result(d.number).read_text()))
                continue
            # Re-queue the same architecture first: it resumes from its epoch checkpoints.
            self.study.enqueue_trial(
                self.space.encode(d.arch), user_attrs={"requeued_from": d.number}
            )
            trial = d.trial
            trial.set_user_attr("fail_reason", reason)
            self.study.tell(trial, state=TrialState.FAIL)


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
        self.run.trial_finished(trial_id, error)


class _StopOnRequest(_Unpicklable, Stopper):
    def __init__(self, run: SearchRun) -> None:
        self.run = run

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

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
    try:
        ray.init(
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


def _gpus_per_trial(cfg: SearchConfig) -> int:
    import ray

    if cfg.resources.gpus_per_trial is not None:
        return cfg.resources.gpus_per_trial
    return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0


def run_search(
    cfg: SearchConfig,
    *,
    on_progress: Callable[[int, int, str], None] = lambda done, total, msg: None,
) -> SearchOutcome:
    """Run (or resume) ``cfg``'s study until it holds ``n_trials`` COMPLETE trials."""
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
    paths = StudyPaths(cfg.study_dir)
    lock = acquire_lock(paths, cfg.storage_url)
    try:
        study = open_study(cfg)
        if not paths.config.is_file():
            from search.configio import dump_config

            dump_config(cfg, paths.config)
        run = SearchRun(cfg, study, SearchSpace(cfg.space), paths, on_progress)
        run.reconcile()
        run.enqueue_baselines()
        on_progress(run.completed, cfg.n_trials, "resuming" if run.completed else "starting")
        if run.completed < cfg.n_trials:
            _fit(run, cfg, paths, tune, run_trial)
        return SearchOutcome(
            study=study,
            completed=run.completed,
            target=cfg.n_trials,
            told_this_run=run.told,
            failed_this_run=run.failed_this_run,
            stop_reason=run.stop_reason,
            seconds=time.perf_counter() - t0,
            paths=paths,
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


def study_paths(study_dir: str | Path) -> StudyPaths:
    return StudyPaths(Path(study_dir).resolve())
