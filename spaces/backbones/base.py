"""The backbone protocol: what validation, the space and ``build_model`` need from a family.

A backbone declares its stages and, per block, the channels the module sees at every
insertion position. Everything else (validation, the flat encoding, the baselines) is derived
from that declaration, so adding a family means implementing this protocol and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

STEMS = ("imagenet", "cifar")


@dataclass(frozen=True)
class StageSpec:
    """One stage: its width and, per position, the channels the module sees in each block."""

    index: int
    num_blocks: int
    width: int
    channels: dict[str, tuple[int, ...]]  # position -> channels per block

    @property
    def positions(self) -> tuple[str, ...]:
        return tuple(self.channels)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    widths: tuple[int, ...]
    stages: tuple[StageSpec, ...]


class Backbone(Protocol):
    """A family of networks with per-stage insertion points.

    ``paper_positions`` maps an attention to where its paper puts it in this family (the
    uniform baselines use it); attentions not listed go to ``standard``.
    ``position_notes`` says in one line where each position is, for ``attnas space show``.
    """

    name: str
    default_widths: tuple[int, ...]
    positions: tuple[str, ...]
    paper_positions: Mapping[str, str]
    position_notes: Mapping[str, str]

    def spec(self, widths: Sequence[int]) -> BackboneSpec: ...

    def build(
        self, widths: Sequence[int], stem: str, num_classes: int, in_chans: int
    ) -> nn.Module: ...

    def stage_blocks(self, model: nn.Module) -> list[list[nn.Module]]: ...

    def install(self, block: nn.Module, position: str, module: nn.Module) -> None: ...

    def init_attention(self, module: nn.Module) -> None:
        """Initialise an attached module as this family's own weight init would have: the
        papers build their modules into the network before its init runs, so the module
        gets the network's init (timm's SE-ResNet, the ECA and CBAM ResNets, the CA and ECA
        MobileNetV2s, SELNeXt), not PyTorch's per-layer default."""
        ...


def attach(block: nn.Module, attentive: type[nn.Module], position: str, module: nn.Module) -> None:
    """Turn a timm block into its attentive subclass in place.

    Swapping ``__class__`` changes only ``forward``: parameter names stay timm's, so weights of
    the plain network load into any variant with only the ``attn`` keys missing.
    """
    block.__class__ = attentive
    block.attn = module
    block.attn_position = position


def on_nhwc(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply an NCHW attention module to a channels-last (N, H, W, C) tensor without copies.

    The permutes are views: the module sees a logical NCHW tensor stored channels-last, and
    element-wise gating keeps that layout, so permuting back is free as well.
    """
    return module(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def scaled(default: int, widths: Sequence[int], defaults: Sequence[int], at: int) -> int:
    """A stem or head width scaled with the stage width next to it, so narrow CPU variants
    stay proportioned; the family's default widths give back exactly its default."""
    if tuple(widths) == tuple(defaults):
        return default
    return max(8, round(default * widths[at] / defaults[at]))
