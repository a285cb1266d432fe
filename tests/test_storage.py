"""The default SQLite storage: write-ahead log, and nothing committed lost when the writer dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna
from sqlalchemy import text

from search.study import connect_storage


def test_sqlite_storage_uses_a_write_ahead_log_on_every_connection(tmp_path):
    storage = connect_storage(f"sqlite:///{tmp_path / 'study.db'}")
    # two connections at once: the second is new, not the one the first call returned
    with storage.engine.connect() as first, storage.engine.connect() as second:
        for conn in (first, second):
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_a_writer_killed_without_closing_loses_no_committed_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    writer = textwrap.dedent(
        f"""
        import os, signal
        import optuna
        from search.study import connect_storage
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(study_name="s", storage=connect_storage({url!r}))
        for i in range(5):
            trial = study.ask()
            trial.suggest_int("x", 0, 9)
            study.tell(trial, float(i))
        study.ask()  # a sixth left running, as a killed driver leaves one
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", writer], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    study = optuna.load_study(study_name="s", storage=connect_storage(url))
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 5
    assert states.count(optuna.trial.TrialState.RUNNING) == 1
    assert [t.value for t in study.trials[:5]] == [0.0, 1.0, 2.0, 3.0, 4.0]
