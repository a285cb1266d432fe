"""Attention modules: parameter counts against the reference formulas, exactness of RCAM's
fusion, and the registry's validation messages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spaces import ATTENTIONS, create_attention, eca_kernel_size
from spaces.modules import RepChannelAttention

CHANNELS = [32, 64, 128, 256]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def expected_params(name: str, c: int, **opts) -> int:
    """The reference table (shared/reference/attention-modules.md), written out."""
    r = opts.get("reduction", 16)
    k = opts.get("kernel_size") or eca_kernel_size(c)
    if name == "none":
        return 0
    if name == "se":
        return 2 * c * (c // r) + c // r + c
    if name == "seln":
        return 2 * c * (c // r) + c // r + 3 * c
    if name == "eca":
        return k
    if name == "rcam":
        return k + 7
    if name == "sca":
        return 2 * (k * opts.get("spatial_kernel_size", 3) + 1)
    if name == "ela":
        return {"T": 7, "B": 9, "S": 42, "L": 58}[opts["variant"]] * c
    if name == "ca":
        mip = max(8, c // 32)
        return 3 * c * mip + 3 * mip + 2 * c
    if name == "cbam":
        return 2 * c * (c // r) + c // r + c + 98 + 2
    raise AssertionError(name)


CASES = (
    [(n, {}) for n in ATTENTIONS if n != "ela"]
    + [("ela", {"variant": v}) for v in "TBSL"]
    + [
        ("eca", {"kernel_size": 7}),
        ("rcam", {"kernel_size": 5}),
        ("se", {"reduction": 8}),
        ("sca", {"kernel_size": 5, "spatial_kernel_size": 7}),
        ("cbam", {"reduction": 4}),
    ]
)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize(("name", "opts"), CASES, ids=lambda x: str(x))
def test_param_count_matches_formula(name, opts, channels):
    module = create_attention(name, channels, **opts)
    assert n_params(module) == expected_params(name, channels, **opts)
    x = torch.randn(2, channels, 7, 5)
    assert module(x).shape == x.shape


def test_eca_adaptive_kernel_follows_paper():
    assert [eca_kernel_size(c) for c in (64, 128, 256, 512, 1024, 2048)] == [3, 5, 5, 5, 5, 7]


def test_explicit_eca_kernel_is_not_overridden():
    # timm's EcaModule recomputes the kernel whenever it gets channels; ours must not.
    assert create_attention("eca", 2048, kernel_size=3).conv.kernel_size == (3,)
    assert create_attention("eca", 2048).conv.kernel_size == (7,)


def test_se_uses_paper_width_not_timm_rounding():
    assert create_attention("se", 64).fc1.out_channels == 4  # timm's default rounding gives 8


def test_seln_gate_is_layernorm_not_sigmoid():
    m = create_attention("seln", 64).eval()
    x = torch.randn(3, 64, 4, 4)
    gate = m(x) / x
    per_sample = gate[:, :, 0, 0]
    # LayerNorm output has zero mean and (nearly) unit variance over channels; can be negative.
    torch.testing.assert_close(per_sample.mean(1), torch.zeros(3), atol=1e-4, rtol=0)
    assert (per_sample < 0).any()


def test_cbam_spatial_pools_max_then_mean():
    m = create_attention("cbam", 16).eval()
    with torch.no_grad():
        m.spatial.conv.conv.weight.zero_()
        m.spatial.conv.conv.weight[0, 0, 3, 3] = 1.0  # only input channel 0 at the centre
    x = torch.randn(1, 16, 6, 6)
    pooled = m.spatial.conv.bn(x.amax(1, keepdim=True))
    expected = x * torch.sigmoid(pooled)
    torch.testing.assert_close(m.spatial(x), expected)


@pytest.mark.parametrize("kernel_size", [1, 3, 5, 7])
@pytest.mark.parametrize("channels", [16, 64, 256])
def test_rcam_deploy_matches_training_form(kernel_size, channels):
    torch.manual_seed(kernel_size * 1000 + channels)
    m = RepChannelAttention(channels, kernel_size)
    with torch.no_grad():
        for bn in (m.bn_k, m.bn_1, m.bn_id):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.normal_(0, 0.5)
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    m.eval()
    x = torch.randn(4, channels, 6, 6)
    before = m(x)
    params_train = n_params(m)
    m.switch_to_deploy()
    after = m(torch.clone(x))
    assert m.deployed and params_train == kernel_size + 7 and n_params(m) == kernel_size + 1
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    fresh = torch.randn(2, channels, 3, 9)
    assert not torch.allclose(m(fresh), fresh * 0.5)  # the gate is not trivially constant


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: create_attention("sk", 64), "unknown attention 'sk'; allowed: none, se, seln"),
        (
            lambda: create_attention("eca", 64, kernel_size=4),
            "kernel_size must be an odd integer >= 1 or 'auto', got 4",
        ),
        (lambda: create_attention("eca", 64, kernel_size=0), "got 0"),
        (lambda: create_attention("rcam", 64, kernel_size=-3), "got -3"),
        (
            lambda: create_attention("sca", 64, spatial_kernel_size=2),
            "spatial_kernel_size must be an odd",
        ),
        (
            lambda: create_attention("ela", 64, variant="X"),
            "unknown ELA variant 'X'; allowed: T, B, S, L",
        ),
        (
            lambda: create_attention("ela", 48, variant="T"),
            "ela cannot sit on 48 channels: needs channels divisible by 32",
        ),
        (
            lambda: create_attention("se", 64, kernel_size=3),
            "attention 'se' takes no option 'kernel_size'; its options: reduction",
        ),
        (
            lambda: create_attention("se", 8, reduction=16),
            "reduction 16 leaves no hidden width on 8 channels",
        ),
    ],
)
def test_bad_options_name_value_and_allowed(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)
