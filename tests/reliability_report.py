"""Writes RELIABILITY.md from what the reliability tests recorded in this pytest run."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

GUARANTEES = [
    (
        "No finished trial is lost or repeated across driver crashes",
        "test_fault_windows_then_resume_are_exact, test_repeated_random_sigkills_end_exact, "
        "test_sigkill_then_resume_trains_each_pair_once",
    ),
    (
        "No trial is left RUNNING after a crash, SIGTERM or failure",
        "test_sigterm_stops_gracefully_and_resume_finishes, test_fault_windows_then_resume_are_exact",
    ),
    (
        "Each (architecture, seed) is trained to completion exactly once",
        "test_sigkill_then_resume_trains_each_pair_once, test_repeated_random_sigkills_end_exact",
    ),
    (
        "One driver per study (flock for SQLite, advisory lock for PostgreSQL)",
        "test_locked_study_and_changed_space_are_refused[sqlite|postgresql]",
    ),
    (
        "A resumed study must match the space, evaluation settings and objectives",
        "test_locked_study_and_changed_space_are_refused, test_bad_inputs_are_one_line",
    ),
    (
        "Bad input is one line naming the value, exit 2, nothing written",
        "test_bad_inputs_are_one_line, tests/test_cli.py",
    ),
    ("A storage password never appears in outputs or files", "test_password_never_leaks"),
    (
        "User files load through safe loaders only (no code execution)",
        "test_crafted_yaml_and_pickle_are_refused",
    ),
]


def write_reliability(ledger: dict, path: Path) -> None:
    kills = len(ledger["kills"])
    faults = sorted(set(ledger["faults"]))
    bad = ledger["bad_inputs"]
    lost = sum(ledger["trials_lost"])
    lines = [
        "# Reliability",
        "",
        "Written by the test suite (`tests/reliability_report.py`, at the end of a green",
        "`make test`), not by hand. Rerun `make test` to refresh it.",
        "",
        f"Last run: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on "
        f"{platform.machine()} ({platform.python_version()}).",
        "",
        "## Figures from the last run",
        "",
        "| figure | value |",
        "|---|---|",
        f"| driver SIGKILLs survived | {kills} |",
        f"| crash windows injected | {len(faults)} ({', '.join(faults)}) |",
        f"| bad inputs tried (each one line, exit 2, nothing written) | {len(bad)} |",
        f"| finished trials lost or repeated | {lost} |",
        f"| reliability tests passed | {len(ledger['tests'])} |",
        "",
        "## Guarantees and the tests that prove them",
        "",
        "| guarantee | tests |",
        "|---|---|",
    ]
    lines += [f"| {g} | {t} |" for g, t in GUARANTEES]
    lines += ["", "## Bad inputs tried", ""] + [f"- {b}" for b in bad] + [""]
    path.write_text("\n".join(lines))
