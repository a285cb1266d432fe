"""What a search shows and where its logs go: the driver's events (no Ray), the live view's
state, one plain unwrapped line per event outside a terminal, and logs routed to files."""

from __future__ import annotations

import io
import logging
import sys
import warnings

import optuna
from rich.console import Console

from search.display import PlainCounter, SearchView, counter, search_display
from search.events import SearchEvent
from search.logfiles import logs_to_file
from tests.test_dispatch import _finish, _run


def test_the_driver_tells_each_trial_started_epoch_finished_duplicate_and_failed(tmp_path):
    events: list[SearchEvent] = []
    run = _run(tmp_path, n_trials=3)
    run.on_event = events.append
    first = run.next_config("tune-a")
    run.on_result("tune-a", {"epoch": 1, "accuracy": 0.75, "accuracies": [0.7, 0.8]})
    _finish(run, "tune-a", first)
    run.study.enqueue_trial(run.study.trials[first["number"]].params)  # a repeat proposal
    second = run.next_config("tune-b")
    run.trial_finished("tune-b", None, error=True)  # the worker died, nothing durable
    kinds = [(e.kind, e.number) for e in events]
    n = first["number"]
    assert kinds == [
        ("started", n),
        ("epoch", n),
        ("finished", n),
        ("duplicate", n + 1),
        ("started", second["number"]),
        ("failed", second["number"]),
    ]
    epoch, finished, duplicate, failed = events[1], events[2], events[3], events[5]
    assert (epoch.epoch, epoch.epochs, epoch.accuracy) == (1, run.cfg.eval.train.epochs, 0.75)
    # the objective values told to Optuna, by name; the count after the tell
    assert finished.detail == "accuracy 0.5 latency_rel 1.2" and finished.done == 1
    assert duplicate.detail == f"of #{n}" and duplicate.done == 1
    assert failed.detail == "worker crashed" and failed.label
    assert {e.total for e in events} == {3}


def test_the_live_view_holds_running_trials_with_their_epoch_and_the_last_finished():
    view = SearchView()

    def event(kind: str, number: int, **fields) -> SearchEvent:
        return SearchEvent(kind, 0, 10, number=number, label=f"arch{number}", epochs=5, **fields)

    for n in range(8):
        view.update(event("started", n))
    view.update(event("epoch", 3, epoch=2, accuracy=0.5))
    for n in (0, 1, 2, 4, 5, 6):
        view.update(event("finished", n, detail=f"accuracy 0.{n}"))
    view.update(event("failed", 7, detail="nan_loss at epoch 1"))
    assert list(view.running) == [3]
    assert (view.running[3].epoch, view.running[3].accuracy) == (2, 0.5)
    assert [e.number for e in view.finished] == [6, 5, 4, 2, 1]  # newest first, five kept
    assert [e.detail for e in view.failures] == ["nan_loss at epoch 1"]
    out = io.StringIO()
    Console(file=out, width=100).print(view.running_table(), view.finished_table())
    assert "2/5" in out.getvalue() and "0.5000" in out.getvalue() and "arch6" in out.getvalue()


def test_outside_a_terminal_each_event_is_one_unwrapped_line():
    out = io.StringIO()
    console = Console(file=out, width=40)  # narrower than the lines: they must not wrap
    long_label = "resnet18:" + "se@standard," * 8
    with search_display(console, total=4) as on_event:
        on_event(SearchEvent("launch", 0, 4, detail="starting"))
        on_event(SearchEvent("started", 0, 4, number=2, label=long_label, epochs=5))
        on_event(SearchEvent("epoch", 0, 4, number=2, label=long_label, epoch=1, epochs=5,
                             accuracy=0.91234))  # fmt: skip
        on_event(SearchEvent("failed", 0, 4, number=2, label=long_label, detail="worker crashed"))
    assert out.getvalue().splitlines() == [
        "[0/4] launch starting",
        f"[0/4] #2 started {long_label}",
        f"[0/4] #2 epoch 1/5 accuracy 0.9123 {long_label}",
        f"[0/4] #2 failed worker crashed {long_label}",
    ]


def test_logs_go_to_the_file_not_the_terminal_and_handlers_come_back(tmp_path, capfd):
    optuna.logging.enable_default_handler()  # Optuna's own terminal handler, as installed
    root_before = logging.getLogger().handlers[:]
    ray_before = logging.getLogger("ray").handlers[:]
    terminal = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(terminal)  # what `attnas`'s basicConfig installs
    try:
        with logs_to_file(tmp_path / "logs" / "trial-3.log", capture_output=True) as path:
            logging.getLogger("search.driver").info("an info line of ours")
            logging.getLogger("ray.tune").warning("a Ray warning")
            optuna.logging.get_logger("optuna.study").warning("an Optuna warning")
            warnings.warn("a user warning", UserWarning, stacklevel=1)
            print("a stray print")
    finally:
        logging.getLogger().removeHandler(terminal)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    text = path.read_text()
    for line in ("an info line of ours", "a Ray warning", "an Optuna warning", "a user warning"):
        assert line in text
    assert "a stray print" in text
    assert logging.getLogger().handlers == root_before
    assert logging.getLogger("ray").handlers == ray_before
    logging.getLogger("ray.tune").warning("after the search")  # not into the closed file
    assert "after the search" not in path.read_text()


def test_in_a_terminal_one_live_display_shows_progress_running_finished_and_failures():
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    with search_display(console, total=3) as on_event:
        on_event(SearchEvent("started", 0, 3, number=0, label="se@post", epochs=5))
        on_event(SearchEvent("started", 0, 3, number=1, label="eca@pre", epochs=5))
        on_event(SearchEvent("epoch", 0, 3, number=1, label="eca@pre", epoch=2, epochs=5,
                             accuracy=0.8125))  # fmt: skip
        on_event(SearchEvent("finished", 1, 3, number=0, label="se@post", detail="accuracy 0.9"))
        on_event(SearchEvent("failed", 1, 3, number=2, label="ca@mid", detail="worker crashed"))
    # the last frame drawn, after the final refresh
    frame = out.getvalue().rsplit("trials", 1)[1]
    assert "1/3" in frame and "eta" in frame
    assert "eca@pre" in frame and "2/5" in frame and "0.8125" in frame  # running, its epoch
    assert "se@post" in frame and "accuracy 0.9" in frame  # last finished
    assert "FAIL #2 ca@mid: worker crashed" in frame


def test_one_off_commands_count_in_plain_lines_outside_a_terminal():
    """Outside a terminal rich draws a progress bar only when it stops; a step a line instead,
    and a description change within a step prints nothing more."""
    out = io.StringIO()
    console = Console(file=out, width=40, force_terminal=False)
    with counter(console, "runs") as progress:
        assert isinstance(progress, PlainCounter)
        task = progress.add_task("", total=None)
        progress.update(task, completed=1, total=3, description="short se@post | " * 5)
        progress.update(task, completed=1, description="latency")  # same step
        progress.update(task, advance=1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[1/3] runs ") and len(lines[0]) > 40
    assert lines[0].endswith(": " + "short se@post | " * 5)  # one line, never wrapped
    assert lines[1].startswith("[2/3] runs ")
    assert not isinstance(counter(Console(force_terminal=True), "runs"), PlainCounter)
