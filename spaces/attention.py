"""The attention registry: one name -> one factory ``f(channels, **options)``, like timm's
``create_attn``. Names are strings everywhere so configs, Optuna params and reports agree.

Each entry also says which options it takes, their defaults, and whether a channel count can
hold it, so validation can name the bad value before torch ever sees it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from timm.layers import EcaModule, SEModule
from torch import nn

from spaces.errors import check_choice
from spaces.modules import (
    ELA_VARIANTS,
    AuthorsCbam,
    CoordAttention,
    EfficientLocalAttention,
    RepChannelAttention,
    SELayerNorm,
    SpatialChannelAttention,
)

AUTO = "auto"
KernelSize = int | str  # an odd int >= 1, or "auto" (ECA's adaptive rule)


def eca_kernel_size(channels: int, gamma: float = 2, beta: float = 1) -> int:
    """ECA's adaptive kernel: nearest odd of |log2(C) + b| / gamma, at least 3 (as timm)."""
    t = int(abs(math.log2(channels) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


def check_odd_kernel(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= 1 or 'auto', got {value!r}")


def resolve_kernel(value: KernelSize, channels: int) -> int:
    if value == AUTO:
        return eca_kernel_size(channels)
    check_odd_kernel("kernel_size", value)
    return int(value)


@dataclass(frozen=True)
class AttentionSpec:
    """What the registry knows about one attention type."""

    name: str
    build: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    confidence: str = "code"  # "code": read in authors'/timm code; "inferred": from the abstract
    summary: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.defaults)

    def problem(self, channels: int, options: dict[str, Any]) -> str | None:
        """Why this module cannot sit on ``channels`` with ``options``, or None."""
        reduction = options.get("reduction")
        if reduction is not None and channels // reduction < 1:
            return f"reduction {reduction} leaves no hidden width on {channels} channels"
        variant = options.get("variant")
        if variant is not None:
            return ELA_VARIANTS[variant].problem(channels)
        return None


def _se(channels: int, reduction: int) -> nn.Module:
    # rd_channels pins the paper's width C // r; timm would round it up to a multiple of 8.
    return SEModule(channels, rd_channels=channels // reduction)


def _eca(channels: int, kernel_size: KernelSize) -> nn.Module:
    # timm's EcaModule overrides kernel_size whenever it is given channels: pass one or the other.
    if kernel_size == AUTO:
        return EcaModule(channels=channels)
    return EcaModule(kernel_size=resolve_kernel(kernel_size, channels))


def _rcam(channels: int, kernel_size: KernelSize) -> nn.Module:
    return RepChannelAttention(channels, resolve_kernel(kernel_size, channels))


def _sca(channels: int, kernel_size: KernelSize, spatial_kernel_size: int) -> nn.Module:
    check_odd_kernel("spatial_kernel_size", spatial_kernel_size)
    return SpatialChannelAttention(
        channels, resolve_kernel(kernel_size, channels), spatial_kernel_size
    )


REGISTRY: dict[str, AttentionSpec] = {
    spec.name: spec
    for spec in (
        AttentionSpec("none", lambda channels: nn.Identity(), summary="no attention"),
        AttentionSpec("se", _se, {"reduction": 16}, summary="squeeze-excitation (Hu et al.)"),
        AttentionSpec(
            "seln",
            lambda channels, reduction: SELayerNorm(channels, reduction),
            {"reduction": 16},
            summary="SE with a LayerNorm gate (SELNeXt)",
        ),
        AttentionSpec("eca", _eca, {"kernel_size": AUTO}, summary="efficient channel attention"),
        AttentionSpec(
            "rcam",
            _rcam,
            {"kernel_size": AUTO},
            confidence="inferred",
            summary="re-parameterised channel attention",
        ),
        AttentionSpec(
            "sca",
            _sca,
            {"kernel_size": AUTO, "spatial_kernel_size": 3},
            confidence="inferred",
            summary="spatial-channel attention",
        ),
        AttentionSpec(
            "ela",
            lambda channels, variant: EfficientLocalAttention(channels, variant),
            {"variant": "B"},
            summary="efficient local attention (paper's T/B/S/L)",
        ),
        AttentionSpec(
            "ca", lambda channels: CoordAttention(channels), summary="coordinate attention"
        ),
        AttentionSpec(
            "cbam",
            lambda channels, reduction: AuthorsCbam(channels, reduction),
            {"reduction": 16},
            summary="CBAM, authors' MLP with bias",
        ),
    )
}

ATTENTIONS: tuple[str, ...] = tuple(REGISTRY)


def get_spec(name: str) -> AttentionSpec:
    return REGISTRY[check_choice("attention", name, ATTENTIONS)]


def complete_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The module's options with defaults filled in; an option it does not take is an error."""
    spec = get_spec(name)
    unknown = sorted(k for k, v in options.items() if v is not None and k not in spec.defaults)
    if unknown:
        allowed = ", ".join(spec.options) or "none"
        raise ValueError(
            f"attention {name!r} takes no option {unknown[0]!r}; its options: {allowed}"
        )
    return {k: options[k] if options.get(k) is not None else v for k, v in spec.defaults.items()}


def create_attention(name: str, channels: int, **options: Any) -> nn.Module:
    """Build attention ``name`` for a ``channels``-wide feature map, after validating it."""
    opts = complete_options(name, options)
    if "variant" in opts:
        check_choice("ELA variant", opts["variant"], ELA_VARIANTS)
    for key in ("kernel_size",):
        if key in opts and opts[key] != AUTO:
            check_odd_kernel(key, opts[key])
    problem = REGISTRY[name].problem(channels, opts)
    if problem:
        raise ValueError(f"{name} cannot sit on {channels} channels: {problem}")
    return REGISTRY[name].build(channels, **opts)
