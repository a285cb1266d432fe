"""ConvNeXt (timm) with attention inside the block, including SELNeXt's placement.

A ConvNeXt block is dwconv7x7 -> LayerNorm -> pointwise MLP (C -> 4C -> C) -> layer scale
-> + x. timm runs the MLP either as 1x1 convs on NCHW (atto..nano) or as Linear layers on a
channels-last (N, H, W, C) tensor (tiny and up); the attentive block handles both and hands
the module a logical NCHW view either way.

``selnext`` is the SELNeXt paper's placement: the block's LayerNorm after the depthwise conv
is *removed* and the module acts on the 4C hidden after GELU. With ``seln`` in every stage of
``convnext_tiny`` it is the authors' SELNeXt-T (oto-q/SELNeXt, models/selnext.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from timm.layers import LayerNorm2d
from timm.models.convnext import ConvNeXt, ConvNeXtBlock
from timm.models.convnext import _init_weights as convnext_init
from torch import nn

from spaces.backbones.base import BackboneSpec, StageSpec, attach, on_nhwc

CONVNEXT_POSITIONS = ("pre", "mid", "hidden", "selnext", "standard", "post")
CONVNEXT_NOTES = {
    "pre": "block input, before the depthwise conv",
    "mid": "after the depthwise conv and its LayerNorm, before the MLP",
    "hidden": "on the 4C MLP hidden after GELU, block LayerNorm kept",
    "selnext": "on the 4C MLP hidden after GELU, block LayerNorm removed (SELNeXt)",
    "standard": "after the MLP and layer scale, before the add",
    "post": "after the add",
}


class _AttentiveConvNeXtBlock(ConvNeXtBlock):
    """timm's ConvNeXtBlock with one attention module at ``attn_position``."""

    attn: nn.Module
    attn_position: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.attn_position
        shortcut = x
        if pos == "pre":
            x = self.attn(x)
        x = self.conv_dw(x)
        channels_last = not self.use_conv_mlp
        if channels_last:
            x = x.permute(0, 2, 3, 1)
        x = self.norm(x)  # nn.Identity at ``selnext``
        apply = (lambda t: on_nhwc(self.attn, t)) if channels_last else self.attn
        if pos == "mid":
            x = apply(x)
        mlp = self.mlp
        x = mlp.norm(mlp.drop1(mlp.act(mlp.fc1(x))))
        if pos in ("hidden", "selnext"):
            x = apply(x)
        x = mlp.drop2(mlp.fc2(x))
        if channels_last:
            x = x.permute(0, 3, 1, 2)
        if self.gamma is not None:
            x = x.mul(self.gamma.reshape(1, -1, 1, 1))
        if pos == "standard":
            x = self.attn(x)
        x = self.drop_path(x) + self.shortcut(shortcut)
        return self.attn(x) if pos == "post" else x


@dataclass(frozen=True)
class ConvNeXtBackbone:
    name: str
    depths: tuple[int, int, int, int]
    default_widths: tuple[int, ...]
    conv_mlp: bool  # timm's choice per size: 1x1 convs on NCHW, or Linear on channels-last
    positions: tuple[str, ...] = CONVNEXT_POSITIONS
    paper_positions: dict[str, str] = field(default_factory=lambda: {"seln": "selnext"})
    position_notes: dict[str, str] = field(default_factory=lambda: dict(CONVNEXT_NOTES))

    def spec(self, widths: Sequence[int]) -> BackboneSpec:
        widths = tuple(widths)
        stages = []
        for i, (dim, n) in enumerate(zip(widths, self.depths, strict=True)):
            hidden = 4 * dim
            channels = {
                "pre": (dim,) * n,
                "mid": (dim,) * n,
                "hidden": (hidden,) * n,
                "selnext": (hidden,) * n,
                "standard": (dim,) * n,
                "post": (dim,) * n,
            }
            stages.append(StageSpec(index=i, num_blocks=n, width=dim, channels=channels))
        return BackboneSpec(self.name, widths, tuple(stages))

    def build(self, widths: Sequence[int], stem: str, num_classes: int, in_chans: int) -> ConvNeXt:
        model = ConvNeXt(
            in_chans=in_chans,
            num_classes=num_classes,
            depths=self.depths,
            dims=tuple(widths),
            conv_mlp=self.conv_mlp,
        )
        if stem == "cifar":
            # The 4x4 stride-4 patchify stem leaves nothing of a 16-32 px image after three
            # more downsamplings; a 3x3 stride-1 conv keeps the resolution instead.
            model.stem = nn.Sequential(
                nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1),
                LayerNorm2d(widths[0], eps=1e-6),
            )
            nn.init.trunc_normal_(model.stem[0].weight, std=0.02)
            nn.init.zeros_(model.stem[0].bias)
        return model

    def stage_blocks(self, model: nn.Module) -> list[list[nn.Module]]:
        return [list(stage.blocks) for stage in model.stages]

    def install(self, block: nn.Module, position: str, module: nn.Module) -> None:
        attach(block, _AttentiveConvNeXtBlock, position, module)
        if position == "selnext":
            block.norm = nn.Identity()

    def init_attention(self, module: nn.Module) -> None:
        # ConvNeXt's (and SELNeXt's) init: truncated normal, std 0.02, zero biases.
        for m in module.modules():
            convnext_init(m)


CONVNEXTS = (
    ConvNeXtBackbone("convnext_atto", (2, 2, 6, 2), (40, 80, 160, 320), conv_mlp=True),
    ConvNeXtBackbone("convnext_femto", (2, 2, 6, 2), (48, 96, 192, 384), conv_mlp=True),
    ConvNeXtBackbone("convnext_pico", (2, 2, 6, 2), (64, 128, 256, 512), conv_mlp=True),
    ConvNeXtBackbone("convnext_nano", (2, 2, 8, 2), (80, 160, 320, 640), conv_mlp=True),
    ConvNeXtBackbone("convnext_tiny", (3, 3, 9, 3), (96, 192, 384, 768), conv_mlp=False),
)
