"""Shared fixtures. Tests run on CPU with few threads so two-core CI is not oversubscribed."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
torch.set_num_threads(min(2, torch.get_num_threads()))


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every norm layer non-trivial statistics and affine parameters.

    timm zero-initialises the last BN of each residual branch, and default BN statistics make
    many bugs invisible (a fusion that ignores BN, a module that is never on the path).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


@pytest.fixture
def bn_randomizer():
    return randomize_batchnorm
