"""Latency measurement: structure, the stopping rule and the hardware record (no wall-clock
assertions)."""

from __future__ import annotations

import pytest
import torch

from evaluators import LatencySettings, measure_latency
from evaluators.latency import median_ci
from spaces import StageChoice, build_model, uniform

ARCH = dict(widths=(16, 32, 64, 128), stem="cifar", image_size=16, in_chans=1)


def test_interleaved_measurement_records_hardware_settings_and_intervals():
    cand = build_model(uniform("resnet18", StageChoice(attention="ca"), **ARCH))
    ref = build_model(uniform("resnet18", **ARCH))
    s = LatencySettings(repeats=5, warmup=1, min_sample_ms=0.5, max_seconds=0.5)
    r = measure_latency(cand, ref, (1, 16, 16), s)
    assert r.latency_iqr_ms >= 0 and r.target == s.targets[0] and r.image_size == 16
    # coordinate attention in every stage costs about half again at 16 px (BENCHMARKS.md):
    # the paired ratio says the candidate is the slower one, and agrees with the two medians
    assert r.latency_rel > 1.05, r
    assert r.latency_rel == pytest.approx(r.latency_ms / r.reference_ms, rel=0.15)
    assert r.latency_rel_ci[0] <= r.latency_rel <= r.latency_rel_ci[1]
    assert r.latency_ci_ms[0] <= r.latency_ms <= r.latency_ci_ms[1]
    assert {"device", "torch", "cuda", "name", "threads"} <= set(r.hardware)
    # Copies in deploy form (eval mode, RCAM fused) are timed; the caller's modules are untouched.
    assert cand.training and ref.training


def test_sampling_stops_on_precision_or_on_time_never_before_the_minimum():
    model = build_model(uniform("resnet18", **ARCH))
    loose = LatencySettings(repeats=7, warmup=1, min_sample_ms=0.5, rel_ci=10.0)
    assert measure_latency(model, model, (1, 16, 16), loose).blocks == 7  # precise at once
    # An interval no measurement reaches: sampling runs until the time limit.
    strict = LatencySettings(repeats=3, warmup=1, min_sample_ms=0.5, rel_ci=1e-9, max_seconds=0.3)
    r = measure_latency(model, model, (1, 16, 16), strict)
    assert r.seconds >= 0.3 and r.blocks > 3


def test_an_architecture_timed_against_a_separate_copy_of_itself_reads_one():
    # What `attnas evaluate` does for the no-attention network: the candidate and a separately
    # built reference (other weights, same cost), timed in interleaved blocks. The paired
    # ratio is 1 up to noise; 0.8-1.25 is far wider than its measured spread (1-2%, see
    # BENCHMARKS.md) and far narrower than any systematic error (a copy timed cold, a missing
    # warm-up, the wrong model timed) would leave.
    arch = uniform("resnet18", **ARCH)
    candidate, reference = build_model(arch, seed=0), build_model(arch, seed=1)
    assert candidate is not reference
    s = LatencySettings(repeats=9, warmup=2, min_sample_ms=2, max_seconds=1.5)
    r = measure_latency(candidate, reference, (1, 16, 16), s)
    assert r.blocks >= 9 and r.reference_ms > 0
    assert 0.8 < r.latency_rel < 1.25, r
    assert r.latency_rel_ci[0] <= r.latency_rel <= r.latency_rel_ci[1]


def test_median_interval_uses_the_order_statistics():
    xs = [float(v) for v in range(1, 101)]  # median 50.5
    lo, hi = median_ci(list(reversed(xs)))
    # n = 100: 49.5 -+ 1.96 * 10 / 2 = 9.8 -> 0-based ranks 39 and 60: the values 40 and 61
    assert (lo, hi) == (40.0, 61.0)
    assert median_ci([3.0]) == (3.0, 3.0)


@pytest.mark.parametrize("bad", [{"rel_ci": 0}, {"max_seconds": -1}, {"repeats": 2}])
def test_bad_latency_settings_are_refused(bad):
    with pytest.raises(ValueError):
        LatencySettings(**bad)


# -- deployment targets ----------------------------------------------------------------------
def test_latency_shorthand_is_one_torch_target_and_names_take_runtime_defaults():
    from evaluators import LatencyTarget

    s = LatencySettings(batch_size=4, threads=2, channels_last=True)
    assert s.targets == (LatencyTarget(runtime="torch", batch_size=4, threads=2,
                                       channels_last=True),)  # fmt: skip
    assert LatencySettings(compile=True).targets[0].runtime == "torch_compile"
    named = LatencySettings(targets=["torch", "onnxruntime"])
    assert [t.name for t in named.targets] == ["torch", "onnxruntime"]
    assert named.target("onnxruntime").runtime == "onnxruntime" and named.target().name == "torch"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"targets": ["tflite"]},
            "unknown runtime 'tflite'; allowed: torch, torch_compile, onnxruntime, openvino",
        ),  # fmt: skip
        ({"targets": ["torch", "torch"]}, "latency.targets repeat a name"),
        ({"targets": ["torch"], "batch_size": 2}, "give batch_size inside each of latency.targets"),
        ({"targets": []}, "give at least one target"),
        (
            {"targets": [{"runtime": "torch", "compile_mode": "reduce-overhead"}]},
            "compile_mode 'reduce-overhead' applies to the torch_compile runtime only, not 'torch'",
        ),
        (
            {"targets": [{"runtime": "torch_compile", "compile_mode": "fast"}]},
            "'default', 'reduce-overhead', 'max-autotune' or 'max-autotune-no-cudagraphs'",
        ),
    ],
)
def test_bad_targets_are_refused_with_the_allowed_values(settings, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        LatencySettings(**settings)
    with pytest.raises(ValueError, match="unknown latency target 'tpu'; allowed: torch"):
        LatencySettings().target("tpu")


def test_every_target_times_the_deploy_form_at_its_own_resolution():
    from evaluators import measure_targets

    cand = build_model(uniform("resnet18", StageChoice(attention="rcam"), **ARCH))
    ref = build_model(uniform("resnet18", **ARCH))
    before = {k: v.clone() for k, v in cand.state_dict().items()}
    s = LatencySettings(
        targets=[{"runtime": "torch"}, {"runtime": "onnxruntime", "image_size": 24}],
        repeats=3, warmup=1, min_sample_ms=0.5, max_seconds=0.3,
    )  # fmt: skip
    got = measure_targets(cand, ref, (1, 16, 16), s)
    assert list(got) == ["torch", "onnxruntime"]
    assert got["torch"].image_size == 16 and got["onnxruntime"].image_size == 24
    assert got["onnxruntime"].runtime_version.startswith("onnxruntime ")
    assert all(r.latency_rel > 0 and r.compile_seconds is None for r in got.values())
    # Deploy form is timed on copies: the caller's (train-form) network is untouched.
    after = cand.state_dict()
    assert before.keys() == after.keys() and all(before[k].equal(after[k]) for k in before)


def test_a_target_that_cannot_run_here_is_one_line_before_training():
    import importlib.util

    from evaluators import EvalConfig
    from evaluators.evaluate import check_latency_targets
    from evaluators.runtimes import RuntimeUnavailable

    arch = uniform("resnet18", StageChoice(attention="eca"), **ARCH)
    ok = EvalConfig(image_size=16, latency={"targets": ["torch", "onnxruntime"]})
    check_latency_targets([arch], ok)  # both run here
    if importlib.util.find_spec("openvino") is None:
        missing = EvalConfig(image_size=16, latency={"targets": ["openvino"]})
        with pytest.raises(RuntimeUnavailable, match=r"pip install 'attnas\[openvino\]'"):
            check_latency_targets([arch], missing)
    half = EvalConfig(image_size=16, latency={"targets": [{"runtime": "onnxruntime",
                                                           "dtype": "bfloat16"}]})  # fmt: skip
    with pytest.raises(RuntimeUnavailable, match="onnxruntime is timed in float32"):
        check_latency_targets([arch], half)


@pytest.mark.slow
def test_torch_compile_reports_its_compile_time_apart_from_latency():
    model = build_model(uniform("resnet18", **ARCH | {"image_size": 8}))
    s = LatencySettings(targets=["torch_compile"], repeats=3, warmup=1, min_sample_ms=0.5,
                        max_seconds=0.3)  # fmt: skip
    r = measure_latency(model, model, (1, 8, 8), s)
    assert r.compile_seconds is not None and r.compile_seconds > 0
    assert r.target.runtime == "torch_compile"


def test_on_a_gpu_each_timed_pass_starts_from_an_idle_device(monkeypatch):
    # CI has no GPU: fake CUDA events and synchronize, and check the order of what is done.
    # The timed pass must be fenced off from the untimed pass queued before it; else the
    # events read queue backlog for one model and launch time for the other.
    from evaluators import latency

    log: list[str] = []

    class FakeEvent:
        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing

        def record(self) -> None:
            log.append("record")

        def elapsed_time(self, end: FakeEvent) -> float:
            return 2.0

    monkeypatch.setattr(latency.torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(latency.torch.cuda, "synchronize", lambda: log.append("sync"))

    def run(name: str):
        return lambda: log.append(name)

    a = latency.Prepared(run("a"), "fake", cuda_events=True)
    b = latency.Prepared(run("b"), "fake", cuda_events=True)
    assert latency._Pair(a, b).block(2) == (2.0, 2.0, 1.0)
    # pair 1: A then B; pair 2: B then A; each an untimed pass, a sync, then the timed pass
    expected = [x for which in "abba" for x in (which, "sync", "record", which, "record")]
    assert log[: len(expected)] == expected
    assert log[len(expected) :] == ["sync"]  # the events are read once all have completed


def test_compile_mode_reaches_torch_compile_and_stays_out_of_stored_fingerprints(monkeypatch):
    from evaluators import runtimes
    from evaluators.latency import LatencyTarget

    # At its default it is not dumped: studies and tables stored before it keep their
    # fingerprints (the pinned fingerprint test in test_train.py also covers this).
    assert "compile_mode" not in LatencyTarget().model_dump()
    assert "compile_mode" not in LatencySettings(compile=True).model_dump()["targets"][0]
    mode = "max-autotune-no-cudagraphs"
    shorthand = LatencySettings(compile=True, compile_mode=mode).targets[0]
    assert shorthand.runtime == "torch_compile" and shorthand.model_dump()["compile_mode"] == mode
    assert LatencyTarget.model_validate(shorthand.model_dump()) == shorthand

    seen = []
    monkeypatch.setattr(runtimes.torch, "compile", lambda model, mode: seen.append(mode) or model)
    model = build_model(uniform("resnet18", **ARCH)).eval()
    x = torch.randn(1, 1, 16, 16)
    prepared = runtimes.prepare(model, shorthand, x)
    assert seen == [mode] and prepared.compile_seconds is not None
    # CUDA graphs need a GPU: on a CPU that is one line before any trial, not a silent fallback
    graphs = LatencyTarget(name="server", runtime="torch_compile", compile_mode="reduce-overhead")
    with pytest.raises(runtimes.RuntimeUnavailable, match="'server'.*needs a GPU"):
        runtimes.prepare(model, graphs, x)
    assert seen == [mode]


class _Chain(torch.nn.Module):
    """A network whose depth changes its graph: each depth is a distinct compile for dynamo."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Conv2d(1, 1, 1) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x).relu()
        return x


def test_a_worker_timing_many_networks_on_torch_compile_never_falls_back_to_eager(
    dynamo_counters,
):
    counters = dynamo_counters
    fast = {"warmup": 1, "repeats": 3, "min_sample_ms": 1, "max_seconds": 0.05}
    settings = LatencySettings(targets=["torch_compile"], **fast)
    # 10 distinct candidates against one reference: past dynamo's recompile_limit (8), where
    # each later forward used to run eagerly while it was timed as compiled.
    for depth in range(1, 11):
        measure_latency(_Chain(depth), _Chain(12), (1, 8, 8), settings)
        assert counters["frames"]["total"] == counters["frames"]["ok"], f"gave up at {depth}"
    assert not any("recompile limit" in reason for reason in counters["unimplemented"])


def test_an_onnxruntime_session_that_fell_back_to_the_cpu_is_refused_not_timed():
    """ONNX Runtime only logs when the CUDA provider's libraries fail to load and then runs on
    the CPU; timing that as the GPU target would report a CPU number under a GPU name."""
    from evaluators.runtimes import RuntimeUnavailable, require_provider

    class Session:
        def __init__(self, providers):
            self.providers = providers

        def get_providers(self):
            return self.providers

    require_provider(
        Session(["CUDAExecutionProvider", "CPUExecutionProvider"]),
        "CUDAExecutionProvider",
        "server",
    )
    with pytest.raises(RuntimeUnavailable) as err:
        require_provider(Session(["CPUExecutionProvider"]), "CUDAExecutionProvider", "server")
    assert str(err.value) == (
        "target 'server': onnxruntime's CUDAExecutionProvider did not load here (its CUDA or "
        "cuDNN libraries are missing); the session runs on ['CPUExecutionProvider']"
    )


def test_a_block_ratio_is_the_median_of_its_pairs_so_one_preempted_call_does_not_move_it(
    monkeypatch,
):
    """On a shared CPU one call in a block can be preempted for many times its length; the
    block's mean then moves by it, while the median of the adjacent pairs' ratios does not."""
    from evaluators import latency

    clock = [0.0]
    monkeypatch.setattr(latency.time, "perf_counter", lambda: clock[0])

    def run(durations_ms: list[float]):
        steps = iter(durations_ms)
        return lambda: clock.__setitem__(0, clock[0] + next(steps) / 1000)

    # each turn: an untimed pass (0 ms here), then the timed one; the third A call preempted
    a = latency.Prepared(run([0, 2, 0, 2, 0, 20, 0, 2]), "fake", cuda_events=False)
    b = latency.Prepared(run([0, 1, 0, 1, 0, 1, 0, 1]), "fake", cuda_events=False)
    ms_a, ms_b, ratio = latency._Pair(a, b).block(4)
    assert (ms_a, ms_b) == pytest.approx((6.5, 1.0))  # the means keep the preemption
    assert ratio == pytest.approx(2.0)  # the ratio does not


def test_compiling_on_a_cpu_leaves_the_terminal_quiet():
    import subprocess
    import sys

    # The first inductor compile imports torch.utils.cpp_extension, which on a CUDA build
    # without a GPU warns about CUDA_HOME; attnas never builds extensions.
    code = "import evaluators, torch.utils.cpp_extension"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "No CUDA runtime" not in run.stderr, run.stderr
