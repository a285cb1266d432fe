"""Every benchmark script runs in its --quick mode and writes what BENCHMARKS.md reads.

No timing is asserted: benchmarks measure, tests only prove the scripts work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_throughput_quick(tmp_path):
    out = tmp_path / "t.json"
    text = run("throughput.py", "--out", str(out))
    r = json.loads(out.read_text())
    assert r["quick"] and len(r["evaluations"]) == 3 and r["evaluations_per_hour_per_worker"] > 0
    assert "evaluations per hour per worker" in text


def test_measurement_quick(tmp_path):
    out = tmp_path / "m.json"
    run("measurement.py", "--out", str(out))
    r = json.loads(out.read_text())
    assert all(x["ratio_2macs_over_torch"] == 1.0 for x in r["flops"])
    assert r["latency"][0]["runs"] == 2 and len(r["latency"][0]["latency_rel_runs"]) == 2


@pytest.mark.timeout(900)  # 50-125 s in CI: the slowest tests
def test_tabular_and_samplers_quick(tmp_path):
    table = tmp_path / "table.csv"
    run("tabular.py", "--out", str(table), "--workers", "1")
    rows = table.read_text().splitlines()
    assert rows[0].startswith("arch_hash,") and len(rows) == 5  # header + 4 architectures
    out = tmp_path / "s.json"
    stored = ROOT / "bench" / "data" / "tabular_resnet18_s23.csv"
    run("samplers.py", "--out", str(out), "--table", str(stored))
    r = json.loads(out.read_text())
    assert [e["sampler"] for e in r["efficiency"]] == ["nsga2", "tpe", "gp", "random"]
    assert all(0 < e["hv@25"] <= 1 + 1e-9 for e in r["efficiency"])
    # Repeated proposals are answered without counting, as in a search: 25 distinct each.
    assert all(e["distinct_archs"] == 25 for e in r["efficiency"])
    assert all(c["s_per_ask@100"] is not None for c in r["cost"])


def test_multifidelity_quick_replays_both_schedules(tmp_path):
    out = tmp_path / "mf.json"
    stored = ROOT / "bench" / "data" / "tabular_resnet18_s23.csv"
    text = run("multifidelity.py", "--out", str(out), "--table", str(stored))
    r = json.loads(out.read_text())
    assert r["quick"] and r["rungs"] == [1] and r["eta"] == 3
    import importlib.util

    pairs = [(x["sampler"], x["schedule"]) for x in r["rows"]]
    syne_tune = importlib.util.find_spec("syne_tune") is not None  # optional, beside ours
    assert pairs == [
        (s, k) for s in ("random", "nsga2", "tpe") for k in ("full", "successive_halving")
    ] + ([("syne_tune (random)", "moasha")] if syne_tune else [])
    for x in r["rows"]:
        assert 0 <= x["hv@30"] <= x["hv@60"] <= 1 + 1e-9  # more epochs never lose front
        # halving stops a share of the trials once the rung fills; the full schedule none
        assert (x["stopped_share"] == 0) == (x["schedule"] == "full")
        assert x["schedule"] == "full" or 0.2 < x["stopped_share"] < 0.9
    assert "hypervolume ratio against epochs spent" in text


@pytest.mark.timeout(900)  # 50-125 s in CI: the slowest tests
def test_live_halving_quick_runs_both_schedules_on_one_budget(tmp_path):
    out = tmp_path / "live.json"
    run("live_halving.py", "--out", str(out))
    r = json.loads(out.read_text())
    assert r["quick"] and set(r["runs"]) == {"full", "successive_halving"}
    for x in r["runs"].values():
        # the budget stops new trials; those in flight (2 at a time) may finish past it
        assert x["epochs_spent"] >= r["budget_epochs"] and x["finished"] >= 1
        assert x["hypervolume"] > 0 and x["front_size"] >= 1
    assert r["runs"]["full"]["stopped_at_a_rung"] == 0 and r["runs"]["full"]["rungs"] == []
    assert r["runs"]["successive_halving"]["rungs"] == [1]


@pytest.mark.timeout(900)  # 50-125 s in CI: the slowest tests
def test_overhead_quick(tmp_path):
    out = tmp_path / "o.json"
    run("overhead.py", "--out", str(out))
    r = json.loads(out.read_text())
    assert r["trials"] == 4 and r["distinct_trained"] >= 1
    assert r["search_seconds"] > 0 and r["bare_gated_seconds"] > 0
