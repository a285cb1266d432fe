"""A small search on each non-ResNet family completes on CPU, through Ray and Optuna, with
the family's paper baselines enqueued and a Pareto front at the end."""

from __future__ import annotations

import optuna
import pytest

from results.frame import trials_frame
from search.config import load_config
from search.driver import run_search
from tests.studies import make_config

pytestmark = pytest.mark.slow

SPACES = {
    "convnext": {
        "backbone": "convnext_atto",
        "widths": [16, 16, 32, 32],
        "attentions": ["none", "seln", "eca"],
        "positions": ["selnext", "standard"],
        "searched_stages": [2, 3],
    },
    "mobilenetv2": {
        "backbone": "mobilenetv2_100",
        "widths": [8, 16, 16, 16, 16, 32, 32],
        "attentions": ["none", "ca", "eca"],
        "positions": ["mid", "standard"],
        "searched_stages": [5, 6],
    },
}


@pytest.mark.parametrize("family", list(SPACES))
def test_small_search_completes(family, tmp_path, ray_cluster):
    space = SPACES[family] | {"stem": "cifar", "in_chans": 1, "num_classes": 10, "image_size": 8}
    train = {"epochs": 1, "batch_size": 128, "lr": 0.05}
    if family == "convnext":
        train |= {"optimizer": "adamw", "lr": 0.004}
    cfg = load_config(
        make_config(tmp_path, ray_cluster, n_trials=5, study=family, space=space, eval__train=train)
    )
    outcome = run_search(cfg)
    assert outcome.completed == 5 and outcome.stop_reason is None

    study = optuna.load_study(study_name=family, storage=cfg.storage_url)
    assert {t.state.name for t in study.trials} == {"COMPLETE"}
    baselines = {t.user_attrs["baseline"] for t in study.trials if "baseline" in t.user_attrs}
    assert baselines == {"none", *space["attentions"][1:]}
    paper = {"convnext": ("seln", "selnext"), "mobilenetv2": ("ca", "mid")}[family]
    frame = trials_frame(study)
    row = frame[frame["baseline"] == paper[0]].iloc[0]
    assert row[f"stage{space['searched_stages'][0]}_position"] == paper[1]
    assert frame["accuracy"].between(0, 1).all()
    none = frame[frame["baseline"] == "none"].iloc[0]
    # the network without attention, timed against a separate copy of itself, reads 1 (the
    # band of tests/test_latency.py); every attention module adds parameters
    assert 0.8 < none["latency_rel"] < 1.25
    assert (frame.drop(none.name)["params"] > none["params"]).all()
    assert frame["is_pareto"].any()
