"""The check that an attention module is really wired into a network, shared by every family."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def assert_attention_on_path(base: torch.nn.Module, model: torch.nn.Module) -> None:
    """``model`` (``base`` plus attention, both with the same weights loaded) must output
    something else than ``base``, and every attention module must receive gradient.

    ``base`` should have randomised norms first: with default statistics and timm's zero- or
    1e-6-initialised branches, a module off the path can look as if it changed nothing.
    """
    from tests.conftest import randomize_batchnorm

    # The modules' own norms too: CBAM's authors zero its spatial gate's BN weight, which
    # would keep its conv from any gradient until the first step.
    for name, module in model.named_modules():
        if name.endswith(".attn"):
            randomize_batchnorm(module, seed=1)
    x = torch.randn(2, 3, 16, 16)
    base.eval(), model.eval()
    with torch.no_grad():
        ref, out = base(x), model(x)
    assert out.shape == ref.shape == (2, 5)
    assert not torch.allclose(out, ref, atol=1e-6), "attention had no effect on the output"

    model.train()
    loss = F.cross_entropy(model(torch.randn(4, 3, 16, 16)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    modules = {n: m for n, m in model.named_modules() if n.endswith(".attn")}
    assert len(modules) == sum(s.num_blocks for s in model.arch.spec.stages)
    # Every module gets gradient, and every kind of tensor gets it in some block (a single
    # tiny ReLU hidden layer may be dead in one block by chance: that is not a wiring bug).
    reached: dict[str, float] = {}
    for name, module in modules.items():
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum().item() for g in grads) > 0, name
        for pname, p in module.named_parameters():
            reached[pname] = reached.get(pname, 0.0) + p.grad.abs().sum().item()
    assert all(v > 0 for v in reached.values()), reached
