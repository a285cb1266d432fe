"""The driver's dispatch bookkeeping without Ray: re-dispatch after a dead driver, duplicates
held behind a twin, duplicates answered without spending the budget, a sampler that can only
repeat itself, and results that do not match the request."""

from __future__ import annotations

import logging
import subprocess
import sys

import optuna
import pytest
from ray.tune.search import Searcher

from evaluators import Outcome, eval_dir
from evaluators.workdir import EvalDir
from results.record import read_record
from search.config import load_config
from search.driver import DUPLICATE_STREAK_LIMIT, SearchRun
from search.paths import StudyPaths
from search.study import open_study
from spaces import ArchConfig, SearchSpace
from tests.studies import make_config


def _run(tmp_path, n_trials: int, **changes) -> SearchRun:
    cfg = load_config(make_config(tmp_path, None, n_trials=n_trials, study="dispatch", **changes))
    paths = StudyPaths(cfg.study_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    return SearchRun(cfg, open_study(cfg), SearchSpace(cfg.space), paths)


def _outcome(run: SearchRun, arch: ArchConfig, accuracy: float = 0.5) -> Outcome:
    return Outcome(
        status="ok",
        arch=arch.to_dict(),
        arch_hash=arch.hash,
        eval_fingerprint=run.eval_fp,
        split="val",
        seeds=[0, 1],
        accuracy=accuracy,
        accuracy_std=0.0,
        accuracies=[accuracy],
        accuracies_per_seed=[[accuracy], [accuracy]],
        latency_ms=1.0,
        latency_iqr_ms=0.1,
        latency_rel=1.2,
        reference_latency_ms=0.8,
        flops=1000,
        params=100 + len(arch.label()),
        train_seconds=1.0,
        device="cpu",
        hardware={"name": "test"},
    )


def _finish(run: SearchRun, tune_id: str, config: dict, durable: bool = False) -> None:
    """What a worker does: report the outcome to Tune (and, with ``durable``, leave it in the
    evaluation's folder only, as when the driver died before Tune delivered the result)."""
    arch = ArchConfig.model_validate(config["arch"])
    outcome = _outcome(run, arch)
    if durable:
        workdir = eval_dir(run.paths.evals, arch, run.cfg.eval)
        EvalDir(workdir, arch.hash, run.eval_fp).write("outcome.json", outcome)
        run.trial_finished(tune_id, None, error=True)
    else:
        run.trial_finished(tune_id, {"outcome": outcome.model_dump_json()}, error=False)


def test_duplicate_held_behind_its_twin_is_answered_without_spending_budget(tmp_path):
    run = _run(tmp_path, n_trials=2)
    twin = run.space.encode(run.space.baselines()[1].arch)
    other = run.space.encode_baseline(run.space.baselines()[2])
    for params in (twin, twin, other):
        run.study.enqueue_trial(params)

    first = run.next_config("tune-a")
    assert isinstance(first, dict) and first["number"] == 0
    assert run.next_config("tune-b") is None  # #1 is held behind #0 ...
    assert sum(map(len, run.held.values())) == 1
    second = run.next_config("tune-b")  # ... and Tune's next call gets #2
    assert second["number"] == 2

    _finish(run, "tune-a", first)
    assert run.next_config("tune-c") is None  # #1 answered from #0; #2 still fills the budget
    _finish(run, "tune-b", second)
    assert run.next_config("tune-d") == Searcher.FINISHED
    assert [t.state.name for t in run.study.trials] == ["COMPLETE"] * 3
    records = [read_record(t) for t in run.study.trials]
    assert records[1].duplicate_of == 0 and records[1].arch_hash == records[0].arch_hash
    assert run.study.trials[1].values == run.study.trials[0].values
    assert (run.completed, run.duplicates) == (2, 1)  # n_trials counts architectures


def test_trials_left_running_by_a_dead_driver_go_out_when_they_fill_the_budget(tmp_path):
    dead = _run(tmp_path, n_trials=2)
    for baseline in dead.space.baselines()[:2]:  # asked and recorded by a driver that then died
        dead.study.enqueue_trial(dead.space.encode(baseline.arch))
        dead._next_dispatch()
    resumed = _run(tmp_path, n_trials=2)
    resumed.reconcile()
    assert list(resumed.redispatch) == [0, 1]
    configs = [resumed.next_config("tune-a"), resumed.next_config("tune-b")]
    assert [c["number"] for c in configs] == [0, 1]
    _finish(resumed, "tune-a", configs[0])
    _finish(resumed, "tune-b", configs[1], durable=True)  # told from the verified workdir
    assert resumed.next_config("tune-c") == Searcher.FINISHED
    assert [t.state.name for t in resumed.study.trials] == ["COMPLETE", "COMPLETE"]


def test_reconcile_tells_a_durable_outcome_only_for_the_trials_own_architecture(tmp_path):
    dead = _run(tmp_path, n_trials=3)
    baselines = dead.space.baselines()
    dead.study.enqueue_trial(dead.space.encode(baselines[1].arch))
    d = dead._next_dispatch()
    # Another architecture's outcome planted in this trial's evaluation folder: never used.
    workdir = eval_dir(dead.paths.evals, d.arch, dead.cfg.eval)
    EvalDir(workdir, baselines[2].arch.hash, dead.eval_fp).write(
        "outcome.json", _outcome(dead, baselines[2].arch)
    )
    resumed = _run(tmp_path, n_trials=3)
    resumed.reconcile()
    assert list(resumed.redispatch) == [0]  # re-run, not told someone else's numbers
    assert resumed.study.trials[0].state.name == "RUNNING"


def test_reported_outcome_for_another_request_is_refused(tmp_path, caplog):
    run = _run(tmp_path, n_trials=2)
    baselines = run.space.baselines()
    run.study.enqueue_trial(run.space.encode(baselines[1].arch))
    config = run.next_config("tune-a")
    wrong = _outcome(run, baselines[2].arch)
    with caplog.at_level(logging.WARNING):
        run.trial_finished("tune-a", {"outcome": wrong.model_dump_json()}, error=False)
    assert "not the" in caplog.text and config["number"] == 0
    trial = run.study.trials[0]
    assert trial.state.name == "FAIL"
    assert read_record(trial).fail_reason == "worker reported no result"
    assert run.completed == 0


def test_a_sampler_that_only_repeats_itself_stops_the_search(tmp_path):
    run = _run(tmp_path, n_trials=5)
    params = run.space.encode(run.space.baselines()[1].arch)
    for _ in range(DUPLICATE_STREAK_LIMIT + 5):
        run.study.enqueue_trial(params)
    config = run.next_config("tune-a")
    _finish(run, "tune-a", config)
    assert run.next_config("tune-b") == Searcher.FINISHED
    assert run.stop_reason.startswith(f"the sampler proposed {DUPLICATE_STREAK_LIMIT} already")
    assert (run.completed, run.duplicates) == (1, DUPLICATE_STREAK_LIMIT)
    assert {t.state.name for t in run.study.trials} == {"COMPLETE", "WAITING"}  # none RUNNING


def test_an_exhausted_space_stops_the_search(tmp_path):
    run = _run(
        tmp_path,
        n_trials=4,
        space__attentions=["none", "se"],
        space__positions=["standard"],
        space__reductions=[16],
        space__searched_stages=[3],
    )
    assert run.space_size == 2
    for baseline in run.space.baselines()[:2]:
        run.study.enqueue_trial(run.space.encode(baseline.arch))
    configs = [run.next_config("tune-a"), run.next_config("tune-b")]
    for tune_id, config in zip(("tune-a", "tune-b"), configs, strict=True):
        _finish(run, tune_id, config)
    assert run.next_config("tune-c") == Searcher.FINISHED  # the next proposal can only repeat
    assert run.stop_reason == "every architecture of the space (2) is evaluated"
    assert (run.completed, run.duplicates) == (2, 1)


def test_a_paper_baseline_runs_as_its_authors_built_it_outside_the_spaces_options(tmp_path):
    # The space searches ECA with kernel 5 only; the ECA baseline uses the released kernel 3.
    run = _run(tmp_path, n_trials=8, space__kernel_sizes=[5])
    eca = run.space.baseline("eca")
    assert {run.space.decode(run.space.encode_baseline(eca)).stages[3].kernel_size} == {5}
    run.enqueue_baselines()
    sent = {}
    for i in range(len(run.space.baselines())):
        config = run.next_config(f"tune-{i}")
        sent[run.study.trials[config["number"]].user_attrs["baseline"]] = config
    assert ArchConfig.model_validate(sent["eca"]["arch"]) == eca.arch
    assert {eca.arch.stages[i].kernel_size for i in (2, 3)} == {3}
    record = read_record(run.study.trials[sent["eca"]["number"]])
    assert record.arch_hash == eca.arch.hash and record.baseline == "eca"


# Each child imports first, then waits at a file barrier until all four are ready, so the
# four open the fresh storage at the same moment, attempt after attempt.
_OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from search.study import connect_storage

folder, me, children, attempts = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for attempt in range(attempts):
    (folder / f"ready-{attempt}-{me}").touch()
    while len(list(folder.glob(f"ready-{attempt}-*"))) < children:
        time.sleep(0.001)
    connect_storage(f"sqlite:///{folder}/race{attempt}.db")
"""


def test_processes_opening_a_fresh_sqlite_storage_at_once_all_succeed(tmp_path):
    """A driver and a watcher (optuna-dashboard, a polling test) creating the schema at the
    same moment used to fail one of them with "table studies already exists"."""
    # Fresh interpreters, not forks of this one: a fork of a process that has run Ray's
    # threads (earlier tests) can inherit a lock held mid-operation and hang for good.
    children, attempts = 4, 5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _OPEN_AT_ONCE,
                str(tmp_path),
                str(k),
                str(children),
                str(attempts),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(children)
    ]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * children, errors


# -- successive halving, decided by the driver without Ray -----------------------------------
HALVING = {
    "schedule": {"name": "successive_halving", "min_epochs": 1, "eta": 2},
    "eval__train__epochs": 2,
    "objectives": ["accuracy", "flops"],
    "sampler": {"name": "random", "seed": 0},
}


def _costed(run: SearchRun, config: dict, flops: int) -> None:
    """What a worker writes before training: the cost the rung ranks by."""
    from evaluators.evaluate import Cost

    arch = ArchConfig.model_validate(config["arch"])
    workdir = eval_dir(run.paths.evals, arch, run.cfg.eval)
    cost = Cost(arch_hash=arch.hash, eval_fingerprint=run.eval_fp, params=1, flops=flops)
    EvalDir(workdir, arch.hash, run.eval_fp).write("cost.json", cost)


def _searched(run: SearchRun, n: int) -> list[dict]:
    """``n`` dispatched searched trials (the baselines are not enqueued here)."""
    configs = []
    for k in range(n):
        config = run.next_config(f"tune-{k}")
        assert isinstance(config, dict)
        _costed(run, config, flops=1000)
        configs.append(config)
    return configs


def test_a_rung_promotes_until_it_holds_eta_then_stops_the_worse_and_tells_it_pruned(tmp_path):
    run = _run(tmp_path, n_trials=3, concurrency=8, **HALVING)
    a, b, c = _searched(run, 3)
    assert run.on_result("tune-0", {"epoch": 1, "accuracies": [0.5, 0.5]}) is False  # alone
    assert run.on_result("tune-1", {"epoch": 1, "accuracies": [0.9, 0.9]}) is False  # top 1 of 2
    assert run.on_result("tune-2", {"epoch": 1, "accuracies": [0.1, 0.1]}) is True  # 3rd of 3
    record = read_record(run.study.trials[c["number"]])  # stored before Tune acts on it
    assert [(r.epoch, r.promoted, r.rank, r.of) for r in record.rungs] == [(1, False, 2, 3)]
    run.trial_finished("tune-2", {"epoch": 1}, error=False)
    assert run.study.trials[c["number"]].state.name == "PRUNED" and run.completed == 0
    assert read_record(run.study.trials[c["number"]]).status == "pruned"
    # a repeat report of a decided rung (a resumed worker) is answered from the decision
    assert run.on_result("tune-1", {"epoch": 1, "accuracies": [0.9, 0.9]}) is False
    assert len(read_record(run.study.trials[b["number"]]).rungs) == 1
    assert run.epochs_spent == 3  # one epoch each so far
    run.on_result("tune-0", {"epoch": 2, "accuracies": [0.6, 0.6]})
    assert run.epochs_spent == 4


def test_a_stop_decided_by_a_dead_driver_is_told_pruned_on_resume_without_running(tmp_path):
    dead = _run(tmp_path, n_trials=3, concurrency=8, **HALVING)
    _searched(dead, 3)
    for k, acc in enumerate((0.5, 0.9, 0.1)):
        dead.on_result(f"tune-{k}", {"epoch": 1, "accuracies": [acc, acc]})
    # the driver dies here: trial 2's stop is stored, Tune never acted on it
    resumed = _run(tmp_path, n_trials=3, concurrency=8, **HALVING)
    resumed.reconcile()
    states = [t.state.name for t in resumed.study.trials]
    assert states == ["RUNNING", "RUNNING", "PRUNED"] and list(resumed.redispatch) == [0, 1]
    assert resumed.pruned == 1 and resumed.epochs_spent == 3


def test_no_trial_starts_once_the_epoch_budget_is_spent(tmp_path):
    run = _run(
        tmp_path,
        n_trials=10,
        concurrency=8,
        **HALVING | {"schedule": HALVING["schedule"] | {"budget_epochs": 3}},
    )
    _searched(run, 2)
    run.on_result("tune-0", {"epoch": 1, "accuracies": [0.5, 0.5]})
    run.on_result("tune-0", {"epoch": 2, "accuracies": [0.6, 0.6]})
    assert isinstance(run.next_config("tune-2"), dict)  # 2 of 3 epochs spent: one more starts
    run.on_result("tune-1", {"epoch": 1, "accuracies": [0.5, 0.5]})
    assert run.next_config("tune-3") is None  # spent; trials in flight still finish
    assert run.stop_reason == "the epoch budget is spent (3 of 3)"


@pytest.mark.parametrize("sampler", ["nsga2", "nsga3", "tpe", "gp"])
def test_a_constrained_sampler_reads_the_stored_constraints_and_warns_nothing(tmp_path, sampler):
    import warnings

    from search.study import make_sampler

    cfg = load_config(
        make_config(tmp_path, None, sampler={"name": sampler}, constraints={"max_params": 10**6})
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = make_sampler(cfg)
    assert [str(w.message) for w in caught] == []
    trial = optuna.trial.create_trial(
        params={}, distributions={}, values=[0.5, 1.0], user_attrs={"constraints": [3.0]}
    )
    assert made._constraints_func(trial) == [3.0]  # what the driver stores before each tell
