"""The deployable ONNX graph of a network, and how closely ONNX Runtime reproduces it.

One export for every caller: ``attnas export --onnx`` writes it, and the onnxruntime and
openvino latency targets time it, so what is timed is what ships.
"""

from __future__ import annotations

import io

import torch
from torch import nn

# ``attnas export --onnx`` refuses a graph whose output differs from PyTorch's by more than
# this, relative to the largest absolute PyTorch output.
ONNX_TOLERANCE = 1e-4


class OnnxExportError(ValueError):
    """The exporter refused the network; the message names what it refused."""


def onnx_bytes(model: nn.Module, x: torch.Tensor) -> bytes:
    """``model`` (in its deploy form, eval mode) as an ONNX graph with a dynamic batch.

    Traced on one image of ``x``: the batch axis is dynamic, so the graph is the same, and
    the tracer's passes over a serving batch cost minutes on a small CPU (MobileNetV2 at
    batch 32, 224 px: 56 s on 2 cores, against 1 s for one image)."""
    buffer = io.BytesIO()
    try:
        torch.onnx.export(
            model.float().cpu(),
            (x[:1].float().cpu(),),
            buffer,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    except Exception as exc:  # the exporter's own message names the op it refused
        raise OnnxExportError(f"ONNX export failed: {str(exc).splitlines()[0]}") from exc
    return buffer.getvalue()


def onnx_difference(graph: bytes, model: nn.Module, x: torch.Tensor) -> float:
    """max |ONNX Runtime - PyTorch| / max |PyTorch| on ``x`` (CPU, float32)."""
    import onnxruntime as ort

    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = model.float().cpu()(x.float().cpu()).numpy()
    got = session.run(None, {"image": x.float().cpu().numpy()})[0]
    scale = max(float(abs(expected).max()), 1e-12)
    return float(abs(got - expected).max()) / scale
