"""Results from a real (small) study: export reproduces the trial, ONNX matches PyTorch, the
report and validation are written."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import optuna
import pytest
import torch
from typer.testing import CliRunner

from results.record import read_record
from search.cli import app
from search.config import load_config
from search.driver import run_search
from spaces import ArchConfig, build_model, deploy
from tests.studies import make_config

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def small_study(tmp_path_factory, ray_cluster):
    root = tmp_path_factory.mktemp("results")
    cfg = load_config(make_config(root, ray_cluster, n_trials=6, study="res"))
    run_search(cfg)
    return cfg


def test_exported_config_reproduces_the_trial(small_study, tmp_path):
    study_dir = small_study.study_dir
    out = tmp_path / "best.yaml"
    result = runner.invoke(
        app, ["export", str(study_dir), "--pick", "max-accuracy", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output  # one line, however long the path
    arch = ArchConfig.from_file(out)
    study = optuna.load_study(study_name="res", storage=small_study.storage_url)
    number = int(re.search(r"trial: (\d+)", out.read_text()).group(1))
    trial = study.trials[number]
    recorded = read_record(trial).model_dump()
    assert arch.hash == recorded["arch_hash"]
    result = runner.invoke(app, ["evaluate", str(out), "--config", str(study_dir / "config.yaml")])
    assert result.exit_code == 0, result.output
    acc = float(re.search(r"accuracy\s+[│|]\s+([0-9.]+)", result.output).group(1))
    assert acc == pytest.approx(recorded["accuracy"], abs=5e-5)  # printed with 4 decimals
    assert f"{recorded['params']:,}" in result.output


def test_onnx_matches_pytorch(small_study, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "knee.yaml"
    result = runner.invoke(
        app, ["export", str(small_study.study_dir), "--pick", "knee", "--onnx", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    arch = ArchConfig.from_file(out)
    model = deploy(build_model(arch, seed=0)).eval()
    x = torch.randn(3, arch.in_chans, arch.image_size, arch.image_size)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(
        str(out.with_suffix(".onnx")), providers=["CPUExecutionProvider"]
    )
    got = session.run(None, {"image": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_front_export_without_output_writes_a_front_folder(small_study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", str(small_study.study_dir), "--front"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "front" / "pareto.csv").is_file() and not (tmp_path / "best.yaml").exists()


def test_front_export_and_caps(small_study, tmp_path):
    result = runner.invoke(
        app, ["export", str(small_study.study_dir), "--front", "-o", str(tmp_path / "front")]
    )
    assert result.exit_code == 0, result.output
    configs = sorted((tmp_path / "front").glob("trial_*.yaml"))
    assert configs and (tmp_path / "front" / "pareto.csv").is_file()
    for c in configs:
        ArchConfig.from_file(c)
    result = runner.invoke(
        app,
        [
            "export",
            str(small_study.study_dir),
            "--max-latency-ms",
            "1e-9",
            "-o",
            str(tmp_path / "x.yaml"),
        ],
    )
    assert result.exit_code == 2 and "no feasible trial satisfies the caps" in result.output
    result = runner.invoke(
        app,
        ["export", str(small_study.study_dir), "--pick", "best", "-o", str(tmp_path / "x.yaml")],
    )
    assert (
        result.exit_code == 2
        and "unknown --pick 'best'; allowed: knee, max-accuracy, min-latency, trial:N"
        in result.output
    )


def test_validate_then_report(small_study):
    study_dir = small_study.study_dir
    result = runner.invoke(app, ["validate", str(study_dir), "--seeds", "2"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", str(study_dir)])
    assert result.exit_code == 0, result.output
    report = study_dir / "report"
    names = ("pareto.png", "report.html", "hypervolume.png", "stages.png", "summary.md")
    for name in (*names, "trials.csv"):
        assert (report / name).is_file(), name
    assert not (study_dir / "trials.csv").exists()  # in report/, as the README says
    page = (report / "report.html").read_text()
    assert "<h2>The Pareto front (" in page and "<th>accuracy</th>" in page
    for name in ("pareto.png", "hypervolume.png", "stages.png", "summary.md", "trials.csv"):
        assert f'<a href="{name}">' in page, name
    md = (report / "summary.md").read_text()
    assert "## Pareto front" in md and "Held-out validation (2 seeds" in md
    assert "best baseline" in md
    # Every baseline that ran names its source in the summary and the HTML report.
    eca = "released ECA-ResNet-18/34: kernel 3 in every stage"
    assert eca in md and eca in (report / "report.html").read_text()
    assert "Hou et al., Coordinate Attention (CVPR 2021)" in md
    validated = json.loads((report / "validate.json").read_text())["rows"]
    assert all(bool(r["source"]) == (r["role"] == "baseline") for r in validated)


def test_plots_draw_the_study(small_study):
    import matplotlib.pyplot as plt

    from results.frame import objective_intervals, trials_frame
    from results.pareto import knee_point
    from results.report import pareto_figure, summary_md

    study = optuna.load_study(study_name="res", storage=small_study.storage_url)
    df = trials_frame(study)
    names = list(study.metric_names)
    fig = pareto_figure(df, names)
    artists = {a.get_gid(): a for a in fig.axes[0].get_children() if a.get_gid()}
    feasible = df[df["feasible"]]
    front = feasible[feasible["is_pareto"]]
    assert len(artists["trials"].get_offsets()) == len(feasible)
    assert feasible["duplicate_of"].isna().sum() == small_study.n_trials
    assert len(artists["front"].get_offsets()) == len(front) == int(df["is_pareto"].sum())
    assert len(artists["front-line"].get_xdata()) == len(front)
    n_base = df[df["feasible"] & df["is_baseline"]]["baseline"].nunique()
    assert len(artists["baselines"].get_offsets()) == n_base
    np.testing.assert_allclose(
        sorted(artists["front"].get_offsets()[:, 1]), sorted(front["accuracy"])
    )
    plt.close(fig)
    distinct = front.drop_duplicates("arch_hash")
    knee = distinct.iloc[
        knee_point(
            distinct[names].to_numpy(dtype=float),
            ["maximize", "minimize"],
            objective_intervals(distinct, names),
        )
    ]
    md = summary_md(study, df, names, [0.0, 10.0], None)
    assert f"**Knee** (best balance of the objectives): trial {knee['number']}" in md
    assert knee["label"].replace(" | ", " / ") in md


def test_export_refuses_an_onnx_graph_that_onnxruntime_runs_differently():
    import torch

    from results.export import ExportError, check_onnx
    from spaces import StageChoice, build_model, deploy, uniform
    from spaces.onnx import onnx_bytes

    arch = uniform("resnet18", StageChoice(attention="rcam"), stem="cifar", image_size=16,
                   in_chans=1, widths=(16, 16, 32, 32))  # fmt: skip
    model = deploy(build_model(arch, seed=0))
    x = torch.randn(2, 1, 16, 16)
    graph = onnx_bytes(model, x)
    assert check_onnx(graph, model, x) <= 1e-4
    other = deploy(build_model(arch, seed=1))  # the same graph cannot reproduce other weights
    with pytest.raises(ExportError, match=r"differs from PyTorch's by \d\.\d\de[-+]\d+ of the"):
        check_onnx(graph, other, x)


def test_onnx_graph_traced_on_one_image_is_the_graph_of_the_whole_batch():
    """The export traces one image (a serving batch costs the tracer minutes on a CPU): the
    graph must equal the one traced on the whole batch, and still run any batch size."""
    import io

    import onnxruntime as ort
    import torch

    from spaces import StageChoice, build_model, deploy, uniform
    from spaces.onnx import onnx_bytes

    arch = uniform("resnet18", StageChoice(attention="ca"), stem="cifar", image_size=16,
                   in_chans=1, widths=(16, 16, 32, 32))  # fmt: skip
    model = deploy(build_model(arch, seed=0)).eval()
    batch = torch.randn(5, 1, 16, 16)
    whole = io.BytesIO()
    torch.onnx.export(model, (batch,), whole, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)  # fmt: skip
    graph = onnx_bytes(model, batch)
    assert graph == whole.getvalue()
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = model(batch).numpy()
    got = session.run(None, {"image": batch.numpy()})[0]
    assert got.shape == (5, 10)
    assert abs(got - expected).max() <= 1e-4 * abs(expected).max()


def _train_cli(study_dir, out, *, crash_at: str | None = None):
    """``attnas train`` on the study's knee in a fresh process (SIGKILLed at ``crash_at``)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTNAS_CRASH")}
    if crash_at:
        env["ATTNAS_CRASH_AT"] = crash_at
    cmd = [sys.executable, "-m", "search.cli", "train", str(study_dir), "--pick", "knee"]
    cmd += ["--epochs", "3", "-o", str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_train_the_knee_kill_resume_and_load_it_everywhere(small_study, tmp_path):
    import onnxruntime as ort
    import timm
    from PIL import Image
    from safetensors.torch import load_file

    import spaces.timm_model  # noqa: F401  (registers "attnas")
    from spaces import load_trained

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    done = _train_cli(small_study.study_dir, whole)
    assert done.returncode == 0, done.stdout + done.stderr
    killed = _train_cli(small_study.study_dir, resumed, crash_at="checkpoint_write@3")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert not (resumed / "train.json").exists()
    again = _train_cli(small_study.study_dir, resumed)
    assert again.returncode == 0, again.stdout + again.stderr
    # On CPU the resumed run ends exactly where the uninterrupted one does.
    a, b = (json.loads((d / "train.json").read_text()) for d in (whole, resumed))
    assert a["epochs"] == b["epochs"] and len(a["epochs"]) == 3
    assert a["val_accuracy"] == b["val_accuracy"] and a["holdout_accuracy"] == b["holdout_accuracy"]
    wa, wb = (
        load_file(str(whole / "model.safetensors")),
        load_file(str(resumed / "model.safetensors")),
    )
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # the folder says where the network came from and what it is
    study = optuna.load_study(study_name="res", storage=small_study.storage_url)
    assert a["source"]["study"] == "res" and a["source"]["pick"] == "knee"
    arch = ArchConfig.from_file(resumed / "arch.yaml")
    assert arch.hash == read_record(study.trials[a["source"]["trial"]]).arch_hash == a["arch_hash"]
    card = (resumed / "README.md").read_text()
    assert f"{a['holdout_accuracy']:.4f}" in card and "latency on `torch`" in card
    assert 0.0 <= a["holdout_accuracy"] <= 1.0 and a["holdout_images"] > 0
    # load_trained, ONNX Runtime and timm (with its own data config and transforms) agree
    model = load_trained(resumed)
    x = torch.randn(4, arch.in_chans, arch.image_size, arch.image_size)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(resumed / "model.onnx"))
    got = session.run(None, {"image": x.numpy()})[0]
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    via_timm = timm.create_model("attnas", arch=str(resumed), pretrained=True).eval()
    cfg = timm.data.resolve_data_config({}, model=via_timm)
    transform = timm.data.create_transform(**cfg)
    pixels = (np.random.default_rng(0).random((8, 8)) * 255).astype("uint8")
    image = transform(Image.fromarray(pixels, mode="L")).unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(via_timm(image), model(image))
    # the same normalisation as training: (pixels / 255 - mean) / std
    mean, std = a["normalisation"]["mean"][0], a["normalisation"]["std"][0]
    assert torch.allclose(image[0, 0], (torch.from_numpy(pixels) / 255 - mean) / std, atol=1e-5)


def test_train_runs_as_one_task_on_a_ray_cluster(small_study, ray_cluster, tmp_path):
    import subprocess
    import sys

    from spaces import load_trained

    arch_file = tmp_path / "knee.yaml"
    exported = runner.invoke(
        app, ["export", str(small_study.study_dir), "--pick", "knee", "-o", str(arch_file)]
    )
    assert exported.exit_code == 0, exported.output
    out = tmp_path / "on-cluster"
    cmd = [sys.executable, "-m", "search.cli", "train", str(arch_file)]
    cmd += ["--config", str(small_study.study_dir / "config.yaml"), "--epochs", "1"]
    cmd += ["--address", ray_cluster, "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((out / "train.json").read_text())
    assert len(record["epochs"]) == 1 and record["source"] is None
    assert load_trained(out)(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_status_shows_the_target_of_the_latest_launch(small_study):
    status = runner.invoke(app, ["status", str(small_study.study_dir)])
    assert status.exit_code == 0 and "(target 6 architectures)" in status.output
    # the report's verdict on the front against the papers' baselines, in one line
    assert "against the papers (search accuracies" in status.output
    # and, before it, whether accuracy separates the study's architectures at all (two seeds
    # each; untestable only if every seed scored the same everywhere)
    from results.frame import trials_frame
    from results.verdict import study_separation

    study = optuna.load_study(study_name="res", storage=small_study.storage_url)
    separation = study_separation(trials_frame(study))
    assert math.isnan(separation.p) or separation.sentence() in status.output
    # a launch with another budget (here one already met: nothing is trained) is the target now
    resumed = runner.invoke(app, ["resume", str(small_study.study_dir), "--n-trials", "5"])
    assert resumed.exit_code == 0, resumed.output
    status = runner.invoke(app, ["status", str(small_study.study_dir)])
    assert "(target 5 architectures)" in status.output, status.output
    runner.invoke(app, ["resume", str(small_study.study_dir), "--n-trials", "6"])
