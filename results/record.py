"""The trial record: the one contract between the search driver (writer) and ``results/``.

The driver stores one ``TrialRecord`` per trial in Optuna's user attributes under ``record``:
first when the trial is dispatched (``status="running"``: the architecture it asked for), then
when it is settled. ``results/`` reads nothing else about a trial except Optuna's own state and
values, and the ``constraints`` attribute the samplers read. Change the record by bumping
``RECORD_VERSION`` and teaching ``read_record`` the old one; never by adding an untyped key.
"""

from __future__ import annotations

from typing import Any, Literal

from optuna.trial import FrozenTrial
from pydantic import BaseModel, ConfigDict, ValidationError

RECORD_VERSION = 2  # 2: successive halving (rungs, status "pruned"); 1 reads as 2
RECORD_ATTR = "record"

Status = Literal["running", "ok", "infeasible", "nan_loss", "failed", "pruned"]


class RungResult(BaseModel):
    """A trial at one rung of successive halving, and the decision taken there (stored before
    it is acted on, so a resumed study follows it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epoch: int
    accuracy: float  # mean over seeds after ``epoch``
    accuracies: list[float]  # per seed
    costs: list[float] = []  # the study's cost objectives, in order (known before training)
    cost_intervals: list[tuple[float, float] | None] = []  # their 95% CIs where measured
    promoted: bool
    rank: int  # the trial's place in the rung's order when decided (0 = best)
    of: int  # trials at the rung then, itself included


class RecordError(ValueError):
    """A stored record this version of attnas cannot read; the message names the trial."""


class TrialRecord(BaseModel):
    """What one trial asked for and what it measured (None where not measured)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[2] = RECORD_VERSION
    arch: dict[str, Any] | None  # None only for a trial that failed before it had one
    arch_hash: str | None
    label: str | None
    baseline: str | None = None
    eval_fingerprint: str | None
    status: Status = "running"
    duplicate_of: int | None = None  # answered from this earlier trial's evaluation
    fail_reason: str | None = None
    node: str | None = None  # the Ray node that ran it
    seeds: list[int] = []
    accuracy: float | None = None  # mean over seeds, final epoch; what was told for "ok"
    accuracy_std: float | None = None
    accuracies: list[float] = []  # per epoch, mean over seeds
    accuracies_per_seed: list[list[float]] = []
    failed_epoch: int | None = None
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_ci_ms: tuple[float, float] | None = None  # 95% confidence interval of latency_ms
    latency_rel_ci: tuple[float, float] | None = None  # ... and of latency_rel
    latency_rel: float | None = None
    reference_latency_ms: float | None = None
    latencies: dict[str, dict[str, Any]] = {}  # per latency target (see evaluators.evaluate)
    flops: int | None = None
    params: int | None = None
    constraints: dict[str, float] = {}  # bound -> measured - bound (positive = violated)
    train_seconds: float | None = None
    device: str | None = None
    hardware: dict[str, str] = {}
    rungs: list[RungResult] = []  # successive halving: every rung reached, in order

    @property
    def counts(self) -> bool:
        """Whether the trial counts toward ``n_trials``: a distinct architecture trained to
        the end or rejected by a constraint (a duplicate answered from cache does not)."""
        return self.status in ("ok", "infeasible") and self.duplicate_of is None

    def metric(self, name: str) -> float | None:
        """An objective's value: a field (``latency_rel``: the first target's), or
        ``latency_rel@NAME``/``latency_ms@NAME`` for latency target NAME."""
        if "@" in name:
            key, target = name.split("@", 1)
            return self.latencies.get(target, {}).get(key)
        return getattr(self, name)

    @property
    def device_name(self) -> str | None:
        return self.hardware.get("name") or self.device


def read_record(trial: FrozenTrial) -> TrialRecord | None:
    """The trial's record; None for a trial that never got one (it failed before dispatch)."""
    raw = trial.user_attrs.get(RECORD_ATTR)
    if raw is None:
        return None
    version = raw.get("version") if isinstance(raw, dict) else None
    if version == 1:  # the same fields, before successive halving added rungs
        raw = raw | {"version": RECORD_VERSION}
    if version not in (1, RECORD_VERSION):
        raise RecordError(
            f"trial {trial.number} has a record of version {version!r}; this attnas reads "
            f"version {RECORD_VERSION}: open the study with the attnas that wrote it"
        )
    try:
        return TrialRecord.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise RecordError(
            f"trial {trial.number} has a malformed record: {where}: {first['msg']}"
        ) from None
