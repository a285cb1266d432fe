"""The short training schedule that scores a candidate's accuracy.

One-cycle style: linear warm-up, then linear decay to exactly zero at the last step, so a
3-epoch run is a complete schedule, not the start of a long one. Everything random draws from
one seeded generator, so a CPU run is reproducible bit for bit in a fresh process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from evaluators.data import Dataset, Split, augment


class TrainSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(5, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.2, gt=0)
    momentum: float = 0.9
    weight_decay: float = Field(5e-4, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    warmup_fraction: float = Field(0.2, ge=0, lt=1)
    augment: bool = True
    compile: bool = False


@dataclass
class EpochState:
    """What a per-epoch callback sees; enough to write a resumable checkpoint."""

    epoch: int  # 1-based, completed
    accuracy: float
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator


@dataclass
class TrainResult:
    status: Literal["ok", "nan_loss"]
    accuracies: list[float] = field(default_factory=list)  # validation accuracy per epoch
    failed_epoch: int | None = None
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.accuracies[-1] if self.accuracies and self.status == "ok" else float("nan")


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    # No weight decay on norms and biases: standard for short schedules, and it keeps LayerNorm
    # gates (SELN) and BN-folded branches (RCAM) from being shrunk towards zero.
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": s.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if s.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=s.lr)
    return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum, nesterov=True)


def make_scheduler(
    opt: torch.optim.Optimizer, s: TrainSettings, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = s.epochs * steps_per_epoch
    warm = max(1, int(total * s.warmup_fraction))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@torch.inference_mode()
def accuracy(model: nn.Module, data: Dataset, split: Split, batch_size: int = 1024) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(split), batch_size):
        x = data.normalize(split.images[i : i + batch_size])
        with _autocast(x.device):
            logits = model(_memory_format(x))
        correct += (logits.argmax(1) == split.labels[i : i + batch_size]).sum().item()
    return correct / max(1, len(split))


def _autocast(device: torch.device):
    # bf16 autocast only on CUDA: on CPU it is slower and changes numerics for no gain.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def _memory_format(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x


def train(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    seed: int,
    *,
    on_epoch: Callable[[EpochState], None] | None = None,
    resume: dict[str, Any] | None = None,
    eval_split: str = "val",
    step_guard: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> TrainResult:
    """Train ``model`` on ``data.train`` and report ``eval_split`` accuracy after every epoch.

    ``resume`` is a checkpoint dict written from an ``EpochState`` (see ``checkpoint_state``):
    training continues after its epoch with the same optimizer, schedule and RNG state.
    ``step_guard`` wraps every optimizer step (the node gate pauses training there while
    another trial times latency).
    """
    device = data.train.images.device
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if settings.compile else model
    generator = torch.Generator().manual_seed(seed)
    n = len(data.train)
    steps_per_epoch = max(1, n // settings.batch_size)  # drop the ragged last batch
    optimizer = make_optimizer(model, settings)
    scheduler = make_scheduler(optimizer, settings, steps_per_epoch)
    result = TrainResult(status="ok")
    start_epoch = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        generator.set_state(resume["generator"])
        result.accuracies = list(resume["accuracies"])
        start_epoch = int(resume["epoch"])
    split = getattr(data, eval_split)
    t0 = time.perf_counter()
    for epoch in range(start_epoch, settings.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            images = data.train.images[idx]
            if settings.augment:
                images = augment(images, generator, data.flip)
            x = _memory_format(data.normalize(images))
            with step_guard():
                with _autocast(device):
                    loss = F.cross_entropy(
                        runner(x), data.train.labels[idx], label_smoothing=settings.label_smoothing
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
            loss_sum += loss.detach().float()
        if not math.isfinite(loss_sum.item()):
            result.status, result.failed_epoch = "nan_loss", epoch + 1
            break
        with step_guard():
            result.accuracies.append(accuracy(runner, data, split))
        if on_epoch is not None:
            on_epoch(
                EpochState(epoch + 1, result.accuracies[-1], model, optimizer, scheduler, generator)
            )
    result.seconds = time.perf_counter() - t0
    return result


def checkpoint_state(state: EpochState, accuracies: list[float]) -> dict[str, Any]:
    """A checkpoint made only of tensors and plain types, loadable with weights_only=True."""
    return {
        "epoch": state.epoch,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "generator": state.generator.get_state(),
        "accuracies": list(accuracies),
    }
