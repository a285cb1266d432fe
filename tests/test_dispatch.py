"""The driver's dispatch bookkeeping without Ray: trials waiting to be re-dispatched (after a
dead driver, or behind an identical architecture in flight) must go out even when they are
the last ones the budget allows. A CI run once hung for ever on exactly that."""

from __future__ import annotations

import json

from ray.tune.search import Searcher

from search.config import load_config
from search.driver import SearchRun
from search.paths import StudyPaths
from search.study import open_study
from spaces import SearchSpace
from tests.studies import make_config


def _run(tmp_path, n_trials: int) -> SearchRun:
    cfg = load_config(make_config(tmp_path, None, n_trials=n_trials, study="dispatch"))
    paths = StudyPaths(cfg.study_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    return SearchRun(cfg, open_study(cfg), SearchSpace(cfg.space), paths)


def _finish(run: SearchRun, config: dict) -> None:
    """What a worker leaves behind: the evaluation's outcome and the trial's result."""
    from spaces import ArchConfig

    arch = ArchConfig.model_validate(config["arch"])
    outcome = {
        "status": "ok",
        "constraints": {},
        "metrics": {"accuracy": 0.5, "latency_rel": 1.2, "arch_hash": arch.hash},
        "arch_hash": arch.hash,
    }
    path = run.paths.outcome(arch.hash, run.eval_fp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome))
    result = run.paths.result(config["number"])
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(json.dumps({"number": config["number"], **outcome}))


def test_duplicate_held_behind_its_twin_is_told_when_it_is_the_last(tmp_path):
    run = _run(tmp_path, n_trials=2)
    params = run.space.encode(run.space.baselines()[1].arch)
    run.study.enqueue_trial(params)
    run.study.enqueue_trial(params)  # the same architecture again: held behind the first

    first = run.next_config("tune-a")
    assert isinstance(first, dict) and first["number"] == 0
    assert run.next_config("tune-b") is None and sum(map(len, run.held.values())) == 1

    _finish(run, first)
    run.trial_finished("tune-a", error=False)
    assert run.next_config("tune-c") == Searcher.FINISHED  # the twin is told from the cache
    states = [t.state.name for t in run.study.trials]
    assert states == ["COMPLETE", "COMPLETE"] and run.study.trials[1].user_attrs["cached"]


def test_trials_left_running_by_a_dead_driver_go_out_when_they_fill_the_budget(tmp_path):
    run = _run(tmp_path, n_trials=2)
    for baseline in run.space.baselines()[:2]:  # asked by a driver that then died
        run.study.enqueue_trial(run.space.encode(baseline.arch))
        trial = run.study.ask()
        trial.set_user_attr("arch", run.space.suggest(trial).to_dict())
    resumed = _run(tmp_path, n_trials=2)
    resumed.reconcile()
    assert list(resumed.redispatch) == [0, 1]
    configs = [resumed.next_config("tune-a"), resumed.next_config("tune-b")]
    assert [c["number"] for c in configs] == [0, 1]
    for tune_id, config in zip(("tune-a", "tune-b"), configs, strict=True):
        _finish(resumed, config)
        resumed.trial_finished(tune_id, error=False)
    assert resumed.next_config("tune-c") == Searcher.FINISHED
    assert [t.state.name for t in resumed.study.trials] == ["COMPLETE", "COMPLETE"]
