"""Training: a real learning signal on digits, reproducibility across processes, and NaN
handling with a real divergence."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from evaluators import EvalConfig, TrainSettings, evaluate
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
                 train=TrainSettings(epochs=1, batch_size=64, lr=0.2))
arch = uniform('resnet18', StageChoice(attention='se'), widths=(16, 32, 64, 128), stem='cifar',
               image_size=16, in_chans=1)
print(json.dumps(evaluate(arch, cfg).accuracies_per_seed))
"""


def test_same_seed_same_accuracy_in_separate_processes():
    runs = [
        subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    a, b = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert a == b


def test_absurd_learning_rate_reports_nan_loss():
    cfg = quick_cfg(lr=1e6, epochs=2)
    m = evaluate(uniform("resnet18", **QUICK_ARCH), cfg)
    assert m.status == "nan_loss" and m.failed_epoch == 1
    assert math.isnan(m.accuracy)


def test_cache_returns_the_same_metrics(tmp_path):
    cfg = quick_cfg(epochs=1).model_copy(update={"cache_dir": str(tmp_path)})
    arch = uniform("resnet18", **QUICK_ARCH)
    first = evaluate(arch, cfg)
    again = evaluate(arch, cfg)
    assert not first.cached and again.cached and again.accuracy == first.accuracy
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_dataset_mismatch_is_one_clear_line():
    arch = uniform("resnet18", widths=(16, 32, 64, 128), stem="cifar", image_size=16)  # 3 chans
    with pytest.raises(ValueError, match="in_chans 3 but digits has 1"):
        evaluate(arch, quick_cfg(epochs=1))
