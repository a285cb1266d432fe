"""What a search shows while it runs: a live display in a terminal, plain lines elsewhere.

In a terminal one display is redrawn in place: progress with the count and an ETA, the trials
running now with their epoch and last accuracy, the last trials finished, and the failures with
their reason. Outside one (CI logs, ``nohup``, a pipe) every event is one plain line, never
wrapped, so a log can be read and grepped afterwards. The one-off commands (evaluate, train,
validate, fidelity) count their steps the same way (``counter``).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from search.events import SearchEvent

SHOWN_FINISHED = 5  # the last trials finished that stay in view
SHOWN_FAILURES = 5


@dataclass
class _Running:
    label: str
    epoch: int = 0
    epochs: int | None = None
    accuracy: float | None = None


@dataclass
class SearchView:
    """The state the live display draws, updated event by event (kept apart from drawing,
    so what it holds can be tested without a terminal)."""

    running: dict[int, _Running] = field(default_factory=dict)
    finished: deque[SearchEvent] = field(default_factory=lambda: deque(maxlen=SHOWN_FINISHED))
    failures: deque[SearchEvent] = field(default_factory=lambda: deque(maxlen=SHOWN_FAILURES))

    def update(self, event: SearchEvent) -> None:
        n = event.number
        if n is None:
            return
        if event.kind == "started":
            self.running[n] = _Running(event.label, epochs=event.epochs)
        elif event.kind == "epoch" and n in self.running:
            trial = self.running[n]
            trial.epoch, trial.accuracy = event.epoch or 0, event.accuracy
        elif event.kind in ("finished", "stopped", "duplicate"):
            self.running.pop(n, None)
            self.finished.appendleft(event)
        elif event.kind == "failed":
            self.running.pop(n, None)
            self.failures.appendleft(event)

    def running_table(self) -> Table:
        table = Table(title="running", title_justify="left", expand=False)
        for column in ("trial", "architecture", "epoch", "accuracy"):
            table.add_column(column)
        for n, t in sorted(self.running.items()):
            epoch = f"{t.epoch}/{t.epochs}" if t.epochs else str(t.epoch)
            accuracy = "" if t.accuracy is None else f"{t.accuracy:.4f}"
            table.add_row(f"#{n}", t.label, epoch, accuracy)
        return table

    def finished_table(self) -> Table:
        table = Table(title="last finished", title_justify="left", expand=False)
        for column in ("trial", "architecture", "result"):
            table.add_column(column)
        for e in self.finished:
            table.add_row(f"#{e.number}", e.label, _result(e))
        return table

    def renderables(self, progress: Progress) -> list:
        shown: list = [progress]
        if self.running:
            shown.append(self.running_table())
        if self.finished:
            shown.append(self.finished_table())
        shown += [
            f"[red]FAIL[/] #{e.number} {e.label}: {e.detail}" for e in reversed(self.failures)
        ]
        return shown


def _result(event: SearchEvent) -> str:
    if event.kind == "stopped":
        return f"stopped at epoch {event.epoch} (accuracy {event.accuracy:.4f})"
    if event.kind == "duplicate":
        return f"duplicate {event.detail}"
    return event.detail


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        # a trial takes minutes: rich's default 30 s window would leave the ETA unknown
        # between trials; the rate over the last hour is what a user wants to extrapolate
        speed_estimate_period=3600,
    )


@contextlib.contextmanager
def search_display(console: Console, total: int) -> Iterator[Callable[[SearchEvent], None]]:
    """Yield the ``on_event`` callback for ``run_search``: live in a terminal, plain lines
    otherwise."""
    if not console.is_terminal:

        def plain(event: SearchEvent) -> None:
            console.print(event.line(), soft_wrap=True, highlight=False, markup=False)

        yield plain
        return
    view = SearchView()
    progress = _progress(console)
    task = progress.add_task("", total=total)
    with Live(Group(*view.renderables(progress)), console=console, refresh_per_second=4) as live:

        def show(event: SearchEvent) -> None:
            progress.update(task, completed=event.done, total=event.total)
            view.update(event)
            live.update(Group(*view.renderables(progress)))

        yield show


class PlainCounter:
    """The part of rich's ``Progress`` the one-off commands use, as one plain line per step
    (``[3/32] runs 41 s: short se@post | ...``): outside a terminal rich draws a progress bar
    only when it stops, so a 15-minute ``attnas fidelity`` under ``nohup`` said nothing."""

    def __init__(self, console: Console, what: str) -> None:
        self.console, self.what = console, what
        self.completed: int = 0
        self.total: float | None = None
        self.started = time.monotonic()

    def __enter__(self) -> PlainCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> int:
        self.total = total
        return 0

    def update(
        self,
        task: int,
        *,
        completed: float | None = None,
        total: float | None = None,
        advance: float | None = None,
        description: str | None = None,
    ) -> None:
        self.total = total if total is not None else self.total
        step = completed if completed is not None else self.completed + (advance or 0)
        if int(step) == self.completed:
            return  # a description alone changed: one line per step is enough
        self.completed = int(step)
        of = f"/{int(self.total)}" if self.total is not None else ""
        line = f"[{self.completed}{of}] {self.what} {time.monotonic() - self.started:.0f} s"
        if description:
            line += f": {description}"
        self.console.print(line, soft_wrap=True, highlight=False, markup=False)


def counter(console: Console, what: str) -> Progress | PlainCounter:
    """A progress bar counting ``what`` (epochs, runs, architectures) in a terminal; one plain
    line per step elsewhere."""
    if not console.is_terminal:
        return PlainCounter(console, what)
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    )
