"""Deployment runtimes: one network made ready to time on the runtime a user ships.

Each runtime turns a deploy-form network (RCAM fused, eval mode) into a no-argument callable
that runs one batch, plus the runtime's version and what preparing it cost (``torch.compile``
compiles on the first call; that time is reported apart and never counted as latency). The
ONNX graph is the one ``attnas export --onnx`` writes, exported in memory.

A runtime that cannot run here (not installed, no GPU, an op its exporter refuses) raises
``RuntimeUnavailable`` with one line saying why and what to do, which the search turns into a
refusal before the first trial trains.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from spaces.onnx import OnnxExportError
from spaces.onnx import onnx_bytes as spaces_onnx_bytes

if TYPE_CHECKING:
    from evaluators.latency import LatencyTarget

# A CUDA build of torch on a machine without a GPU logs "No CUDA runtime is found, using
# CUDA_HOME=..." when inductor first compiles for the CPU: it concerns building CUDA
# extensions, which nothing here does, and it was the one stray line in `attnas evaluate`'s
# output with a torch_compile target. Errors from that module still show.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

RUNTIMES = ("torch", "torch_compile", "onnxruntime", "openvino")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class RuntimeUnavailable(ValueError):
    """A latency target that cannot run where the trials run; the message is one line."""


@dataclass
class Prepared:
    run: Callable[[], Any]
    version: str
    cuda_events: bool  # time with CUDA events (torch on a GPU) rather than the host clock
    compile_seconds: float | None = None


def onnx_bytes(model: nn.Module, x: torch.Tensor) -> bytes:
    try:
        return spaces_onnx_bytes(model, x)
    except OnnxExportError as exc:
        raise RuntimeUnavailable(str(exc)) from exc


def _torch(model: nn.Module, target: LatencyTarget, x: torch.Tensor, compiled: bool) -> Prepared:
    model = model.eval().to(device=x.device, dtype=DTYPES[target.dtype])
    if target.channels_last:
        model = model.to(memory_format=torch.channels_last)
    seconds = None
    if compiled:
        if target.compile_mode == "reduce-overhead" and not x.is_cuda:
            raise RuntimeUnavailable(
                f"target {target.name!r}: compile_mode 'reduce-overhead' replays CUDA graphs "
                "and needs a GPU (use 'default' on a CPU)"
            )
        model = torch.compile(model, mode=target.compile_mode)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(x)  # compiles: reported apart, never timed as latency
        seconds = time.perf_counter() - t0
    return Prepared(lambda: model(x), torch.__version__, x.is_cuda, seconds)


def _onnxruntime(model: nn.Module, target: LatencyTarget, x: torch.Tensor) -> Prepared:
    try:
        import onnxruntime as ort
    except ImportError:
        raise RuntimeUnavailable("the onnxruntime target needs onnxruntime installed") from None
    if target.dtype != "float32":
        raise RuntimeUnavailable(
            f"target {target.name!r}: onnxruntime is timed in float32, got dtype {target.dtype!r}"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = target.threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    ort.set_default_logger_severity(3)  # nor the provider's plugin-discovery warning per session
    providers = ["CPUExecutionProvider"]
    if x.is_cuda:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeUnavailable(
                f"target {target.name!r}: no CUDA provider in this onnxruntime "
                "(install onnxruntime-gpu, or time it on the CPU)"
            )
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": x.device.index or 0}))
    session = ort.InferenceSession(onnx_bytes(model, x), options, providers=providers)
    version = f"onnxruntime {ort.__version__}"
    if not x.is_cuda:
        feed = {"image": x.float().cpu().numpy()}
        return Prepared(lambda: session.run(None, feed), version, False)
    require_provider(session, "CUDAExecutionProvider", target.name)
    return Prepared(bound_on_gpu(session, model, x), version + " CUDA", False)


def require_provider(session: Any, provider: str, target_name: str) -> None:
    """ONNX Runtime falls back to the CPU, with only a log line, when a provider's libraries
    (CUDA, cuDNN) fail to load: timing that session would report the CPU as the GPU."""
    if session.get_providers()[0] != provider:
        raise RuntimeUnavailable(
            f"target {target_name!r}: onnxruntime's {provider} did not load here (its CUDA or "
            f"cuDNN libraries are missing); the session runs on {session.get_providers()}"
        )


def bound_on_gpu(session: Any, model: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    """One batch already on the GPU, its output written to a GPU buffer: what a server that
    keeps tensors on the device pays. Feeding numpy would time two PCIe copies per batch,
    the same for every network, and shrink every ratio toward 1."""
    import numpy as np

    image = x.float().contiguous()
    with torch.inference_mode():
        logits = torch.empty_like(model.eval().float().to(x.device)(image)).contiguous()
    torch.cuda.synchronize(x.device)  # both buffers written before ONNX Runtime reads them
    binding = session.io_binding()
    device = {"device_type": "cuda", "device_id": x.device.index or 0, "element_type": np.float32}
    binding.bind_input(
        name=session.get_inputs()[0].name,
        shape=tuple(image.shape),
        buffer_ptr=image.data_ptr(),
        **device,
    )
    binding.bind_output(
        name=session.get_outputs()[0].name,
        shape=tuple(logits.shape),
        buffer_ptr=logits.data_ptr(),
        **device,
    )
    # run_with_iobinding returns after the provider's stream has finished: the host clock
    # times the whole forward; ``image`` and ``logits`` stay alive with the closure.
    return lambda: (session.run_with_iobinding(binding), image, logits)


def _openvino(model: nn.Module, target: LatencyTarget, x: torch.Tensor) -> Prepared:
    try:
        import openvino as ov
    except ImportError:
        raise RuntimeUnavailable(
            "the openvino target needs the optional extra: pip install 'attnas[openvino]'"
        ) from None
    core = ov.Core()
    graph = core.read_model(onnx_bytes(model, x))
    compiled = core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": target.threads})
    feed = x.float().cpu().numpy()
    return Prepared(lambda: compiled(feed), f"openvino {ov.__version__}", False)


def prepare(model: nn.Module, target: LatencyTarget, x: torch.Tensor) -> Prepared:
    """``model`` (deploy form) made ready to run ``x`` on ``target``'s runtime."""
    if target.runtime == "torch":
        return _torch(model, target, x, compiled=False)
    if target.runtime == "torch_compile":
        return _torch(model, target, x, compiled=True)
    if target.runtime == "onnxruntime":
        return _onnxruntime(model, target, x)
    if target.runtime == "openvino":
        return _openvino(model, target, x)
    raise RuntimeUnavailable(f"unknown runtime {target.runtime!r}; allowed: {', '.join(RUNTIMES)}")
