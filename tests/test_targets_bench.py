"""bench/targets.py's GPU targets, checked where no GPU is: each is a valid latency target,
one a GPU cannot have here is recorded with its reason, and the report says how it was timed."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from evaluators.latency import LatencyTarget

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402
import targets as bench_targets  # noqa: E402


def test_gpu_targets_are_valid_and_time_a_serving_batch_at_the_deployment_resolution():
    gpu = bench_targets.targets(224, "cuda")
    parsed = {name: LatencyTarget(**t, name="t") for name, t in gpu.items()}
    assert next(iter(gpu)) == "train-res eager" and parsed["train-res eager"].image_size is None
    deployed = [t for name, t in parsed.items() if name != "train-res eager"]
    assert {(t.image_size, t.batch_size) for t in deployed} == {(224, bench_targets.GPU_BATCH)}
    assert parsed["cuda graphs"].compile_mode == "reduce-overhead"
    assert parsed["torch_compile"].runtime == "torch_compile"
    assert parsed["torch_compile"].dtype == "bfloat16" and parsed["torch_compile"].channels_last
    assert "onnxruntime" in bench_targets.targets(64, "cpu")  # the CPU set is unchanged


def test_a_target_that_cannot_run_here_is_recorded_with_its_reason(monkeypatch):
    # CUDA graphs on a CPU: refused in one line, the other targets still measured
    small = {
        "train-res eager": {"runtime": "torch"},
        "cuda graphs": {"runtime": "torch_compile", "compile_mode": "reduce-overhead"},
    }
    monkeypatch.setattr(bench_targets, "targets", lambda resolution, device="cpu": small)
    partial = []
    sampling = {"repeats": 3, "warmup": 1, "min_sample_ms": 1, "max_seconds": 0.2}
    space = bench_targets.measure_space(
        "quickstart.yaml", 3, 16, 3, sampling, Console(quiet=True),
        on_row=lambda s: partial.append((len(s["architectures"]), "kendall_tau" in s)),
    )  # fmt: skip
    rows = space["architectures"]
    # saved after every architecture, its agreement with it: a run cut short keeps its taus
    assert partial == [(1, True), (2, True), (3, True)]
    assert all(set(r["rel"]) == {"train-res eager"} for r in rows)
    assert all("reduce-overhead" in r["unavailable"]["cuda graphs"] for r in rows)
    assert list(space["kendall_tau"]) == []  # a target never measured pairs with nothing


def test_the_report_says_how_gpu_targets_were_timed():
    tau = {"train-res eager | cuda graphs": {"tau": 0.4, "n": 4}}
    result = {
        "device": "cuda", "resolution": 224,
        "targets": bench_targets.targets(224, "cuda"),
        "hardware": {"name": "GPU X", "torch": "2.11.0"},
        "versions": {"torch": "2.11.0", "triton": "3.6.0", "cudnn": "91900"},
        "spaces": [{
            "config": "quickstart.yaml", "backbone": "resnet18", "training_resolution": 16,
            "architectures": [{"rel": {"cuda graphs": 1.2}}] * 4, "kendall_tau": tau,
            "largest_rank_moves": {"cuda graphs": [{"rank_shift": 3.0, "label": "ca | ..."}]},
        }],
    }  # fmt: skip
    text = report.targets(result)
    assert "at 224 px" in text and "batch 32, CUDA events; torch 2.11.0, triton 3.6.0" in text
    # a pipe inside a cell is escaped, or it would split the cell
    assert "| train-res eager \\| cuda graphs | 0.400 | 4 |" in text
    assert "| cuda graphs | +3 | `ca \\| ...` |" in text
    assert "were asked for" not in text  # no count asked for: nothing to say about a cut
    result["spaces"][0] |= {"requested": 16}
    result["spaces"][0]["largest_rank_moves"]["cuda graphs"][0]["rank_shift"] = 0.0
    text = report.targets(result)
    assert "trained at 16 px; the run ended with its lease, 16 were asked for" in text
    assert "| cuda graphs | +0 | none moved |" in text


def test_a_run_cut_short_keeps_the_earlier_copy_of_a_space_it_had_not_reached(
    tmp_path, monkeypatch
):
    """A GPU lease that ends while the first space is timed must not drop the second."""
    import contextlib
    import json

    out = tmp_path / "t.json"
    earlier = [
        {"config": c, "architectures": [{"label": f"old {c}", "rel": {}}]}
        for c in bench_targets.CONFIGS
    ]
    out.write_text(
        json.dumps({"measured_at": "then", "hardware": {"name": "A"}, "spaces": earlier})
    )

    def cut_short(config, *args, **kwargs):
        if config == "quickstart.yaml":
            raise KeyboardInterrupt  # the lease ends before this space's first architecture
        partial = {"config": config, "architectures": [{"label": "new", "rel": {}}]}
        args[6](partial)  # on_row after one architecture
        return partial

    monkeypatch.setattr(bench_targets, "measure_space", cut_short)
    monkeypatch.setattr(bench_targets, "hardware_info", lambda device: {"name": "B"})
    argv = ["targets.py", "--out", str(out), "--configs", "mobilenetv2_quickstart.yaml",
            "quickstart.yaml"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with contextlib.suppress(KeyboardInterrupt):
        bench_targets.main()
    spaces = {s["config"]: s for s in json.loads(out.read_text())["spaces"]}
    assert spaces["quickstart.yaml"]["architectures"] == [
        {"label": "old quickstart.yaml", "rel": {}}
    ]
    assert spaces["quickstart.yaml"]["hardware"] == {"name": "A"}
    assert spaces["quickstart.yaml"]["measured_at"] == "then"
    assert spaces["mobilenetv2_quickstart.yaml"]["architectures"][0]["label"] == "new"
    assert spaces["mobilenetv2_quickstart.yaml"]["hardware"] == {"name": "B"}


def test_the_report_says_what_placements_cost_on_each_target_against_eager_on_the_same_ones():
    rows = [
        {"label": "none", "rel": {"eager": 1.0, "torch_compile": 1.0}, "ci": {}},
        {"label": "se", "rel": {"eager": 1.2, "torch_compile": 1.6}, "ci": {}},
        {"label": "ca", "rel": {"eager": 1.5}, "ci": {}},
    ]
    for row in rows:
        row["ci"] = {k: [v * 0.99, v * 1.01] for k, v in row["rel"].items()}
    table = report._target_costs(rows)
    assert table[0] == ["eager", 3, "1.200", "1.000-1.500", "1.200", "1.0%"]
    # Compiled on the first two only: eager's median over those two is the fair comparison.
    assert table[1] == ["torch_compile", 2, "1.300", "1.000-1.600", "1.100", "1.0%"]
