"""What the driver tells whoever watches a search: one event per thing that happened.

The driver knows nothing of terminals; ``search.display`` turns these into a live display in a
terminal or one plain line each elsewhere, and a program driving ``run_search`` can log them,
count them or ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventKind = Literal[
    "launch",  # the driver is ready: `detail` says starting or resuming
    "started",  # a trial went out to a worker
    "epoch",  # a running trial finished an epoch (every seed, in lockstep)
    "promoted",  # successive halving let a trial go on past a rung
    "stopped",  # ... or stopped it there (told PRUNED)
    "finished",  # a trial was told COMPLETE: `detail` holds its objective values
    "duplicate",  # a repeat proposal answered from an earlier trial, not counted
    "failed",  # a trial was told FAIL: `detail` is the reason
]


@dataclass(frozen=True)
class SearchEvent:
    kind: EventKind
    done: int  # architectures evaluated so far (what counts toward the target)
    total: int  # the target
    number: int | None = None  # the Optuna trial number
    label: str = ""  # the architecture's short label
    epoch: int | None = None
    epochs: int | None = None  # the schedule's length
    accuracy: float | None = None
    detail: str = ""

    def line(self) -> str:
        """The event as one plain line (a log file, CI output, a terminal that is not one)."""
        head = f"[{self.done}/{self.total}]"
        if self.number is None:
            return f"{head} {self.kind} {self.detail}".rstrip()
        what = f"{head} #{self.number} {self.kind}"
        if self.epoch is not None:
            of = f"/{self.epochs}" if self.epochs else ""
            what += f" {self.epoch}{of}" if self.kind == "epoch" else f" at epoch {self.epoch}"
        if self.accuracy is not None:
            what += f" accuracy {self.accuracy:.4f}"
        if self.detail:
            what += f" {self.detail}"
        return f"{what} {self.label}".rstrip()
