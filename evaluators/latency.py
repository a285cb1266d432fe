"""Latency measured on the device the trial runs on, candidate and reference interleaved.

Absolute milliseconds drift with clock speed, thermal state and neighbours; the ratio of two
models timed in alternation in one process cancels most of that, so ``latency_rel`` stays
comparable across noisy or mixed machines. The alternation is per forward pass (A B B A ...),
summed over a block of about ``min_sample_ms`` per model, and each block gives one ratio: on a
shared 2-core VM the CPU's speed changes faster than a 20 ms sample, so alternating whole
samples (A for 20 ms, then B) left a within-run IQR of 6-16% of the ratio, and alternating each
forward brought it to 1-3% that day (``bench/measurement.py``; 4.7-9.0% on a later, noisier
one). A block's ratio is the median of its pairs' ratios, each of two adjacent calls: a call
that a preemption lands in moves the block's mean time by many times its length, but not that
median. In one sitting the median cut the ratio's within-run IQR from 4.7-9.0% (the ratio of
the block's means) to 1.9-5.4%, and its spread over 5 runs from 1.8-4.6% to 1.4-2.3%. Each turn
first runs its model once untimed: the other model's pass evicts part of its working set, and
timing that cold pass read ratios 1-4% closer to 1 than steady-state runs of 20 (ELA-S 2.14
against 2.23), while the warmed pass reads within 1% of them. What is left is each pair's own
noise (IQR 5-9% of its ratio on that VM; the thread's CPU clock reads the same, so it is not
preemption), divided by the pairs in a block. Longer blocks shrink the blocks' IQR but not how
far ``latency_rel`` moves between runs of the same length (one recording cut into 4 s runs:
0.1-0.5% standard deviation with blocks of 60, 120 or 240 ms alike), so blocks stay short and
many, and the interval of their median is what a trial records. ``torch.utils.benchmark.Timer``
times one statement per block, so it cannot pair at this grain. On a GPU each timed pass starts
from an idle device (synchronised) and CUDA events time it, launches included: the latency of
one request, which at small batches is mostly the host launching kernels.

Each of ``targets`` is a runtime with its own batch, threads, dtype, layout and input
resolution (``evaluators.runtimes``); on each, the candidate and the reference are timed in
their deploy form (RCAM fused), interleaved, with the same settings.

Sampling stops on precision, not a count: once ``repeats`` blocks are in, it stops as soon as
the 95% confidence interval of the median ratio is within ``rel_ci`` of it, or when
``max_seconds`` have passed (the interval is recorded either way). Every result carries the
hardware and settings it was measured with.
"""

from __future__ import annotations

import copy
import math
import platform
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)
from torch import nn

from evaluators.runtimes import COMPILE_MODES, DTYPES, RUNTIMES, Prepared, prepare
from spaces import deploy
from spaces.errors import check_choice

# How a latency is estimated from the timed passes (the pairing, the blocks, the median of pair
# ratios, the stopping rule): bump it when that changes, so that a stored trial timed the old
# way is re-timed instead of reused. Fingerprints carry it from version 2 on; version 1 entered
# none, so the results stored before it existed keep their fingerprints.
ESTIMATOR_VERSION = 1

# The same for how one runtime's networks are made ready to time, where only that runtime's
# numbers moved: a config with a target on it carries its version. torch_compile 2: each
# measurement compiles from a fresh dynamo state (under 1, a worker's 9th distinct network was
# timed eagerly as if compiled).
RUNTIME_VERSIONS = {"torch_compile": 2}

# Per-target keys that may also be given at the top of ``latency:`` as shorthand for a
# single target (the form configs had before targets existed).
TARGET_KEYS = ("batch_size", "dtype", "channels_last", "threads", "image_size", "compile_mode")


class LatencyTarget(BaseModel):
    """One deployment target: a runtime and the settings it is timed with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""  # how objectives name it (latency_rel@NAME); defaults to the runtime
    runtime: Literal["torch", "torch_compile", "onnxruntime", "openvino"] = "torch"
    batch_size: int = Field(1, ge=1)
    threads: int = Field(1, ge=1)  # CPU threads while timing (fixed, for repeatability)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    channels_last: bool = False
    image_size: int | None = Field(None, ge=4)  # deployment resolution; None: the training one
    # torch_compile only: torch.compile's mode; reduce-overhead replays CUDA graphs (a GPU's
    # answer to launch-bound small batches), the others compile as their names say
    compile_mode: Literal[COMPILE_MODES] = "default"  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        # `targets=[torch,onnxruntime]`: a bare name takes that runtime's defaults.
        if isinstance(data, str):
            return {"runtime": check_choice("runtime", data, RUNTIMES)}
        return data

    @model_validator(mode="after")
    def _named(self) -> LatencyTarget:
        if not self.name:
            object.__setattr__(self, "name", self.runtime)
        if "@" in self.name:
            raise ValueError(f"target name {self.name!r} must not contain '@'")
        if self.compile_mode != "default" and self.runtime != "torch_compile":
            raise ValueError(
                f"target {self.name!r}: compile_mode {self.compile_mode!r} applies to the "
                f"torch_compile runtime only, not {self.runtime!r}"
            )
        return self

    @model_serializer(mode="wrap")
    def _without_later_defaults(self, handler: Any) -> dict[str, Any]:
        # Settings added after studies were stored are left out while they hold their
        # default, so those studies' fingerprints (and the tabular tables') stay valid.
        data = handler(self)
        if data.get("compile_mode") == "default":
            del data["compile_mode"]
        return data


class LatencySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[LatencyTarget, ...] = (LatencyTarget(),)
    warmup: int = Field(10, ge=0)
    repeats: int = Field(10, ge=3)  # blocks (ratio samples) at least
    min_sample_ms: float = Field(60.0, gt=0)  # timed per model in one block
    rel_ci: float = Field(0.01, gt=0)  # stop when the median ratio's 95% CI is within +-this
    max_seconds: float = Field(6.0, gt=0)  # ... or after this long, whatever the interval

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``latency: {batch_size: 1, threads: 1}`` means one torch target with those settings
        (``compile: true``: torch_compile); with ``targets`` given, these keys are refused."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        single = {k: data.pop(k) for k in (*TARGET_KEYS, "compile") if k in data}
        if not single:
            return data
        if "targets" in data:
            raise ValueError(
                f"give {', '.join(sorted(single))} inside each of latency.targets, not beside them"
            )
        runtime = "torch_compile" if single.pop("compile", False) else "torch"
        data["targets"] = [{"runtime": runtime, **single}]
        return data

    @field_validator("targets")
    @classmethod
    def _distinct(cls, v: tuple[LatencyTarget, ...]) -> tuple[LatencyTarget, ...]:
        if not v:
            raise ValueError("latency.targets: give at least one target")
        names = [t.name for t in v]
        if len(set(names)) != len(names):
            raise ValueError(f"latency.targets repeat a name: {names} (give each a name)")
        return v

    def target(self, name: str | None = None) -> LatencyTarget:
        """The target called ``name`` (the first when None)."""
        if name is None:
            return self.targets[0]
        for t in self.targets:
            if t.name == name:
                return t
        allowed = ", ".join(t.name for t in self.targets)
        raise ValueError(f"unknown latency target {name!r}; allowed: {allowed}")


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
    target: LatencyTarget
    image_size: int
    runtime_version: str
    compile_seconds: float | None = None  # torch.compile's first call, never in latency_ms
    hardware: dict[str, str]


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
    """Times two prepared runs one call at a time, alternating; CUDA events on a GPU."""

    def __init__(self, a: Prepared, b: Prepared) -> None:
        self.runs = (a.run, b.run)
        self.cuda = a.cuda_events and b.cuda_events

    def block(self, pairs: int) -> tuple[float, float, float]:
        """Mean ms per call of A and of B over ``pairs`` alternating pairs (A B, B A, ...), and
        the median of the pairs' A/B ratios (module docstring: why per pair, why the median)."""
        times: tuple[list[float], list[float]] = ([], [])
        events: list[tuple[int, torch.cuda.Event, torch.cuda.Event]] = []
        for i in range(pairs):
            for which in (0, 1) if i % 2 == 0 else (1, 0):
                self.runs[which]()  # untimed: warms the caches the other model's pass evicted
                if self.cuda:
                    # A request meets an idle GPU: without this, the start event waits for the
                    # untimed pass still queued, and a model fast to launch reads its GPU time
                    # while one slow to launch reads its launches (H200: one ResNet-18 read
                    # 1.62 ms beside itself and 2.19 ms beside coordinate attention).
                    torch.cuda.synchronize()
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    self.runs[which]()
                    end.record()
                    events.append((which, start, end))
                else:
                    t0 = time.perf_counter()
                    self.runs[which]()
                    times[which].append((time.perf_counter() - t0) * 1000)
        if self.cuda:
            torch.cuda.synchronize()
            for which, start, end in events:
                times[which].append(start.elapsed_time(end))
        ratio = statistics.median(a / b for a, b in zip(*times, strict=True))
        return statistics.fmean(times[0]), statistics.fmean(times[1]), ratio


def measure_latency(
    candidate: nn.Module,
    reference: nn.Module,
    input_shape: tuple[int, int, int],
    settings: LatencySettings | None = None,
    device: torch.device | str = "cpu",
    target: str | None = None,
) -> LatencyResult:
    """Latency (ms per batch) of candidate and reference and their ratio on one target (the
    first unless named), interleaved per call in one process, sampled until the ratio's
    interval is tight (module docstring). Both are timed in their deploy form; the modules
    passed in are not changed."""
    s = settings or LatencySettings()
    t = s.target(target)
    device = torch.device(device)
    channels, size = input_shape[0], t.image_size or input_shape[-1]
    dtype = DTYPES[t.dtype]
    x = torch.randn(t.batch_size, channels, size, size, device=device, dtype=dtype)
    if t.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if t.runtime == "torch_compile":
        # Dynamo keeps every graph compiled in this process, and a search worker times trial
        # after trial: from the 9th distinct network (recompile_limit 8) it silently runs the
        # forward eagerly, so later "compiled" timings were eager ones (bench/targets.py, one
        # process, 30 ResNet-18 placements: median latency_rel 1.19 compiled against 1.29
        # eager on the first 8, then 1.63 against 1.21), and until then each call checks the
        # guards of every earlier graph.
        torch.compiler.reset()
    with _threads(t.threads), torch.inference_mode():
        a = prepare(deploy(copy.deepcopy(candidate)), t, x)
        b = prepare(deploy(copy.deepcopy(reference)), t, x)
        pair = _Pair(a, b)
        pair.block(max(1, s.warmup))
        one = max(1e-3, *pair.block(1)[:2])
        pairs = max(1, round(s.min_sample_ms / one))
        ta, tb, ratios = [], [], []
        t0 = time.perf_counter()
        while True:
            ms_a, ms_b, ratio = pair.block(pairs)
            ta.append(ms_a)
            tb.append(ms_b)
            ratios.append(ratio)
            if len(ratios) < s.repeats:
                continue
            lo, hi = median_ci(ratios)
            precise = (hi - lo) / 2 <= s.rel_ci * statistics.median(ratios)
            if precise or time.perf_counter() - t0 >= s.max_seconds:
                break
    return LatencyResult(
        latency_ms=statistics.median(ta),
        latency_iqr_ms=_iqr(ta),
        latency_ci_ms=median_ci(ta),
        reference_ms=statistics.median(tb),
        reference_iqr_ms=_iqr(tb),
        latency_rel=statistics.median(ratios),
        latency_rel_iqr=_iqr(ratios),
        latency_rel_ci=(lo, hi),
        blocks=len(ratios),
        seconds=time.perf_counter() - t0,
        target=t,
        image_size=size,
        runtime_version=a.version,
        compile_seconds=a.compile_seconds,
        hardware=hardware_info(device) | {"threads": str(t.threads)},
    )


def measure_targets(
    candidate: nn.Module,
    reference: nn.Module,
    input_shape: tuple[int, int, int],
    settings: LatencySettings,
    device: torch.device | str = "cpu",
) -> dict[str, LatencyResult]:
    """``measure_latency`` on every target, in the order given."""
    return {
        t.name: measure_latency(candidate, reference, input_shape, settings, device, t.name)
        for t in settings.targets
    }
