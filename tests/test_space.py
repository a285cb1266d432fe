"""SearchSpace: flat encoding, decode/encode, exact size, baselines and their skip reasons."""

from __future__ import annotations

import itertools

import optuna
import pytest
from pydantic import ValidationError

from spaces import SearchSpace, describe

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
        assert space.decode(space.encode(b.arch)) == b.arch
        assert all(s.position in (None, "standard") for s in b.arch.stages)


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
