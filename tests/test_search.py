"""The search loop end to end, on a real Ray cluster (``ray start --head`` on 127.0.0.1,
shared by the session) and real Optuna storage: exact trial counts, resume after SIGKILL and
SIGTERM, the driver lock, the fingerprint check, and failing trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from results.record import read_record
from search.config import ConfigError, load_config
from search.driver import run_search
from search.paths import StudyPaths
from search.study import StudyLockedError, acquire_lock
from tests.studies import make_config, state_counts, trained_pairs

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request) -> str | None:
    """Each search/resume test runs against both storages; None = the default SQLite file."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres")["url"]


BIN = Path(sys.executable).parent


def states(study_dir: Path, name: str, storage: str | None = None) -> Counter:
    url = storage or f"sqlite:///{study_dir / 'study.db'}"
    return state_counts(optuna.load_study(study_name=name, storage=url))


def test_search_completes_exactly_n_with_baselines_once(tmp_path, ray_cluster, storage):
    cfg = load_config(
        make_config(tmp_path, ray_cluster, n_trials=7, study="exact", storage=storage)
    )
    outcome = run_search(cfg)
    assert outcome.completed == 7 and outcome.stop_reason is None
    study = optuna.load_study(study_name="exact", storage=cfg.storage_url)  # a plain client
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    counts = states(cfg.study_dir, "exact", storage)
    assert counts["architectures"] == 7 and counts.get("RUNNING") is None
    assert counts["COMPLETE"] == 7 + outcome.duplicates
    # Told from what the worker reported to Tune (only that carries the node that ran it).
    assert all(read_record(t).node for t in complete if read_record(t).counts)
    assert study.metric_names == ["accuracy", "latency_rel"]
    assert all(
        set(t.params)
        == {f"stage{i}_{d}" for i in (2, 3) for d in ("attn", "pos", "reduction", "kernel")}
        for t in complete
    )
    baselines = Counter(
        t.user_attrs.get("baseline") for t in study.trials if "baseline" in t.user_attrs
    )
    assert baselines == {"none": 1, "se": 1, "eca": 1, "ca": 1}
    # A second launch with the same target does nothing and adds nothing.
    again = run_search(cfg)
    assert again.told_this_run == 0 and len(
        optuna.load_study(study_name="exact", storage=cfg.storage_url).trials
    ) == len(study.trials)
    assert all(n == 1 for n in trained_pairs(cfg.study_dir).values())


def _driver(config: Path, *args: str) -> subprocess.Popen:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [str(BIN / "attnas"), "search", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_complete(
    study_dir: Path,
    name: str,
    at_least: int,
    proc: subprocess.Popen,
    limit=240.0,
    storage: str | None = None,
) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        # study.json is written once the study exists: polling earlier raced the driver's
        # own creation of the tables ("table studies already exists").
        if storage or (study_dir / "study.json").exists():
            try:
                if states(study_dir, name, storage).get("COMPLETE", 0) >= at_least:
                    return
            except Exception:
                pass
        if proc.poll() is not None:
            raise AssertionError(f"driver exited early: {proc.stdout.read()}")
        time.sleep(0.5)
    raise AssertionError("timed out waiting for trials")


def test_sigkill_then_resume_trains_each_pair_once(tmp_path, ray_cluster, storage):
    config = make_config(tmp_path, ray_cluster, n_trials=9, study="killed", storage=storage)
    study_dir = tmp_path / "killed"
    proc = _driver(config)
    _wait_complete(study_dir, "killed", 3, proc, storage=storage)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = states(study_dir, "killed", storage)
    assert before["COMPLETE"] >= 3
    outcome = run_search(load_config(config))
    after = states(study_dir, "killed", storage)
    assert outcome.completed == 9 and after["architectures"] == 9 and "RUNNING" not in after
    pairs = trained_pairs(study_dir)
    assert pairs and all(n == 1 for n in pairs.values()), pairs


def test_sigterm_stops_gracefully_and_resume_finishes(tmp_path, ray_cluster):
    config = make_config(tmp_path, ray_cluster, n_trials=8, study="termed")
    study_dir = tmp_path / "termed"
    proc = _driver(config)
    _wait_complete(study_dir, "termed", 2, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, out
    assert "interrupted by SIGTERM" in out and "attnas resume" in out
    assert "RUNNING" not in states(study_dir, "termed")
    outcome = run_search(load_config(config))
    assert outcome.completed == 8 and states(study_dir, "termed")["architectures"] == 8
    assert all(n == 1 for n in trained_pairs(study_dir).values())


def test_locked_study_and_changed_space_are_refused(tmp_path, ray_cluster, storage):
    config = make_config(tmp_path, ray_cluster, n_trials=2, study="guarded", storage=storage)
    cfg = load_config(config)
    lock = acquire_lock(StudyPaths(cfg.study_dir), cfg.study, cfg.storage_url)
    try:
        with pytest.raises(StudyLockedError, match="locked by another driver"):
            run_search(cfg)
    finally:
        lock.release()
    run_search(cfg)
    changed = load_config(config, ["space.attentions=[none,se]"])
    with pytest.raises(
        ConfigError,
        match=r"different config: space\.attentions: \['none', 'se', 'eca', 'ca'\] -> \['none', 'se'\]",
    ):
        run_search(changed)
    epochs = load_config(config, ["eval.train.epochs=2"])
    with pytest.raises(ConfigError, match=r"eval\.train\.epochs: 1 -> 2"):
        run_search(epochs)


def test_diverging_trials_fail_with_reason_and_stop_after_max_failures(tmp_path, ray_cluster):
    cfg = load_config(
        make_config(
            tmp_path, ray_cluster, n_trials=4, study="nan", eval__train__lr=1.0e6, max_failures=2
        )
    )
    outcome = run_search(cfg)
    counts = states(cfg.study_dir, "nan")
    # It stops at the third failure; the one other trial in flight (concurrency 2) may fail too.
    assert counts["FAIL"] in (3, 4) and "RUNNING" not in counts and outcome.completed == 0
    assert outcome.stop_reason and "max_failures=2" in outcome.stop_reason
    study = optuna.load_study(study_name="nan", storage=cfg.storage_url)
    reasons = {read_record(t).fail_reason for t in study.trials if t.state.name == "FAIL"}
    assert reasons == {"nan_loss at epoch 1"}


def _params(arch_file: Path) -> int:
    from spaces import ArchConfig, build_model

    return sum(p.numel() for p in build_model(ArchConfig.from_file(arch_file)).parameters())


def test_a_new_study_moves_an_old_studys_files_aside_and_never_records_them(tmp_path, ray_cluster):
    from typer.testing import CliRunner

    from search.cli import app

    config = make_config(tmp_path, ray_cluster, n_trials=3, study="reused")
    run_search(load_config(config))
    study_dir = tmp_path / "reused"
    (study_dir / "study.db").unlink()  # the old study's files stay: evals/, config.yaml, ...
    cfg = load_config(config, ["n_trials=2", "space.attentions=[none,cbam]"])
    outcome = run_search(cfg)
    assert outcome.moved_aside is not None and outcome.moved_aside.parent == study_dir
    assert {p.name for p in outcome.moved_aside.iterdir()} >= {"evals", "config.yaml", "study.json"}
    assert outcome.completed == 2
    study = optuna.load_study(study_name="reused", storage=cfg.storage_url)
    records = [read_record(t) for t in study.trials if t.state.name == "COMPLETE"]
    assert {r.label.split(" | ")[0] for r in records} <= {"none", "cbam@standard", "cbam@post"}
    assert all(r.eval_fingerprint == cfg.eval.fingerprint() for r in records)
    assert load_config(study_dir / "config.yaml").space.attentions == ("none", "cbam")
    # every told trial was trained in this study: one epoch log line per seed it trained
    trained = {key[0] for key in trained_pairs(study_dir)}
    assert {r.arch_hash for r in records} <= trained
    runner = CliRunner()
    for t in study.trials:
        if t.state.name != "COMPLETE":
            continue
        out = tmp_path / f"trial{t.number}.yaml"
        result = runner.invoke(
            app, ["export", str(study_dir), "--pick", f"trial:{t.number}", "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        import yaml

        source = yaml.safe_load(out.read_text())["source"]
        assert source["metrics"]["params"] == _params(out), t.number


def test_a_renamed_copy_of_a_study_folder_is_still_that_study(tmp_path, ray_cluster):
    import shutil

    from typer.testing import CliRunner

    from search.cli import app

    runner = CliRunner()
    config = make_config(tmp_path, ray_cluster, n_trials=3, study="orig")
    run_search(load_config(config))
    copy = tmp_path / "q"
    shutil.copytree(tmp_path / "orig", copy)
    status = runner.invoke(app, ["status", str(copy)])
    assert status.exit_code == 0 and "study orig:" in status.output, status.output
    refused = runner.invoke(
        app, ["resume", str(copy), "--n-trials", "4", "--set", "eval.train.epochs=2"]
    )
    assert refused.exit_code == 2 and "eval.train.epochs: 1 -> 2" in refused.output
    resumed = runner.invoke(app, ["resume", str(copy), "--n-trials", "4"])
    assert resumed.exit_code == 0, resumed.output
    storage = f"sqlite:///{copy / 'study.db'}"
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["orig"]
    assert states(copy, "orig")["architectures"] == 4  # in the copy's own database
    assert states(tmp_path / "orig", "orig")["architectures"] == 3  # the original untouched
    for cmd in (["export", str(copy), "-o", str(tmp_path / "b.yaml")], ["report", str(copy)]):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 0, result.output
    # A folder whose files name another study is refused with one line, not forked.
    other = make_config(tmp_path, ray_cluster, n_trials=1, study="other")
    run_search(load_config(other))
    shutil.copy(tmp_path / "orig" / "study.json", tmp_path / "other" / "study.json")
    result = runner.invoke(app, ["status", str(tmp_path / "other")])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "holds the files of another study ('orig'" in lines[0]


def test_a_search_optimises_a_named_deployment_target(tmp_path, ray_cluster):
    from results.frame import trials_frame

    path = make_config(
        tmp_path,
        ray_cluster,
        n_trials=5,
        study="targets",
        objectives=["accuracy", "latency_rel@onnxruntime"],
        constraints={"max_latency_ms@onnxruntime": 1000.0},
        eval__latency={
            "targets": ["torch", "onnxruntime"],
            "repeats": 3,
            "warmup": 1,
            "min_sample_ms": 0.2,
            "max_seconds": 0.3,
        },  # fmt: skip
    )
    cfg = load_config(path)
    assert run_search(cfg).completed == 5
    study = optuna.load_study(study_name="targets", storage=cfg.storage_url)
    assert study.metric_names == ["accuracy", "latency_rel@onnxruntime"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    for t in complete:
        record = read_record(t)
        assert set(record.latencies) == {"torch", "onnxruntime"}
        # What was told is the named target's ratio, not the first target's.
        assert t.values[1] == record.latencies["onnxruntime"]["latency_rel"]
        assert record.latencies["onnxruntime"]["runtime_version"].startswith("onnxruntime")
    df = trials_frame(study)
    done = df[df["state"] == "COMPLETE"]
    assert done["latency_rel@onnxruntime_lo"].notna().all()
    assert (done["latency_rel@onnxruntime_lo"] <= done["latency_rel@onnxruntime"]).all()
    assert done["latency_ms@torch"].notna().all()
    # The report shows one front per target: the optimised one, and torch's beside it.
    from results.report import write_report

    written = {p.name for p in write_report(study, tmp_path / "report")}
    assert {"pareto.png", "pareto_torch.png"} <= written
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "## Front on latency target `torch` (measured, not optimised)" in md
    assert "pareto_onnxruntime.png" not in written  # that one is the study's own front
