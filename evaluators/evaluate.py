"""``evaluate(arch, config) -> Metrics``: the three honest numbers for one candidate.

Cost (params, FLOPs, latency) is measured first and is cheap; ``measure_cost`` is separate so
a search can reject a candidate on a constraint before paying for training. Results are cached
on disk by (arch hash, settings hash, device), so an identical candidate is never trained twice.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evaluators.data import DATASETS, Dataset, load_dataset
from evaluators.flops import count_flops
from evaluators.hygiene import NodeGate
from evaluators.latency import LatencyResult, LatencySettings, hardware_info, measure_latency
from evaluators.train import EpochState, TrainSettings, train
from spaces import ArchConfig, StageChoice, build_model


class EvalConfig(BaseModel):
    """How a candidate is scored. Everything that changes a number is in here (and hashed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    image_size: int = Field(32, ge=4)
    split_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int = Field(1, ge=1)  # CPU threads for training
    train: TrainSettings = TrainSettings()
    latency: LatencySettings = LatencySettings()
    measure_latency: bool = True
    cache_dir: str | None = None  # None: no cache

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown dataset {v!r}; allowed: {', '.join(DATASETS)}")
        return v

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
        """Hash of what determines the numbers (not where results are cached)."""
        data = self.model_dump(mode="json", exclude={"cache_dir", "device", "download"})
        data["device"] = self.resolved_device().type
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Cost(BaseModel):
    params: int
    flops: int
    latency: LatencyResult | None = None


class Metrics(BaseModel):
    status: Literal["ok", "nan_loss"]
    accuracy: float  # mean over seeds of the final validation accuracy (NaN if failed)
    accuracy_std: float
    accuracies: list[float]  # per epoch, mean over seeds
    accuracies_per_seed: list[list[float]]
    failed_epoch: int | None = None
    latency_ms: float | None
    latency_iqr_ms: float | None
    latency_rel: float | None
    reference_latency_ms: float | None
    flops: int
    params: int
    train_seconds: float
    device: str
    hardware: dict[str, str]
    arch_hash: str
    eval_fingerprint: str
    seeds: list[int]
    cached: bool = False


def reference_arch(arch: ArchConfig) -> ArchConfig:
    """The same backbone with no attention anywhere: the latency baseline."""
    return arch.model_copy(update={"stages": tuple(StageChoice() for _ in arch.stages)})


@functools.lru_cache(maxsize=4)
def _dataset(
    name: str, data_dir: str | None, image_size: int, split_seed: int, download: bool, device: str
) -> Dataset:
    # Cached per process: a reused Ray actor or a loop of evaluations loads the data once.
    data = load_dataset(
        name, image_size=image_size, data_dir=data_dir, split_seed=split_seed, download=download
    )
    return data.to(device)


def get_dataset(cfg: EvalConfig) -> Dataset:
    return _dataset(
        cfg.dataset,
        cfg.data_dir,
        cfg.image_size,
        cfg.split_seed,
        cfg.download,
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


def measure_cost(arch: ArchConfig, cfg: EvalConfig, gate: NodeGate | None = None) -> Cost:
    model = build_model(arch, seed=0)
    shape = (arch.in_chans, arch.image_size, arch.image_size)
    fc = count_flops(model, (1, *shape))
    latency = None
    if cfg.measure_latency:
        reference = build_model(reference_arch(arch), seed=0)
        with gate.timing() if gate else nullcontext():
            latency = measure_latency(model, reference, shape, cfg.latency, cfg.resolved_device())
    return Cost(params=fc.params, flops=fc.flops, latency=latency)


def train_seeds(
    arch: ArchConfig,
    cfg: EvalConfig,
    *,
    on_epoch: Callable[[int, EpochState], None] | None = None,
    resume: dict[int, dict[str, Any]] | None = None,
    eval_split: str = "val",
    gate: NodeGate | None = None,
) -> tuple[list[Any], float]:
    """Train once per seed; ``on_epoch(seed, state)`` and ``resume[seed]`` serve checkpoints."""
    data = get_dataset(cfg)
    check_compatible(arch, data, cfg)
    results, seconds = [], 0.0
    before = torch.get_num_threads()
    if cfg.resolved_device().type == "cpu":
        torch.set_num_threads(cfg.threads)
    try:
        for seed in cfg.seeds:
            model = build_model(arch, seed=seed)
            callback = (lambda s, seed=seed: on_epoch(seed, s)) if on_epoch else None
            r = train(
                model,
                data,
                cfg.train,
                seed,
                on_epoch=callback,
                resume=(resume or {}).get(seed),
                eval_split=eval_split,
                step_guard=gate.training_step if gate else nullcontext,
            )
            results.append(r)
            seconds += r.seconds
            if r.status != "ok":
                break  # a diverged seed makes the candidate's mean meaningless
    finally:
        torch.set_num_threads(before)
    return results, seconds


def combine(
    arch: ArchConfig, cfg: EvalConfig, cost: Cost, results: list[Any], seconds: float
) -> Metrics:
    failed = next((r for r in results if r.status != "ok"), None)
    finals = [r.accuracy for r in results]
    per_epoch = [statistics.fmean(a) for a in zip(*(r.accuracies for r in results), strict=False)]
    lat = cost.latency
    device = cfg.resolved_device()
    return Metrics(
        status="nan_loss" if failed else "ok",
        accuracy=statistics.fmean(finals) if finals and not failed else float("nan"),
        accuracy_std=statistics.stdev(finals) if len(finals) > 1 and not failed else 0.0,
        accuracies=per_epoch,
        accuracies_per_seed=[r.accuracies for r in results],
        failed_epoch=failed.failed_epoch if failed else None,
        latency_ms=lat.latency_ms if lat else None,
        latency_iqr_ms=lat.latency_iqr_ms if lat else None,
        latency_rel=lat.latency_rel if lat else None,
        reference_latency_ms=lat.reference_ms if lat else None,
        flops=cost.flops,
        params=cost.params,
        train_seconds=seconds,
        device=device.type,
        hardware=lat.hardware if lat else hardware_info(device),
        arch_hash=arch.hash,
        eval_fingerprint=cfg.fingerprint(),
        seeds=list(cfg.seeds),
    )


def cache_path(arch: ArchConfig, cfg: EvalConfig) -> Path | None:
    if cfg.cache_dir is None:
        return None
    return Path(cfg.cache_dir) / f"{arch.hash}-{cfg.fingerprint()}.json"


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


def evaluate(
    arch: ArchConfig,
    cfg: EvalConfig | None = None,
    *,
    on_epoch: Callable[[int, EpochState], None] | None = None,
    gate: NodeGate | None = None,
) -> Metrics:
    """Score ``arch``; pass a ``NodeGate`` when other evaluations share the machine, so no
    one trains while this one times latency (what ``attnas search`` workers do)."""
    cfg = cfg or EvalConfig()
    path = cache_path(arch, cfg)
    if path is not None and path.is_file():
        return Metrics.model_validate_json(path.read_text()).model_copy(update={"cached": True})
    cost = measure_cost(arch, cfg, gate)
    results, seconds = train_seeds(arch, cfg, on_epoch=on_epoch, gate=gate)
    metrics = combine(arch, cfg, cost, results, seconds)
    if path is not None:
        write_json_atomic(path, metrics.model_dump_json(indent=2))
    return metrics
