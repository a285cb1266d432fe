"""FLOPs and parameters: fvcore's ``FlopCountAnalysis`` plus handles for the ops it skips.

fvcore counts multiply-adds of convolutions and matrix products and (with its own norm
handles) normalisations, but skips element-wise ops, activations and reductions, and its
default ignore list silently drops compute ops such as ``relu`` and ``max``. Attention modules
are made of exactly those ops, so uncounted they would look free. Conventions, batch as given:

- conv / linear / matmul: fvcore's multiply-adds (bias additions not counted).
- element-wise ops and activations (mul, add, sub, div, sigmoid, relu, hardswish, gelu, ...):
  one op per OUTPUT element, so a broadcast ``x * gate`` costs ``x.numel()``.
- pooling and reductions (mean, amax, max, sum, max_pool2d, ...): one op per INPUT element, as
  fvcore already does for ``adaptive_avg_pool2d``; exact for global pooling, an approximation
  for windowed pooling (ResNet's stem max-pool only).
- normalisations: fvcore's handles; ``batch_norm`` in eval mode 2 per element (affine; 1
  without), ``layer_norm`` / ``group_norm`` 5 per element (affine; 4 without).
- pure data movement (cat, split, view, transpose, expand, ...) is free: ``IGNORED_OPS``
  replaces fvcore's list, so any other op we have no handle for shows up in ``unsupported``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from spaces.attention import create_attention

with warnings.catch_warnings():  # fvcore scripts a focal loss at import: torch's FutureWarning
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import elementwise_flop_counter

Handle = Callable[[list[Any], list[Any]], Any]


def _aten(names: str) -> frozenset[str]:
    return frozenset(f"aten::{name}" for name in names.split())


IGNORED_OPS: frozenset[str] = _aten(
    # trace bookkeeping on shapes and scalars; copies; dropout (the identity in eval)
    "Int ScalarImplicit size numel dim detach to type_as contiguous clone copy_ dropout "
    # joining, splitting, slicing
    "cat stack split split_with_sizes chunk unbind select slice narrow constant_pad_nd "
    # reshaping, broadcasting, allocation
    "view view_as reshape reshape_as flatten unflatten unsqueeze unsqueeze_ squeeze squeeze_ "
    "transpose permute t expand expand_as zeros zeros_like ones empty full"
)
# one op per output element: element-wise arithmetic and activations
PER_OUTPUT_OPS: frozenset[str] = _aten(
    "add add_ sub sub_ rsub mul mul_ div div_ neg sigmoid sigmoid_ relu relu_ hardswish "
    "hardswish_ hardsigmoid hardsigmoid_ gelu silu silu_ tanh tanh_ hardtanh hardtanh_ "
    "clamp clamp_ clamp_min clamp_min_ leaky_relu leaky_relu_ elu elu_"
)
# one op per input element: reductions and pooling
PER_INPUT_OPS: frozenset[str] = _aten(
    "mean sum amax amin max min max_pool1d max_pool2d avg_pool1d avg_pool2d adaptive_max_pool2d"
)

EXTRA_HANDLES: dict[str, Handle] = {
    **{op: elementwise_flop_counter(0, 1) for op in sorted(PER_OUTPUT_OPS)},
    **{op: elementwise_flop_counter(1, 0) for op in sorted(PER_INPUT_OPS)},
}


@dataclass(frozen=True)
class FlopCount:
    """Multiply-adds and parameters of one model at one input shape."""

    flops: int
    params: int
    by_operator: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, int] = field(default_factory=dict)  # op -> times seen, uncounted


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> FlopCount:
    """Count ``model`` on a zero input of ``input_shape`` in eval mode, without gradients.

    Eval mode because that is what is deployed (BN uses running statistics); each module's
    training flag is restored afterwards, so a model in the middle of training is unaffected.
    The input lives on the model's device (CPU for a freshly built model).
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        x = torch.zeros(input_shape, device=_device(model))
        analysis = FlopCountAnalysis(model, (x,))
        if not isinstance(getattr(analysis, "_ignored_ops", None), set):
            raise RuntimeError("fvcore changed: FlopCountAnalysis has no _ignored_ops set")
        # fvcore's own ignore list contains compute ops (relu, max, clamp, floor, ...): replace
        # it, so that anything not pure data movement is either counted or reported.
        analysis._ignored_ops = set(IGNORED_OPS)
        analysis.set_op_handle(**EXTRA_HANDLES)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        with torch.no_grad():
            total = analysis.total()
            by_operator = {k: int(v) for k, v in analysis.by_operator().items()}
            unsupported = dict(analysis.unsupported_ops())
    finally:
        for m, mode in modes.items():
            m.training = mode
    params = sum(p.numel() for p in model.parameters())
    return FlopCount(int(total), params, by_operator, unsupported)


def count_attention_flops(name: str, channels: int, height: int, width: int, **options: Any) -> int:
    """Multiply-adds of one attention module on a (1, channels, height, width) feature map."""
    module = create_attention(name, channels, **options)
    return count_flops(module, (1, channels, height, width)).flops
