"""Latency hygiene: no trial trains on this node while another trial times latency.

A node-wide gate made of two ``flock`` files in the node's temp dir (local disk, so one gate
per machine, shared by every study and Ray worker on it). Trainers hold the gate *shared* for
one optimizer step at a time; a timer takes it *exclusive*, so trainers pause between steps
while it measures and resume after. The ``intent`` lock stops a steady stream of overlapping
trainer steps from starving the timer.

One gate per process (``node_gate()``): a Ray actor reused for hundreds of trials holds two
descriptors for its whole life instead of two more per trial.
"""

from __future__ import annotations

import fcntl
import functools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _gate_dir() -> Path:
    path = Path(os.environ.get("ATTNAS_GATE_DIR", Path(tempfile.gettempdir()) / "attnas-gate"))
    path.mkdir(parents=True, exist_ok=True)
    return path


class NodeGate:
    def __init__(self, directory: Path | None = None) -> None:
        d = directory or _gate_dir()
        self._intent = os.open(d / "intent.lock", os.O_RDWR | os.O_CREAT, 0o666)
        self._gate = os.open(d / "gate.lock", os.O_RDWR | os.O_CREAT, 0o666)

    def close(self) -> None:
        for fd in (self._intent, self._gate):
            os.close(fd)

    @contextmanager
    def training_step(self) -> Iterator[None]:
        fcntl.flock(self._intent, fcntl.LOCK_SH)  # waits while a timer has announced itself
        fcntl.flock(self._intent, fcntl.LOCK_UN)
        fcntl.flock(self._gate, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    @contextmanager
    def timing(self) -> Iterator[None]:
        fcntl.flock(self._intent, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._gate, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._gate, fcntl.LOCK_UN)
        finally:
            fcntl.flock(self._intent, fcntl.LOCK_UN)


@functools.cache
def node_gate() -> NodeGate:
    """This process's gate, opened on first use and kept (flocks are per open file, so one
    process needs only one)."""
    return NodeGate()
