"""MobileNetV2 (timm's EfficientNet builder) with attention inside the inverted residual.

Stage 0 is a depthwise-separable block (no expansion); the other six are inverted residuals
(1x1 expand x6 -> 3x3 depthwise -> 1x1 project). Positions follow the papers that report
MobileNetV2: coordinate attention (and SE, CBAM in the CA paper's comparison) sits after the
depthwise conv, on the expanded hidden (``mid``); ECA sits after the projection (``standard``).
Blocks with a stride or a width change have no residual add, so there ``post`` is the same
point as ``standard``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from timm.layers import make_divisible
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual
from timm.models._efficientnet_builder import _init_weight_goog, decode_arch_def
from timm.models.efficientnet import EfficientNet
from torch import nn

from spaces.backbones.base import BackboneSpec, StageSpec, attach, scaled

MOBILENETV2_POSITIONS = ("mid", "standard", "post")
MOBILENETV2_NOTES = {
    "mid": "after the depthwise conv's BN and act, on the expanded hidden (CA paper)",
    "standard": "after the projection's BN, before the add (ECA paper)",
    "post": "after the add; the same point as standard in blocks without an add",
}
# (blocks, stride, expansion) per stage: the MobileNetV2 paper's table 2.
MOBILENETV2_LAYOUT = ((1, 1, 1), (2, 2, 6), (3, 2, 6), (4, 2, 6), (3, 1, 6), (3, 2, 6), (1, 1, 6))


class _AttentiveDepthwiseSeparable(DepthwiseSeparableConv):
    attn: nn.Module
    attn_position: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.attn_position
        shortcut = x
        x = self.se(self.aa(self.bn1(self.conv_dw(x))))
        if pos == "mid":
            x = self.attn(x)
        x = self.bn2(self.conv_pw(x))
        if pos == "standard":
            x = self.attn(x)
        if self.has_skip:
            x = self.drop_path(x) + shortcut
        return self.attn(x) if pos == "post" else x


class _AttentiveInvertedResidual(InvertedResidual):
    attn: nn.Module
    attn_position: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.attn_position
        shortcut = x
        x = self.bn1(self.conv_pw(x))
        x = self.se(self.aa(self.bn2(self.conv_dw(x))))
        if pos == "mid":
            x = self.attn(x)
        x = self.bn3(self.conv_pwl(x))
        if pos == "standard":
            x = self.attn(x)
        if self.has_skip:
            x = self.drop_path(x) + shortcut
        return self.attn(x) if pos == "post" else x


_ATTENTIVE = {
    DepthwiseSeparableConv: _AttentiveDepthwiseSeparable,
    InvertedResidual: _AttentiveInvertedResidual,
}


def _exact(channels: int) -> int:
    """Stage widths are taken as given; timm would round them to multiples of 8."""
    return channels


@dataclass(frozen=True)
class MobileNetV2Backbone:
    name: str
    default_widths: tuple[int, ...]
    stem_width: int
    head_width: int
    positions: tuple[str, ...] = MOBILENETV2_POSITIONS
    paper_positions: dict[str, str] = field(
        default_factory=lambda: {"ca": "mid", "se": "mid", "cbam": "mid", "ela": "mid"}
    )
    position_notes: dict[str, str] = field(default_factory=lambda: dict(MOBILENETV2_NOTES))

    def _stem(self, widths: Sequence[int]) -> int:
        return scaled(self.stem_width, widths, self.default_widths, 0)

    def _head(self, widths: Sequence[int]) -> int:
        return scaled(self.head_width, widths, self.default_widths, -1)

    def spec(self, widths: Sequence[int]) -> BackboneSpec:
        widths = tuple(widths)
        stages = []
        in_ch = self._stem(widths)
        for i, (out, (n, _, expansion)) in enumerate(zip(widths, MOBILENETV2_LAYOUT, strict=True)):
            inputs = (in_ch,) + (out,) * (n - 1)
            # timm rounds the expanded width to a multiple of 8 (make_divisible).
            hidden = tuple(c if expansion == 1 else make_divisible(c * expansion) for c in inputs)
            channels = {"mid": hidden, "standard": (out,) * n, "post": (out,) * n}
            stages.append(StageSpec(index=i, num_blocks=n, width=out, channels=channels))
            in_ch = out
        return BackboneSpec(self.name, widths, tuple(stages))

    def build(
        self, widths: Sequence[int], stem: str, num_classes: int, in_chans: int
    ) -> EfficientNet:
        arch_def = [
            [f"{'ds' if e == 1 else 'ir'}_r{n}_k3_s{s}" + (f"_e{e}" if e > 1 else "") + f"_c{w}"]
            for w, (n, s, e) in zip(widths, MOBILENETV2_LAYOUT, strict=True)
        ]
        model = EfficientNet(
            block_args=decode_arch_def(arch_def),
            num_classes=num_classes,
            num_features=self._head(widths),
            in_chans=in_chans,
            stem_size=self._stem(widths),
            fix_stem=True,
            round_chs_fn=_exact,
            act_layer=nn.ReLU6,
        )
        if stem == "cifar":
            # The usual CIFAR variant: the stem and stage 1 keep stride 1, so a 32 px image
            # ends at 4x4 instead of 1x1 after the remaining three downsamplings.
            model.conv_stem.stride = (1, 1)
            model.blocks[1][0].conv_dw.stride = (1, 1)
        return model

    def stage_blocks(self, model: nn.Module) -> list[list[nn.Module]]:
        return [list(stage) for stage in model.blocks]

    def install(self, block: nn.Module, position: str, module: nn.Module) -> None:
        attach(block, _ATTENTIVE[type(block)], position, module)

    def init_attention(self, module: nn.Module) -> None:
        # timm's EfficientNet init (normal(0, sqrt(2 / fan_out)), zero biases), which is the
        # CA authors' MobileNetV2 _initialize_weights for convolutions and BN.
        for name, m in module.named_modules():
            _init_weight_goog(m, name)


MOBILENETV2S = (
    MobileNetV2Backbone("mobilenetv2_100", (16, 24, 32, 64, 96, 160, 320), 32, 1280),
    MobileNetV2Backbone("mobilenetv2_050", (8, 16, 16, 32, 48, 80, 160), 16, 1280),
)
