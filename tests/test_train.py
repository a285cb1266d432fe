"""Training: a real learning signal on digits, reproducibility across processes, and NaN
handling with a real divergence."""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import subprocess
import sys

import pytest
import torch

from evaluators import EpochReport, EvalConfig, TrainSettings, eval_dir, evaluate
from spaces import StageChoice, uniform

QUICK_ARCH = dict(widths=(16, 32, 64, 128), stem="cifar", image_size=16, in_chans=1)


def quick_cfg(**train) -> EvalConfig:
    return EvalConfig(
        dataset="digits",
        image_size=16,
        seeds=(0,),
        train=TrainSettings(epochs=5, batch_size=64, lr=0.2).model_copy(update=train),
        measure_latency=False,
        threads=2,
    )


@pytest.mark.slow
def test_digits_quickstart_learns():
    m = evaluate(uniform("resnet18", StageChoice(attention="eca"), **QUICK_ARCH), quick_cfg())
    assert m.status == "ok" and m.accuracy >= 0.90, m.accuracies
    assert len(m.accuracies) == 5 and m.flops > 0 and m.params > 0


SCRIPT = """
import json, torch
from evaluators import EvalConfig, TrainSettings, evaluate
from spaces import uniform, StageChoice
cfg = EvalConfig(dataset='digits', image_size=16, seeds=(3,), measure_latency=False, threads=1,
                 train=TrainSettings(epochs=1, batch_size=256, lr=0.2))
arch = uniform('resnet18', StageChoice(attention='se'), widths=(16, 32, 64, 128), stem='cifar',
               image_size=16, in_chans=1)
print(json.dumps(evaluate(arch, cfg).accuracies_per_seed))
"""


@pytest.mark.trains
def test_same_seed_same_accuracy_in_separate_processes():
    # side by side, one thread each: neither the other process nor the load may change a bit
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    a, b = (json.loads(out.strip().splitlines()[-1]) for out in outputs)
    assert a == b


def test_absurd_learning_rate_reports_nan_loss():
    cfg = quick_cfg(lr=1e6, epochs=2)
    m = evaluate(uniform("resnet18", **QUICK_ARCH), cfg)
    assert m.status == "nan_loss" and m.failed_epoch == 1
    assert m.accuracy is None and m.accuracies == []


@pytest.mark.trains
def test_seeds_in_lockstep_train_exactly_as_each_seed_alone():
    arch = uniform("resnet18", StageChoice(attention="se"), **QUICK_ARCH)
    cfg = quick_cfg(epochs=2, batch_size=256)  # identity, not learning: few steps do
    both = evaluate(arch, cfg.model_copy(update={"seeds": (0, 1)}))
    alone = [evaluate(arch, cfg.model_copy(update={"seeds": (seed,)})) for seed in (0, 1)]
    assert both.accuracies_per_seed == [a.accuracies_per_seed[0] for a in alone]
    # "accuracy after epoch k" is the mean over the seeds at k
    per_epoch = zip(*both.accuracies_per_seed, strict=True)
    assert both.accuracies == [statistics.fmean(epoch) for epoch in per_epoch]


class _Killed(Exception):
    pass


@pytest.mark.trains
def test_a_killed_evaluation_resumes_from_its_last_epoch_and_ends_identical(tmp_path):
    arch = uniform("resnet18", StageChoice(attention="eca"), **QUICK_ARCH)
    cfg = quick_cfg(epochs=3, batch_size=256).model_copy(update={"seeds": (0, 1)})
    uninterrupted = evaluate(arch, cfg)
    workdir = eval_dir(tmp_path, arch, cfg)
    seen: list[int] = []
    seconds: list[float] = []

    def die_after_two(e: EpochReport) -> None:
        seen.append(e.epoch)
        seconds.append(e.seconds)
        if e.epoch == 2:
            raise _Killed

    def listen(e: EpochReport) -> None:
        seen.append(e.epoch)
        seconds.append(e.seconds)

    with pytest.raises(_Killed):
        evaluate(arch, cfg, workdir, on_epoch=die_after_two)
    assert (workdir / "checkpoint.pt").is_file() and not (workdir / "outcome.json").exists()
    resumed = evaluate(arch, cfg, workdir, on_epoch=listen)
    # the checkpoint's epoch 2 is reported again (a rung decision may hang on it), then only
    # epoch 3 is trained
    assert seen == [1, 2, 2, 3]
    # each report carries the training time so far, the checkpoint's included on resume
    assert 0 < seconds[0] < seconds[1] == seconds[2] < seconds[3] == resumed.train_seconds
    assert resumed.model_dump(exclude={"train_seconds"}) == uninterrupted.model_dump(
        exclude={"train_seconds"}
    )
    epochs = [json.loads(line)["epoch"] for line in (workdir / "epochs.jsonl").open()]
    assert epochs == [1, 2, 3]  # no epoch trained twice
    assert not (workdir / "checkpoint.pt").exists()  # the outcome supersedes it


@pytest.mark.trains
def test_a_finished_evaluation_is_reused_only_for_its_own_arch_and_settings(tmp_path, caplog):
    cfg = quick_cfg(epochs=1)
    arch = uniform("resnet18", **QUICK_ARCH)
    other = uniform("resnet18", StageChoice(attention="se"), **QUICK_ARCH)
    first = evaluate(arch, cfg, eval_dir(tmp_path, arch, cfg))
    again = evaluate(arch, cfg, eval_dir(tmp_path, arch, cfg), on_epoch=pytest.fail)
    assert again == first  # from the workdir: nothing trained
    # The first outcome planted where the other architecture's evaluation keeps its files:
    planted = eval_dir(tmp_path, other, cfg)
    planted.mkdir()
    shutil.copy(eval_dir(tmp_path, arch, cfg) / "outcome.json", planted / "outcome.json")
    with caplog.at_level(logging.WARNING):
        scored = evaluate(other, cfg, planted)
    assert (
        f"it belongs to arch {arch.hash}" in caplog.text and f"not arch {other.hash}" in caplog.text
    )
    assert scored.arch_hash == other.hash and scored.params != first.params
    # ... and under other settings (more epochs) the stored outcome is not reused either.
    longer = quick_cfg(epochs=2)
    caplog.clear()
    shutil.copy(eval_dir(tmp_path, arch, cfg) / "outcome.json", planted / "outcome.json")
    with caplog.at_level(logging.WARNING):
        assert len(evaluate(other, longer, planted).accuracies) == 2
    assert f"not arch {other.hash} / eval {longer.fingerprint()}" in caplog.text


def test_fingerprint_is_the_same_on_a_cpu_head_and_a_gpu_worker(monkeypatch):
    cfg = quick_cfg()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_cpu = cfg.fingerprint()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cfg.fingerprint() == on_cpu
    assert cfg.model_copy(update={"device": "cuda"}).fingerprint() != on_cpu


def test_dataset_mismatch_is_one_clear_line():
    arch = uniform("resnet18", widths=(16, 32, 64, 128), stem="cifar", image_size=16)  # 3 chans
    with pytest.raises(ValueError, match="in_chans 3 but digits has 1"):
        evaluate(arch, quick_cfg(epochs=1))


@pytest.mark.trains
def test_a_stored_outcome_is_checked_against_the_bounds_of_each_request(tmp_path):
    cfg = quick_cfg(epochs=1)
    arch = uniform("resnet18", **QUICK_ARCH)
    workdir = eval_dir(tmp_path, arch, cfg)
    trained = evaluate(arch, cfg, workdir)
    assert trained.status == "ok" and trained.constraints == {}
    tight = evaluate(arch, cfg, workdir, constraints={"max_params": 1}, on_epoch=pytest.fail)
    assert tight.status == "infeasible" and tight.constraints["max_params"] == trained.params - 1
    loose = {"max_params": 10 * trained.params}
    again = evaluate(arch, cfg, workdir, constraints=loose, on_epoch=pytest.fail)
    assert again.status == "ok" and again.accuracy == trained.accuracy
    assert again.constraints == {"max_params": trained.params - loose["max_params"]}
    with pytest.raises(ValueError, match="unknown constraint 'max_colour'; allowed: max_flops"):
        evaluate(arch, cfg, workdir, constraints={"max_colour": 1})


def _bn_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.Dropout(0.5)
    )


def test_batchnorm_calibration_measures_the_current_weights_on_training_images():
    from evaluators.data import load_dataset
    from evaluators.train import calibrate_batchnorm

    data = load_dataset("digits", image_size=8)
    net = _bn_net()
    bn = net[1]
    net.eval()
    bn.running_mean.fill_(5.0)  # stale statistics from "earlier weights"
    rng = torch.get_rng_state()
    calibrate_batchnorm(net, data, images=96, batch_size=32)
    with torch.no_grad():
        batches = [net[0](data.normalize(data.train.images[i : i + 32])) for i in (0, 32, 64)]
    # Equal batches, momentum None: the running mean is the mean over all 96 images, and the
    # running variance the mean of the batches' unbiased variances.
    mean = torch.cat(batches).mean((0, 2, 3))
    var = torch.stack([b.var((0, 2, 3), unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, mean, atol=1e-5)
    assert torch.allclose(bn.running_var, var, rtol=1e-4)
    assert bn.momentum == 0.1 and not net.training  # put back as found
    assert torch.equal(torch.get_rng_state(), rng)  # the dropout in train mode drew nothing
    before = bn.running_mean.clone()
    calibrate_batchnorm(net, data, images=0, batch_size=32)  # 0: off
    assert torch.equal(bn.running_mean, before)


@pytest.mark.trains
def test_calibration_changes_what_is_scored_not_what_is_learned():
    from evaluators.data import load_dataset
    from evaluators.train import SeedTrainer, accuracy
    from spaces import build_model

    data = load_dataset("digits", image_size=16)
    arch = uniform("resnet18", StageChoice(attention="ca"), **QUICK_ARCH)
    runs = {}
    for images in (0, 512):
        settings = TrainSettings(epochs=5, batch_size=64, lr=0.2, bn_calibration=images)
        trainer = SeedTrainer(build_model(arch, seed=0), data, settings, seed=0)
        stale, scored = [], []
        for _ in range(2):
            trainer.train_epoch()
            stale.append(accuracy(trainer.model, data, data.val))
            scored.append(trainer.score("val"))
        weights = {
            k: v
            for k, v in trainer.model.state_dict().items()
            if "running" not in k and "num_batches" not in k
        }
        runs[images] = (stale, scored, weights, trainer.generator.get_state())
    (stale0, scored0, w0, g0), (_, scored1, w1, g1) = runs[0], runs[512]
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert torch.equal(g0, g1)
    assert scored0 == stale0  # off: the running averages, as before
    # Early in the schedule the running averages describe none of the recent weights; the
    # calibrated score is what the network can do (digits, epoch 1: ~0.2 against ~0.7).
    assert scored1[0] > stale0[0] + 0.2, (scored1, stale0)


def test_a_worker_training_many_architectures_compiled_never_falls_back_to_eager(
    dynamo_counters,
):
    counters = dynamo_counters
    cfg = quick_cfg(epochs=1, compile=True).model_copy(
        update={"dataset": "synthetic", "image_size": 8}
    )
    tiny = QUICK_ARCH | {
        "widths": (16, 16, 16, 16),
        "num_classes": 4,
        "in_chans": 3,
        "image_size": 8,
    }
    # Distinct architectures in one process, as one worker trains them: without a fresh
    # start per trial, the 5th passed dynamo's recompile_limit (8) and ran eagerly.
    choices = [StageChoice(attention=a, position=p) for a in ("se", "eca", "ca") for p in
               ("pre", "post")]  # fmt: skip
    for i, choice in enumerate(choices):
        assert evaluate(uniform("resnet18", choice, **tiny), cfg).status == "ok"
        assert counters["frames"]["total"] == counters["frames"]["ok"], f"gave up at {i + 1}"


def _pool_trainer(train_images: int, seed: int):
    from evaluators.data import load_dataset
    from evaluators.train import SeedTrainer

    data = load_dataset("digits", image_size=8)
    settings = TrainSettings(epochs=1, batch_size=64, train_images=train_images)
    return data, SeedTrainer(_bn_net(), data, settings, seed=seed)


def test_a_training_pool_fills_a_full_epoch_from_its_own_images_only():
    data, full = _pool_trainer(0, seed=3)
    _, pooled = _pool_trainer(100, seed=3)
    assert pooled.steps_per_epoch == full.steps_per_epoch == len(data.train) // 64
    order = pooled._order()
    assert len(order) == pooled.steps_per_epoch * 64
    counts = torch.bincount(order, minlength=len(data.train))
    used = counts.nonzero().flatten()
    assert torch.equal(used, pooled.pool.sort().values) and len(used) == 100
    # every pool image as often as the others, give or take the last, cut round
    assert counts[used].max() - counts[used].min() <= 1
    assert sorted(full._order().tolist()) == list(range(len(data.train)))


def test_each_seed_draws_its_own_pool_and_the_same_one_every_time():
    _, a = _pool_trainer(100, seed=0)
    _, again = _pool_trainer(100, seed=0)
    _, b = _pool_trainer(100, seed=1)
    assert torch.equal(a.pool, again.pool)
    assert not torch.equal(a.pool.sort().values, b.pool.sort().values)
    _, whole = _pool_trainer(10_000, seed=0)  # more than the split: all of it
    assert whole.pool is None


def test_a_training_pool_enters_the_fingerprint_only_when_set():
    base = quick_cfg()
    assert quick_cfg(train_images=0).fingerprint() == base.fingerprint()
    assert quick_cfg(train_images=360).fingerprint() != base.fingerprint()
