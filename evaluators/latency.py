"""Latency measured on the device the trial runs on, candidate and reference interleaved.

Absolute milliseconds drift with clock speed, thermal state and neighbours; the ratio of two
models timed in alternation in one process cancels most of that, so ``latency_rel`` stays
comparable across noisy or mixed machines. The alternation is per forward pass (A B B A ...),
summed over a block of about ``min_sample_ms`` per model, and each block gives one ratio: on
a shared 2-core VM the CPU's speed changes faster than a 20 ms sample, so alternating whole
samples (A for 20 ms, then B) left a within-run IQR of 6-16% of the ratio, and alternating
each forward brings it to 1-5% (``bench/measurement.py``). ``torch.utils.benchmark.Timer``
times one statement per block, so it cannot pair at this grain.

Sampling stops on precision, not a count: once ``repeats`` blocks are in, it stops as soon as
the 95% confidence interval of the median ratio is within ``rel_ci`` of it, or when
``max_seconds`` have passed (the interval is recorded either way). Every result carries the
hardware and settings it was measured with.
"""

from __future__ import annotations

import math
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
    repeats: int = Field(10, ge=3)  # blocks (ratio samples) at least
    min_sample_ms: float = Field(40.0, gt=0)  # time per model in one block
    rel_ci: float = Field(0.01, gt=0)  # stop when the median ratio's 95% CI is within +-this
    max_seconds: float = Field(6.0, gt=0)  # ... or after this long, whatever the interval
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    channels_last: bool = False
    compile: bool = False
    threads: int = Field(1, ge=1)  # CPU threads while timing (fixed, for repeatability)


class LatencyResult(BaseModel):
    latency_ms: float  # median over blocks of the candidate's mean forward time
    latency_iqr_ms: float
    latency_ci_ms: tuple[float, float]  # 95% confidence interval of that median
    reference_ms: float
    reference_iqr_ms: float
    latency_rel: float  # median of the blocks' candidate/reference ratios
    latency_rel_iqr: float
    latency_rel_ci: tuple[float, float]  # 95% confidence interval of latency_rel
    blocks: int
    seconds: float
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


def median_ci(xs: list[float]) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median: the order statistics
    n/2 -+ 1.96 sqrt(n)/2 (no normality assumed; latency samples are skewed)."""
    ordered = sorted(xs)
    n = len(ordered)
    half = 1.96 * math.sqrt(n) / 2
    lo = max(0, math.floor((n - 1) / 2 - half))
    hi = min(n - 1, math.ceil((n - 1) / 2 + half))
    return ordered[lo], ordered[hi]


class _Pair:
    """Times the two models one forward at a time, alternating; CUDA events on GPU."""

    def __init__(self, a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
        self.models, self.x = (a, b), x
        self.cuda = x.is_cuda

    def block(self, pairs: int) -> tuple[float, float]:
        """Mean ms per forward of A and of B over ``pairs`` alternating pairs (A B, B A, ...)."""
        total = [0.0, 0.0]
        events: list[tuple[int, torch.cuda.Event, torch.cuda.Event]] = []
        for i in range(pairs):
            for which in (0, 1) if i % 2 == 0 else (1, 0):
                if self.cuda:
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    self.models[which](self.x)
                    end.record()
                    events.append((which, start, end))
                else:
                    t0 = time.perf_counter()
                    self.models[which](self.x)
                    total[which] += (time.perf_counter() - t0) * 1000
        if self.cuda:
            torch.cuda.synchronize()
            for which, start, end in events:
                total[which] += start.elapsed_time(end)
        return total[0] / pairs, total[1] / pairs


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
    """Latency (ms per batch) of candidate and reference and their ratio, interleaved per
    forward in one process, sampled until the ratio's interval is tight (module docstring)."""
    s = settings or LatencySettings()
    device = torch.device(device)
    x = torch.randn(s.batch_size, *input_shape, device=device, dtype=DTYPES[s.dtype])
    if s.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _threads(s.threads), torch.inference_mode():
        pair = _Pair(_prepare(candidate, s, device), _prepare(reference, s, device), x)
        pair.block(max(1, s.warmup))
        one = max(1e-3, max(pair.block(1)))
        pairs = max(1, round(s.min_sample_ms / one))
        a, b, ratios = [], [], []
        t0 = time.perf_counter()
        while True:
            ta, tb = pair.block(pairs)
            a.append(ta)
            b.append(tb)
            ratios.append(ta / tb)
            if len(ratios) < s.repeats:
                continue
            lo, hi = median_ci(ratios)
            precise = (hi - lo) / 2 <= s.rel_ci * statistics.median(ratios)
            if precise or time.perf_counter() - t0 >= s.max_seconds:
                break
    return LatencyResult(
        latency_ms=statistics.median(a),
        latency_iqr_ms=_iqr(a),
        latency_ci_ms=median_ci(a),
        reference_ms=statistics.median(b),
        reference_iqr_ms=_iqr(b),
        latency_rel=statistics.median(ratios),
        latency_rel_iqr=_iqr(ratios),
        latency_rel_ci=(lo, hi),
        blocks=len(ratios),
        seconds=time.perf_counter() - t0,
        hardware=hardware_info(device) | {"threads": str(s.threads)},
        settings=s,
    )
