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


def figures(ledger: dict) -> list[tuple[str, str]]:
    """The figures, each computed from what the tests observed in this run."""
    driver = [k for k in ledger["kills"] if k["kind"] == "driver-sigkill"]
    nodes = [k for k in ledger["kills"] if k["kind"] == "worker-node-sigterm"]
    trials = ledger["trials"]
    before = sum(t["finished_before"] for t in trials)
    kept = sum(t["kept"] for t in trials)
    faults = sorted(set(ledger["faults"]))
    return [
        (
            "driver SIGKILLs survived (of them, landed while a trial was RUNNING)",
            f"{len(driver)} ({sum(k['running'] > 0 for k in driver)})",
        ),
        (
            "worker-node SIGTERMs survived (trials RUNNING when it landed)",
            f"{len(nodes)} ({sum(k['running'] for k in nodes)})",
        ),
        ("crash windows injected", f"{len(faults)} ({', '.join(faults)})"),
        (
            "trials finished before a kill / still finished with the same values after resume",
            f"{before} / {kept}",
        ),
        ("finished trials lost", str(before - kept)),
        (
            "architectures counted in storage afterwards / targets",
            f"{sum(t['counted_after'] for t in trials)} / {sum(t['target'] for t in trials)}",
        ),
        ("trials left RUNNING afterwards", str(sum(t["running_after"] for t in trials))),
        (
            "(architecture, seed, epoch) trained more than once",
            str(sum(t["trained_twice"] for t in trials)),
        ),
        (
            "bad inputs tried (each one line, exit 2, nothing written)",
            str(len(ledger["bad_inputs"])),
        ),
        ("reliability tests passed", str(len(set(ledger["tests"])))),
    ]


def write_reliability(ledger: dict, path: Path) -> None:
    lines = [
        "# Reliability",
        "",
        "Written by the test suite (`tests/reliability_report.py`) at the end of a `make test`",
        "in which every reliability test passed (a partial run leaves this file alone), from",
        "what those tests observed: not by hand, and no figure is a constant.",
        "",
        f"Last run: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on "
        f"{platform.machine()} ({platform.python_version()}).",
        "",
        "## Figures from the last run",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in figures(ledger)),
        "",
        "## Guarantees and the tests that prove them",
        "",
        "| guarantee | tests |",
        "|---|---|",
    ]
    lines += [f"| {g} | {t} |" for g, t in GUARANTEES]
    lines += ["", "## Bad inputs tried", ""] + [f"- {b}" for b in ledger["bad_inputs"]] + [""]
    path.write_text("\n".join(lines))
