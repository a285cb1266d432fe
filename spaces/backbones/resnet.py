"""ResNet basic and bottleneck blocks (timm) with the SE paper's five insertion positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn

from spaces.backbones.base import BackboneSpec, StageSpec, attach

RESNET_POSITIONS = ("pre", "mid", "standard", "post", "identity")
RESNET_NOTES = {
    "pre": "residual branch input, before conv1 (SE-PRE)",
    "mid": "after the 3x3 conv's BN and act (conv1 in basic, conv2 in bottleneck blocks)",
    "standard": "after the branch's last BN, before the add (SE, ECA, ELA papers)",
    "post": "after the add and the final activation (SE-POST)",
    "identity": "on the shortcut, after its downsample if any (SE-Identity)",
}
# timm's single-conv stem is 64 wide whatever the stage widths; layer1's first block then
# projects to widths[0] through its downsample, so its ``pre`` sees 64 channels.
RESNET_STEM_WIDTH = 64


class _AttentiveBasicBlock(BasicBlock):
    """timm's BasicBlock with one attention module at ``attn_position`` (DESIGN.md table)."""

    attn: nn.Module
    attn_position: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.attn_position
        shortcut = x
        if pos == "pre":
            x = self.attn(x)
        x = self.aa(self.act1(self.drop_block(self.bn1(self.conv1(x)))))
        if pos == "mid":
            x = self.attn(x)
        x = self.bn2(self.conv2(x))
        if pos == "standard":
            x = self.attn(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        if pos == "identity":
            shortcut = self.attn(shortcut)
        x = self.act2(x + shortcut)
        return self.attn(x) if pos == "post" else x


class _AttentiveBottleneck(Bottleneck):
    """timm's Bottleneck with one attention module at ``attn_position``; ``mid`` follows the 3x3."""

    attn: nn.Module
    attn_position: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.attn_position
        shortcut = x
        if pos == "pre":
            x = self.attn(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(x)))))
        if pos == "mid":
            x = self.attn(x)
        x = self.bn3(self.conv3(x))
        if pos == "standard":
            x = self.attn(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        if pos == "identity":
            shortcut = self.attn(shortcut)
        x = self.act3(x + shortcut)
        return self.attn(x) if pos == "post" else x


_ATTENTIVE = {BasicBlock: _AttentiveBasicBlock, Bottleneck: _AttentiveBottleneck}


@dataclass(frozen=True)
class ResNetBackbone:
    name: str
    block: type[BasicBlock] | type[Bottleneck]
    layers: tuple[int, int, int, int]
    default_widths: tuple[int, ...] = (64, 128, 256, 512)
    positions: tuple[str, ...] = RESNET_POSITIONS
    # SE, ECA, ELA, SELN, RCAM, CBAM and CA all sit at the end of the residual branch here.
    paper_positions: dict[str, str] = field(default_factory=dict)
    position_notes: dict[str, str] = field(default_factory=lambda: dict(RESNET_NOTES))

    def spec(self, widths: Sequence[int]) -> BackboneSpec:
        widths = tuple(widths)
        expansion = self.block.expansion
        stages = []
        in_ch = RESNET_STEM_WIDTH
        for i, (planes, n) in enumerate(zip(widths, self.layers, strict=True)):
            out = planes * expansion
            channels = {
                "pre": (in_ch,) + (out,) * (n - 1),
                "mid": (planes,) * n,
                "standard": (out,) * n,
                "post": (out,) * n,
                "identity": (out,) * n,
            }
            stages.append(StageSpec(index=i, num_blocks=n, width=out, channels=channels))
            in_ch = out
        return BackboneSpec(self.name, widths, tuple(stages))

    def build(self, widths: Sequence[int], stem: str, num_classes: int, in_chans: int) -> ResNet:
        model = ResNet(
            self.block,
            list(self.layers),
            num_classes=num_classes,
            in_chans=in_chans,
            channels=tuple(widths),
            # timm zeroes each branch's last BN by default; a module at ``standard`` (the
            # papers' position, right after that BN) then sees zeros at init and trains far
            # behind in a short schedule (digits, 5 epochs, 2 seeds: se@standard 0.897 and
            # ca@standard 0.786 against 0.965 without attention; with this off 0.971, 0.975
            # and 0.981). The papers' ResNets (torchvision, the SE/ECA/CBAM code) do not
            # zero-initialise either.
            zero_init_last=False,
        )
        if stem == "cifar":
            # Small images: a 3x3 stride-1 stem and no max-pool keep the spatial resolution.
            model.conv1 = nn.Conv2d(in_chans, RESNET_STEM_WIDTH, 3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
            model.maxpool = nn.Identity()
        return model

    def stage_blocks(self, model: nn.Module) -> list[list[nn.Module]]:
        return [list(getattr(model, f"layer{i + 1}")) for i in range(len(self.layers))]

    def install(self, block: nn.Module, position: str, module: nn.Module) -> None:
        attach(block, _ATTENTIVE[type(block)], position, module)

    def init_attention(self, module: nn.Module) -> None:
        # timm's ResNet.init_weights and the SE/ECA/CBAM ResNet code: Kaiming normal, fan-out.
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


RESNETS = (
    ResNetBackbone("resnet18", BasicBlock, (2, 2, 2, 2)),
    ResNetBackbone("resnet34", BasicBlock, (3, 4, 6, 3)),
    ResNetBackbone("resnet50", Bottleneck, (3, 4, 6, 3)),
)
