"""ELA: efficient local attention (Xu & Wan, arXiv 2403.01123), as in the paper.

timm's ``ela`` is a different design (separate convs, GroupNorm(1), SiLU), so this is written
here. One grouped Conv1d and one GroupNorm are *shared* by the H and W strips.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ElaVariant:
    kernel_size: int
    channels_per_group: int  # conv groups = C // channels_per_group (1 = depthwise)
    gn_groups: int
    params_per_channel: int

    def problem(self, channels: int) -> str | None:
        """Why this variant cannot sit on ``channels``, or None when it can."""
        need = max(self.gn_groups, self.channels_per_group)
        if channels % self.gn_groups or channels % self.channels_per_group:
            return f"needs channels divisible by {need}"
        return None


ELA_VARIANTS: dict[str, ElaVariant] = {
    "T": ElaVariant(kernel_size=5, channels_per_group=1, gn_groups=32, params_per_channel=7),
    "B": ElaVariant(kernel_size=7, channels_per_group=1, gn_groups=16, params_per_channel=9),
    "S": ElaVariant(kernel_size=5, channels_per_group=8, gn_groups=16, params_per_channel=42),
    "L": ElaVariant(kernel_size=7, channels_per_group=8, gn_groups=16, params_per_channel=58),
}


class EfficientLocalAttention(nn.Module):
    def __init__(self, channels: int, variant: str = "B") -> None:
        super().__init__()
        spec = ELA_VARIANTS[variant]
        problem = spec.problem(channels)
        if problem:
            raise ValueError(f"ELA-{variant} {problem}, got {channels}")
        self.variant = variant
        self.conv = nn.Conv1d(
            channels,
            channels,
            spec.kernel_size,
            padding=spec.kernel_size // 2,
            groups=channels // spec.channels_per_group,
            bias=False,
        )
        self.norm = nn.GroupNorm(spec.gn_groups, channels)

    def _gate(self, strip: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.norm(self.conv(strip)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_h = self._gate(x.mean(3)).unsqueeze(-1)  # (B, C, H, 1)
        a_w = self._gate(x.mean(2)).unsqueeze(-2)  # (B, C, 1, W)
        return x * a_h * a_w
