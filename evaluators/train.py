"""The training schedule that scores a candidate's accuracy, and trains the chosen one.

The search's short schedule is one-cycle style: linear warm-up, then linear decay to exactly
zero at the last step, so a 3-epoch run is a complete schedule, not the start of a long one.
``attnas train`` uses the same trainer with a cosine decay and, optionally, an EMA of the
weights. Everything random draws from one seeded generator, so a CPU run is reproducible bit
for bit in a fresh process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from timm.utils import ModelEmaV3
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
    # Added after runs were stored: at the value that behaves as before (``ADDED_LATER``)
    # they stay out of the fingerprint, so those runs are still found (``fingerprint_fields``).
    schedule: Literal["linear", "cosine"] = "linear"  # the decay after warm-up
    ema_decay: float = Field(0.0, ge=0, lt=1)  # 0: off; else validate and ship the EMA weights
    # Training images whose statistics replace BatchNorm's running averages before each
    # validation (0: keep the running averages); see ``calibrate_batchnorm``.
    bn_calibration: int = Field(512, ge=0)
    # Train on this many images of the training split (0: all of them), each epoch still as
    # many steps as a full one: a low-fidelity proxy that fits few images in the same compute.
    train_images: int = Field(0, ge=0)

    def fingerprint_fields(self) -> dict[str, Any]:
        """What enters the evaluation fingerprint: every setting, except those added later
        while they hold the value that reproduces the numbers from before they existed."""
        return without_added_later(self.model_dump(mode="json"), ADDED_LATER)


def without_added_later(data: dict[str, Any], added_later: dict[str, Any]) -> dict[str, Any]:
    """``data`` less each setting of ``added_later`` that holds the value it names (the one
    that behaves as the code did before the setting existed): what a fingerprint hashes, so
    that runs stored before a setting existed keep theirs."""
    return {k: v for k, v in data.items() if k not in added_later or v != added_later[k]}


# Settings added after runs were stored -> the value that behaves as the code did before.
# Runs stored then keep their fingerprint under that value; a new default that changes the
# numbers (``bn_calibration``) gives new runs a new fingerprint.
ADDED_LATER: dict[str, Any] = {
    "schedule": "linear",
    "ema_decay": 0.0,
    "bn_calibration": 0,
    "train_images": 0,
}


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
        left = max(0.0, (total - step) / max(1, total - warm))  # 1 after warm-up, 0 at the end
        return left if s.schedule == "linear" else 0.5 * (1 - math.cos(math.pi * left))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def calibrate_batchnorm(model: nn.Module, data: Dataset, images: int, batch_size: int) -> None:
    """Replace every BatchNorm's running statistics with those of the current weights,
    measured on the first ``images`` training images (precise BN, after Wu & Johnson,
    "Rethinking 'Batch' in BatchNorm", 2021).

    Why: the running averages (momentum 0.1) mix the statistics of the last ~10 steps' weights.
    Early in a short schedule, at a high learning rate and with 16-40 steps per epoch, those
    weights move so fast that the averages describe none of them, and an evaluation-mode
    network that already classifies well with its batch statistics scores at chance: on
    digits at 16 px after 2 of 5 epochs, 0.14 with the running averages against 0.91 with
    re-measured statistics (0.99 either way after the last). Successive halving ranks trials
    at such early epochs. Training never reads the running averages, so this changes what is
    scored, not what is learned; the CPU random state is kept, so a stochastic layer in train
    mode cannot shift the training run either.
    """
    if images <= 0:
        return
    batches = (
        _memory_format(data.normalize(data.train.images[i : i + batch_size]))
        for i in range(0, min(images, len(data.train)), batch_size)
    )
    with torch.random.fork_rng(devices=[]):
        torch.optim.swa_utils.update_bn(batches, model)


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


# The pool is drawn from a generator of its own, so that the seed's training stream (order,
# augmentation) is the one it would be without a pool; offset so the two never coincide.
POOL_SEED_OFFSET = 10_000


def _training_pool(size: int, images: int, seed: int) -> torch.Tensor | None:
    """The training images a seed may use: all (None) or ``images`` of them, drawn by the seed.
    BatchNorm calibration still reads the split's first images: statistics, never labels."""
    if images <= 0 or images >= size:
        return None
    generator = torch.Generator().manual_seed(POOL_SEED_OFFSET + seed)
    return torch.randperm(size, generator=generator)[:images]


class SeedTrainer:
    """One seed's training run, advanced one epoch at a time.

    The evaluation holds one of these per seed and steps them in lockstep, so that "accuracy
    after epoch k" is always the mean over every seed at k and a checkpoint after each epoch
    holds all seeds. Everything random draws from the seed's own generator, so seeds trained
    side by side give bit for bit what each would give alone (on CPU).
    ``step_guard`` wraps every optimizer step (the node gate pauses training there while
    another trial times latency).
    """

    def __init__(
        self,
        model: nn.Module,
        data: Dataset,
        settings: TrainSettings,
        seed: int,
        *,
        step_guard: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self.device = data.train.images.device
        self.model = model.to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        self.runner = torch.compile(model) if settings.compile else model
        self.data, self.settings, self.seed, self.step_guard = data, settings, seed, step_guard
        self.generator = torch.Generator().manual_seed(seed)
        self.pool = _training_pool(len(data.train), settings.train_images, seed)
        self.steps_per_epoch = max(1, len(data.train) // settings.batch_size)  # no ragged batch
        self.optimizer = make_optimizer(model, settings)
        self.scheduler = make_scheduler(self.optimizer, settings, self.steps_per_epoch)
        # The EMA is what is validated and shipped when on (timm's, with its decay warm-up).
        self.ema = (
            ModelEmaV3(model, decay=settings.ema_decay, use_warmup=True)
            if settings.ema_decay
            else None
        )
        self.epoch = 0  # epochs completed
        self.loss = float("nan")  # the last epoch's mean training loss
        self._calibrated_at = -1  # the epoch whose BatchNorm statistics were last measured

    @property
    def trained(self) -> nn.Module:
        """The weights to validate and ship: the EMA when it is on, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def train_epoch(self) -> bool:
        """One epoch over the training split; False when the loss went NaN/inf."""
        s, train_split = self.settings, self.data.train
        self.model.train()
        order = self._order().to(self.device)
        loss_sum = torch.zeros((), device=self.device)
        for step in range(self.steps_per_epoch):
            idx = order[step * s.batch_size : (step + 1) * s.batch_size]
            images = train_split.images[idx]
            if s.augment:
                images = augment(images, self.generator, self.data.flip)
            x = _memory_format(self.data.normalize(images))
            with self.step_guard():
                with _autocast(self.device):
                    loss = F.cross_entropy(
                        self.runner(x), train_split.labels[idx], label_smoothing=s.label_smoothing
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update(self.model, step=self.scheduler.last_epoch)
            loss_sum += loss.detach().float()
        self.epoch += 1
        self.loss = loss_sum.item() / self.steps_per_epoch
        return math.isfinite(self.loss)

    def _order(self) -> torch.Tensor:
        """This epoch's training indices: a permutation of the training split, or of the pool
        repeated until it fills a full epoch's steps."""
        if self.pool is None:
            return torch.randperm(len(self.data.train), generator=self.generator)
        need = self.steps_per_epoch * self.settings.batch_size
        rounds = -(-need // len(self.pool))
        perms = [
            self.pool[torch.randperm(len(self.pool), generator=self.generator)]
            for _ in range(rounds)
        ]
        return torch.cat(perms)[:need]

    def score(self, split: str) -> float:
        with self.step_guard():
            if self._calibrated_at != self.epoch:
                s = self.settings
                calibrate_batchnorm(self.trained, self.data, s.bn_calibration, s.batch_size)
                self._calibrated_at = self.epoch
            runner = self.runner if self.ema is None else self.ema.module
            return accuracy(runner, self.data, getattr(self.data, split))

    def state_dict(self) -> dict[str, Any]:
        """Only tensors and plain types: loadable with ``torch.load(weights_only=True)``."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "loss": self.loss,
        } | ({"ema": self.ema.module.state_dict()} if self.ema is not None else {})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self._calibrated_at = -1
        self.loss = float(state.get("loss", float("nan")))
        if self.ema is not None:
            self.ema.module.load_state_dict(state["ema"])
