"""Latency measured on the device the trial runs on, candidate and reference interleaved.

Absolute milliseconds drift with clock speed, thermal state and neighbours; the ratio of two
models timed in alternation (A, B, B, A, ...) in one process cancels most of that, so
``latency_rel`` stays comparable across noisy or mixed machines. Every result carries the
hardware and settings it was measured with.
"""

from __future__ import annotations

import platform
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LatencySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(1, ge=1)
    warmup: int = Field(10, ge=0)
    repeats: int = Field(30, ge=3)
    min_sample_ms: float = Field(2.0, gt=0)  # each sample loops the model until this long
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    channels_last: bool = False
    compile: bool = False
    threads: int = Field(1, ge=1)  # CPU threads while timing (fixed, for repeatability)


class LatencyResult(BaseModel):
    latency_ms: float
    latency_iqr_ms: float
    reference_ms: float
    reference_iqr_ms: float
    latency_rel: float  # median of paired candidate/reference ratios
    latency_rel_iqr: float
    hardware: dict[str, str]
    settings: LatencySettings


def hardware_info(device: torch.device) -> dict[str, str]:
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    else:
        info["name"] = _cpu_name()
        info["threads"] = str(torch.get_num_threads())
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _iqr(xs: list[float]) -> float:
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


@contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Timer:
    """Times ``number`` forward passes; CUDA events on GPU, perf_counter on CPU."""

    def __init__(self, model: nn.Module, x: torch.Tensor) -> None:
        self.model, self.x = model, x
        self.cuda = x.is_cuda

    def __call__(self, number: int) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(number):
                self.model(self.x)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / number
        t0 = time.perf_counter()
        for _ in range(number):
            self.model(self.x)
        return (time.perf_counter() - t0) * 1000 / number


def _prepare(model: nn.Module, s: LatencySettings, device: torch.device) -> nn.Module:
    model = model.eval().to(device=device, dtype=DTYPES[s.dtype])
    if s.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if s.compile else model


def measure_latency(
    candidate: nn.Module,
    reference: nn.Module,
    input_shape: tuple[int, int, int],
    settings: LatencySettings | None = None,
    device: torch.device | str = "cpu",
) -> LatencyResult:
    """Median latency (ms per batch) of candidate and reference, interleaved A/B in one process."""
    s = settings or LatencySettings()
    device = torch.device(device)
    x = torch.randn(s.batch_size, *input_shape, device=device, dtype=DTYPES[s.dtype])
    if s.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _threads(s.threads), torch.inference_mode():
        timers = [_Timer(_prepare(m, s, device), x) for m in (candidate, reference)]
        for t in timers:
            for _ in range(max(1, s.warmup)):
                t(1)
        # Loop each model enough times per sample that timer resolution does not matter.
        number = max(1, int(s.min_sample_ms / max(1e-3, min(t(1) for t in timers))))
        a, b = [], []
        for r in range(s.repeats):
            order = timers if r % 2 == 0 else timers[::-1]  # A B, B A: no order bias
            got = {id(t): t(number) for t in order}
            a.append(got[id(timers[0])])
            b.append(got[id(timers[1])])
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return LatencyResult(
        latency_ms=statistics.median(a),
        latency_iqr_ms=_iqr(a),
        reference_ms=statistics.median(b),
        reference_iqr_ms=_iqr(b),
        latency_rel=statistics.median(ratios),
        latency_rel_iqr=_iqr(ratios),
        hardware=hardware_info(device) | {"threads": str(s.threads)},
        settings=s,
    )
