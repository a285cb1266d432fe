"""Where a study keeps its durable files (shared storage on a cluster, never a worker's disk).

runs/<study>/
  study.db                      Optuna storage (SQLite default; the driver is its one writer)
  config.yaml                   the config the study was started with (``attnas resume``)
  driver.lock                   held by the live driver
  trials/<number>/result.json   a worker's outcome, written atomically before it reports
  trials/<number>/error.txt     why a worker crashed
  evals/<arch>-<eval>/          per (architecture, eval settings): checkpoints and records
    seeds.jsonl                 one line per seed trained to completion (append-only)
    seed<k>.pt                  last per-epoch checkpoint of a seed still in training
    outcome.json                the finished evaluation: the cache a duplicate reuses
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StudyPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def lock(self) -> Path:
        return self.root / "driver.lock"

    def trial_dir(self, number: int) -> Path:
        return self.root / "trials" / str(number)

    def result(self, number: int) -> Path:
        return self.trial_dir(number) / "result.json"

    def error(self, number: int) -> Path:
        return self.trial_dir(number) / "error.txt"

    def eval_dir(self, arch_hash: str, eval_fingerprint: str) -> Path:
        return self.root / "evals" / f"{arch_hash}-{eval_fingerprint}"

    def outcome(self, arch_hash: str, eval_fingerprint: str) -> Path:
        return self.eval_dir(arch_hash, eval_fingerprint) / "outcome.json"
