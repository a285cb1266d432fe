"""The Ray worker is a thin adapter: it reports each epoch and the outcome, records why it
crashed, and a worker process reused for hundreds of trials does not leak."""

from __future__ import annotations

import os
import resource

import pytest

import search.worker as worker
from evaluators import EpochReport, EvalConfig, Outcome, eval_dir
from evaluators.hygiene import node_gate
from evaluators.workdir import EvalDir
from spaces import ArchConfig, uniform

ARCH = uniform("resnet18", widths=(16, 16, 32, 32), stem="cifar", image_size=8, in_chans=1)
CFG = EvalConfig(dataset="digits", image_size=8, measure_latency=False)


def _spec(tmp_path, number: int = 0) -> worker.TrialSpec:
    return worker.TrialSpec(
        number=number,
        arch=ARCH.to_dict(),
        eval=CFG.model_dump(mode="json"),
        evals_dir=str(tmp_path / "evals"),
        logs_dir=str(tmp_path / "logs"),
        constraints={},
    )


def _stub_outcome(arch: ArchConfig, cfg: EvalConfig) -> Outcome:
    return Outcome(
        status="ok",
        arch=arch.to_dict(),
        arch_hash=arch.hash,
        eval_fingerprint=cfg.fingerprint(),
        split="val",
        seeds=[0],
        accuracy=0.5,
        accuracy_std=0.0,
        accuracies=[0.5],
        accuracies_per_seed=[[0.5]],
        latency_ms=None,
        latency_iqr_ms=None,
        latency_rel=None,
        reference_latency_ms=None,
        flops=1,
        params=1,
        train_seconds=0.0,
        device="cpu",
        hardware={},
    )


@pytest.fixture
def gate_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNAS_GATE_DIR", str(tmp_path / "gate"))
    node_gate.cache_clear()
    yield
    node_gate.cache_clear()


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def test_one_reused_worker_runs_200_trials_without_leaking(tmp_path, monkeypatch, gate_dir):
    def stub_evaluate(arch, cfg, workdir, *, constraints, gate, on_epoch):
        with gate.timing():  # what a real evaluation does with the node gate
            pass
        with gate.training_step():
            on_epoch(EpochReport(1, 0.5, [0.5]))
        return _stub_outcome(arch, cfg)

    monkeypatch.setattr(worker, "evaluate", stub_evaluate)
    reports: list[dict] = []
    for number in range(20):  # warm-up: imports, caches, the gate opened once
        worker.execute(_spec(tmp_path, number), reports.append)
    descriptors, rss = _open_descriptors(), _rss_bytes()
    for number in range(20, 220):
        worker.execute(_spec(tmp_path, number), reports.append)
    assert _open_descriptors() == descriptors
    assert _rss_bytes() - rss < 16 * 2**20
    assert len(reports) == 2 * 220  # one epoch, then the outcome, per trial
    assert reports[-2] == {"epoch": 1, "accuracy": 0.5, "accuracies": [0.5]}  # per seed: rungs
    assert Outcome.model_validate_json(reports[-1]["outcome"]).arch_hash == ARCH.hash
    assert len(list((tmp_path / "logs").glob("trial-*.log"))) == 220  # one log per trial


def test_a_crash_is_recorded_in_the_evaluation_folder_for_the_driver(
    tmp_path, monkeypatch, gate_dir
):
    def crashing(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(worker, "evaluate", crashing)
    with pytest.raises(RuntimeError):
        worker.execute(_spec(tmp_path), lambda r: None)
    store = EvalDir(eval_dir(tmp_path / "evals", ARCH, CFG), ARCH.hash, CFG.fingerprint())
    assert store.last_error() == "RuntimeError: CUDA out of memory"
    trial_log = (tmp_path / "logs" / "trial-0.log").read_text()
    assert f"trial 0: {ARCH.label()}" in trial_log  # written as the trial ran ...
    assert "RuntimeError: CUDA out of memory" in trial_log  # ... and the traceback
    monkeypatch.setattr(worker, "evaluate", lambda arch, cfg, *a, **k: _stub_outcome(arch, cfg))
    worker.execute(_spec(tmp_path), lambda r: None)
    assert store.last_error() is None  # a new attempt does not inherit the old reason
