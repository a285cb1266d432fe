"""SELN: squeeze-excitation whose gate is a LayerNorm instead of a sigmoid (SELNeXt, CMC 2025)."""

from __future__ import annotations

import torch
from torch import nn


class SELayerNorm(nn.Module):
    """x * LN(W2 relu(W1 GAP(x))).

    The LayerNorm over the excitation vector replaces the sigmoid, so the gate is unbounded and
    may be negative; the authors keep the reduced width at exactly ``C // reduction`` (no
    rounding to a multiple of 8 as timm's SE does).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        excitation = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        gate = self.norm(excitation.flatten(1)).view_as(excitation)
        return x * gate
