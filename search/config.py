"""SearchConfig: one validated YAML file says what to search, how to score and how to run.

Unknown keys are errors (a typo must not silently fall back to a default), and ``--set
key.sub=value`` overrides are applied to the raw mapping before validation, so they get the
same checks as the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evaluators import EvalConfig
from spaces import SpaceConfig
from spaces.errors import check_choice

OBJECTIVES: dict[str, str] = {
    "accuracy": "maximize",
    "latency_ms": "minimize",
    "latency_rel": "minimize",
    "flops": "minimize",
    "params": "minimize",
}
SAMPLERS = ("nsga2", "tpe", "gp", "random", "nsga3")


class ConfigError(ValueError):
    """A bad search config; the message is one line naming the key and the allowed values."""


# Objectives that a latency target may qualify: ``latency_rel@onnxruntime``.
PER_TARGET = ("latency_ms", "latency_rel")


def split_target(name: str) -> tuple[str, str | None]:
    """``latency_rel@onnxruntime`` -> (``latency_rel``, ``onnxruntime``); plain names -> None."""
    base, _, target = name.partition("@")
    return base, target or None


class Constraints(BaseModel):
    """Upper bounds known before training: violating candidates are never trained. Latency
    bounds may name a target: ``max_latency_ms@onnxruntime`` (plain: the first target)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    max_latency_ms: float | None = Field(None, gt=0)
    max_latency_rel: float | None = Field(None, gt=0)
    max_flops: float | None = Field(None, gt=0)
    max_params: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _per_target(self) -> Constraints:
        for key, value in (self.model_extra or {}).items():
            base, target = split_target(key)
            if target is None or base[4:] not in PER_TARGET or not base.startswith("max_"):
                allowed = ", ".join([*type(self).model_fields, "max_latency_ms@TARGET"])
                raise ValueError(f"unknown constraint {key!r}; allowed: {allowed}")
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"constraint {key} must be a number > 0, got {value!r}")
        return self

    def active(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def targets(self) -> set[str]:
        return {t for k in self.active() if (t := split_target(k)[1])}


class SamplerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "nsga2"
    seed: int = 0
    population_size: int = Field(8, ge=2)  # nsga2 / nsga3

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_choice("sampler", v, SAMPLERS)


SCHEDULES = ("full", "successive_halving")


class ScheduleConfig(BaseModel):
    """How much of its schedule each trial trains. ``full``: every trial trains every epoch.
    ``successive_halving``: a trial is stopped or promoted once and for good at each rung
    (``min_epochs * eta**k`` epochs, below ``eval.train.epochs``); see ``search/halving.py``.
    ``budget_epochs`` bounds the epochs trained by the whole study (each epoch trains every
    seed): no trial starts once it is spent; trials in flight then finish."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "full"
    min_epochs: int = Field(1, ge=1)
    eta: int = Field(3, ge=2)
    budget_epochs: int | None = Field(None, ge=1)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_choice("schedule", v, SCHEDULES)

    def rungs(self, epochs: int) -> list[int]:
        """The epochs at which a searched trial is stopped or promoted (none when ``full``)."""
        from search.halving import rung_epochs

        return rung_epochs(self.min_epochs, self.eta, epochs) if self.halving else []

    @property
    def halving(self) -> bool:
        return self.name == "successive_halving"


class Resources(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: int | None = Field(None, ge=0)  # None: 1 when the cluster has GPUs, else 0


class SearchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    study: str = Field("attnas", pattern=r"^[A-Za-z0-9_.-]+$")
    output_dir: str = "runs"
    # The study folder, when it is not <output_dir>/<study>: set by ``attnas resume DIR`` (a
    # renamed or copied folder stays the study its own files name). Never written to files.
    directory: str | None = None
    storage: str | None = None  # None: sqlite:///<output_dir>/<study>/study.db
    space: SpaceConfig = SpaceConfig()
    eval: EvalConfig = EvalConfig()
    objectives: tuple[str, ...] = ("accuracy", "latency_ms")
    constraints: Constraints = Constraints()
    sampler: SamplerConfig = SamplerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    n_trials: int = Field(24, ge=1)
    concurrency: int = Field(2, ge=1)
    max_failures: int = Field(5, ge=0)
    resources: Resources = Resources()
    ray_address: str | None = None
    timeout_s: float | None = Field(None, gt=0)
    pessimistic_accuracy: float = 0.0  # what a constraint-rejected candidate is told

    @model_validator(mode="before")
    @classmethod
    def _one_image_size(cls, data: Any) -> Any:
        """The image size is given once: in ``space`` or in ``eval``; the other follows."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        space, ev = dict(data.get("space") or {}), dict(data.get("eval") or {})
        size = space.get("image_size", ev.get("image_size"))
        if size is not None:
            space.setdefault("image_size", size)
            ev.setdefault("image_size", size)
        data["space"], data["eval"] = space, ev
        return data

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f"give at least one objective; allowed: {', '.join(OBJECTIVES)}")
        for name in v:
            base, target = split_target(name)
            if base not in OBJECTIVES or (target and base not in PER_TARGET):
                allowed = ", ".join([*OBJECTIVES, *(f"{k}@TARGET" for k in PER_TARGET)])
                raise ValueError(f"unknown objective {name!r}; allowed: {allowed}")
        if len(set(v)) != len(v):
            raise ValueError(f"objectives repeat a name: {list(v)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        if self.space.image_size != self.eval.image_size:
            raise ValueError(
                f"space.image_size {self.space.image_size} differs from eval.image_size "
                f"{self.eval.image_size}"
            )
        bases = {split_target(o)[0] for o in self.objectives}
        bounds = {split_target(k)[0] for k in self.constraints.active()}
        needs_latency = set(PER_TARGET) & bases or {f"max_{k}" for k in PER_TARGET} & bounds
        named = {t for o in self.objectives if (t := split_target(o)[1])}
        known = [t.name for t in self.eval.latency.targets]
        for target in sorted((named | self.constraints.targets()) - set(known)):
            raise ValueError(
                f"unknown latency target {target!r} in objectives or constraints; "
                f"eval.latency.targets names: {', '.join(known)}"
            )
        from spaces import SearchSpace

        SearchSpace(self.space)  # an empty stage domain is a config error, found before any I/O
        if self.schedule.halving and "accuracy" not in self.objectives:
            raise ValueError(
                "successive halving ranks trials by their accuracy at each rung: add "
                "'accuracy' to objectives or use schedule.name=full"
            )
        if self.schedule.halving and not self.schedule.rungs(self.eval.train.epochs):
            raise ValueError(
                f"schedule.min_epochs {self.schedule.min_epochs} leaves no rung below "
                f"eval.train.epochs {self.eval.train.epochs}: successive halving would stop "
                "nothing; lower min_epochs or train longer"
            )
        if needs_latency and not self.eval.measure_latency:
            raise ValueError(
                "latency is an objective or constraint but eval.measure_latency is false"
            )
        return self

    # -- derived -------------------------------------------------------------------------------
    @property
    def study_dir(self) -> Path:
        if self.directory is not None:
            return Path(self.directory).resolve()
        return Path(self.output_dir).resolve() / self.study

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.study_dir / 'study.db'}"

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[split_target(o)[0]] for o in self.objectives]

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed study must share with the one that started it."""
        ev = self.eval
        return {
            "space": self.space.model_dump(mode="json"),
            "eval": {
                "dataset": ev.dataset,
                "image_size": ev.image_size,
                "seeds": list(ev.seeds),
                "split_seed": ev.split_seed,
                "train": ev.train.model_dump(mode="json"),
                "latency": ev.latency.model_dump(mode="json"),
            },
            "objectives": list(self.objectives),
            "constraints": self.constraints.model_dump(mode="json"),
        } | (
            # Only a halving study records its rungs (older studies' fingerprints stay valid);
            # the budget may grow on a resume, as n_trials may.
            {"schedule": self.schedule.model_dump(include={"name", "min_epochs", "eta"})}
            if self.schedule.halving
            else {}
        )

    def fingerprint_hash(self) -> str:
        text = json.dumps(self.fingerprint(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint_difference(
    stored: dict[str, Any], current: dict[str, Any], prefix: str = ""
) -> str | None:
    """The first differing key, as ``eval.train.epochs: 5 -> 3``; None when equal."""
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        where = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diff = fingerprint_difference(a, b, where + ".")
            if diff:
                return diff
        elif a != b:
            return f"{where}: {a!r} -> {b!r}"
    return None


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set needs key=value, got {item!r}")
    key, raw = item.split("=", 1)
    # A last part may name a latency target: constraints.max_latency_ms@onnxruntime.
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(@[\w-]+)?", key):
        raise ConfigError(f"--set key {key!r} is not a dotted name like eval.train.epochs")
    return key.split("."), yaml.safe_load(raw) if raw else None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a search config must be a mapping of keys")
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> SearchConfig:
    from pydantic import ValidationError

    from spaces import describe

    data = read_yaml(path) if path else {}
    data = apply_overrides(data, overrides or [])
    if os.environ.get("ATTNAS_STORAGE") and not data.get("storage"):
        data["storage"] = os.environ["ATTNAS_STORAGE"]  # keeps a password out of config files
    try:
        return SearchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
