"""Reliability on real infrastructure: injected crashes at every window of the loop, repeated
random SIGKILLs, bad input, password hygiene and safe loading. Results feed RELIABILITY.md."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from search.cli import app
from search.config import load_config
from search.driver import run_search
from tests.studies import make_config, state_counts, trained_pairs

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
runner = CliRunner()


def _counts(cfg) -> Counter:
    return state_counts(optuna.load_study(study_name=cfg.study, storage=cfg.storage_url))


def snapshot(cfg) -> dict:
    """What storage holds right after a kill: finished trials (number -> values) and how many
    were RUNNING (a kill that landed mid-trial leaves them so)."""
    if not cfg.study_dir.is_dir():  # killed before it made the study's folder (slow start)
        return {"finished": {}, "running": 0}
    try:
        trials = optuna.load_study(study_name=cfg.study, storage=cfg.storage_url).trials
    except KeyError:  # killed before the study existed
        return {"finished": {}, "running": 0}
    finished = {t.number: list(t.values) for t in trials if t.state.name == "COMPLETE"}
    return {"finished": finished, "running": sum(t.state.name == "RUNNING" for t in trials)}


def _assert_exact(cfg, ledger, test: str, before: dict) -> None:
    """After the resume: every trial finished before the kills is still finished with the same
    values, the target is met with nothing RUNNING, and no (architecture, seed, epoch) was
    trained twice. The ledger gets what was observed, so RELIABILITY.md can show a loss."""
    study = optuna.load_study(study_name=cfg.study, storage=cfg.storage_url)
    after = {t.number: list(t.values) for t in study.trials if t.state.name == "COMPLETE"}
    kept = [n for n, values in before["finished"].items() if after.get(n) == values]
    counts = _counts(cfg)
    repeated = [p for p, n in trained_pairs(cfg.study_dir).items() if n != 1]
    ledger["trials"].append(
        {
            "test": test,
            "finished_before": len(before["finished"]),
            "kept": len(kept),
            "counted_after": counts["architectures"],
            "target": cfg.n_trials,
            "running_after": counts.get("RUNNING", 0),
            "trained_twice": len(repeated),
        }
    )
    assert len(kept) == len(before["finished"]), (before["finished"], after)
    assert counts["architectures"] == cfg.n_trials and "RUNNING" not in counts, counts
    assert not repeated, repeated


@pytest.mark.parametrize(
    "point",
    ["after_ask", "before_tell", "after_tell", "before_result", "after_result", "checkpoint_write"],
)
def test_fault_windows_then_resume_are_exact(tmp_path, ray_cluster, ledger, point):
    config = make_config(
        tmp_path, ray_cluster, n_trials=6, study=f"fault-{point.replace('_', '-')}"
    )
    cfg = load_config(config)
    env = os.environ | {"ATTNAS_CRASH_AT": point, "ATTNAS_CRASH_ONCE": str(tmp_path / "crashed")}
    proc = subprocess.run(
        [str(BIN / "attnas"), "search", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (tmp_path / "crashed").read_text() == point  # the fault really fired
    before = snapshot(cfg)
    driver_side = point in ("after_ask", "before_tell", "after_tell")
    if driver_side:
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
        assert before["running"] >= 1  # the driver died holding an unsettled trial
        ledger["kills"].append(
            {"kind": "driver-sigkill", "where": point, "running": before["running"]}
        )
    outcome = run_search(cfg)
    assert outcome.completed == cfg.n_trials
    _assert_exact(cfg, ledger, f"fault:{point}", before)
    ledger["faults"].append(point)
    ledger["tests"].append(f"fault:{point}")


@pytest.mark.timeout(900)  # 50-125 s in CI: the slowest tests
def test_repeated_random_sigkills_end_exact(tmp_path, ray_cluster, ledger):
    config = make_config(tmp_path, ray_cluster, n_trials=10, study="chaos")
    cfg = load_config(config)
    rng = random.Random(7)
    kills = 0
    finished: dict[int, list[float]] = {}
    while kills < 5:
        proc = subprocess.Popen(
            [str(BIN / "attnas"), "search", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(5, 14))
        if proc.poll() is not None:
            break  # it finished the whole budget before we struck: the check below still holds
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        seen = snapshot(cfg)
        finished |= seen["finished"]
        ledger["kills"].append(
            {"kind": "driver-sigkill", "where": "random", "running": seen["running"]}
        )
    assert kills >= 5 or _counts(cfg)["architectures"] == cfg.n_trials
    # the random kills struck mid-trial, not only between trials
    assert any(k["running"] for k in ledger["kills"] if k["where"] == "random")
    run_search(cfg)
    _assert_exact(cfg, ledger, "chaos", {"finished": finished, "running": 0})
    ledger["tests"].append("chaos")


def _one_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (
        result.output
    )
    return lines[0]


def test_bad_inputs_are_one_line(tmp_path, ray_cluster, postgres, ledger):
    from tests.pg import PASSWORD

    base = yaml.safe_load(make_config(tmp_path, ray_cluster, n_trials=2, study="bad").read_text())

    def cfg_file(name: str, text: str | None = None, **changes) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(base | changes))
        return path

    # A real study to corrupt and to resume with other objectives.
    good = load_config(cfg_file("good"))
    run_search(good)
    truncated = tmp_path / "trunc"
    truncated.mkdir()
    (truncated / "bad").mkdir()
    db = (good.study_dir / "study.db").read_bytes()
    (truncated / "bad" / "study.db").write_bytes(db[: len(db) // 3])
    garbage = tmp_path / "garbage"
    (garbage / "bad").mkdir(parents=True)
    (garbage / "bad" / "study.db").write_bytes(os.urandom(4096))

    cases = {
        "malformed YAML": (cfg_file("m", "space: {backbone: [resnet18\n"), "malformed YAML"),
        "unknown key": (cfg_file("u", **{"colour": 1}), "unknown key 'colour'"),
        "unknown attention": (
            cfg_file("a", space=base["space"] | {"attentions": ["none", "sk"]}),
            "unknown attention 'sk'",
        ),
        "invalid kernel": (
            cfg_file("k", space=base["space"] | {"kernel_sizes": [2]}),
            "kernel_sizes must be an odd integer >= 1 or 'auto', got 2",
        ),
        "ELA variant incompatible with every stage": (
            cfg_file(
                "e",
                space=base["space"]
                | {"attentions": ["ela"], "variants": ["T"], "widths": [16, 16, 48, 48]},
            ),
            "needs channels divisible by 32",
        ),
        "garbage SQLite file": (
            cfg_file("g", output_dir=str(garbage)),
            "is not an SQLite database",
        ),
        "truncated SQLite file": (cfg_file("t", output_dir=str(truncated)), "cannot open storage"),
        "PostgreSQL URL refusing connection": (
            cfg_file("p", storage=f"postgresql+psycopg2://attnas:{PASSWORD}@127.0.0.1:1/attnas"),
            "cannot open storage postgresql+psycopg2://attnas:***@127.0.0.1:1/attnas",
        ),
        "objectives differ from the study's": (
            cfg_file("o", objectives=["accuracy", "flops"]),
            "different config: objectives: ['accuracy', 'latency_rel'] -> ['accuracy', 'flops']",
        ),
        "missing dataset directory": (
            cfg_file(
                "d",
                eval=base["eval"] | {"dataset": "cifar10", "data_dir": str(tmp_path / "nope")},
                space=base["space"] | {"in_chans": 3},
                study="nodata",
            ),
            "does not exist; expected DATA_DIR/cifar-10-batches-py",
        ),
        "Ray address nobody listens on": (
            cfg_file("r", ray_address="127.0.0.1:1", study="noray"),
            "cannot reach a Ray cluster at '127.0.0.1:1'",
        ),
    }
    before = len(optuna.load_study(study_name="bad", storage=good.storage_url).trials)
    for name, (path, message) in cases.items():
        line = _one_line(runner.invoke(app, ["search", str(path)]))
        assert message in line, (name, line)
        assert PASSWORD not in line
        ledger["bad_inputs"].append(f"{name}: `{line[7:][:110]}`")
    # Nothing was written: the real study is unchanged, no new study folders or databases.
    assert len(optuna.load_study(study_name="bad", storage=good.storage_url).trials) == before
    assert not (tmp_path / "noray").exists() and not (tmp_path / "nodata" / "study.db").exists()
    ledger["tests"].append("bad-inputs")


def test_password_never_leaks(tmp_path, ray_cluster, postgres, ledger, monkeypatch):
    from tests.pg import PASSWORD

    config = make_config(tmp_path, ray_cluster, n_trials=3, study="secret", storage=postgres["url"])
    outputs = [runner.invoke(app, ["search", str(config)])]
    assert outputs[0].exit_code == 0, outputs[0].output
    study_dir = tmp_path / "secret"
    # Resume and status read the stored config, which holds no password: it comes from the
    # environment (libpq's PGPASSWORD, or ~/.pgpass) instead of any file.
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    outputs.append(runner.invoke(app, ["status", str(study_dir)]))
    outputs.append(runner.invoke(app, ["resume", str(study_dir), "--n-trials", "4"]))
    outputs.append(runner.invoke(app, ["report", str(study_dir)]))
    outputs.append(
        runner.invoke(app, ["export", str(study_dir), "-o", str(tmp_path / "best.yaml")])
    )
    for r in outputs:
        assert r.exit_code == 0, r.output
        assert PASSWORD not in r.output
    assert "attnas:***@" in outputs[0].output
    leaked = [
        p
        for p in [*tmp_path.rglob("*")]
        if p.is_file() and PASSWORD.encode() in p.read_bytes() and p != config
    ]
    assert not leaked, leaked  # config dump, results, checkpoints, Ray's experiment folder
    assert (study_dir / "ray").is_dir()
    ledger["tests"].append("password")


def test_crafted_yaml_and_pickle_are_refused(tmp_path, ledger):
    from evaluators.workdir import load_checkpoint

    marker = tmp_path / "pwned"
    evil_yaml = tmp_path / "evil.yaml"
    evil_yaml.write_text(f"study: !!python/object/apply:os.system ['touch {marker}']\n")
    line = _one_line(runner.invoke(app, ["search", str(evil_yaml)]))
    assert "malformed YAML" in line or "constructor" in line

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ckpt = tmp_path / "seed0.pt"
    ckpt.write_bytes(pickle.dumps({"model": Payload()}))
    assert load_checkpoint(ckpt) is None
    assert not marker.exists() and (tmp_path / "seed0.rejected").exists()
    ledger["tests"].append("safe-loading")
