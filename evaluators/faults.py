"""Fault injection for the crash-window tests: ``ATTNAS_CRASH_AT=<point>`` makes the process
kill itself (SIGKILL, no cleanup) the first time it reaches that point.

Points: ``after_ask`` (driver), ``before_result`` / ``after_result`` (worker, around the
durable result), ``before_tell`` / ``after_tell`` and ``before_rung_decision`` /
``after_rung_decision`` (driver), ``checkpoint_write`` (worker).
A point that passes ``at`` (``checkpoint_write`` passes the epoch) can be aimed at one
occurrence: ``ATTNAS_CRASH_AT=checkpoint_write@3`` dies writing epoch 3's checkpoint.
A marker file (``ATTNAS_CRASH_ONCE``) makes the crash happen once across processes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def crash_point(name: str, at: int | None = None) -> None:
    wanted, _, when = os.environ.get("ATTNAS_CRASH_AT", "").partition("@")
    if wanted != name or (when and str(at) != when):
        return
    marker = os.environ.get("ATTNAS_CRASH_ONCE")
    if marker:
        path = Path(marker)
        if path.exists():
            return
        path.write_text(name)
    os.kill(os.getpid(), signal.SIGKILL)
