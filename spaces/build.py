"""``build_model(arch)``: the single entry point from an ArchConfig to a torch module."""

from __future__ import annotations

import torch
from torch import nn

from spaces.arch import ArchConfig
from spaces.attention import create_attention
from spaces.backbones import get_backbone

# The version of what ``build_model`` makes of an ArchConfig (initialisation included).
# Evaluation fingerprints carry it, so a stored result from an older builder is never reused
# for a network that is now initialised differently. 2: ResNets without zero_init_last.
# 3: attention modules get the family's init and their authors' own rules (CBAM).
BUILD_VERSION = 3


def build_model(arch: ArchConfig, seed: int | None = None) -> nn.Module:
    """Build the network; with ``seed`` the initial weights are identical on every call."""
    backbone = get_backbone(arch.backbone)
    widths = arch.widths or backbone.default_widths
    spec = backbone.spec(widths)
    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = backbone.build(widths, arch.stem, arch.num_classes, arch.in_chans)
        for stage, choice, blocks in zip(
            spec.stages, arch.stages, backbone.stage_blocks(model), strict=True
        ):
            if choice.attention == "none":
                continue
            for block, channels in zip(blocks, stage.channels[choice.position], strict=True):
                module = create_attention(choice.attention, channels, **choice.options)
                backbone.init_attention(module)
                if hasattr(module, "init_as_authors"):  # a module's own rule comes last
                    module.init_as_authors()
                backbone.install(block, choice.position, module)
    model.arch = arch  # type: ignore[attr-defined]  # lets evaluators/exporters recover it
    return model


def deploy(model: nn.Module) -> nn.Module:
    """Fold every re-parameterisable module (RCAM) into its inference form, in place."""
    model.eval()
    for m in model.modules():
        if hasattr(m, "switch_to_deploy"):
            m.switch_to_deploy()
    return model
