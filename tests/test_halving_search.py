"""Successive halving through the real driver, with real (tiny) training."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from results.frame import trials_frame
from results.pareto import pareto_mask
from results.record import read_record
from results.report import write_report
from results.rungs import rung_summaries
from search.config import load_config
from search.driver import run_search
from tests.studies import make_config, trained_pairs

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

HALVING = {
    "n_trials": 8,
    "eval__train__epochs": 2,
    "schedule": {"name": "successive_halving", "min_epochs": 1, "eta": 2},
    # flops, not latency: a cost with no timing noise makes the decisions reproducible
    "objectives": ["accuracy", "flops"],
    "sampler": {"name": "random", "seed": 3},
}


def _study(cfg) -> optuna.Study:
    return optuna.load_study(study_name=cfg.study, storage=cfg.storage_url)


def test_a_halving_study_prunes_at_its_rung_and_counts_only_full_trials(tmp_path, ray_cluster):
    cfg = load_config(make_config(tmp_path, ray_cluster, study="sh", **HALVING))
    outcome = run_search(cfg)
    study = _study(cfg)
    by_state: dict[str, list] = {}
    for t in study.trials:
        by_state.setdefault(t.state.name, []).append(t)
    assert "RUNNING" not in by_state and "FAIL" not in by_state
    pruned = [t for t in by_state.get("PRUNED", []) if read_record(t).duplicate_of is None]
    complete = [t for t in by_state["COMPLETE"] if read_record(t).counts]
    assert len(complete) == 8 == outcome.completed and len(pruned) == outcome.pruned >= 1
    for t in pruned:
        r = read_record(t)
        assert (
            r.status == "pruned" and [g.epoch for g in r.rungs] == [1] and not r.rungs[0].promoted
        )
        assert r.accuracy == pytest.approx(np.mean(r.rungs[0].accuracies))
        assert (
            r.rungs[0].costs == [r.flops] and r.rungs[0].of >= 3
        )  # decided once the rung held eta
        # its training time up to the rung, though it never produced an outcome
        assert r.train_seconds is not None and r.train_seconds > 0
    for t in complete:
        r = read_record(t)
        # every finished trial was promoted at the rung; the papers' baselines always are
        assert [g.epoch for g in r.rungs] == [1] and r.rungs[0].promoted
        assert r.rungs[0].accuracies == [a[0] for a in r.accuracies_per_seed]
    assert {read_record(t).baseline for t in complete} >= {"none", "se", "eca", "ca"}
    # each (architecture, seed, epoch) trained once; a pruned one stopped after its rung
    pairs = trained_pairs(cfg.study_dir)
    assert all(n == 1 for n in pairs.values())
    for t in pruned:
        epochs = {e for (h, _, _, e) in pairs if h == read_record(t).arch_hash}
        assert epochs == {1}
    assert outcome.epochs_spent == sum(
        max(e for (h2, _, _, e) in pairs if h2 == h) for h in {k[0] for k in pairs}
    )
    # no front holds a pruned trial
    frame = trials_frame(study)
    assert set(frame["state"]) <= {"COMPLETE", "PRUNED"}
    ok = frame[frame["state"] == "COMPLETE"]
    mask = pareto_mask(ok[["accuracy", "flops"]].to_numpy(), ["maximize", "minimize"])
    assert mask.any() and set(ok[mask]["number"]) <= {t.number for t in complete}
    # status and the report show the rung
    rows = rung_summaries(study)
    assert [r.epoch for r in rows] == [1]
    assert rows[0].reached == len(pruned) + len(complete) and rows[0].stopped == len(pruned)
    assert rows[0].epochs_saved == len(pruned) * (2 - 1)
    assert rows[0].compared == len(complete)
    write_report(study, tmp_path / "report")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "## Successive halving" in summary and f"| epoch 1 | {rows[0].reached} |" in summary
    # a second launch decides nothing again and trains nothing
    again = run_search(cfg)
    assert again.told_this_run == 0 and len(_study(cfg).trials) == len(study.trials)


def test_a_driver_killed_between_a_rung_report_and_its_decision_resumes_to_the_same_trials(
    tmp_path, ray_cluster
):
    # one trial at a time, so the proposals and the rung's order do not depend on which
    # worker finishes first; the uninterrupted study is the reference
    sequential = HALVING | {
        "concurrency": 1,
        "n_trials": 5,
        "space__attentions": ["none", "se", "eca"],  # two baselines fewer: a shorter test
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    reference = load_config(make_config(tmp_path / "a", ray_cluster, study="ref", **sequential))
    run_search(reference)
    config = make_config(tmp_path / "b", ray_cluster, study="killed", **sequential)
    env = os.environ | {
        "ATTNAS_CRASH_AT": "before_rung_decision",
        "ATTNAS_CRASH_ONCE": str(tmp_path / "crashed"),
        "RAY_AUTH_MODE": "disabled",
    }
    proc = subprocess.run(
        [str(BIN / "attnas"), "search", str(config)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == -9 and (tmp_path / "crashed").exists(), proc.stdout + proc.stderr
    cfg = load_config(config)
    assert any(t.state.name == "RUNNING" for t in _study(cfg).trials)
    run_search(cfg)

    def final(c) -> list[tuple[str, str, list[bool]]]:
        out = []
        for t in _study(c).trials:
            r = read_record(t)
            if r is not None and t.state.name != "FAIL":
                out.append((t.state.name, str(r.arch_hash), [g.promoted for g in r.rungs]))
        return sorted(out)

    assert final(cfg) == final(reference)
    assert all(n == 1 for n in trained_pairs(cfg.study_dir).values())
