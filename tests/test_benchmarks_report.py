"""BENCHMARKS.md is generated from the stored results, and only from measured ones."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _report_module():
    sys.path.insert(0, str(ROOT / "bench"))
    import report

    return report


def _make_words(target: str) -> list[str]:
    """The words of a make target's first recipe line, continuation lines joined, as the
    shell would split them."""
    import shlex

    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return shlex.split(makefile.split(f"\n{target}:", 1)[1].split("\n")[1])


def test_benchmarks_md_is_what_the_stored_results_generate(tmp_path, monkeypatch):
    """A hand edit of BENCHMARKS.md, or a result stored without regenerating it, fails."""
    report = _report_module()
    monkeypatch.setattr(report, "OUT", tmp_path / "BENCHMARKS.md")
    report.main()
    assert (tmp_path / "BENCHMARKS.md").read_text() == (ROOT / "BENCHMARKS.md").read_text()


def test_report_renders_measured_figures_and_never_quick_or_missing_ones(tmp_path, monkeypatch):
    report = _report_module()
    stored = json.loads((ROOT / "bench" / "results" / "throughput.json").read_text())
    quick = json.loads((ROOT / "bench" / "results" / "overhead.json").read_text()) | {"quick": 1}
    given = {"throughput": stored, "overhead": quick}
    monkeypatch.setattr(report, "_load", lambda name: given.get(name))
    monkeypatch.setattr(report, "OUT", tmp_path / "BENCHMARKS.md")
    report.main()
    sections = {
        part.split("\n", 1)[0]: part
        for part in (tmp_path / "BENCHMARKS.md").read_text().split("\n## ")
    }
    rate = f"**{stored['evaluations_per_hour_per_worker']:.0f} evaluations per hour per worker.**"
    assert rate in sections["Throughput"]
    assert all(f"{e['accuracy']:.3f}" in sections["Throughput"] for e in stored["evaluations"])
    assert "Not measured yet." in sections["Framework overhead"]  # a quick run is never shown
    assert "Not measured yet." in sections["Short-schedule fidelity"]
    assert "No GPU figures yet." in sections["GPU check"]
    assert "No GPU figures yet." in sections["Deployment targets on a GPU"]
    assert [title for title, _, _ in report.SECTIONS.values()] == list(sections)[1:]


def test_sampler_verdict_names_each_checkpoint_where_a_sampler_beats_random():
    report = _report_module()
    eff = [
        {"sampler": "gp", "hv@25": 0.99, "vs_random@25": 0.04, "beats_random@25": True,
         "hv@100": 0.999, "vs_random@100": 0.006, "beats_random@100": False},
        {"sampler": "tpe", "hv@25": 0.96, "vs_random@25": 0.01, "beats_random@25": False,
         "hv@100": 0.998, "vs_random@100": 0.005, "beats_random@100": False},
        {"sampler": "random", "hv@25": 0.95, "hv@100": 0.993},
    ]  # fmt: skip
    said = report._verdict(eff, [25, 100])
    assert said == (
        "Beyond random's 95% interval: after 25 architectures gp; after 100 none does "
        "(all samplers at 0.993-0.999 of the true hypervolume)."
    )
    for e in eff[:2]:
        e["beats_random@25"] = False
    assert report._verdict(eff, [25, 100]).startswith("After 100 architectures no sampler")


def test_gpu_section_shows_errors_and_the_reference_beside_itself_and_beside_a_module(monkeypatch):
    report = _report_module()

    def row(model: str, ref_ms: float, target: str = "eager bf16 channels_last") -> dict:
        return {
            "model": model, "target": target, "latency_ms": 2 * ref_ms,
            "latency_ci_ms": [1.9 * ref_ms, 2.1 * ref_ms], "iqr_over_median": 0.05,
            "reference_ms": ref_ms, "latency_rel": 2.0, "latency_rel_ci": [1.9, 2.1],
            "latency_rel_iqr_over_median": 0.02, "compile_seconds": None,
        }  # fmt: skip

    def result(alone: float, beside: float) -> dict:
        return {
            "device": "cuda", "image_size": 224, "batch_size": 32,
            "hardware": {"name": "GPU X", "cuda": "13.0", "python": "3.12"},
            "versions": {"torch": "2.11.0"},
            "latency": [
                row("resnet18 none (against itself)", alone),
                row("resnet18 ca@standard", beside),
                {"model": "resnet18 ca@standard", "target": "onnxruntime fp32",
                 "error": "no CUDA provider in this onnxruntime"},
                row("resnet18 ca@standard", 1.0, "compile") | {"runtime": "torch_compile",
                                                               "latency_rel": 2.3},
                row("resnet18 ca@standard", 1.0, "graphs") | {
                    "runtime": "torch_compile", "compile_mode": "reduce-overhead",
                    "latency_rel": 1.35},
            ],
            "training_trial": {"error": "RuntimeError: boom"},
            "cifar_shaped_epochs": [],
        }  # fmt: skip

    stored = {"gpu_check_unsynced": result(1.6, 2.0)}
    monkeypatch.setattr(report, "_load", lambda name: stored.get(name))
    text = report.gpu_check(result(2.5, 2.55))
    assert "GPU X, CUDA 13.0" in text and "torch 2.11.0" in text
    assert "| no CUDA provider in this onnxruntime |" in text
    assert "read 1.600 ms beside itself and 2.000 ms beside ca@standard (+25%)" in text
    assert "Synchronised, it reads 2.500 and 2.550 ms (+2%), inside the host's jitter" in text
    assert "Training trial failed: RuntimeError: boom" in text
    assert "reduce-overhead`): resnet18 ca@standard 2.30x -> 1.35x." in text
    # jitter 5%: a gap of +40% is beyond it, and the partner's times are set beside it
    slow = result(2.5, 3.5)
    slow["latency"].append(row("resnet18 ca@standard", 1.5, "eager fp32"))
    assert (
        "it reads 2.500 and 3.500 ms (+40%), beyond the host's jitter in the self-check row (5%). "
        "Both networks of that pairing ran slow (ca@standard 7.000 ms, against 3.000 ms in fp32)"
    ) in report.gpu_check(slow)
    slow["latency"][-1]["latency_ms"] = 9.0  # the partner was faster in bf16 than in fp32
    assert "its partner did not slow with it" in report.gpu_check(slow)
    stored.clear()  # no earlier run stored: no before/after paragraph, the table still shows
    assert "beside itself" not in report.gpu_check(result(2.5, 2.55))


def test_gpu_check_keeps_each_runs_latency_rel_and_the_report_shows_the_spread():
    report = _report_module()
    import gpu_check
    from benchio import keep_history

    stored = json.loads((ROOT / "bench" / "results" / "gpu_check.json").read_text())
    earlier = {k: v for k, v in stored.items() if k not in ("history", "measured_at")}
    refused = {"model": "resnet18 ca@standard", "target": "openvino", "error": "not here"}
    earlier["latency"] = [*earlier["latency"], refused]
    later = json.loads(json.dumps(earlier)) | {"measured_at": "later"}
    for row in later["latency"]:
        if "error" not in row:
            compiled = row.get("runtime") == "torch_compile"
            row["latency_rel"] *= 1.02 if compiled else 1.1 if "ca@mid" in row["model"] else 1.0
    two = keep_history(earlier, later, gpu_check.headline)
    assert [h["measured_at"] for h in two] == [None, "later"]
    heads = two[-1]["latency_rel"]
    assert "resnet18 ca@standard / openvino" not in heads  # a refused target: no ratio
    assert len(heads) == sum("error" not in x for x in later["latency"])
    text = report.gpu_check(later | {"history": two})
    # (1.02 - 1) / 1.01 and (1.1 - 1) / 1.05: the spread is taken about the median
    assert "Compiled rows moved by at most 2.0% between runs, eager rows by up to 9.5%" in text
    assert "| not recorded (NVIDIA H200) | later (NVIDIA H200) | spread |" in text
    assert "moved by at most" not in report.gpu_check(later | {"history": two[-1:]})


def test_scale_section_names_its_machine_and_the_worker_processes_when_recorded():
    report = _report_module()
    stored = json.loads((ROOT / "bench" / "results" / "scale.json").read_text())
    unrecorded = ("hardware", "versions", "worker_processes", "trials_per_worker_process")
    bare = {k: v for k, v in stored["runs"][0].items() if k not in unrecorded}
    old = report.scale({k: v for k, v in stored.items() if k not in unrecorded} | {"runs": [bare]})
    assert "machine and versions not recorded" in old and "| - |" in old
    run = bare | {"worker_processes": 40, "trials_per_worker_process": 52.2}
    new = stored | {
        "runs": [run],
        "hardware": {"name": "AMD EPYC", "torch": "2.14.1", "cpus": "2"},
        "versions": {"ray": "2.60.0", "postgresql": "16.4"},
    }
    text = report.scale(new)
    assert "on 2 cores (name AMD EPYC, torch 2.14.1; ray 2.60.0, postgresql 16.4)" in text
    assert "| 40 (52.2) |" in text


def test_measurement_keeps_each_runs_headline_and_the_report_shows_the_drift():
    report = _report_module()
    import measurement
    from benchio import HISTORY_RUNS

    stored = json.loads((ROOT / "bench" / "results" / "measurement.json").read_text())
    undated = {k: v for k, v in stored.items() if k not in ("history", "measured_at")}
    first = measurement.history({}, undated)
    assert first == [measurement.headline(undated)] and first[0]["measured_at"] is None
    # A result stored before runs kept a history becomes the history's first row.
    slower = json.loads(json.dumps(stored))
    for row in slower["latency"]:
        row["latency_rel_median"] *= 1.1 if row["arch"] == "eca@standard" else 1.0
    slower["measured_at"] = "later"
    two = measurement.history(undated, slower)
    assert [h["measured_at"] for h in two] == [None, "later"]
    long = measurement.history({"history": two * 6}, slower)
    assert len(long) == HISTORY_RUNS and long[-1]["measured_at"] == "later"
    text = report.measurement(slower | {"history": two})
    assert "latency_rel moved by up to 9.5% (eca@standard)" in text  # (1.1 - 1) / 1.05
    assert "| not recorded |" in text and "| later |" in text
    assert "Between runs" not in report.measurement(slower | {"history": two[-1:]})


def test_measurement_history_says_in_which_sittings_the_noise_floor_held():
    report = _report_module()
    import measurement

    stored = json.loads((ROOT / "bench" / "results" / "measurement.json").read_text())

    def sitting(when: str, iqr: float, spread: float, itself: float) -> dict:
        r = json.loads(json.dumps(stored)) | {"measured_at": when}
        for i, row in enumerate(r["latency"]):  # the worst model sets the sitting's figures
            row["rel_iqr_over_median_per_run"], row["rel_spread"] = iqr / (i + 1), spread / (i + 1)
        r["reference_against_itself"]["within_2pct"] = itself
        return r

    noisy, quiet = sitting("noisy", 0.047, 0.035, 1.0), sitting("quiet", 0.01, 0.02, 0.9)
    assert measurement.headline(noisy)["rel_iqr_worst"] == 0.047
    # A headline kept before it carried the worst IQR and spread is drawn again from the
    # previous run's full result; older ones stay as kept, and are not judged.
    bare = {k: v for k, v in measurement.headline(noisy).items() if "worst" not in k}
    kept = measurement.history(noisy | {"history": [bare | {"measured_at": "older"}, bare]}, quiet)
    assert "rel_iqr_worst" not in kept[0] and kept[1]["rel_spread_worst"] == 0.035
    assert [measurement.noise_floor_met(h) for h in kept] == [None, False, True]
    assert measurement.noise_floor_met(kept[2] | {"itself_within_2pct": 0.85}) is False  # < 7/8
    text = report.measurement(quiet | {"history": kept})
    assert "held in 1 of the 2 sittings that recorded those figures" in text
    assert "| 4.7% / 3.5% | 100% | no |" in text and "| 1.0% / 2.0% | 90% | yes |" in text
    older = next(line for line in text.splitlines() if line.startswith("| older |"))
    assert older.endswith("| - | 100% | - |")


def test_fidelity_section_says_whether_the_long_recipe_settles_its_ranking_by_the_short_length():
    report = _report_module()
    stored = json.loads((ROOT / "bench" / "results" / "fidelity.json").read_text())
    text = report.fidelity(stored)
    low, high = stored["settling_gap_ci"]
    assert f"still being made after epoch 5 (the gap to its end, 95% interval {low:+.2f}" in text
    assert "| long recipe stopped at epoch | 1 | 5 | 10 | 15 | 20 | 25 | 30 |" in text
    settled = stored | {"settling_gap_ci": [-0.1, 0.3], "recipe_gap_ci": [0.05, 0.2]}
    text = report.fidelity(settled)
    assert "stopped at epoch 5 it cannot be told from its end" in text
    assert "ranks worse than the long recipe stopped at the same length" in text
    older = {k: v for k, v in stored.items() if k != "settling_gap_ci"}
    assert "How early the long recipe" not in report.fidelity(older)  # stored before the field


def test_each_task_keeps_its_own_fidelity_result_and_compares_only_its_own_recipes():
    """A fidelity run on the quickstart's task once wrote over the headline task's result;
    and a short recipe is scored against its own task's long runs, so it may not sit in
    another task's table."""
    report = _report_module()
    import fidelity

    assert fidelity.result_name("clutter16", None) == "fidelity"
    assert fidelity.result_name("clutter16", "b32") == "fidelity_recipe_b32"  # as stored
    assert fidelity.result_name("digits16", None) == "fidelity_digits16"
    assert fidelity.result_name("digits16", "b32") == "fidelity_digits16_recipe_b32"
    # a longer reference's long runs are others: its result and its recipes carry the length
    assert fidelity.result_name("clutter16", None, 30) == "fidelity"
    assert fidelity.result_name("clutter16", None, 72) == "fidelity_long72"
    assert fidelity.result_name("clutter16", "b32", 72) == "fidelity_long72_recipe_b32"
    assert fidelity.long_recipe(epochs=72) == fidelity.long_recipe() | {"epochs": 72}
    stored = json.loads((ROOT / "bench" / "results" / "fidelity.json").read_text())
    text = report.fidelity(stored)
    assert "| b32 | batch_size=32 |" in text
    # each recipe's shift per attention type, from its own result, beyond 2 sigma marked
    b32 = json.loads((ROOT / "bench" / "results" / "fidelity_recipe_b32.json").read_text())
    eca = b32["rank_shift"]["type:eca"]
    star = " *" if eca["beyond_2_sigma"] else ""
    header = "| recipe | ca | cbam | eca | ela | none | se |"
    assert header in text
    row = next(line for line in text.splitlines() if line.startswith("| b32 | ") and "±" in line)
    assert row.split(" | ")[3] == f"{eca['mean_rank_shift']:+.1f} ± {eca['stderr']:.1f}{star}"
    assert "more than two standard errors below it" in text  # clutter: bias
    # recipes scored against the 30-epoch runs do not sit beside a 72-epoch reference
    longer = report.fidelity(stored | {"long_epochs": 72})
    assert "| b32 |" not in longer and "| e24 (screen, 3.0x) |" in longer
    digits = json.loads((ROOT / "bench" / "results" / "fidelity_digits16.json").read_text())
    text = report.fidelity(digits)
    assert "on `digits16`" in text and "Short recipes compared" not in text
    # Its long runs separate nothing (ANOVA p 0.80): no gap for more seeds to close.
    assert "no ranking to match" in text and "seed noise can explain the gap" not in text


def test_the_longest_reference_on_a_task_is_held_against_the_shorter_ones():
    """Whether a shorter reference's ranking survives longer training: its long means against
    the longest reference's on their shared architectures, under the longest only."""
    report = _report_module()
    stored = json.loads((ROOT / "bench" / "results" / "fidelity.json").read_text())
    assert "The long references trained on" not in report.fidelity(stored)  # the longest here
    # A 72-epoch reference that ranks the stored 30-epoch means exactly backwards, on all
    # but the first architecture.
    reversed_rows = [
        a | {"long": [1.0 - statistics.fmean(a["long"])] * 3} for a in stored["architectures"][1:]
    ]
    longer = stored | {"long_epochs": 72, "architectures": reversed_rows}
    text = report.fidelity(longer)
    assert "The long references trained on `clutter16`" in text
    thirty = next(line for line in text.splitlines() if line.startswith("| 30 | "))
    cells = [c.strip() for c in thirty.strip("|").split("|")]
    assert cells[:3] == ["30", str(len(reversed_rows)), f"{stored['long_separation_p']:.3g}"]
    assert cells[-1] == "-1.00"
    assert next(line for line in text.splitlines() if line.startswith("| 72 | ")).endswith("| 1 |")


def test_scale_rerun_of_one_storage_keeps_the_others_dated():
    """Rerunning one configuration (each takes 10-40 minutes at 2,000 trials) keeps the rows
    of the others from an earlier run with the same settings, and the report dates each."""
    report = _report_module()
    import scale

    def row(storage: str, concurrency: int, rate: float, when: str | None) -> dict:
        calls = {k: {"p50_ms": 1.0, "p99_ms": 2.0} for k in ("ask", "decide", "tell")}
        dated = {"measured_at": when, "commit": "abc1234"} if when else {}
        return {
            "storage": storage,
            "concurrency": concurrency,
            "trials_settled": 2000,
            "trials_per_second": rate,
            "offered_trials_per_second": 53.0,
            "calls": calls,
        } | dated

    settings = {"trials": 2000, "epochs": 3, "seeds": [0, 1], "stub_sleep_s": 0.1, "quick": False}
    old = [row("sqlite", 16, 2.2, None), row("postgresql", 16, 2.1, None)]
    previous = settings | {"runs": old}
    carried = scale.carried_rows(previous, dict(settings))
    fresh = [row("sqlite", 16, 3.8, "2026-11-27T20:00+00:00")]
    runs = scale.merged_runs(fresh, carried)
    assert [(r["storage"], r["concurrency"], r["trials_per_second"]) for r in runs] == [
        ("sqlite", 16, 3.8),
        ("postgresql", 16, 2.1),
    ]
    # other settings (another trial count, a quick run): nothing carried over
    assert scale.carried_rows(previous, settings | {"trials": 45}) == []
    assert scale.carried_rows(previous, settings | {"quick": True}) == []
    text = report.scale(settings | {"runs": runs})
    assert "2026-11-27 20:00 (abc1234)" in text and "not recorded" in text
    assert "measured at different times" in text


def test_gpu_report_sets_onnxruntimes_cuda_provider_beside_eager_and_reads_a_slow_host():
    report = _report_module()
    stored = json.loads((ROOT / "bench" / "results" / "gpu_check.json").read_text())

    def row(model, target, rel, iqr, ms=1.0, **extra):
        return {
            "model": model,
            "target": target,
            "latency_rel": rel,
            "latency_ms": ms,
            "latency_rel_iqr_over_median": iqr,
        } | extra

    rows = [
        row("m", "eager fp32", 2.0, 0.25),
        row("m", "onnxruntime fp32", 1.5, 0.002, runtime="onnxruntime"),
        row("n", "onnxruntime fp32", 1.2, 0.01, runtime="onnxruntime"),  # no eager row: left out
    ]
    text = "\n".join(report._gpu_onnxruntime(stored | {"latency": rows}))
    assert "against eager fp32: m 2.00x -> 1.50x (IQR/median 25.0% -> 0.2%)." in text
    assert " n " not in text
    assert "costs less beside the network there" in text
    rows[1]["latency_rel"] = 2.5
    assert "costs more beside" in "".join(report._gpu_onnxruntime(stored | {"latency": rows}))
    assert report._gpu_onnxruntime(stored | {"latency": rows[:1]}) == []
    assert (
        report._gpu_stack({"torch": "2.11", "onnxruntime": "1.30", "onnxruntime-gpu": "1.31"})
        == "torch 2.11, onnxruntime-gpu 1.31"
    )


def test_a_target_timed_on_one_architecture_is_not_read_as_a_ranking_that_held():
    report = _report_module()
    stored = json.loads((ROOT / "bench" / "results" / "targets_cuda.json").read_text())
    space = next(s for s in stored["spaces"] if s["backbone"] == "mobilenetv2_100")
    assert sum("torch_compile" in row["rel"] for row in space["architectures"]) == 1
    text = report.targets(stored | {"spaces": [space]})
    assert "| torch_compile | - | 1 architecture timed: nothing to rank |" in text
    # timed on a second architecture, the same unmoved rank is a ranking that held
    rows = [dict(row) for row in space["architectures"]]
    rows[1]["rel"] = rows[1]["rel"] | {"torch_compile": 9.0}
    moves = space["largest_rank_moves"] | {"torch_compile": [{"rank_shift": 0.0, "label": "x"}]}
    text = report.targets(
        stored | {"spaces": [space | {"architectures": rows, "largest_rank_moves": moves}]}
    )
    assert "| torch_compile | +0 | none moved |" in text
    assert "timed by earlier runs" not in text
    rows[2]["measured_at"] = rows[3]["measured_at"] = "2026-11-28T01:24+00:00"
    text = report.targets(stored | {"spaces": [space | {"architectures": rows}]})
    assert "; 2 of them timed by earlier runs (2026-11-28T01:24+00:00)):" in text


def test_the_long_reference_keeps_every_training_setting_whatever_the_short_recipe_sets():
    """A short recipe's ``--set eval.train.momentum=0.5`` once changed the long runs' settings
    too (only the keys in ``LONG_RECIPE`` were pinned), so no stored long run was found."""
    _report_module()  # puts bench/ on the path
    import fidelity

    from evaluators.fidelity import make_plan
    from search.config import load_config
    from spaces import SearchSpace

    def long_train(*overrides: str) -> dict:
        cfg = load_config(
            ROOT / "configs" / "quickstart.yaml", ["eval.dataset=clutter", *overrides]
        )
        plan = make_plan(
            SearchSpace(cfg.space), cfg.eval, archs=3, seeds=1, long_recipe=fidelity.long_recipe()
        )
        return plan.config("long", 0).train.model_dump()

    reference = long_train()
    assert reference["epochs"] == 30 and reference["momentum"] == 0.9
    for setting in ("momentum=0.5", "train_images=360", "label_smoothing=0", "augment=false"):
        assert long_train(f"eval.train.{setting}") == reference, setting


def test_halving_section_says_what_rungs_on_the_long_recipe_see_on_each_task(monkeypatch):
    """The rung table reads each task's stored per-epoch taus at the rungs eta gives, and its
    verdict follows them: a task whose early rung ranks like the end is named as one."""
    report = _report_module()
    results = ROOT / "bench" / "results"
    main = json.loads((results / "multifidelity.json").read_text())
    tasks = {n: json.loads((results / f"{n}.json").read_text()) for n in report.FIDELITY_TASKS}
    monkeypatch.setattr(report, "_load", lambda name: tasks.get(name))
    text = "\n".join(report._rungs_on_long_recipe(main))
    assert "| task | seeds | epoch 1 | epoch 3 | epoch 9 | epoch 27 | end (epoch 30) |" in text
    for r in tasks.values():
        at = {x["epoch"]: x["held_out_tau"] for x in r["long_checkpoint_tau"]}
        assert f"| {r['dataset']} | {len(r['seeds'])} | {at[1]:.2f} | {at[3]:.2f} |" in text
    assert "No rung at epoch 9 or earlier reaches tau 0.6" in text
    early = dict(tasks["fidelity"])
    early["long_checkpoint_tau"] = [
        x | {"held_out_tau": 0.7} if x["epoch"] == 3 else x for x in early["long_checkpoint_tau"]
    ]
    tasks["fidelity"] = early
    text = "\n".join(report._rungs_on_long_recipe(main))
    assert f"On {early['dataset']} the rung at epoch 3 reaches tau 0.70" in text


def test_the_fashion_config_plans_the_runs_its_stored_benchmark_holds():
    """make bench-fidelity-fashion reads its data settings from configs/fashion_mnist.yaml: a
    change there that moved a fingerprint would silently retrain the whole stored sample."""
    _report_module()
    from fidelity import long_recipe

    from evaluators.fidelity import load_store, make_plan, run_key
    from search.config import load_config
    from spaces import SearchSpace

    cfg = load_config(ROOT / "configs" / "fashion_mnist.yaml", [])
    stored = json.loads((ROOT / "bench" / "results" / "fidelity_fashion_mnist16.json").read_text())
    plan = make_plan(
        SearchSpace(cfg.space),
        cfg.eval,
        archs=stored["architectures_planned"],
        seeds=len(stored["seeds"]),
        long_recipe=long_recipe(),
        sample_seed=stored["sample_seed"],
    )
    done = load_store(ROOT / "bench" / "data" / "fidelity_fashion_mnist16.jsonl")
    planned = [run_key(arch, plan.config(s, seed), seed) for arch, s, seed in plan.runs()]
    assert len(planned) == 2 * len(stored["seeds"]) * stored["architectures_planned"]
    assert [key for key in planned if key not in done] == []


def test_a_short_schedule_longer_than_a_sixth_of_the_long_one_runs_only_as_a_labelled_screen(
    monkeypatch, tmp_path
):
    """The benchmark's contract is a long reference at least 6x the short schedule; a longer
    short schedule may be screened against the stored long runs (up to half), and its row
    says it is a screen wherever the recipes are compared."""
    report = _report_module()
    import fidelity

    fidelity.check_lengths(5, 30)
    with pytest.raises(SystemExit, match=r"\(30 epochs\) must be at least 6 times .*\(12 epochs\)"):
        fidelity.check_lengths(12, 30)
    fidelity.check_lengths(12, 30, screen=True)
    fidelity.check_lengths(15, 30, screen=True)
    with pytest.raises(SystemExit, match=r"at least 2 times the short schedule \(16 epochs\)"):
        fidelity.check_lengths(16, 30, screen=True)

    results = ROOT / "bench" / "results"
    main = json.loads((results / "fidelity.json").read_text())
    b32 = json.loads((results / "fidelity_recipe_b32.json").read_text())
    screen = b32 | {"recipe": "e12", "screen": True, "short_epochs": 12, "seeds": [0, 1]}
    screen["short_recipe"] = main["short_recipe"] | {"epochs": 12}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "fidelity_recipe_e12.json").write_text(json.dumps(screen))
    monkeypatch.setattr(report, "ROOT", tmp_path)
    text = report.fidelity(main)
    # each row says how many seeds its own figures hold: a screen stopped early holds fewer
    assert "| e12 (screen, 2.5x) | epochs=12 | 30 | 2 |" in text
    assert f"| (the config's) | {len(main['architectures'])} | {len(main['seeds'])} |" in text
    assert any(
        line.startswith("| e12 (screen, 2.5x) | ") and "±" in line for line in text.splitlines()
    )
    assert "is not the benchmark's 6x contract" in text
    (tmp_path / "results" / "fidelity_recipe_e12.json").write_text(json.dumps(b32))
    assert "screen" not in report.fidelity(main)


def test_a_rerun_with_fewer_seeds_never_replaces_a_stored_result(tmp_path):
    """Stored results are extended one seed at a time, in place; a make target run with the
    script's default seeds once would have replaced the 5-seed Fashion-MNIST result with a
    3-seed one. The make targets ask for at least the seeds their results hold, and a stopped
    extension leaves whole seeds (the plan trains seed by seed)."""
    _report_module()
    import fidelity

    from evaluators.fidelity import make_plan
    from search.config import load_config
    from spaces import SearchSpace

    out = tmp_path / "fidelity_x.json"
    fidelity.check_seeds(out, 3)  # nothing stored yet
    out.write_text(json.dumps({"seeds": [0, 1, 2, 3, 4]}))
    fidelity.check_seeds(out, 5)
    fidelity.check_seeds(out, 6)
    with pytest.raises(
        SystemExit,
        match=r"^fidelity_x.json holds a 5-seed result; --seeds 3 would replace it with fewer: "
        r"pass --seeds 5 \(or more, to extend it\) or --out elsewhere$",
    ):
        fidelity.check_seeds(out, 3)

    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    variables = dict(
        line.split(" ?= ") for line in makefile.splitlines() if " ?= " in line
    )  # fmt: skip
    for target, result in (
        ("bench-fidelity-long", "fidelity_long72"),
        ("bench-fidelity-fashion", "fidelity_fashion_mnist16"),
    ):
        words = _make_words(target)
        seeds = words[words.index("--seeds") + 1]
        seeds = variables.get(seeds.strip("$()"), seeds)
        stored = json.loads((ROOT / "bench" / "results" / f"{result}.json").read_text())
        assert int(seeds) >= len(stored["seeds"]), target

    cfg = load_config(ROOT / "configs" / "quickstart.yaml", [])
    plan = make_plan(SearchSpace(cfg.space), cfg.eval, archs=12, seeds=2, long_recipe={})
    assert [seed for _, _, seed in plan.runs()] == [0] * 24 + [1] * 24


def test_the_rank_shift_tables_give_the_permutation_test_beside_the_seed_noise_test():
    """Each group's p against random sets of architectures is rendered from the stored result,
    counted per recipe, and marked in the per-type table where it is below SHIFT_P."""
    report = _report_module()
    from evaluators.fidelity import SHIFT_P

    stored = json.loads((ROOT / "bench" / "results" / "fidelity.json").read_text())
    text = report.fidelity(stored)
    eca = stored["rank_shift"]["type:eca"]
    row = f"| type:eca | {eca['mean_rank_shift']:+.2f} | {eca['stderr']:.2f} |"
    assert any(line.startswith(row) and line.endswith(f"| {eca['random_sets_p']:.2f} |")
               for line in text.splitlines())  # fmt: skip
    flagged = stored | {
        "rank_shift": stored["rank_shift"]
        | {"type:eca": eca | {"random_sets_p": SHIFT_P / 2, "beyond_2_sigma": True}}
    }
    text = report.fidelity(flagged)
    config = next(line for line in text.splitlines() if line.startswith("| config | +"))
    assert config.split(" | ")[3] == f"{eca['mean_rank_shift']:+.1f} ± {eca['stderr']:.1f} * †"
    counts = next(line for line in text.splitlines() if line.startswith("| config | (the"))
    assert counts.endswith("| 1 of 9 |")


def test_make_bench_fidelity_long_reuses_the_stored_12_epoch_runs_and_trains_72_epoch_ones():
    """make bench-fidelity-long is the 6x run of the e12 screen's short schedule: its 90
    12-epoch runs are already stored, and only the long runs are new (72 epochs, every other
    setting the long recipe's). A flag that moved a fingerprint would retrain them all."""
    _report_module()
    from fidelity import long_recipe

    from evaluators.fidelity import load_store, make_plan, run_key
    from search.config import load_config
    from spaces import SearchSpace

    words = _make_words("bench-fidelity-long")
    overrides = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    long_epochs = int(words[words.index("--long-epochs") + 1])
    assert long_epochs == 72 and "eval.train.epochs=12" in overrides

    cfg = load_config(ROOT / "configs" / "quickstart.yaml", overrides)
    plan = make_plan(
        SearchSpace(cfg.space),
        cfg.eval,
        archs=30,
        seeds=3,
        long_recipe=long_recipe(False, long_epochs),
    )
    done = load_store(ROOT / "bench" / "data" / "fidelity_clutter16.jsonl")
    keys = {s: [] for s in ("short", "long")}
    for arch, schedule, seed in plan.runs():
        keys[schedule].append(run_key(arch, plan.config(schedule, seed), seed))
    assert len(keys["short"]) == len(keys["long"]) == 90
    assert [key for key in keys["short"] if key not in done] == []
    assert plan.config("long", 0).train.model_dump(mode="json") == long_recipe() | {"epochs": 72}
    stored_long = [done[key] for key in keys["long"] if key in done]
    assert stored_long and all(len(r["accuracies"]) == 72 for r in stored_long)
