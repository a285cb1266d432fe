"""Logs go to files in the study folder, not to the terminal.

A search's terminal belongs to its live display; what Ray, Tune, Optuna, Python's warnings and
attnas itself log while it runs is kept in ``logs/driver.log``, and what each trial logs or
prints in ``logs/trial-<number>.log``, written as it happens, so a worker killed for memory
leaves its log behind. Both restore the process's logging as they found it on exit: a worker
process reused for hundreds of trials holds no file open between them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

# Loggers that keep their own terminal handlers and do not propagate to the root logger.
OWN_HANDLER_LOGGERS = ("ray", "optuna")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def trial_log_path(logs_dir: Path, number: int) -> Path:
    return logs_dir / f"trial-{number}.log"


class _StudyLogHandler(logging.FileHandler):
    """A file handler that keeps its format: ``ray.init(configure_logging=True)`` sets its
    own formatter on every handler of the ``ray`` logger, ours included."""

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 (logging's name)
        if self.formatter is None:
            super().setFormatter(fmt)


def _to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    terminals = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return isinstance(handler, logging.StreamHandler) and any(stream is t for t in terminals)


@contextlib.contextmanager
def logs_to_file(path: Path, *, capture_output: bool = False) -> Iterator[Path]:
    """Route the root logger, Ray's and Optuna's loggers and Python warnings into ``path``
    (appending: a resumed study's log follows the earlier launch's), taking their terminal
    handlers away meanwhile; handlers that write elsewhere (a test's log capture, a user's
    own file) are kept. With ``capture_output``, what Python code prints goes there too (a
    trial's stray prints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _StudyLogHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    loggers = [logging.getLogger(), *map(logging.getLogger, OWN_HANDLER_LOGGERS)]
    saved = [(lg, lg.handlers[:]) for lg in loggers]
    root = logging.getLogger()
    root_level = root.level
    for lg in loggers:
        lg.handlers = [h for h in lg.handlers if not _to_terminal(h)] + [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        with contextlib.ExitStack() as stack:
            if capture_output:
                stream = stack.enter_context(path.open("a", encoding="utf-8", buffering=1))
                stack.enter_context(contextlib.redirect_stdout(stream))
                stack.enter_context(contextlib.redirect_stderr(stream))
            yield path
    finally:
        logging.captureWarnings(False)
        root.setLevel(root_level)
        for lg, handlers in saved:
            lg.handlers = handlers
        handler.close()
