"""``attnas train``'s pieces: the recipe settings, the trained folder's loader, and the timm
model entrypoint (the end-to-end train/kill/resume/load test is in test_results.py)."""

from __future__ import annotations

import math
import sys

import pytest
import timm
import torch

import spaces.timm_model  # noqa: F401  (registers "attnas" with timm)
from evaluators import EvalConfig, SeedTrainer, TrainSettings, load_dataset
from evaluators.train import make_scheduler
from spaces import StageChoice, build_model, load_trained, uniform
from spaces.trained import save_weights

ARCH = uniform(
    "resnet18",
    StageChoice(attention="se", position="standard"),
    widths=(16, 16, 32, 32),
    stem="cifar",
    image_size=8,
    in_chans=1,
)


def test_settings_added_later_leave_stored_fingerprints_alone():
    # The default evaluation's fingerprint before `schedule`, `ema_decay`, `bn_calibration`,
    # `train_images` and the data's `train_size`/`val_size` existed: stored runs (the fidelity
    # store, the tabular tables) are still found under the values that reproduce them, and
    # the calibrated default, which scores differently, is not.
    before = EvalConfig(train=TrainSettings(bn_calibration=0))
    assert before.fingerprint() == "889b8a9ddb619191"
    cosine = EvalConfig(train=TrainSettings(schedule="cosine"))
    ema = EvalConfig(train=TrainSettings(ema_decay=0.99))
    prints = {before.fingerprint(), EvalConfig().fingerprint(), cosine.fingerprint()}
    assert len(prints | {ema.fingerprint()}) == 4


def test_a_new_dataset_or_estimator_version_moves_only_the_fingerprints_it_concerns(monkeypatch):
    import importlib

    from evaluators.data import DATA_VERSIONS

    evaluate = importlib.import_module("evaluators.evaluate")  # the package exports a function

    configs = {name: EvalConfig(dataset=name) for name in ("digits", "clutter", "cued")}
    before = {name: cfg.fingerprint() for name, cfg in configs.items()}
    assert before["digits"] == EvalConfig().fingerprint()
    monkeypatch.setitem(DATA_VERSIONS, "cued", DATA_VERSIONS["cued"] + 1)
    after = {name: cfg.fingerprint() for name, cfg in configs.items()}
    assert after["cued"] != before["cued"]
    assert {k: v for k, v in after.items() if k != "cued"} == {
        k: v for k, v in before.items() if k != "cued"
    }
    monkeypatch.setattr(evaluate, "ESTIMATOR_VERSION", 2)  # a new way of timing: re-time all
    assert all(cfg.fingerprint() != after[name] for name, cfg in configs.items())


def test_a_runtime_version_moves_only_the_fingerprints_of_configs_timing_on_it(monkeypatch):
    import importlib

    evaluate = importlib.import_module("evaluators.evaluate")
    compiled = EvalConfig(latency={"targets": ["torch", "torch_compile"]})
    eager = EvalConfig(latency={"targets": ["torch", "onnxruntime"]})
    stamped = compiled.fingerprint(), eager.fingerprint()
    monkeypatch.setitem(evaluate.RUNTIME_VERSIONS, "torch_compile", 3)
    assert compiled.fingerprint() != stamped[0] and eager.fingerprint() == stamped[1]
    # Stored before torch_compile's version 2 (a worker's 9th network timed eagerly): re-timed.
    assert stamped[0] != "eb1b81a5c0835f0a"
    monkeypatch.delitem(evaluate.RUNTIME_VERSIONS, "torch_compile")
    assert compiled.fingerprint() == "eb1b81a5c0835f0a"


def test_cosine_schedule_warms_up_then_follows_a_half_cosine_to_zero():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = TrainSettings(epochs=10, warmup_fraction=0.1, schedule="cosine")
    sched = make_scheduler(opt, s, steps_per_epoch=10)  # 100 steps, 10 of warm-up
    factor = sched.lr_lambdas[0]
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)
    middle = 10 + 45  # half-way through the decay: cos(pi/2) -> 0.5
    assert factor(middle) == pytest.approx(0.5)
    assert factor(32) == pytest.approx(0.5 * (1 - math.cos(math.pi * 68 / 90)))
    assert factor(100) == 0.0
    linear = make_scheduler(opt, s.model_copy(update={"schedule": "linear"}), 10).lr_lambdas[0]
    assert linear(middle) == pytest.approx(0.5) and linear(32) == pytest.approx(68 / 90)


def test_ema_weights_are_validated_checkpointed_and_restored():
    data = load_dataset("digits", image_size=8)
    settings = TrainSettings(epochs=2, batch_size=64, ema_decay=0.9)
    trainer = SeedTrainer(build_model(ARCH, seed=0), data, settings, seed=0)
    assert trainer.train_epoch() and math.isfinite(trainer.loss)
    assert trainer.trained is trainer.ema.module and trainer.trained is not trainer.model
    ema_w = trainer.trained.state_dict()["conv1.weight"]
    assert not torch.equal(ema_w, trainer.model.state_dict()["conv1.weight"])
    state = trainer.state_dict()
    fresh = SeedTrainer(build_model(ARCH, seed=0), data, settings, seed=0)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.trained.state_dict()["conv1.weight"], ema_w)
    assert fresh.loss == trainer.loss and fresh.score("val") == trainer.score("val")


def _folder(tmp_path, arch=ARCH, weights_of=ARCH):
    model = build_model(weights_of, seed=3)
    save_weights(model, tmp_path / "model.safetensors", weights_of)
    arch.to_yaml(tmp_path / "arch.yaml")
    (tmp_path / "train.json").write_text('{"normalisation": {"mean": [0.3], "std": [0.4]}}')
    return model


def test_load_trained_returns_the_saved_weights_in_eval_mode(tmp_path):
    model = _folder(tmp_path)
    loaded = load_trained(tmp_path)
    assert not loaded.training and next(loaded.parameters()).dtype == torch.float32
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(loaded(x), model.eval()(x))


def test_load_trained_refuses_another_networks_weights_and_a_folder_without_them(tmp_path):
    other = uniform("resnet18", StageChoice(), widths=(16, 16, 32, 32), stem="cifar", in_chans=1)
    _folder(tmp_path, arch=ARCH, weights_of=other)
    with pytest.raises(ValueError, match=f"weights for architecture {other.hash}, not {ARCH.hash}"):
        load_trained(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing arch.yaml, model.safetensors"):
        load_trained(tmp_path / "nothing")


def test_timm_builds_loads_and_adapts_the_trained_network(tmp_path):
    model = _folder(tmp_path).eval()
    x = torch.randn(2, 1, 8, 8)
    through_timm = timm.create_model("attnas", arch=str(tmp_path), pretrained=True).eval()
    assert torch.equal(through_timm(x), model(x))
    cfg = timm.data.resolve_data_config({}, model=through_timm)
    assert cfg["input_size"] == (1, 8, 8) and cfg["mean"] == (0.3,) and cfg["std"] == (0.4,)
    # another number of classes: timm drops the classifier and keeps the rest
    five = timm.create_model("attnas", arch=str(tmp_path), pretrained=True, num_classes=5)
    assert five(x).shape == (2, 5)
    assert torch.equal(five.state_dict()["conv1.weight"], model.state_dict()["conv1.weight"])
    # an architecture file plus a weights file named by timm's overlay
    by_file = timm.create_model(
        "attnas",
        arch=str(tmp_path / "arch.yaml"),
        pretrained=True,
        pretrained_cfg_overlay={"file": str(tmp_path / "model.safetensors")},
    ).eval()
    assert torch.equal(by_file(x), model(x))


def test_timm_entrypoint_names_what_it_refuses(tmp_path):
    ARCH.to_yaml(tmp_path / "a.yaml")
    with pytest.raises(ValueError, match="needs arch="):
        timm.create_model("attnas")
    with pytest.raises(ValueError, match="pretrained=True needs trained weights"):
        timm.create_model("attnas", arch=str(tmp_path / "a.yaml"), pretrained=True)
    with pytest.raises(ValueError, match="take no drop_path_rate; allowed: arch"):
        timm.create_model("attnas", arch=str(tmp_path / "a.yaml"), drop_path_rate=0.1)
    untrained = timm.create_model("attnas", arch=str(tmp_path / "a.yaml"), drop_rate=0.0)
    assert untrained.eval()(torch.randn(1, 1, 8, 8)).shape == (1, 10)


def test_timm_scripts_run_through_the_launcher_see_the_attnas_model(tmp_path):
    import subprocess

    ARCH.to_yaml(tmp_path / "a.yaml")
    script = tmp_path / "train.py"  # stands in for timm's train.py: it imports no plugin
    script.write_text(
        "import sys, timm\n"
        "name, kwargs = sys.argv[sys.argv.index('--model') + 1], sys.argv[-1]\n"
        "model = timm.create_model(name, arch=kwargs.split('=', 1)[1])\n"
        "print('built', type(model).__name__, sum(p.numel() for p in model.parameters()))\n"
    )
    args = [str(script), "--model", "attnas", "--model-kwargs", f"arch={tmp_path / 'a.yaml'}"]
    bare = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    assert bare.returncode != 0 and "Unknown model (attnas)" in bare.stderr
    run = subprocess.run(
        [sys.executable, "-m", "spaces.timm_model", *args], capture_output=True, text=True
    )
    params = sum(p.numel() for p in build_model(ARCH).parameters())
    assert run.returncode == 0 and f"built ResNet {params}" in run.stdout, run.stderr


def test_the_launcher_names_a_missing_script(tmp_path, monkeypatch):
    from spaces.timm_model import main

    monkeypatch.setattr(sys, "argv", ["spaces.timm_model", str(tmp_path / "nope.py")])
    with pytest.raises(SystemExit, match=f"timm script not found: {tmp_path / 'nope.py'}"):
        main()
