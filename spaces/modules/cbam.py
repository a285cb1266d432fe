"""CBAM as in the authors' code: timm's module, configured and reordered to match.

timm's ``CbamModule`` defaults to a bias-free MLP and pools [mean, max] for the spatial map;
the authors (Woo et al., ECCV 2018) use an MLP with bias and pool [max, mean], a BN momentum
of 0.01 in the spatial gate, and their own init (``init_as_authors``).
"""

from __future__ import annotations

import torch
from timm.layers.cbam import CbamModule, SpatialAttn
from torch import nn


class _MaxMeanSpatialAttn(SpatialAttn):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * self.gate(self.conv(pooled))


class AuthorsCbam(CbamModule):
    def __init__(self, channels: int, reduction: int = 16, spatial_kernel_size: int = 7) -> None:
        super().__init__(
            channels,
            rd_channels=channels // reduction,
            spatial_kernel_size=spatial_kernel_size,
            mlp_bias=True,
        )
        self.spatial = _MaxMeanSpatialAttn(spatial_kernel_size)
        self.spatial.conv.bn.momentum = 0.01  # the authors' BasicConv

    def init_as_authors(self) -> None:
        """Jongchan/attention-module's ResNet init, after the family's: every bias zero, the
        spatial gate's BN weight zero (the spatial gate starts at 0.5 everywhere), and the
        MLP (``nn.Linear`` there) keeps PyTorch's default weights."""
        for fc in (self.channel.fc1, self.channel.fc2):
            fc.reset_parameters()
            nn.init.zeros_(fc.bias)
        nn.init.zeros_(self.spatial.conv.bn.weight)
        nn.init.zeros_(self.spatial.conv.bn.bias)
