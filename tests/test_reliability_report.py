"""RELIABILITY.md's figures come from what the tests observed, and a partial run leaves it."""

from __future__ import annotations

from tests.conftest import RELIABILITY_TESTS, pytest_sessionfinish
from tests.reliability_report import figures


def _ledger(kept: int) -> dict:
    return {
        "tests": sorted(RELIABILITY_TESTS),
        "kills": [
            {"kind": "driver-sigkill", "where": "after_ask", "running": 1},
            {"kind": "driver-sigkill", "where": "random", "running": 0},
            {"kind": "worker-node-sigterm", "where": "mid-trial", "running": 2},
        ],
        "faults": ["after_ask"],
        "bad_inputs": ["x"],
        "trials": [
            {
                "test": "chaos",
                "finished_before": 4,
                "kept": kept,
                "counted_after": 10,
                "target": 10,
                "running_after": 0,
                "trained_twice": 0,
            }
        ],
    }


def test_figures_show_a_loss_when_one_happened():
    clean = dict(figures(_ledger(kept=4)))
    lossy = dict(figures(_ledger(kept=3)))
    assert clean["finished trials lost"] == "0" and lossy["finished trials lost"] == "1"
    key = "driver SIGKILLs survived (of them, landed while a trial was RUNNING)"
    assert clean[key] == "2 (1)"
    assert clean["worker-node SIGTERMs survived (trials RUNNING when it landed)"] == "1 (2)"


def test_a_partial_or_red_run_leaves_the_file_alone(monkeypatch, tmp_path):
    import tests.conftest as conftest
    import tests.reliability_report as report

    written = []
    monkeypatch.setattr(report, "write_reliability", lambda ledger, path: written.append(path))
    partial = _ledger(kept=4) | {"tests": ["chaos"]}
    monkeypatch.setattr(conftest, "LEDGER", partial)
    pytest_sessionfinish(None, 0)
    assert written == []
    monkeypatch.setattr(conftest, "LEDGER", _ledger(kept=4))
    pytest_sessionfinish(None, 1)
    assert written == []
    pytest_sessionfinish(None, 0)
    assert len(written) == 1
