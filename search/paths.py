"""Where a study keeps its durable files (shared storage on a cluster, never a worker's disk).

runs/<study>/
  study.db                      Optuna storage (SQLite default; the driver is its one writer;
                                write-ahead log: study.db-wal holds the latest commits until
                                the last connection closes)
  config.yaml                   the config the study was started with (``attnas resume``)
  study.json                    which study this folder belongs to: name, storage, uid
  driver.lock                   held by the live driver
  evals/<arch>-<eval>/          per (architecture, evaluation fingerprint): see
                                ``evaluators.workdir`` (checkpoint, outcome, epoch log)
  logs/driver.log               what Ray, Tune, Optuna and the driver logged (``search.logfiles``)
  logs/trial-<number>.log       what one trial logged and printed, written as it runs
  stale-<time>/                 an earlier study's files, moved aside when a new study
                                started in this folder
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# What a study writes into its folder; a new study moves an old study's copies aside.
STUDY_FILES = (
    "config.yaml",
    "study.json",
    "evals",
    "trials",
    "report",
    "trials.csv",
    "trials.parquet",
    "ray",
    "logs",
)


@dataclass(frozen=True)
class StudyPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def identity(self) -> Path:
        return self.root / "study.json"

    @property
    def lock(self) -> Path:
        return self.root / "driver.lock"

    @property
    def evals(self) -> Path:
        return self.root / "evals"

    @property
    def logs(self) -> Path:
        return self.root / "logs"
