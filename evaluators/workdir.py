"""An evaluation's durable folder: what lets a killed evaluation finish without redoing work,
and a finished one answer again without training.

evals/<arch hash>-<eval fingerprint>/
  cost.json       params, FLOPs, latency (measured before training)
  checkpoint.pt   every seed's state after the last completed epoch (seeds in lockstep)
  epochs.jsonl    one line per epoch trained to a checkpoint (append-only; tests count it)
  outcome.json    the finished evaluation: the cache an identical request reuses
  error.txt       why the last attempt crashed

The folder's name is only where to look. Every file names the architecture and the evaluation
fingerprint it belongs to, and both are checked on every read: a file written for anything
else (a stale study's folder, a renamed copy, a hash collision) is never used, and the log
says so. A result is either the one that was asked for, or absent.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch
from pydantic import BaseModel, ValidationError

from evaluators.faults import crash_point

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def write_json_atomic(path: Path, payload: str) -> None:
    """tmp + fsync + rename: a reader sees the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint, or None when absent or unreadable (torn write, or anything that is not
    plain tensors: ``weights_only`` refuses to unpickle objects, so a crafted file cannot run
    code). An unreadable one is set aside and training restarts from scratch."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:
        path.rename(path.with_suffix(".rejected"))
        log.warning("checkpoint %s rejected (%s); training restarts", path, type(exc).__name__)
        return None


class EvalDir:
    """The files of one (architecture, evaluation fingerprint) pair, verified on every read."""

    def __init__(self, path: Path, arch_hash: str, fingerprint: str) -> None:
        self.path, self.arch_hash, self.fingerprint = Path(path), arch_hash, fingerprint

    @property
    def key(self) -> dict[str, str]:
        return {"arch_hash": self.arch_hash, "eval_fingerprint": self.fingerprint}

    def _matches(self, what: str, path: Path, found: dict[str, Any]) -> bool:
        got = {k: found.get(k) for k in self.key}
        if got == self.key:
            return True
        log.warning(
            "ignoring %s %s: it belongs to arch %s / eval %s, not arch %s / eval %s",
            what,
            path,
            got["arch_hash"],
            got["eval_fingerprint"],
            self.arch_hash,
            self.fingerprint,
        )
        return False

    def read(self, name: str, model: type[M]) -> M | None:
        """``name`` parsed as ``model``, or None when absent, unreadable or someone else's."""
        path = self.path / name
        if not path.is_file():
            return None
        try:
            found = model.model_validate_json(path.read_text())
        except (ValidationError, OSError, UnicodeDecodeError) as exc:
            log.warning("ignoring %s: unreadable (%s)", path, type(exc).__name__)
            return None
        return found if self._matches(name, path, found.model_dump()) else None

    def write(self, name: str, record: BaseModel) -> None:
        write_json_atomic(self.path / name, record.model_dump_json(indent=2))

    # -- the training checkpoint ---------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def load_checkpoint(self) -> dict[str, Any] | None:
        state = load_checkpoint(self.checkpoint_path)
        if state is None or not self._matches("checkpoint", self.checkpoint_path, state):
            return None
        return state

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        crash_point("checkpoint_write", at=state.get("epoch"))
        torch.save(self.key | state, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.checkpoint_path)

    def log_epoch(self, epoch: int, seeds: list[int]) -> None:
        with open(self.path / "epochs.jsonl", "a") as f:
            f.write(json.dumps(self.key | {"epoch": epoch, "seeds": seeds}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # -- a crash's reason, for the driver's FAIL record ----------------------------------------
    @property
    def error_path(self) -> Path:
        return self.path / "error.txt"

    def record_error(self, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.error_path.write_text(text)

    def clear_error(self) -> None:
        self.error_path.unlink(missing_ok=True)

    def last_error(self) -> str | None:
        if not self.error_path.is_file():
            return None
        lines = [ln for ln in self.error_path.read_text().splitlines() if ln.strip()]
        return lines[-1] if lines else None
