"""RCAM: ECA-style channel attention with a RepVGG-style re-parameterised excitation.

[inferred] The paper (Ye et al., Computer Engineering and Design 2024) publishes no code or
method text; this design follows its abstract: no channel reduction, structural
re-parameterisation of the excitation path. Training uses three branches on the pooled
channel sequence z (a length-C signal):  BN_k(conv_k(z)) + BN_1(conv_1(z)) + BN_id(z).
``switch_to_deploy`` folds them into one Conv1d(1, 1, k, bias) with identical output.
"""

from __future__ import annotations

import torch
from torch import nn


def _fold_bn(kernel: torch.Tensor, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold BN(conv(z)) with a bias-free conv into one kernel and bias."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return kernel * scale.view(-1, 1, 1), bn.bias - bn.running_mean * scale


class RepChannelAttention(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"rcam kernel_size must be odd and >= 1, got {kernel_size}")
        self.channels = channels
        self.kernel_size = kernel_size
        pad = kernel_size // 2
        self.conv_k = nn.Conv1d(1, 1, kernel_size, padding=pad, bias=False)
        self.bn_k = nn.BatchNorm1d(1)
        self.conv_1 = nn.Conv1d(1, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm1d(1)
        self.bn_id = nn.BatchNorm1d(1)
        self.fused: nn.Conv1d | None = None

    @property
    def deployed(self) -> bool:
        return self.fused is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.mean((2, 3)).unsqueeze(1)  # (B, 1, C): channels as a sequence
        if self.fused is not None:
            y = self.fused(z)
        else:
            y = self.bn_k(self.conv_k(z)) + self.bn_1(self.conv_1(z)) + self.bn_id(z)
        return x * torch.sigmoid(y).transpose(1, 2).unsqueeze(-1)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fuse the three branches into one conv; uses the BN running statistics (eval)."""
        if self.fused is not None:
            return
        k = self.kernel_size
        center = k // 2
        w_k, b_k = _fold_bn(self.conv_k.weight, self.bn_k)
        w_1 = torch.zeros_like(self.conv_k.weight)
        w_1[..., center] = self.conv_1.weight[..., 0]
        w_1, b_1 = _fold_bn(w_1, self.bn_1)
        w_id = torch.zeros_like(self.conv_k.weight)
        w_id[..., center] = 1.0
        w_id, b_id = _fold_bn(w_id, self.bn_id)
        fused = nn.Conv1d(1, 1, k, padding=center, bias=True).to(self.conv_k.weight)
        fused.weight.copy_(w_k + w_1 + w_id)
        fused.bias.copy_(b_k + b_1 + b_id)
        self.fused = fused
        for name in ("conv_k", "bn_k", "conv_1", "bn_1", "bn_id"):
            delattr(self, name)
