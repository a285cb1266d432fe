"""SearchSpace: flat encoding, decode/encode, exact size, baselines and their skip reasons."""

from __future__ import annotations

import itertools

import optuna
import pytest
from pydantic import ValidationError

from spaces import ArchConfig, SearchSpace, describe

SMALL = {"backbone": "resnet18", "widths": (16, 32, 64, 128), "stem": "cifar", "image_size": 16}


def test_every_stage_samples_the_same_parameter_names():
    space = SearchSpace(SMALL)
    study = optuna.create_study()
    for _ in range(5):
        trial = study.ask()
        arch = space.suggest(trial)
        names = set(trial.params)
        for i in range(4):
            suffixes = {n.split("_", 1)[1] for n in names if n.startswith(f"stage{i}_")}
            assert suffixes == {"attn", "pos", "kernel", "skernel", "variant", "reduction"}
        assert space.decode(trial.params) == arch


def test_size_equals_brute_force_count():
    cfg = SMALL | {
        "searched_stages": (1, 3),
        "attentions": ("none", "se", "eca", "ela"),
        "positions": ("pre", "standard"),
        "kernel_sizes": ("auto", 3, 5),
        "reductions": (8, 16),
    }
    space = SearchSpace(cfg)
    dists = space.distributions()
    hashes = {
        space.decode(dict(zip(dists, combo, strict=True))).hash
        for combo in itertools.product(*dists.values())
    }
    assert space.size() == len(hashes)
    # stage 1: none + se(2 pos x 2 r) + eca(2 x 3) + ela(2 x B,S,L: T does not fit 16 at pre)
    # stage 3: none + 4 + 6 + ela(2 x T,B,S,L)
    assert space.size() == (1 + 4 + 6 + 6) * (1 + 4 + 6 + 8)


def test_baselines_round_trip_and_skips_are_explained():
    space = SearchSpace(SMALL)
    names = [b.name for b in space.baselines()]
    assert names[0] == "none" and {"se", "seln", "eca", "rcam", "sca", "ca", "cbam"} <= set(names)
    assert "ela-T" not in names
    skipped = dict(space.skipped_baselines())
    assert "divisible by 32" in skipped["ela-T"]
    for b in space.baselines():
        told = space.decode(space.encode_baseline(b))  # what the sampler is told it tried
        assert [(s.attention, s.position) for s in told.stages] == [
            (s.attention, s.position) for s in b.arch.stages
        ]
        if space.why_not_in_space(b.arch) is None:
            assert told == b.arch
        assert all(s.position in (None, "standard") for s in b.arch.stages)
        assert b.provenance.paper and b.provenance.settings
    inferred = {b.name for b in space.baselines() if "inferred" in b.provenance.paper}
    assert inferred == {"rcam", "sca"}


@pytest.mark.parametrize(
    ("backbone", "kernels"),
    [
        ("resnet18", (3, 3, 3, 3)),
        ("resnet34", (3, 3, 3, 3)),
        ("resnet50", (3, 5, 5, 7)),
        # widths 16, 24, 32, 64 | 96, 160, 320: kernel 1 below 96 channels
        ("mobilenetv2_100", (1, 1, 1, 1, 3, 3, 3)),
    ],
)
def test_eca_baseline_uses_the_kernels_its_authors_released(backbone, kernels):
    # The space searches only the paper's formula; the baseline is still the released one.
    space = SearchSpace({"backbone": backbone, "attentions": ("none", "eca"),
                         "kernel_sizes": ("auto",), "image_size": 32})  # fmt: skip
    eca = space.baseline("eca")
    assert tuple(s.kernel_size for s in eca.arch.stages) == kernels
    assert "released" in eca.provenance.settings
    assert all(d.values["kernel"] == ("auto",) for d in space.domains.values())


def test_eca_baseline_on_a_family_without_released_kernels_keeps_the_formula():
    space = SearchSpace({"backbone": "convnext_atto", "attentions": ("none", "eca"),
                         "stem": "cifar", "image_size": 16})  # fmt: skip
    assert {s.kernel_size for s in space.baseline("eca").arch.stages} == {"auto"}


def _mobilenetv2_params(stages) -> int:
    from spaces import build_model

    arch = ArchConfig(backbone="mobilenetv2_100", num_classes=1000, image_size=224,
                      in_chans=3, stages=stages)  # fmt: skip
    return sum(p.numel() for p in build_model(arch).parameters())


def test_mobilenetv2_baselines_reproduce_the_ca_papers_comparison():
    # Hou et al.'s table: MobileNetV2 3.5M, +SE 3.89M, +CBAM 3.89M, +CA 3.95M parameters.
    space = SearchSpace({"backbone": "mobilenetv2_100", "attentions": ("none", "se", "ca", "cbam"),
                         "positions": ("mid", "standard"), "reductions": (16,),
                         "image_size": 224, "num_classes": 1000})  # fmt: skip
    ca = space.baseline("ca").arch
    # Stage 0 (the expansion-1 block) stays plain although the space searches it.
    assert 0 in space.domains and ca.stages[0].attention == "none"
    assert {(s.attention, s.position) for s in ca.stages[1:]} == {("ca", "mid")}
    expected = {"none": 3.50, "se": 3.89, "cbam": 3.89, "ca": 3.95}
    for name, millions in expected.items():
        b = space.baseline(name)
        assert round(_mobilenetv2_params(b.arch.stages) / 1e6, 2) == millions, name
    assert {s.reduction for s in space.baseline("se").arch.stages} == {24}
    assert "r=24" in space.baseline("cbam").provenance.settings


def test_baselines_outside_a_restricted_space_are_skipped():
    space = SearchSpace(SMALL | {"attentions": ("none", "se"), "kernel_sizes": (3,)})
    assert [b.name for b in space.baselines()] == ["none", "se"]
    assert "eca" in dict(space.skipped_baselines())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attentions": ("se", "gc")}, "unknown attention 'gc'; allowed: none, se"),
        (
            {"positions": ("tail",)},
            "positions: 'tail' is not a position of resnet18; allowed: pre, mid, standard, post, identity",
        ),
        ({"kernel_sizes": (3, 4)}, "kernel_sizes must be an odd integer >= 1 or 'auto', got 4"),
        ({"variants": ("Z",)}, "unknown ELA variant 'Z'"),
        ({"backbone": "resnet9"}, "unknown backbone 'resnet9'"),
        ({"searched_stages": (7,)}, "searched_stages: 7 out of range"),
        ({"depth": 3}, "unknown key 'depth'"),
    ],
)
def test_bad_space_config(change, message):
    with pytest.raises(ValidationError) as info:
        SearchSpace(SMALL | change)
    assert message in describe(info.value)
