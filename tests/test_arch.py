"""ArchConfig: round-trips, hashing, normalisation, and one-line errors for bad input."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from spaces import ArchConfig, StageChoice, describe, uniform

SMALL = {"widths": (16, 32, 64, 128), "stem": "cifar", "image_size": 16}


def mixed() -> ArchConfig:
    return ArchConfig(
        backbone="resnet18",
        **SMALL,
        stages=[
            StageChoice(attention="eca", position="pre", kernel_size=5),
            StageChoice(attention="ela", position="mid", variant="S"),
            StageChoice(attention="sca", position="post", spatial_kernel_size=7),
            StageChoice(attention="none"),
        ],
    )


def test_yaml_and_json_round_trip_keep_the_hash(tmp_path):
    arch = mixed()
    again = ArchConfig.from_yaml(arch.to_yaml())
    assert again == arch and again.hash == arch.hash
    arch.to_json(tmp_path / "a.json")
    arch.to_yaml(tmp_path / "a.yaml")
    assert ArchConfig.from_file(tmp_path / "a.json").hash == arch.hash
    assert ArchConfig.from_file(tmp_path / "a.yaml").hash == arch.hash


def test_hash_is_a_stable_content_hash():
    assert mixed().hash == mixed().hash
    assert len(mixed().hash) == 16
    other = mixed().model_copy(update={"num_classes": 11})
    assert ArchConfig.model_validate(other.to_dict()).hash != mixed().hash


def test_irrelevant_options_are_normalised():
    a = StageChoice(attention="none", position="pre")
    assert a == StageChoice() and a.position is None
    assert StageChoice(attention="eca") == StageChoice(
        attention="eca", position="standard", kernel_size="auto"
    )
    assert StageChoice(attention="ela").variant == "B"


def test_yaml_tags_are_refused_without_executing(tmp_path):
    evil = "!!python/object/apply:os.system ['touch pwned']\n"
    with pytest.raises(Exception, match="could not determine a constructor"):
        ArchConfig.from_yaml(evil)


def one_line(exc_info) -> str:
    line = describe(exc_info.value)
    assert "\n" not in line
    return line


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backbone": "vgg16"}, "unknown backbone 'vgg16'; allowed: resnet18, resnet34, resnet50"),
        (
            {"stages": [{"attention": "sk"}] * 4},
            "unknown attention 'sk'; allowed: none, se, seln, eca, rcam, sca, ela, ca, cbam",
        ),
        (
            {"stages": [{"attention": "se", "position": "tail"}] * 4},
            "stages[0].position: 'tail' is not a position of this backbone; allowed: pre, mid, standard, post, identity",
        ),
        (
            {"stages": [{"attention": "eca", "kernel_size": 4}] * 4},
            "kernel_size must be an odd integer >= 1 or 'auto', got 4",
        ),
        ({"stages": [{"attention": "eca", "kernel_size": 0}] * 4}, "got 0"),
        ({"stages": [{"attention": "rcam", "kernel_size": -1}] * 4}, "got -1"),
        (
            {"stages": [{"attention": "ela", "variant": "T"}] * 4},
            "stages[0].variant: ela-T@standard needs channels divisible by 32, but block 0 has 16 channels at 'standard'; allowed variants here: B, S, L",
        ),
        (
            {"stages": [{"attention": "ela", "variant": "Q"}] * 4},
            "unknown ELA variant 'Q'; allowed: T, B, S, L",
        ),
        ({"stages": [{}] * 3}, "stages: resnet18 has 4 stages, got 3"),
        ({"widths": [16, 32]}, "widths: resnet18 needs 4 positive widths, got [16, 32]"),
        ({"stem": "deep"}, "stem"),
        ({"color": "red"}, "unknown key 'color'"),
        (
            {"stages": [{"attention": "se", "kernel_size": 3}] * 4},
            "attention 'se' takes no option 'kernel_size'; its options: reduction",
        ),
    ],
)
def test_bad_arch_names_field_value_and_allowed(change, message):
    data = {"backbone": "resnet18", **SMALL, "stages": [{}] * 4} | change
    with pytest.raises(ValidationError) as info:
        ArchConfig.model_validate(data)
    assert message in one_line(info), one_line(info)


def test_uniform_builds_same_choice_everywhere():
    arch = uniform("resnet34", StageChoice(attention="ca"))
    assert len(arch.stages) == 4 and len(set(arch.stages)) == 1


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_saved_architecture_file_loads_back_with_its_source(tmp_path, suffix):
    # `attnas export -o best.json` wrote {arch, source}, which from_json refused to read
    arch = uniform("resnet18", StageChoice(attention="eca", position="post", kernel_size=5))
    path = arch.save(tmp_path / "out" / f"best{suffix}", {"study": "s", "trial": 3})
    assert ArchConfig.from_file(path) == arch
    bare = tmp_path / f"bare{suffix}"
    (arch.to_json if suffix == ".json" else arch.to_yaml)(bare)
    assert ArchConfig.from_file(bare) == arch
