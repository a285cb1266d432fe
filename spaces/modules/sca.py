"""SCA: spatial-channel attention without channel reduction.

[inferred] Liu et al. (Mathematics 2022) describe SCA only in the abstract: capture the
cross-dimension (channel x spatial) interaction with no reduction at negligible cost. Here the
two directional poolings give a (C x H) and a (C x W) plane; each plane passes its own small
2D conv over (channel, position) with kernel (k_c, k_s) and a sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialChannelAttention(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 3, spatial_kernel_size: int = 3) -> None:
        super().__init__()
        padding = (kernel_size // 2, spatial_kernel_size // 2)
        shape = (kernel_size, spatial_kernel_size)
        self.conv_h = nn.Conv2d(1, 1, shape, padding=padding, bias=True)
        self.conv_w = nn.Conv2d(1, 1, shape, padding=padding, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z_h = x.mean(3).unsqueeze(1)  # (B, 1, C, H)
        z_w = x.mean(2).unsqueeze(1)  # (B, 1, C, W)
        a_h = torch.sigmoid(self.conv_h(z_h)).squeeze(1).unsqueeze(-1)  # (B, C, H, 1)
        a_w = torch.sigmoid(self.conv_w(z_w)).squeeze(1).unsqueeze(-2)  # (B, C, 1, W)
        return x * a_h * a_w
