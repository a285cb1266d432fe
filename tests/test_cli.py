"""The CLI: --help everywhere, one clear line and exit 2 on bad input, and `evaluate`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search.cli import app
from spaces import StageChoice, build_model, uniform

runner = CliRunner()


@pytest.mark.parametrize(
    "cmd",
    [
        [],
        ["search"],
        ["resume"],
        ["status"],
        ["space", "show"],
        ["evaluate"],
        ["validate"],
        ["fidelity"],
        ["train"],
        ["export"],
        ["report"],
    ],
)
def test_help_everywhere(cmd):
    result = runner.invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    # flags are shown as flags, not as options taking a value they would refuse
    assert "<bool>" not in result.output


def test_zero_budgets_are_refused_not_ignored(tmp_path):
    for flag in ("--n-trials", "--timeout"):
        result = runner.invoke(app, ["search", "--set", f"output_dir={tmp_path}", flag, "0"])
        name = "n_trials" if flag == "--n-trials" else "timeout_s"
        assert name in _one_line_error(result)
    assert not any(tmp_path.iterdir())


@pytest.mark.trains
def test_the_evaluate_help_example_runs(tmp_path):
    example = re.search(r"--set (\S+=\S+)", runner.invoke(app, ["evaluate", "--help"]).output)
    assert example is not None
    arch = uniform("resnet18", StageChoice(), widths=(16, 16, 32, 32), stem="cifar", in_chans=1)
    arch = arch.model_copy(update={"image_size": 8})
    arch.to_yaml(tmp_path / "a.yaml")
    result = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "a.yaml"), "--set", example.group(1)]
        + ["--set", "latency.repeats=3", "--set", "latency.max_seconds=0.3"],
    )
    assert result.exit_code == 0, result.output


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("space: {attentions: [se, sk]}\n", [], "unknown attention 'sk'; allowed: none, se"),
        ("space: {positions: [tail]}\n", [], "positions: 'tail' is not a position of resnet18"),
        (
            "space: {kernel_sizes: [4]}\n",
            [],
            "kernel_sizes must be an odd integer >= 1 or 'auto', got 4",
        ),
        ("space: {kernel_sizes: [-3]}\n", [], "got -3"),
        ("eval: {epochs: 3}\n", [], "unknown key 'eval.epochs'"),
        ("space: [1, 2\n", [], "malformed YAML at line"),
        (
            "",
            ["--set", "sampler.name=cmaes"],
            "unknown sampler 'cmaes'; allowed: nsga2, tpe, gp, random, nsga3",
        ),
        ("", ["--set", "objectives=[speed]"], "unknown objective 'speed'"),
        (
            "",
            ["--set", "objectives=[accuracy,latency_rel@onnxruntime]"],
            "unknown latency target 'onnxruntime' in objectives or constraints; "
            "eval.latency.targets names: torch",
        ),
        ("", ["--set", "objectives=[flops@torch]"], "allowed: accuracy, latency_ms"),
        ("", ["--set", "constraints.max_speed@torch=3"], "unknown constraint 'max_speed@torch'"),
        (
            "",
            ["--set", "eval.latency.targets=[torch,tflite]"],
            "unknown runtime 'tflite'; allowed: torch, torch_compile, onnxruntime, openvino",
        ),
        (
            "",
            ["--set", "n_trials=0"],
            "n_trials: Input should be greater than or equal to 1, got 0",
        ),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(tmp_path, content, args, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(content + f"output_dir: {tmp_path / 'runs'}\n")
    result = runner.invoke(app, ["space", "show", str(cfg), *args])
    line = _one_line_error(result)
    assert message in line, line
    result = runner.invoke(app, ["search", str(cfg), *args])
    assert message in _one_line_error(result)
    assert not (tmp_path / "runs").exists()


def test_missing_config_and_study(tmp_path):
    assert "config file not found" in _one_line_error(
        runner.invoke(app, ["search", str(tmp_path / "x.yaml")])
    )
    assert "is not a study folder" in _one_line_error(runner.invoke(app, ["resume", str(tmp_path)]))


def test_missing_data_dir_is_one_line(tmp_path):
    arch = uniform("resnet18", widths=(16, 32, 64, 128), stem="cifar", image_size=32)
    path = tmp_path / "a.yaml"
    arch.to_yaml(path)
    result = runner.invoke(
        app, ["evaluate", str(path), "--dataset", "cifar10", "--data-dir", str(tmp_path / "none")]
    )
    assert "does not exist; expected DATA_DIR/cifar-10-batches-py" in _one_line_error(result)


def test_corrupt_sqlite_storage_is_refused(tmp_path):
    study = tmp_path / "runs" / "broken"
    study.mkdir(parents=True)
    (study / "study.db").write_bytes(b"this is not a database" * 10)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'runs'}\nstudy: broken\n")
    line = _one_line_error(runner.invoke(app, ["search", str(cfg)]))
    assert "is not an SQLite database" in line


def test_space_show_lists_dimensions_and_baselines():
    from search.config import load_config
    from spaces import SearchSpace

    result = runner.invoke(app, ["space", "show", "configs/quickstart.yaml"])
    assert result.exit_code == 0
    shown = SearchSpace(load_config(Path("configs/quickstart.yaml"), []).space)
    assert f"distinct architectures: {shown.size():,}" in result.output
    for name, values in shown.distributions().items():  # every dimension, with its values
        row = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert all(str(v) in row for v in values), (name, row)
    assert [b.name for b in shown.baselines()] == [
        line.split("│")[1].strip()
        for line in result.output.split("baselines", 1)[1].splitlines()
        if line.count("│") > 2 and line.split("│")[1].strip() not in ("", "name")
    ]
    assert "skipped ela-T: variant T is not in space.variants" in result.output
    assert "channels seen at each position" in result.output


@pytest.mark.parametrize(
    "config", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.stem
)
def test_shipped_configs_validate_and_hold_their_baselines(config):
    from search.config import load_config
    from spaces import SearchSpace

    cfg = load_config(config)
    space = SearchSpace(cfg.space)
    assert space.size() > 1000 and len(space.baselines()) >= 4
    for baseline in space.baselines():  # each is the space's point up to the authors' options
        told = space.decode(space.encode_baseline(baseline))
        assert [s.attention for s in told.stages] == [s.attention for s in baseline.arch.stages]


@pytest.mark.trains
def test_evaluate_prints_metrics(tmp_path):
    arch = uniform(
        "resnet18",
        StageChoice(attention="eca"),
        widths=(16, 16, 32, 32),
        stem="cifar",
        image_size=8,
        in_chans=1,
    )
    path = tmp_path / "a.yaml"
    arch.to_yaml(path)
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(path),
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--set",
            "latency.repeats=3",
            "--set",
            "latency.max_seconds=1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1]
        for line in result.output.splitlines()
        if len(cells := [c.strip() for c in line.strip("│┃ ").split("│")]) == 2
    }
    from evaluators.flops import count_flops

    counted = count_flops(build_model(arch), (1, 1, 8, 8))
    assert rows["params"] == f"{counted.params:,}" and rows["flops"] == f"{counted.flops:,}"
    assert rows["status"] == "ok"
    assert re.search(r"^\[1/1\] epochs \d+ s: accuracy 0\.\d{3}", result.output, re.M)  # not a tty
    accuracy, std = (float(x) for x in re.findall(r"\d\.\d{4}", rows["accuracy"])[:2])
    assert 0 <= accuracy <= 1 and std == 0 and "(1 seeds)" in rows["accuracy"]
    ratio, lo, hi = (float(x) for x in re.findall(r"\d+\.\d+", rows["latency_rel"]))
    assert lo <= ratio <= hi and ratio > 1  # ECA in every stage is never free


@pytest.mark.slow
def test_fidelity_on_a_users_config_prints_tau_and_writes_its_table(tmp_path):
    import json

    from tests.studies import make_config

    config = make_config(tmp_path, None, study="fid")
    args = ["fidelity", str(config), "--archs", "2", "--seeds", "2", "--long-factor", "2"]
    result = runner.invoke(app, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "Kendall tau" in result.output and "short (1 epochs) against long (2)" in result.output
    assert "further than random sets of as many architectures" in " ".join(result.output.split())
    table = json.loads((tmp_path / "fid" / "fidelity" / "fidelity.json").read_text())
    assert table["long_epochs"] == 2 and table["seeds"] == [0, 1]
    # the sample is every baseline of the space (4 here), even when fewer were asked for
    assert [a["baseline"] for a in table["architectures"]] == ["none", "se", "eca", "ca"]
    assert all(len(a["long_curves"][0]) == 2 for a in table["architectures"])


def test_objectives_and_constraints_name_latency_targets(tmp_path):
    from search.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'runs'}\n")
    loaded = load_config(
        cfg,
        [
            "eval.latency.targets=[torch,onnxruntime]",
            "objectives=[accuracy,latency_rel@onnxruntime,latency_ms]",
            "constraints.max_latency_ms@onnxruntime=5",
        ],
    )
    assert loaded.directions == ["maximize", "minimize", "minimize"]
    assert loaded.constraints.active() == {"max_latency_ms@onnxruntime": 5}
    assert [t.runtime for t in loaded.eval.latency.targets] == ["torch", "onnxruntime"]


def test_train_refuses_bad_input_in_one_line(tmp_path):
    missing = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "architecture file not found" in _one_line_error(missing)
    arch = uniform("resnet18", StageChoice(), widths=(16, 16, 32, 32), stem="cifar", in_chans=1)
    arch.to_yaml(tmp_path / "a.yaml")
    bad = runner.invoke(app, ["train", str(tmp_path / "a.yaml"), "--dataset", "svhn"])
    assert bad.exit_code == 2 and "unknown dataset 'svhn'; allowed: digits" in _one_line_error(bad)
    seeds = runner.invoke(app, ["train", str(tmp_path / "a.yaml"), "--set", "seeds=[0,1]"])
    assert seeds.exit_code == 2 and "ships one network" in _one_line_error(seeds)
    assert not (tmp_path / "trained").exists()


def test_a_refused_second_driver_prints_one_line_naming_the_real_holder(tmp_path):
    import subprocess
    import sys

    from search.paths import StudyPaths

    lock = StudyPaths(tmp_path / "quickstart").lock
    lock.parent.mkdir(parents=True)
    lock.write_text("pid 1 on elsewhere")  # stale text: the holder never wrote its own
    code = "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
    code += "print('held', flush=True); time.sleep(120)"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = runner.invoke(app, ["search", "--set", f"output_dir={tmp_path}"])
        line = _one_line_error(result)  # no header, no progress bar: the error alone
        assert f"locked by another driver (pid {holder.pid} on " in line, line
        assert "pid 1 on elsewhere" not in line
    finally:
        holder.kill()
        holder.wait()


def test_fidelity_advice_tells_a_biased_short_schedule_from_a_noisy_one():
    from search.cli import _fidelity_advice

    biased = _fidelity_advice(0.09, 0.46, 30)  # the clutter figures in BENCHMARKS.md
    assert "change its recipe" in biased and "0.46" in biased
    assert "add seeds" in _fidelity_advice(0.25, 0.46, 30)  # within 2 x 0.13 of it
    assert "change its recipe" in _fidelity_advice(0.25, 0.46, 400)  # 2 x 0.034 at 400
    one_seed = _fidelity_advice(0.2, float("nan"), 30)
    assert "change its recipe" in one_seed and "nan" not in one_seed
    # The long recipe stopped at the short length ranks unlike its own end (the clutter
    # figures: gap +0.07 to +0.41): length, not the recipe, is the advice.
    late = _fidelity_advice(0.09, 0.46, 30, [0.07, 0.41])
    assert "lengthen it before searching" in late and "change its recipe" not in late
    assert "change its recipe" in _fidelity_advice(0.09, 0.46, 30, [-0.05, 0.3])
    # Within seed noise of the ceiling, but corrected for that noise even unlimited seeds stay
    # below the target: the recipe, not the seeds, is the advice.
    capped = _fidelity_advice(0.25, 0.46, 30, None, "tau 0.6 would need 9 seeds", [-0.1, 0.5])
    assert "change its recipe" in capped and "upper bound 0.50" in capped
    assert "add seeds" in _fidelity_advice(0.25, 0.46, 30, None, None, [-0.1, 1.0])


def test_fidelity_verdict_asks_first_whether_the_long_schedule_separates_anything():
    """A sample the long schedule cannot tell apart has no ranking for a short one to match:
    the verdict says so (and that only cost separates them) before any advice on the recipe."""
    from search.cli import _fidelity_verdict

    clutter = {"kendall_tau": 0.088, "tau_ceiling": 0.46, "long_separation_p": 7e-5}
    assert "unlike the long one" in _fidelity_verdict(clutter, 30)
    assert "change its recipe" in _fidelity_verdict(clutter, 30)
    tied = clutter | {"kendall_tau": 0.7, "long_separation_p": 0.4}  # tau no matter
    text = _fidelity_verdict(tied, 30)
    assert "does not tell these architectures apart" in text and "only cost" in text
    bounded = _fidelity_verdict(tied | {"long_placement_sd_upper": 0.0038}, 30)
    assert "tied as far as this task can tell (true spread at most 0.38 points sd)" in bounded
    assert "much as the long one" in _fidelity_verdict(clutter | {"kendall_tau": 0.65}, 30)
    # Within seed noise of the ceiling: how many seeds the target would take (the Fashion-MNIST
    # screen's seed agreements: 12 per schedule).
    noisy = {"kendall_tau": 0.215, "tau_ceiling": 0.28, "long_separation_p": 0.047}
    seeds = {"short_seed_tau": 0.123, "long_seed_tau": 0.254}
    assert "tau 0.6 would need 12 seeds per schedule" in _fidelity_verdict(noisy | seeds, 12)
    assert "would need" not in _fidelity_verdict(clutter | seeds, 30)  # bias: seeds won't do
    outlook = {"unlimited_seeds_tau": 0.39, "unlimited_seeds_tau_ci": [-1.0, 1.0]}
    text = _fidelity_verdict(noisy | seeds | outlook, 12)
    assert "with unlimited seeds tau would approach 0.39 (95% interval -1.00 to 1.00)" in text


def test_evaluate_help_lists_every_dataset():
    from evaluators.data import DATASETS
    from search.cli import DATASET_HELP

    assert ", ".join(DATASETS) + "." == DATASET_HELP


def test_tables_in_a_log_are_wide_enough_for_a_four_stage_label(monkeypatch):
    """Outside a terminal rich drew 80 columns, folding each front row's architecture over
    four lines in a log; COLUMNS, when a user sets it, still decides."""
    from search import cli

    monkeypatch.delenv("COLUMNS", raising=False)
    assert cli._console(stderr=False).width == cli.LOG_COLUMNS  # pytest's stdout: no terminal
    label = " | ".join(["eca@standard(kernel_size=3)"] * 4)  # 117 characters
    table = cli.Table()
    for column in ("#", "accuracy", "latency_rel", "architecture (per stage)"):
        table.add_column(column)
    table.add_row("2", "0.9889", "1.245", label)
    log = cli._console(stderr=False)
    with log.capture() as captured:
        log.print(table)
    assert label in captured.get()  # on one line
    monkeypatch.setenv("COLUMNS", "100")
    assert cli._console(stderr=False).width == 100
