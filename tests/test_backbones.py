"""ConvNeXt and MobileNetV2: every allowed (attention x position) is really in the network,
the families equal timm's models, and the papers' networks come out at their published sizes."""

from __future__ import annotations

import re

import pytest
import timm
import torch

from spaces import ATTENTIONS, ArchConfig, SearchSpace, StageChoice, build_model, uniform
from spaces.backbones import BACKBONES, CONVNEXT_POSITIONS, MOBILENETV2_POSITIONS
from tests.wiring import assert_attention_on_path

# Narrow CPU variants whose channels at every position divide by 16 (ELA-B's GroupNorm).
SMALL = {
    "convnext_atto": {"widths": (16, 32, 32, 64)},  # 1x1-conv MLP on NCHW
    "convnext_tiny": {"widths": (16, 16, 32, 32)},  # Linear MLP on channels-last
    "mobilenetv2_100": {"widths": (16, 16, 16, 32, 32, 32, 32)},
}
COMMON = {"stem": "cifar", "image_size": 16, "num_classes": 5}
CASES = [
    (backbone, position, attention)
    for backbone, positions in (
        ("convnext_atto", CONVNEXT_POSITIONS),
        ("convnext_tiny", CONVNEXT_POSITIONS),
        ("mobilenetv2_100", MOBILENETV2_POSITIONS),
    )
    for position in positions
    for attention in ATTENTIONS
    if attention != "none"
]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def choice(attention: str, position: str) -> StageChoice:
    extra = {"variant": "B"} if attention == "ela" else {}
    return StageChoice(attention=attention, position=position, **extra)


@pytest.mark.parametrize(("backbone", "position", "attention"), CASES)
def test_every_combination_is_on_the_path(backbone, position, attention, bn_randomizer):
    fields = SMALL[backbone] | COMMON
    base = build_model(uniform(backbone, **fields), seed=0)
    bn_randomizer(base)
    model = build_model(uniform(backbone, choice(attention, position), **fields), seed=0)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert missing and all(".attn." in k for k in missing)
    if position == "selnext":  # SELNeXt removes the block's LayerNorm
        assert unexpected and all(".norm." in k for k in unexpected)
    else:
        assert not unexpected

    assert_attention_on_path(base, model)


@pytest.mark.parametrize("backbone", ["convnext_atto", "convnext_tiny", "mobilenetv2_100"])
def test_positions_see_the_declared_channels(backbone):
    fields = SMALL[backbone] | COMMON
    for position in BACKBONES[backbone].positions:
        arch = uniform(backbone, StageChoice(attention="eca", position=position), **fields)
        model = build_model(arch).eval()
        seen: list[int] = []
        for name, m in model.named_modules():
            if name.endswith(".attn"):
                m.register_forward_hook(
                    lambda mod, inp, out, seen=seen: seen.append(inp[0].shape[1])
                )
        model(torch.randn(1, 3, 16, 16))
        declared = [c for s in arch.spec.stages for c in s.channels[position]]
        assert seen == declared, position


@pytest.mark.parametrize(
    "name",
    ["convnext_atto", "convnext_nano", "convnext_tiny", "mobilenetv2_100", "mobilenetv2_050"],
)
def test_families_equal_timm(name):
    ours = build_model(uniform(name, num_classes=1000, image_size=224))
    assert n_params(ours) == n_params(timm.create_model(name))


def test_channels_last_and_nchw_blocks_agree():
    """The same weights give the same function whether timm runs the MLP as 1x1 convs on
    NCHW (atto..nano) or as Linear layers on channels-last (tiny): our attentive block must
    treat both identically, attention included."""
    from spaces.backbones.convnext import ConvNeXtBackbone

    fields = {"widths": (16, 16, 32, 32)} | COMMON
    arch = uniform("convnext_tiny", choice("seln", "hidden"), **fields)
    linear = build_model(arch, seed=0).eval()
    conv_form = ConvNeXtBackbone("x", (3, 3, 9, 3), (96, 192, 384, 768), conv_mlp=True)
    nchw = conv_form.build(fields["widths"], "cifar", 5, 3)
    for blocks, linear_blocks in zip(
        conv_form.stage_blocks(nchw), conv_form.stage_blocks(linear), strict=True
    ):
        for block, twin in zip(blocks, linear_blocks, strict=True):
            conv_form.install(block, "hidden", type(twin.attn)(twin.attn.fc1.in_channels))
    state = {
        k: v.view(*v.shape, 1, 1) if ".mlp.fc" in k and k.endswith("weight") else v
        for k, v in linear.state_dict().items()
    }
    nchw.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(nchw.eval()(x), linear(x), rtol=1e-4, atol=1e-5)


def test_selnext_tiny_matches_the_paper():
    """SELNeXt-T: 35M parameters (Park et al., "SELNeXt", CMC 2025, table of ImageNet-1k
    results; authors' code oto-q/SELNeXt models/selnext.py). Exactly: timm's ConvNeXt-T
    (28,589,128) minus the removed block LayerNorms (2C each) plus SELN on the 4C hidden
    ((4C)^2/8 + 4C/16 + 3*4C) in each of the 3-3-9-3 blocks."""
    arch = uniform(
        "convnext_tiny",
        StageChoice(attention="seln", position="selnext"),
        num_classes=1000,
        image_size=224,
    )
    model = build_model(arch)
    dims, depths = (96, 192, 384, 768), (3, 3, 9, 3)
    hidden = [4 * c for c in dims]
    exact = 28_589_128 + sum(
        d * (h * h // 8 + h // 16 + 3 * h - 2 * c)
        for c, h, d in zip(dims, hidden, depths, strict=True)
    )
    assert n_params(model) == exact == 35_126_656
    assert abs(n_params(model) / 35e6 - 1) < 0.01
    block_norms = [k for k in model.stages.state_dict() if re.search(r"blocks\.\d+\.norm\.", k)]
    assert block_norms == []
    out = model.eval()(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1000)


def test_coordinate_attention_mobilenetv2_matches_the_paper():
    """CA-MobileNetV2: 3.95M parameters (Hou et al., "Coordinate Attention for Efficient
    Mobile Network Design", CVPR 2021, table 1/2; authors' code houqb/CoordAttention
    mbv2_ca.py puts CoordAtt(hidden, hidden) after the depthwise conv of every inverted
    residual with expansion 6, none in the first, unexpanded block)."""
    stages = (StageChoice(),) + (StageChoice(attention="ca", position="mid"),) * 6
    arch = ArchConfig(backbone="mobilenetv2_100", stages=stages, num_classes=1000, image_size=224)
    model = build_model(arch)
    spec = arch.spec
    hidden = [c for s in spec.stages[1:] for c in s.channels["mid"]]
    ca = sum(3 * c * max(8, c // 32) + 3 * max(8, c // 32) + 2 * c for c in hidden)
    assert n_params(model) == 3_504_872 + ca == 3_950_648
    assert round(n_params(model) / 1e6, 2) == 3.95


def test_mobilenetv2_ela_t_is_refused_with_the_allowed_variants():
    # Stage 2's first block expands 24 -> 144 channels: GroupNorm(32) cannot split it.
    stages = [StageChoice()] * 7
    stages[2] = StageChoice(attention="ela", position="mid", variant="T")
    with pytest.raises(ValueError) as err:
        ArchConfig(backbone="mobilenetv2_100", stages=tuple(stages))
    message = str(err.value)
    assert "stages[2].variant: ela-T@mid needs channels divisible by 32" in message
    assert "block 0 has 144 channels at 'mid'; allowed variants here: B, S, L" in message


def test_unknown_position_names_the_backbone_positions():
    with pytest.raises(
        ValueError,
        match="'identity' is not a position of this backbone; "
        "allowed: pre, mid, hidden, selnext, standard, post",
    ):
        uniform("convnext_atto", StageChoice(attention="se", position="identity"))


@pytest.mark.parametrize(
    ("backbone", "expected"),
    [
        ("convnext_atto", {"seln": "selnext", "se": "standard", "eca": "standard"}),
        ("mobilenetv2_100", {"ca": "mid", "se": "mid", "eca": "standard"}),
    ],
)
def test_baselines_use_each_papers_position(backbone, expected):
    space = SearchSpace({"backbone": backbone, "stem": "cifar", "image_size": 16})
    found = {b.name: b.arch.stages[1].position for b in space.baselines()}
    for attention, position in expected.items():
        assert found[attention] == position


def test_space_per_stage_allowed_ela_variants_on_mobilenetv2():
    space = SearchSpace({"backbone": "mobilenetv2_100", "positions": ["mid"]})
    variants = {i: d.values["variant"] for i, d in space.domains.items()}
    # hidden widths: 32 | 96,144 | 144,192,192 | 192,384x3 | 384,576x2 | 576,960x2 | 960
    assert variants[0] == ("T", "B", "S", "L")
    assert variants[1] == ("B", "S", "L")  # 144 is not divisible by 32
    assert variants[6] == ("T", "B", "S", "L")
