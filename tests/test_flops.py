"""FLOP counts against numbers worked by hand from each module's forward.

Conventions (evaluators/flops.py): conv multiply-adds without bias; one op per OUTPUT element
for element-wise ops and activations; one per INPUT element for means, maxima and pooling;
eval-mode batch_norm 2 per element, layer_norm / group_norm 5 per element (fvcore's handles).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from evaluators.flops import (
    EXTRA_HANDLES,
    IGNORED_OPS,
    PER_INPUT_OPS,
    PER_OUTPUT_OPS,
    count_attention_flops,
    count_flops,
)
from spaces import (
    ATTENTIONS,
    ArchConfig,
    StageChoice,
    build_model,
    create_attention,
    deploy,
    uniform,
)
from spaces.backbones import get_backbone

C, H, W = 64, 8, 6
N = C * H * W  # 3072 elements in the feature map
RD = C // 16  # SE / SELN / CBAM hidden width at reduction 16: 4
CA_HIDDEN = 8  # coordinate attention: max(8, C // 32)
SMALL = {"widths": (32, 32, 64, 64), "stem": "cifar", "image_size": 16}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Counts do not depend on threads; tracing tiny convs is 10-40x slower when two threads
    contend for a busy two-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Per-operator worked numbers at (1, C, H, W); the comments follow each forward line by line.
WORKED: dict[str, tuple[str, dict, bool, dict[str, int], int]] = {
    # timm SEModule: mean(2,3) -> fc1 -> relu_ -> fc2 -> sigmoid -> x * gate
    "se": (
        "se",
        {},
        False,
        {"mean": N, "conv": C * RD + RD * C, "relu_": RD, "sigmoid": C, "mul": N},
        6724,
    ),
    # SELayerNorm: mean -> fc1 -> relu_ -> fc2 -> LayerNorm(C) (affine: 5 per element) -> x * gate
    "seln": (
        "seln",
        {},
        False,
        {"mean": N, "conv": C * RD + RD * C, "relu_": RD, "layer_norm": 5 * C, "mul": N},
        6980,
    ),
    # timm EcaModule, k = 3 for 64 channels: mean -> Conv1d(1, 1, 3) over C -> sigmoid -> mul
    "eca": ("eca", {}, False, {"mean": N, "conv": 3 * C, "sigmoid": C, "mul": N}, 6400),
    # RCAM training form: BN(conv3(z)) + BN(conv1(z)) + BN(z) on the length-C sequence z
    "rcam": (
        "rcam",
        {},
        False,
        {
            "mean": N,
            "conv": 3 * C + 1 * C,  # conv_k (k=3) and conv_1
            "batch_norm": 3 * 2 * C,  # three eval BNs on (1, 1, C), affine: 2 per element
            "add": 2 * C,  # two additions joining the three branches
            "sigmoid": C,
            "mul": N,
        },
        6976,
    ),
    # RCAM deployed: one fused Conv1d(1, 1, 3) with bias; the same count as ECA
    "rcam-deploy": ("rcam", {}, True, {"mean": N, "conv": 3 * C, "sigmoid": C, "mul": N}, 6400),
    # SCA: two directional means, a 3x3 conv and sigmoid on each (C x H) / (C x W) plane,
    # then x * a_h * a_w (two full-size multiplies)
    "sca": (
        "sca",
        {},
        False,
        {
            "mean": N + N,
            "conv": 3 * 3 * C * H + 3 * 3 * C * W,
            "sigmoid": C * H + C * W,
            "mul": N + N,
        },
        21248,
    ),
    # ELA-T: depthwise Conv1d k=5 and GroupNorm(32) shared by the H strip and the W strip
    "ela-T": (
        "ela",
        {"variant": "T"},
        False,
        {
            "mean": N + N,
            "conv": 5 * C * H + 5 * C * W,  # depthwise: 5 MACs per output element
            "group_norm": 5 * C * H + 5 * C * W,
            "sigmoid": C * H + C * W,
            "mul": N + N,
        },
        22144,
    ),
    # ELA-S: Conv1d k=5 with 8 channels per group: 8 * 5 MACs per output element
    "ela-S": (
        "ela",
        {"variant": "S"},
        False,
        {
            "mean": N + N,
            "conv": 8 * 5 * C * H + 8 * 5 * C * W,
            "group_norm": 5 * C * H + 5 * C * W,
            "sigmoid": C * H + C * W,
            "mul": N + N,
        },
        53504,
    ),
    # CoordAttention: means over W and H, cat to (C, H + W), 1x1 conv to 8, BN, hardswish,
    # split, a 1x1 conv back to C and a sigmoid per direction, x * a_w * a_h
    "ca": (
        "ca",
        {},
        False,
        {
            "mean": N + N,
            "conv": C * CA_HIDDEN * (H + W) + CA_HIDDEN * C * H + CA_HIDDEN * C * W,
            "batch_norm": 2 * CA_HIDDEN * (H + W),
            "hardswish": CA_HIDDEN * (H + W),
            "sigmoid": C * H + C * W,
            "mul": N + N,
        },
        27856,
    ),
    # CBAM, channel: shared MLP on mean and amax, add, sigmoid, mul; spatial: amax and mean over
    # C, cat, 7x7 conv 2 -> 1, BN, sigmoid, mul
    "cbam": (
        "cbam",
        {},
        False,
        {
            "mean": N + N,  # mean over (H, W), then mean over C
            "amax": N + N,  # amax over (H, W), then amax over C
            "conv": 2 * (C * RD + RD * C) + 2 * 7 * 7 * H * W,
            "relu_": 2 * RD,
            "add": C,
            "sigmoid": C + H * W,
            "batch_norm": 2 * H * W,
            "mul": N + N,
        },
        24440,
    ),
}


@pytest.mark.parametrize("key", list(WORKED))
def test_attention_flops_match_worked_numbers(key: str) -> None:
    name, options, deployed, by_operator, total = WORKED[key]
    module = create_attention(name, C, **options)
    if deployed:
        module.eval()
        module.switch_to_deploy()
    result = count_flops(module, (1, C, H, W))
    assert result.unsupported == {}
    assert result.by_operator == by_operator
    assert result.flops == sum(by_operator.values()) == total
    assert result.params == sum(p.numel() for p in module.parameters())
    if not deployed:
        assert count_attention_flops(name, C, H, W, **options) == total


def test_batch_scales_the_count() -> None:
    module = create_attention("cbam", C)
    assert count_flops(module, (3, C, H, W)).flops == 3 * WORKED["cbam"][4]


def test_training_flags_are_restored() -> None:
    module = create_attention("rcam", C)
    module.train()
    module.bn_k.eval()  # a mixed state must survive, not just the top-level flag
    count_flops(module, (1, C, H, W))
    assert module.training and module.bn_1.training and not module.bn_k.training


def test_ignore_list_is_data_movement_only() -> None:
    assert not IGNORED_OPS & set(EXTRA_HANDLES)
    assert set(EXTRA_HANDLES) == PER_OUTPUT_OPS | PER_INPUT_OPS
    for op in ("relu", "relu_", "max", "amax", "mean", "mul", "add", "clamp", "sigmoid"):
        assert f"aten::{op}" not in IGNORED_OPS


def test_ops_without_a_handle_are_reported_not_dropped() -> None:
    class Odd(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.floor(x).exp()  # fvcore's own ignore list would drop floor silently

    result = count_flops(Odd(), (2, 4))
    assert result.unsupported == {"aten::floor": 1, "aten::exp": 1}
    assert result.flops == 0


# Every channel count at every position divides by 32, so all ELA variants fit.
PACKED_WIDTHS = {
    "resnet18": (32, 32, 64, 64),
    "resnet50": (32, 32, 64, 64),
    "convnext_atto": (32, 32, 64, 64),
    "convnext_tiny": (32, 32, 64, 64),
    "mobilenetv2_100": (32,) * 7,
}


def _packed_archs(backbone: str) -> list[ArchConfig]:
    """Every attention (ELA cycling through its variants) at every position, one per stage."""
    variants = iter("TBSLB" * 3)
    pairs = [
        StageChoice(attention=name, position=position, variant=next(variants))
        if name == "ela"
        else StageChoice(attention=name, position=position)
        for name in ATTENTIONS
        if name != "none"
        for position in get_backbone(backbone).positions
    ]
    n = len(PACKED_WIDTHS[backbone]) if backbone in PACKED_WIDTHS else 4
    pairs += pairs[: -len(pairs) % n]  # fill the last model
    fields = SMALL | {"widths": PACKED_WIDTHS[backbone]}
    return [
        ArchConfig(backbone=backbone, stages=tuple(pairs[i : i + n]), **fields)
        for i in range(0, len(pairs), n)
    ]


@pytest.mark.parametrize("backbone", list(PACKED_WIDTHS))
def test_every_attention_and_position_is_fully_counted(backbone: str) -> None:
    shape = (1, 3, 16, 16)
    fields = SMALL | {"widths": PACKED_WIDTHS[backbone]}
    base = count_flops(build_model(uniform(backbone, **fields)), shape)
    assert base.unsupported == {}
    for arch in _packed_archs(backbone):
        model = build_model(arch)
        forms = [count_flops(model, shape)]
        if any(s.attention == "rcam" for s in arch.stages):
            forms.append(count_flops(deploy(model), shape))
        for result in forms:
            assert result.unsupported == {}, arch.label()
            assert all(v > 0 for v in result.by_operator.values()), result.by_operator
            assert result.flops > base.flops, arch.label()  # attention is never free
            if all(s.position != "selnext" for s in arch.stages):  # selnext drops a LayerNorm
                assert result.params > base.params


def test_resnet50_is_fvcore_plus_elementwise_ops() -> None:
    model = build_model(uniform("resnet50", num_classes=1000, image_size=224))
    result = count_flops(model, (1, 3, 224, 224))
    assert result.unsupported == {}
    fvcore_ops = ("conv", "batch_norm", "adaptive_avg_pool2d", "linear")
    # fvcore's own total for timm resnet50 before our handles
    assert sum(result.by_operator[op] for op in fvcore_ops) == 4_111_512_576

    stem = 64 * 112 * 112  # stem ReLU output; also the max-pool's input
    relu, add, res = stem, 0, 56
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)):
        for block in range(blocks):
            out = res // 2 if stage > 0 and block == 0 else res  # timm strides the 3x3 conv
            # act1 after the 1x1 at the input resolution, act2 after the 3x3, act3 after the add
            relu += width * res * res + width * out * out + 4 * width * out * out
            add += 4 * width * out * out  # x += shortcut
            res = out
    extras = {"relu_": relu, "add_": add, "max_pool2d": stem}
    assert {op: result.by_operator[op] for op in extras} == extras
    assert set(result.by_operator) == set(fvcore_ops) | set(extras)
    assert result.flops == 4_111_512_576 + sum(extras.values())
    assert result.params == 25_557_032  # timm's resnet50


@pytest.mark.parametrize(
    ("backbone", "choice"),
    [
        ("resnet50", StageChoice(attention="se")),
        ("convnext_atto", StageChoice(attention="seln", position="selnext")),
        ("convnext_tiny", StageChoice(attention="ca", position="hidden")),
        ("mobilenetv2_100", StageChoice(attention="ca", position="mid")),
    ],
)
def test_matrix_ops_agree_with_torch_flop_counter(backbone: str, choice: StageChoice) -> None:
    """PyTorch's own counter sees only convolutions and matrix products, at 2 FLOPs per
    multiply-add: our count of those ops must be exactly half of its total, in every family."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(uniform(backbone, choice, widths=None, image_size=32)).eval()
    ours = count_flops(model, (1, 3, 32, 32))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    matrix = sum(v for k, v in ours.by_operator.items() if k in ("conv", "linear", "matmul"))
    assert 2 * matrix == counter.get_total_flops()
    assert ours.flops > matrix  # norms, activations and the attention's gating are extra
