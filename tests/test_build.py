"""Backbones and positions: every combination builds, trains, and really changes the network;
parameter counts agree with timm's own models and the papers' figures."""

from __future__ import annotations

import pytest
import timm
import torch

from spaces import ATTENTIONS, ArchConfig, StageChoice, build_model, deploy, uniform
from spaces.backbones import BACKBONES
from tests.wiring import assert_attention_on_path

SMALL = {"widths": (32, 32, 64, 64), "stem": "cifar", "image_size": 16, "num_classes": 5}
POSITIONS = ("pre", "mid", "standard", "post", "identity")


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("backbone", [n for n in BACKBONES if n.startswith("resnet")])
@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("attention", [a for a in ATTENTIONS if a != "none"])
def test_every_combination_is_on_the_path(backbone, position, attention, bn_randomizer):
    base = build_model(uniform(backbone, **SMALL), seed=0)
    bn_randomizer(base)
    arch = uniform(backbone, StageChoice(attention=attention, position=position), **SMALL)
    model = build_model(arch, seed=0)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(".attn." in k for k in missing)

    assert_attention_on_path(base, model)


def test_position_sees_documented_channels():
    arch = uniform(
        "resnet50", StageChoice(attention="eca", position="pre"), widths=(16, 32, 64, 128)
    )
    model = build_model(arch)
    seen = {}
    for name, m in model.named_modules():
        if name.endswith(".attn"):
            m.register_forward_hook(
                lambda mod, inp, out, name=name: seen.__setitem__(name, inp[0].shape[1])
            )
    model.eval()(torch.randn(1, 3, 64, 64))
    # pre of a stage's first block sees the previous stage's output (timm's 64-wide stem).
    assert seen["layer1.0.attn"] == 64 and seen["layer1.1.attn"] == 64
    assert seen["layer2.0.attn"] == 64 and seen["layer2.1.attn"] == 128
    for pos, layer2 in (("mid", 32), ("standard", 128), ("post", 128), ("identity", 128)):
        arch = uniform(
            "resnet50", StageChoice(attention="eca", position=pos), widths=(16, 32, 64, 128)
        )
        spec = arch.spec.stages[1].channels[pos]
        assert set(spec) == {layer2}


def test_resnet50_matches_timm_and_papers():
    full = {"num_classes": 1000, "image_size": 224}
    plain = build_model(uniform("resnet50", **full))
    assert n_params(plain) == n_params(timm.create_model("resnet50")) == 25_557_032
    se = build_model(uniform("resnet50", StageChoice(attention="se"), **full))
    assert n_params(se) == 28_088_024  # timm seresnet50
    eca = ArchConfig(
        backbone="resnet50",
        **full,
        stages=[StageChoice(attention="eca", kernel_size=k) for k in (3, 5, 5, 7)],
    )
    assert n_params(build_model(eca)) - 25_557_032 == 80  # the ECA paper's "80 parameters"


def test_resnet18_and_34_match_timm():
    for name in ("resnet18", "resnet34"):
        ours = build_model(uniform(name, num_classes=1000))
        assert n_params(ours) == n_params(timm.create_model(name))


def test_cifar_stem_keeps_resolution():
    model = build_model(uniform("resnet18", widths=(16, 32, 64, 128), stem="cifar"))
    feats = model.forward_features(torch.randn(1, 3, 16, 16))
    assert feats.shape == (1, 128, 2, 2)  # only the three stride-2 stages downsample
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)


def test_same_seed_same_weights_and_different_seed_differs():
    arch = uniform("resnet18", StageChoice(attention="ela", variant="S"), **SMALL)
    a, b, c = build_model(arch, seed=3), build_model(arch, seed=3), build_model(arch, seed=4)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_deploy_fuses_rcam_inside_a_network(bn_randomizer):
    arch = uniform("resnet18", StageChoice(attention="rcam", kernel_size=5), **SMALL)
    model = build_model(arch, seed=0)
    bn_randomizer(model, seed=1)
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        before = model(x)
        after = deploy(model)(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert all(m.deployed for m in model.modules() if hasattr(m, "switch_to_deploy"))


def _attention(arch: ArchConfig) -> torch.nn.Module:
    model = build_model(arch, seed=0)
    return next(m for n, m in model.named_modules() if n.endswith(".attn"))


@pytest.mark.parametrize(
    ("backbone", "position", "expected_std"),
    [
        # Kaiming normal, fan-out (timm's SE-ResNet): fc1 maps 128 -> 8 channels, 1x1.
        ("resnet18", "standard", (2 / 8) ** 0.5),
        # timm's EfficientNet init, normal(0, sqrt(2 / fan_out)), the same rule on MobileNetV2.
        ("mobilenetv2_100", "mid", None),
        # ConvNeXt's truncated normal, std 0.02 (truncated at +-2: std 0.02 * 0.88).
        ("convnext_atto", "standard", 0.02 * 0.88),
    ],
)
def test_attention_modules_get_their_familys_init_not_pytorchs_default(
    backbone, position, expected_std
):
    arch = uniform(backbone, StageChoice(attention="se", position=position), stem="cifar",
                   image_size=16, widths=(16, 32, 64, 128) if backbone == "resnet18" else None)  # fmt: skip
    model = build_model(arch, seed=0)
    last = [m for n, m in model.named_modules() if n.endswith(".attn")][-1]  # widest stage
    fc1 = last.fc1.weight
    if expected_std is None:
        expected_std = (2 / fc1.shape[0]) ** 0.5
        assert torch.count_nonzero(last.fc2.bias) == 0  # timm's EfficientNet zeroes biases
    assert fc1.std().item() == pytest.approx(expected_std, rel=0.15)
    # PyTorch's default (Kaiming uniform, a=sqrt(5)) would be 1/sqrt(3 * fan_in) instead.
    assert fc1.std().item() != pytest.approx((1 / (3 * fc1.shape[1])) ** 0.5, rel=0.15)


def test_cbam_is_initialised_as_its_authors_code_does():
    cbam = _attention(
        uniform("resnet18", StageChoice(attention="cbam"), stem="cifar", image_size=16)
    )
    bn = cbam.spatial.conv.bn
    assert bn.momentum == 0.01
    assert torch.count_nonzero(bn.weight) == 0 and torch.count_nonzero(bn.bias) == 0
    assert torch.count_nonzero(cbam.channel.fc1.bias) == 0
    # The spatial gate therefore starts at exactly 0.5 everywhere (in training mode).
    x = torch.randn(4, cbam.channel.fc1.in_channels, 6, 6)
    pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
    gate = cbam.spatial.gate(cbam.spatial.conv(pooled))
    assert torch.allclose(gate, torch.full_like(gate, 0.5))
