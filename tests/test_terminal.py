"""What a user sees: a successful search on a fresh local Ray prints no warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.studies import make_config

pytestmark = pytest.mark.slow


def test_a_successful_search_prints_no_warning_from_any_source(tmp_path):
    config = make_config(tmp_path, None, study="quiet", n_trials=2)  # a local Ray
    # a user's environment: no RAY_AUTH_MODE (Ray's default token authentication), no opt-outs
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ATTNAS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "search.cli", "search", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[1],
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "2/2 architectures evaluated" in output
    noisy = [
        line
        for line in output.splitlines()
        if any(w in line for w in ("WARNING", "DeprecationWarning", "ExperimentalWarning"))
    ]
    assert noisy == [], noisy
    # not a terminal: one plain line per event, and the logs in the study folder, per trial
    study = tmp_path / "quiet"
    lines = output.splitlines()
    assert "[0/2] launch starting" in lines
    finished = [line for line in lines if " finished accuracy " in line]
    # the two paper baselines, run concurrently: either may finish first
    assert sorted(line.split()[1] for line in finished) == ["#0", "#1"]
    assert f"logs: {study / 'logs'} (driver.log, and trial-<number>.log per trial)" in lines
    driver_log = (study / "logs" / "driver.log").read_text()
    assert all(line in driver_log for line in finished)
    assert "Ray's own logs on this node (raylet, GCS, worker output): /" in driver_log
    for number in (0, 1):
        assert "accuracy" in (study / "logs" / f"trial-{number}.log").read_text()
