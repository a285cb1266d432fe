"""``evaluate(arch, cfg, workdir) -> Outcome``: the one evaluation path.

The Ray worker, ``attnas evaluate``, ``attnas validate`` and the benchmarks all score an
architecture here, so there is one definition of what a trial's numbers mean:

1. cost first (params, FLOPs, latency against a separately built reference): cheap, and a
   candidate that violates a constraint is answered ``infeasible`` before it costs training;
2. then training, every seed in lockstep one epoch at a time, so "accuracy after epoch k" is
   the mean over all seeds at k; after each epoch one checkpoint holds every seed, and
   ``on_epoch`` is called (the worker reports it to Tune);
3. a typed ``Outcome``, written to the workdir, where an identical request finds it again.

A workdir is keyed by (architecture hash, evaluation fingerprint) and every file in it is
checked against both on read (``evaluators.workdir``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from evaluators.data import DATA_VERSIONS, DATASETS, Dataset, load_dataset
from evaluators.flops import count_flops
from evaluators.hygiene import NodeGate
from evaluators.latency import (
    ESTIMATOR_VERSION,
    RUNTIME_VERSIONS,
    LatencyResult,
    LatencySettings,
    hardware_info,
    measure_targets,
)
from evaluators.runtimes import RuntimeUnavailable, prepare
from evaluators.train import SeedTrainer, TrainSettings, without_added_later
from evaluators.workdir import EvalDir
from spaces import ArchConfig, StageChoice, build_model, deploy
from spaces.build import BUILD_VERSION
from spaces.errors import check_choice


class EvalConfig(BaseModel):
    """How a candidate is scored. Everything that changes a number is in here (and hashed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    image_size: int = Field(32, ge=4)
    split_seed: int = 0
    # Keep this many images of the training / val split (0: all), the same for every seed
    # and trial: a large dataset (Fashion-MNIST's 48,000) cut to what a CPU trains quickly.
    train_size: int = Field(0, ge=0)
    val_size: int = Field(0, ge=0)
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int = Field(1, ge=1)  # CPU threads for training
    train: TrainSettings = TrainSettings()
    latency: LatencySettings = LatencySettings()
    measure_latency: bool = True
    split: Literal["val", "holdout"] = "val"  # what accuracy is scored on (holdout: validate)

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return check_choice("dataset", v, DATASETS)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("seeds: give at least one")
        return v

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def fingerprint(self) -> str:
        """Hash of what determines the numbers. ``device`` enters as configured (``auto``
        stays ``auto``), so a CPU head and a GPU worker compute the same fingerprint; the
        device that actually ran is recorded in the outcome's ``hardware``."""
        versions = {"build": BUILD_VERSION, "data": DATA_VERSIONS[self.dataset]}
        if ESTIMATOR_VERSION > 1:
            versions["latency_estimator"] = ESTIMATOR_VERSION
        runtimes = {t.runtime for t in self.latency.targets}
        if bumped := {r: v for r, v in RUNTIME_VERSIONS.items() if r in runtimes}:
            versions["latency_runtimes"] = bumped
        dumped = self.model_dump(mode="json", exclude={"download"})
        data = without_added_later(dumped, EVAL_ADDED_LATER) | versions
        data["train"] = self.train.fingerprint_fields()
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# Evaluation settings added after runs were stored -> the value that behaves as before (as
# ``evaluators.train.ADDED_LATER`` for training settings): off, they leave fingerprints alone.
EVAL_ADDED_LATER: dict[str, Any] = {"train_size": 0, "val_size": 0}


def reference_arch(arch: ArchConfig) -> ArchConfig:
    """The same backbone with no attention anywhere: the latency baseline."""
    return arch.model_copy(update={"stages": tuple(StageChoice() for _ in arch.stages)})


@functools.lru_cache(maxsize=4)
def _dataset(
    name: str,
    data_dir: str | None,
    image_size: int,
    split_seed: int,
    download: bool,
    sizes: tuple[int, int],
    device: str,
) -> Dataset:
    # Cached per process: a reused Ray actor or a loop of evaluations loads the data once.
    data = load_dataset(
        name,
        image_size=image_size,
        data_dir=data_dir,
        split_seed=split_seed,
        download=download,
        train_size=sizes[0],
        val_size=sizes[1],
    )
    return data.to(device)


def get_dataset(cfg: EvalConfig) -> Dataset:
    return _dataset(
        cfg.dataset,
        cfg.data_dir,
        cfg.image_size,
        cfg.split_seed,
        cfg.download,
        (cfg.train_size, cfg.val_size),
        str(cfg.resolved_device()),
    )


def check_compatible(arch: ArchConfig, data: Dataset, cfg: EvalConfig) -> None:
    problems = []
    if arch.num_classes != data.num_classes:
        problems.append(f"num_classes {arch.num_classes} but {data.name} has {data.num_classes}")
    if arch.in_chans != data.in_chans:
        problems.append(f"in_chans {arch.in_chans} but {data.name} has {data.in_chans}")
    if arch.image_size != cfg.image_size:
        problems.append(f"image_size {arch.image_size} but the evaluation uses {cfg.image_size}")
    if problems:
        raise ValueError(f"architecture does not fit the dataset: {'; '.join(problems)}")


class Cost(BaseModel):
    """What a candidate costs, known before training; stored in the workdir under its key."""

    arch_hash: str
    eval_fingerprint: str
    params: int
    flops: int
    latencies: dict[str, LatencyResult] = {}  # per latency target, in the configured order

    @property
    def latency(self) -> LatencyResult | None:
        """The first target's: what plain ``latency_ms``/``latency_rel`` mean."""
        return next(iter(self.latencies.values()), None)

    def measured(self) -> dict[str, float]:
        """Every cost a constraint or objective may name: ``latency_rel`` (first target),
        ``latency_rel@NAME`` (target NAME), ``latency_ms`` likewise, ``flops``, ``params``."""
        out: dict[str, float] = {"flops": self.flops, "params": self.params}
        for i, (name, r) in enumerate(self.latencies.items()):
            for key in ("latency_ms", "latency_rel"):
                out[f"{key}@{name}"] = getattr(r, key)
                if i == 0:
                    out[key] = getattr(r, key)
        return out


class Outcome(BaseModel):
    """The result of one evaluation: exactly the architecture and settings it names."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "nan_loss", "infeasible"]
    arch: dict[str, Any]
    arch_hash: str
    eval_fingerprint: str
    split: str
    seeds: list[int]
    accuracy: float | None  # mean over seeds of the final accuracy; None unless ok
    accuracy_std: float | None
    accuracies: list[float]  # per completed epoch, the mean over seeds
    accuracies_per_seed: list[list[float]]
    losses: list[float] = []  # per completed epoch, the mean training loss over seeds
    failed_epoch: int | None = None
    latency_ms: float | None
    latency_iqr_ms: float | None
    latency_ci_ms: tuple[float, float] | None = None  # 95% CI of latency_ms
    latency_rel_ci: tuple[float, float] | None = None  # 95% CI of latency_rel
    # Per latency target: latency_ms, latency_rel, their intervals, the reference's ms and
    # the runtime, its version and settings (plain latency_* above are the first target's).
    latencies: dict[str, dict[str, Any]] = {}
    latency_rel: float | None
    reference_latency_ms: float | None
    flops: int
    params: int
    constraints: dict[str, float] = {}  # bound -> measured - bound (positive = violated)
    train_seconds: float
    device: str
    hardware: dict[str, str]


@dataclass(frozen=True)
class EpochReport:
    """What ``on_epoch`` sees after every epoch: all seeds have completed ``epoch``. A run
    resumed from its checkpoint first reports the checkpoint's epoch again."""

    epoch: int  # 1-based
    accuracy: float  # mean over seeds
    accuracies: list[float]  # per seed
    loss: float = float("nan")  # the epoch's mean training loss, mean over seeds
    seconds: float = float("nan")  # training time so far, every seed (a checkpoint's included)


def check_latency_targets(archs: list[ArchConfig], cfg: EvalConfig) -> None:
    """Refuse, in one line, a latency target that cannot run here: its runtime missing, no
    GPU for a CUDA provider, or an op its exporter refuses in any of ``archs`` (one per
    attention type the space holds, e.g. its baselines). torch targets are checked on the
    first architecture only: eager PyTorch runs whatever trains, and a compile is slow."""
    if not cfg.measure_latency:
        return
    device = cfg.resolved_device()
    for target in cfg.latency.targets:
        exported = target.runtime in ("onnxruntime", "openvino")
        for arch in archs if exported else archs[:1]:
            size = target.image_size or arch.image_size
            x = torch.randn(target.batch_size, arch.in_chans, size, size, device=device)
            try:
                with torch.inference_mode():
                    prepare(deploy(build_model(arch, seed=0)), target, x).run()
            except RuntimeUnavailable as exc:
                raise RuntimeUnavailable(
                    f"latency target {target.name!r} ({target.runtime}) cannot run here: {exc}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - any failure here is the target's
                raise RuntimeUnavailable(
                    f"latency target {target.name!r} ({target.runtime}) failed on "
                    f"{arch.label()}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from None


def target_summary(r: LatencyResult) -> dict[str, Any]:
    """What a trial keeps of one target's measurement."""
    return {
        "latency_ms": r.latency_ms,
        "latency_ci_ms": list(r.latency_ci_ms),
        "latency_rel": r.latency_rel,
        "latency_rel_ci": list(r.latency_rel_ci),
        "reference_ms": r.reference_ms,
        "runtime": r.target.runtime,
        "runtime_version": r.runtime_version,
        "image_size": r.image_size,
        "batch_size": r.target.batch_size,
        "threads": r.target.threads,
        "dtype": r.target.dtype,
        "channels_last": r.target.channels_last,
        "compile_seconds": r.compile_seconds,
        "blocks": r.blocks,
    }


def measure_cost(arch: ArchConfig, cfg: EvalConfig, gate: NodeGate | None = None) -> Cost:
    model = build_model(arch, seed=0)
    shape = (arch.in_chans, arch.image_size, arch.image_size)
    fc = count_flops(model, (1, *shape))
    latencies = {}
    if cfg.measure_latency:
        reference = build_model(reference_arch(arch), seed=0)
        with gate.timing() if gate else nullcontext():
            latencies = measure_targets(model, reference, shape, cfg.latency, cfg.resolved_device())
    return Cost(
        arch_hash=arch.hash,
        eval_fingerprint=cfg.fingerprint(),
        params=fc.params,
        flops=fc.flops,
        latencies=latencies,
    )


def constraint_values(cost: Cost, bounds: Mapping[str, float]) -> dict[str, float]:
    """Positive = violated by that much (Optuna's convention), one entry per active bound."""
    measured = {f"max_{k}": v for k, v in cost.measured().items()}
    unknown = sorted(set(bounds) - set(measured))
    if unknown:
        raise ValueError(f"unknown constraint {unknown[0]!r}; allowed: {', '.join(measured)}")
    return {k: float(measured[k]) - v for k, v in bounds.items()}


def _outcome(
    arch: ArchConfig,
    cfg: EvalConfig,
    cost: Cost,
    per_seed: list[list[float]],
    *,
    status: Literal["ok", "nan_loss", "infeasible"],
    constraints: dict[str, float],
    seconds: float,
    failed_epoch: int | None = None,
    losses: list[float] | None = None,
) -> Outcome:
    finals = [accs[-1] for accs in per_seed] if status == "ok" else []
    lat = cost.latency
    device = cfg.resolved_device()
    return Outcome(
        status=status,
        arch=arch.to_dict(),
        arch_hash=arch.hash,
        eval_fingerprint=cfg.fingerprint(),
        split=cfg.split,
        seeds=list(cfg.seeds),
        accuracy=statistics.fmean(finals) if finals else None,
        accuracy_std=(statistics.stdev(finals) if len(finals) > 1 else 0.0) if finals else None,
        accuracies=[statistics.fmean(epoch) for epoch in zip(*per_seed, strict=True)],
        accuracies_per_seed=per_seed,
        losses=losses or [],
        failed_epoch=failed_epoch,
        latency_ms=lat.latency_ms if lat else None,
        latency_iqr_ms=lat.latency_iqr_ms if lat else None,
        latency_ci_ms=lat.latency_ci_ms if lat else None,
        latency_rel_ci=lat.latency_rel_ci if lat else None,
        latency_rel=lat.latency_rel if lat else None,
        reference_latency_ms=lat.reference_ms if lat else None,
        latencies={name: target_summary(r) for name, r in cost.latencies.items()},
        flops=cost.flops,
        params=cost.params,
        constraints=constraints,
        train_seconds=seconds,
        device=device.type,
        hardware=lat.hardware if lat else hardware_info(device),
    )


def eval_dir(root: Path, arch: ArchConfig, cfg: EvalConfig) -> Path:
    """Where under ``root`` the evaluation of ``arch`` with ``cfg`` keeps its files."""
    return Path(root) / f"{arch.hash}-{cfg.fingerprint()}"


@contextmanager
def _threads(cfg: EvalConfig) -> Iterator[None]:
    before = torch.get_num_threads()
    if cfg.resolved_device().type == "cpu":
        torch.set_num_threads(cfg.threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evaluate(
    arch: ArchConfig,
    cfg: EvalConfig | None = None,
    workdir: Path | None = None,
    *,
    constraints: Mapping[str, float] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    gate: NodeGate | None = None,
    on_trained: Callable[[list[nn.Module]], None] | None = None,
) -> Outcome:
    """Score ``arch`` with ``cfg``; see the module docstring for the steps.

    ``workdir`` (see ``eval_dir``) makes the evaluation durable and resumable: a finished
    outcome there is returned as it is, a killed one resumes after its last epoch checkpoint.
    Without it nothing is written. ``constraints`` are upper bounds on the cost (``max_flops``,
    ``max_params``, ``max_latency_ms``, ``max_latency_rel``): a violator is never trained, and
    its outcome is not cached (another study may set other bounds). Pass a ``NodeGate`` when
    other evaluations share the machine, so no one trains while this one times latency.
    ``on_trained`` receives the trained networks (one per seed; the EMA when it is on) after
    the last epoch and before the outcome is stored: ``attnas train`` saves them there, so a
    stored outcome always has its weights beside it.
    """
    cfg = cfg or EvalConfig()
    store = EvalDir(workdir, arch.hash, cfg.fingerprint()) if workdir is not None else None
    cost = store.read("cost.json", Cost) if store else None
    if cost is None:
        check_compatible(arch, get_dataset(cfg), cfg)  # before timing a network that cannot fit
        cost = measure_cost(arch, cfg, gate)
        if store is not None:
            store.write("cost.json", cost)
    # Bounds are checked on every call, a stored outcome included: they are not part of the
    # fingerprint, so the outcome may have been stored under other bounds.
    violations = constraint_values(cost, constraints or {})
    if any(v > 0 for v in violations.values()):
        return _outcome(
            arch, cfg, cost, [], status="infeasible", constraints=violations, seconds=0.0
        )
    if store is not None and (done := store.read("outcome.json", Outcome)) is not None:
        return done.model_copy(update={"constraints": violations})
    data = get_dataset(cfg)
    check_compatible(arch, data, cfg)
    with _threads(cfg):
        outcome = _train(arch, cfg, data, cost, violations, store, on_epoch, gate, on_trained)
    if store is not None:
        store.write("outcome.json", outcome)
        store.checkpoint_path.unlink(missing_ok=True)  # the outcome supersedes it
    return outcome


def _train(
    arch: ArchConfig,
    cfg: EvalConfig,
    data: Dataset,
    cost: Cost,
    violations: dict[str, float],
    store: EvalDir | None,
    on_epoch: Callable[[EpochReport], None] | None,
    gate: NodeGate | None,
    on_trained: Callable[[list[nn.Module]], None] | None = None,
) -> Outcome:
    guard = gate.training_step if gate else nullcontext
    if cfg.train.compile:
        # A search worker trains trial after trial: the graphs of earlier architectures would
        # pile up until dynamo's recompile_limit (8) made it run a later one's forward
        # eagerly, the 5th here (training compiles more than one graph per architecture).
        torch.compiler.reset()
    trainers = [
        SeedTrainer(build_model(arch, seed=seed), data, cfg.train, seed, step_guard=guard)
        for seed in cfg.seeds
    ]
    per_seed: list[list[float]] = [[] for _ in trainers]
    losses: list[float] = []
    seconds = 0.0
    checkpoint = store.load_checkpoint() if store else None
    if checkpoint is not None:
        for trainer, accs in zip(trainers, per_seed, strict=True):
            trainer.load_state_dict(checkpoint["seeds"][str(trainer.seed)])
            accs.extend(checkpoint["accuracies"][str(trainer.seed)])
        losses.extend(checkpoint.get("losses", []))
        seconds = float(checkpoint["seconds"])
        if on_epoch is not None and per_seed[0]:
            # The last finished epoch again: a killed run may have reported it to nobody (a
            # rung's report whose decision was never made), and a listener that already
            # had it sees the same numbers twice.
            finals = [a[-1] for a in per_seed]
            mean, loss = statistics.fmean(finals), _loss(trainers)
            on_epoch(EpochReport(trainers[0].epoch, mean, finals, loss, seconds))
    for epoch in range(trainers[0].epoch + 1, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        for trainer, accs in zip(trainers, per_seed, strict=True):
            if not trainer.train_epoch():  # a diverged seed makes the mean meaningless
                return _outcome(
                    arch,
                    cfg,
                    cost,
                    [a[: epoch - 1] for a in per_seed],  # the epochs every seed completed
                    status="nan_loss",
                    constraints=violations,
                    seconds=seconds + time.perf_counter() - t0,
                    failed_epoch=epoch,
                    losses=losses,
                )
            accs.append(trainer.score(cfg.split))
        losses.append(_loss(trainers))
        seconds += time.perf_counter() - t0
        if store is not None:
            store.save_checkpoint(
                {
                    "epoch": epoch,
                    "seconds": seconds,
                    "seeds": {str(t.seed): t.state_dict() for t in trainers},
                    "accuracies": {str(t.seed): a for t, a in zip(trainers, per_seed, strict=True)},
                    "losses": losses,
                }
            )
            store.log_epoch(epoch, list(cfg.seeds))
        if on_epoch is not None:
            finals = [a[-1] for a in per_seed]
            on_epoch(EpochReport(epoch, statistics.fmean(finals), finals, losses[-1], seconds))
    if on_trained is not None:
        on_trained([t.trained for t in trainers])
    return _outcome(
        arch,
        cfg,
        cost,
        per_seed,
        status="ok",
        constraints=violations,
        seconds=seconds,
        losses=losses,
    )


def _loss(trainers: list[SeedTrainer]) -> float:
    return statistics.fmean(t.loss for t in trainers)
