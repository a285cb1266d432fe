"""Every benchmark script runs in its --quick mode and writes what BENCHMARKS.md reads.

No timing is asserted: benchmarks measure, tests only prove the scripts work.
"""

from __future__ import annotations

import json
import math
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
    run("tabular.py", "--out", str(table), "--workers", "1", "--epochs", "1")
    rows = table.read_text().splitlines()
    assert rows[0].startswith("arch_hash,") and len(rows) == 3  # header + 2 architectures
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
        # every trial a worker ran, stopped ones included, and its time: training is part of it
        assert x["trials_run"] == x["finished"] + x["stopped_at_a_rung"]
        assert 0 < x["train_seconds"] < x["trial_seconds"]
    assert r["runs"]["full"]["stopped_at_a_rung"] == 0 and r["runs"]["full"]["rungs"] == []
    assert r["runs"]["successive_halving"]["rungs"] == [1]


@pytest.mark.timeout(900)  # 50-125 s in CI: the slowest tests
def test_overhead_quick(tmp_path):
    out = tmp_path / "o.json"
    run("overhead.py", "--out", str(out))
    r = json.loads(out.read_text())
    assert r["trials"] == 2 and r["distinct_trained"] >= 1
    assert r["search_seconds"] > 0 and r["bare_gated_seconds"] > 0


@pytest.mark.timeout(900)  # 50-125 s in CI: the slowest tests
def test_fidelity_quick_resumes_from_its_store(tmp_path):
    out, store = tmp_path / "f.json", tmp_path / "runs.jsonl"
    text = run("fidelity.py", "--out", str(out), "--store", str(store), "--workers", "1")
    r = json.loads(out.read_text())
    assert r["quick"] and r["long_epochs"] == 2 * r["short_epochs"] and r["seeds"] == [0, 1]
    assert {"kendall_tau", "spearman_rho", "architectures", "rank_shift"} <= set(r)
    assert -1 <= r["kendall_tau"] <= 1 and "Kendall tau" in text
    labels = [a["label"] for a in r["architectures"]]
    assert labels[0] == "none | none | none | none"  # the baselines lead the sample
    assert all(len(a["short"]) == len(a["long"]) == 2 for a in r["architectures"])
    runs = store.read_text().splitlines()
    records = [json.loads(line) for line in runs]
    training = [c for c in records if c["seed"] >= 0]
    timings = [c for c in records if c["seed"] < 0]
    assert len(training) == len(labels) * 2 * 2  # (short, long) x 2 seeds per architecture
    assert {len(c["accuracies"]) for c in training} == {r["short_epochs"], r["long_epochs"]}
    assert all(c["latency_rel"] is None for c in training)  # never timed beside another run
    # each run keeps the device it trained on, and the result counts runs per device
    assert {c["hardware"]["device"] for c in training} == {"cpu"}
    assert r["trained_on"] == {training[0]["hardware"]["name"]: len(training)}
    # the training the result stands on, per schedule, summed from the stored runs
    for schedule in ("short", "long"):
        stored = sum(c["seconds"] for c in training if c["schedule"] == schedule)
        assert r["training_seconds"][schedule] == pytest.approx(stored, abs=0.1) and stored > 0
    # each architecture timed once, alone, after training; the reference reads about 1
    assert sorted(c["label"] for c in timings) == sorted(labels)
    assert [a["latency_rel"] for a in r["architectures"]] == [
        next(c["latency_rel"] for c in timings if c["label"] == a["label"])
        for a in r["architectures"]
    ]
    # A second run finds every run in the store and trains nothing.
    again = run("fidelity.py", "--out", str(out), "--store", str(store), "--workers", "1")
    assert len(store.read_text().splitlines()) == len(runs)
    rerun = json.loads(out.read_text())
    assert rerun["kendall_tau"] == r["kendall_tau"] and "[1/" not in again
    assert rerun["training_seconds"] == r["training_seconds"]  # a rerun costs the result nothing
    # With part of the store gone, --analyse-only analyses the complete architectures only.
    last = labels[-1]
    kept = [c for c in records if not (c["label"] == last and c.get("schedule") == "long")]
    del kept[0]["hardware"]  # a run stored before devices were recorded
    store.write_text("".join(json.dumps(c) + "\n" for c in kept))
    run("fidelity.py", "--out", str(out), "--store", str(store), "--analyse-only")
    partial = json.loads(out.read_text())
    assert [a["label"] for a in partial["architectures"]] == labels[:-1]
    assert partial["architectures_planned"] == len(labels)
    assert partial["trained_on"]["unrecorded"] == 1
    # only the complete architectures' runs: the last one's stored short runs count for nothing
    assert sum(partial["trained_on"].values()) == len(training) - 4
    last_short = sum(
        c["seconds"] for c in training if c["label"] == last and c["schedule"] == "short"
    )
    assert partial["training_seconds"]["short"] == pytest.approx(
        r["training_seconds"]["short"] - last_short, abs=0.1
    )


def _rows(long: list[list[float]], short: list[list[float]] | None = None) -> list[dict]:
    short = short or long
    return [
        {"label": f"a{i}", "groups": ["type:none"], "short": s, "long": g, "latency_rel": 1.0}
        for i, (s, g) in enumerate(zip(short, long, strict=True))
    ]


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name (state, parent, ...); [] once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    """The process's command line, "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running or sleeping, not gone and not a zombie."""
    state = _stat(pid)
    return bool(state) and state[0] != "Z"


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [c for c in pids if (s := _stat(c)) and int(s[1]) == pid and s[0] != "Z"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_fidelity_run_stopped_by_sigterm_stops_its_workers(tmp_path):
    """``kill PID`` of a fidelity run (under nohup, the usual way) used to kill the parent
    alone: each spawned worker trained on to the end of its run, unseen."""
    import signal
    import time

    cmd = [sys.executable, str(ROOT / "bench" / "fidelity.py"), "--archs", "2", "--seeds", "1"]
    cmd += ["--workers", "2", "--store", str(tmp_path / "runs.jsonl"), "--out", str(tmp_path / "f")]
    cmd += ["--set", "eval.dataset=cued"]  # 16 px: a run takes a minute or more, far longer
    # than this test waits for the workers to go
    parent = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    for _ in range(240):  # the two workers spawn once the data is ready
        time.sleep(0.5)
        workers = [w for w in _children(parent.pid) if "spawn_main" in _cmdline(w)]
        if len(workers) == 2 or parent.poll() is not None:
            break
    assert len(workers) == 2, parent.stderr.read().decode() if parent.poll() is not None else ""
    time.sleep(3)  # training now
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 128 + signal.SIGTERM
    for _ in range(60):
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.5)
    assert not any(_alive(w) for w in workers)


def test_noise_ceiling_tells_a_task_that_separates_from_one_that_does_not():
    from evaluators.fidelity import noise_ceiling, summary

    # Four architectures 0.05 apart, seeds within 0.001: both seeds rank them the same.
    apart = [[0.70 + 0.05 * i, 0.701 + 0.05 * i] for i in range(4)]
    figures = noise_ceiling(_rows(apart))
    assert figures["long_seed_tau"] == pytest.approx(1.0)
    assert figures["long_separation_p"] < 1e-6
    # The same means with seeds 0.2 apart (seed 1 in reverse order): tau -1, no separation.
    noisy = [[0.70 + 0.05 * i, 0.95 - 0.05 * i] for i in range(4)]
    figures = noise_ceiling(_rows(noisy))
    assert figures["long_seed_tau"] == pytest.approx(-1.0)
    assert figures["long_separation_p"] > 0.5
    text = summary(
        figures
        | {
            "kendall_tau": 0.1,
            "spearman_rho": 0.1,
            "top_k": 3,
            "long_front_in_short_top_k": 1.0,
            "seed_sigma_short": 0.1,
            "seed_sigma_long": 0.1,
        }  # fmt: skip
    )
    assert "does not separate these placements beyond seed noise" in text
    assert "spread by sd 0.00 points beyond seed noise" in text


def test_placement_spread_is_the_random_effects_anova_estimate():
    from evaluators.fidelity import placement_spread

    # Within-architecture variance 2 in both; means 1 and 3 give between-means variance 2,
    # so the mean square between is 2 seeds x 2 = 4 and the true-mean variance (4 - 2) / 2 = 1.
    spread = placement_spread([[0.0, 2.0], [2.0, 4.0]])
    assert spread["long_placement_sd"] == pytest.approx(1.0)
    assert spread["long_placement_sd_upper"] > spread["long_placement_sd"]
    # Means closer than seed noise makes them: no spread beyond it, and the bound stays finite.
    tied = placement_spread([[0.0, 2.0], [0.5, 1.5]])
    assert tied["long_placement_sd"] == 0.0
    assert 0.0 <= tied["long_placement_sd_upper"] < math.inf
    assert math.isnan(placement_spread([[0.9], [0.8]])["long_placement_sd"])


@pytest.mark.parametrize("true_sd", [0.0, 0.003, 0.01])
def test_placement_spread_upper_bound_covers_the_true_spread_as_often_as_it_claims(true_sd):
    import numpy as np

    from evaluators.fidelity import SPREAD_CONFIDENCE, placement_spread

    # 30 architectures x 3 seeds with seed sd 0.005, as the clutter benchmark has.
    rng = np.random.default_rng(7)
    covered = []
    estimates = []
    for _ in range(600):
        means = 0.9 + true_sd * rng.standard_normal(30)
        spread = placement_spread((means[:, None] + 0.005 * rng.standard_normal((30, 3))).tolist())
        covered.append(spread["long_placement_sd_upper"] >= true_sd)
        estimates.append(spread["long_placement_sd"])
    # (With no true spread every bound covers it: then only the estimate is tested.)
    most = 1.0 if true_sd == 0.0 else SPREAD_CONFIDENCE + 0.04
    assert SPREAD_CONFIDENCE - 0.04 <= np.mean(covered) <= most
    assert np.mean(estimates) == pytest.approx(true_sd, abs=0.0015)


def test_tau_ceiling_predicts_what_seed_noise_alone_leaves_of_the_ranking():
    import numpy as np
    from scipy.stats import kendalltau

    from evaluators.fidelity import attainable_tau, mean_reliability, noise_ceiling

    assert mean_reliability(1.0, 1) == pytest.approx(1.0)
    assert mean_reliability(-0.3, 3) == 0.0  # seeds that disagree carry no ranking
    assert mean_reliability(0.5, 4) > mean_reliability(0.5, 2) > mean_reliability(0.5, 1)
    assert attainable_tau(1.0, 1.0) == pytest.approx(1.0) and attainable_tau(0.0, 0.9) == 0.0
    assert math.isnan(attainable_tau(float("nan"), 1.0))
    # 400 architectures of one true quality; each seed of each schedule adds its own noise
    # (short 2x the long's), so the two schedules differ by noise alone.
    rng = np.random.default_rng(0)
    quality = rng.normal(size=400)
    long = quality[:, None] + rng.normal(scale=1.0, size=(400, 3))
    short = quality[:, None] + rng.normal(scale=2.0, size=(400, 3))
    figures = noise_ceiling(_rows(long.tolist(), short.tolist()))
    observed = kendalltau(short.mean(1), long.mean(1)).statistic
    assert 0.3 < figures["tau_ceiling"] < 0.5
    assert observed == pytest.approx(figures["tau_ceiling"], abs=0.05)
    noiseless = kendalltau(quality, long.mean(1)).statistic
    assert figures["tau_ceiling_long"] == pytest.approx(noiseless, abs=0.05)
    # A short schedule as self-consistent that ranks by something else: far below the ceiling.
    other = rng.normal(size=400)
    biased = other[:, None] + rng.normal(scale=2.0, size=(400, 3))
    figures = noise_ceiling(_rows(long.tolist(), biased.tolist()))
    assert kendalltau(biased.mean(1), long.mean(1)).statistic < figures["tau_ceiling"] - 0.25


def test_unlimited_seeds_tau_corrects_for_noise_without_assuming_no_bias():
    """Two noisy schedules that rank by one quality approach tau 1 with unlimited seeds; a
    short schedule whose quality only correlates with the long one's (r 0.5: tau 1/3)
    approaches that, and no seed count reaches the target; seeds that never agree bound
    nothing, so the interval spans everything."""
    import numpy as np

    from evaluators.fidelity import TARGET_TAU, noise_ceiling, seed_outlook, unlimited_seeds_tau

    # 400 architectures: the estimate's sd over simulated samples is about 0.1 here (0.06 for
    # the biased one), so the bounds below sit 3 sd from it.
    rng = np.random.default_rng(1)
    quality = rng.normal(size=400)
    long = quality[:, None] + rng.normal(scale=1.0, size=(400, 4))
    short = quality[:, None] + rng.normal(scale=2.0, size=(400, 4))
    same = unlimited_seeds_tau(_rows(long.tolist(), short.tolist()), resamples=100)
    assert same["unlimited_seeds_tau"] > 0.6 and same["unlimited_seeds_tau_ci"][1] == 1.0
    same |= noise_ceiling(_rows(long.tolist(), short.tolist()))
    assert "no seed count" not in seed_outlook(same)
    assert "at the estimate it takes " in seed_outlook(same)

    other = 0.5 * quality + np.sqrt(0.75) * rng.normal(size=400)
    biased = other[:, None] + rng.normal(scale=2.0, size=(400, 4))
    figures = unlimited_seeds_tau(_rows(long.tolist(), biased.tolist()), resamples=100)
    assert figures["unlimited_seeds_tau"] == pytest.approx(1 / 3, abs=0.18)
    low, high = figures["unlimited_seeds_tau_ci"]
    assert low < 1 / 3 < high < TARGET_TAU
    assert seed_outlook(figures).endswith(
        f"no seed count reaches {TARGET_TAU} with this short recipe"
    )

    noise = rng.normal(size=(30, 3))
    blind = unlimited_seeds_tau(_rows(noise.tolist(), rng.normal(size=(30, 3)).tolist()), 100)
    assert blind["unlimited_seeds_tau_ci"] == [-1.0, 1.0]
    one_seed = unlimited_seeds_tau(_rows(long[:, :1].tolist(), short[:, :1].tolist()), 20)
    assert math.isnan(one_seed["unlimited_seeds_tau"])
    assert (
        seed_outlook(one_seed)
        == "the seeds do not agree enough to say what more of them would reach"
    )


def test_expected_tau_is_what_a_biased_short_schedule_reads_with_that_many_seeds():
    """With the schedules' seed-free agreement below 1 (a short schedule that ranks by a
    quality correlated about 0.7 with the long one's: tau about 0.49 even noise-free), the
    tau that k fresh seeds at both schedules read is ``expected_tau`` at that agreement, and
    the no-bias seed count would promise a target that no seed count reaches; the outlook
    says so where the interval cannot."""
    import numpy as np
    from scipy.stats import kendalltau

    from evaluators.fidelity import (
        MAX_SEEDS,
        TARGET_TAU,
        attainable_tau,
        expected_tau,
        mean_reliability,
        noise_ceiling,
        seed_outlook,
        seeds_for_tau,
    )

    rng = np.random.default_rng(3)
    quality = rng.normal(size=300)
    other = 0.7 * quality + np.sqrt(0.51) * rng.normal(size=300)
    agreement = float(np.corrcoef(quality, other)[0, 1])  # this sample's, not the 0.7 drawn

    def draw(q: np.ndarray, seeds: int) -> np.ndarray:
        return q[:, None] + rng.normal(scale=1.0, size=(300, seeds))

    figures = noise_ceiling(_rows(draw(quality, 3).tolist(), draw(other, 3).tolist()))
    short, long = figures["short_seed_tau"], figures["long_seed_tau"]
    for k in (2, 8):
        # one draw's tau scatters by about 0.02 here; 20 of them by about 0.005
        observed = np.mean(
            [
                kendalltau(draw(other, k).mean(1), draw(quality, k).mean(1)).statistic
                for _ in range(20)
            ]
        )
        assert observed == pytest.approx(expected_tau(short, long, k, agreement), abs=0.03)
        # without bias it would read clearly more: the difference is what the test checks
        assert expected_tau(short, long, k) > expected_tau(short, long, k, agreement) + 0.1
        assert expected_tau(short, long, k) == pytest.approx(
            attainable_tau(mean_reliability(short, k), mean_reliability(long, k))
        )
    assert seeds_for_tau(short, long, TARGET_TAU) is not None
    assert seeds_for_tau(short, long, TARGET_TAU, agreement) is None
    assert seeds_for_tau(short, long, 0.4, agreement) == next(
        k for k in range(1, MAX_SEEDS + 1) if expected_tau(short, long, k, agreement) >= 0.4
    )
    # an interval that reaches past the target, around a point estimate below it
    outlook = figures | {"unlimited_seeds_tau": 0.59, "unlimited_seeds_tau_ci": [0.2, 1.0]}
    most = expected_tau(short, long, MAX_SEEDS, np.sin(np.pi * 0.59 / 2))
    assert seed_outlook(outlook).endswith(
        f"cannot tell whether any seed count reaches {TARGET_TAU}; at the estimate none does: "
        f"{MAX_SEEDS} seeds per schedule would read {most:.2f}"
    )


def test_seeds_for_tau_is_the_seed_count_at_which_noise_alone_leaves_the_target():
    import numpy as np
    from scipy.stats import kendalltau

    from evaluators.fidelity import noise_ceiling, seeds_for_tau

    assert seeds_for_tau(1.0, 1.0, 0.6) == 1  # noiseless seeds need no repeats
    assert seeds_for_tau(0.0, 0.5, 0.6) is None  # seeds that share no ranking never get there
    assert seeds_for_tau(float("nan"), 0.5, 0.6) is None
    assert seeds_for_tau(0.1, 0.25, 0.6) > seeds_for_tau(0.2, 0.25, 0.6) > 1
    # 300 architectures, noise 1.5x the spread of their quality at both schedules: with the
    # count it names, two independent sets of that many seeds rank alike at about the
    # target, and with half of them clearly below it.
    rng = np.random.default_rng(2)
    quality = rng.normal(size=300)

    def draw(seeds: int) -> np.ndarray:
        return quality[:, None] + rng.normal(scale=1.5, size=(300, seeds))

    figures = noise_ceiling(_rows(draw(3).tolist(), draw(3).tolist()))
    k = figures["seeds_for_target_tau"]
    assert k == seeds_for_tau(figures["short_seed_tau"], figures["long_seed_tau"], 0.6)
    assert 4 <= k <= 12

    def tau(seeds: int) -> float:
        return kendalltau(draw(seeds).mean(1), draw(seeds).mean(1)).statistic

    assert tau(k) == pytest.approx(0.6, abs=0.06)
    assert tau(max(1, k // 2)) < 0.55


def test_checkpoint_fidelity_tells_a_ranking_made_late_from_one_settled_early():
    import numpy as np

    from evaluators.fidelity import checkpoint_fidelity

    rng = np.random.default_rng(1)
    n, epochs, seeds = 60, 6, 3
    quality = rng.normal(size=n)
    final = quality[:, None] + rng.normal(scale=0.5, size=(n, seeds))

    def rows(curves: np.ndarray, short: np.ndarray) -> list[dict]:
        out = _rows(final.tolist(), short.tolist())
        for i, r in enumerate(out):
            r["long_curves"] = curves[i].tolist()  # (seeds, epochs)
            r["short_curves"] = [[0.0, *s] for s in short[i, :, None].tolist()]  # 2 epochs
        return out

    # Settled early: every epoch of each run is its end, shifted by the same amount.
    shift = np.linspace(-0.5, 0, epochs)
    settled = final[:, :, None] + shift[None, None, :]
    early = checkpoint_fidelity(rows(settled, final))
    taus = [x["held_out_tau"] for x in early["long_checkpoint_tau"]]
    assert [x["epoch"] for x in early["long_checkpoint_tau"]] == list(range(1, epochs + 1))
    assert taus == pytest.approx([early["long_held_out_tau"]] * epochs)
    assert 0.4 < early["long_held_out_tau"] < 0.8  # the seed noise leaves this much
    assert early["settling_gap_ci"] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert early["recipe_gap_ci"] == pytest.approx([0.0, 0.0], abs=1e-12)

    # Made late: the first epochs rank by noise, only the end by quality; a short schedule
    # that ranks by yet another quality is no better than the long recipe stopped.
    late = settled.copy()
    late[:, :, :2] = rng.normal(size=(n, seeds, 2))
    other = rng.normal(size=(n, 1)) + rng.normal(scale=0.5, size=(n, seeds))
    made = checkpoint_fidelity(rows(late, other))
    assert abs(made["long_checkpoint_tau"][1]["held_out_tau"]) < 0.15
    assert made["long_checkpoint_tau"][-1]["held_out_tau"] == made["long_held_out_tau"]
    assert made["settling_gap_ci"][0] > 0.2  # epoch 2 (the short length) is far from the end
    low, high = made["recipe_gap_ci"]
    assert low < 0 < high  # noise against another quality: no telling them apart

    # One seed: nothing held out, nothing to say.
    single = rows(settled[:, :1], final[:, :1])
    for r in single:
        r["long"], r["short"] = r["long"][:1], r["short"][:1]
    assert math.isnan(checkpoint_fidelity(single)["long_held_out_tau"])
    assert checkpoint_fidelity([{"long": [0.5], "short": [0.5]}]) == {}  # no curves stored


def test_welch_interval_matches_scipys_welch_test():
    from scipy.stats import ttest_ind

    sys.path.insert(0, str(ROOT / "bench"))
    import samplers

    a, b = [0.91, 0.93, 0.95, 0.92, 0.94], [0.90, 0.89, 0.92, 0.91]
    diff, half = samplers.welch(a, b)
    test = ttest_ind(a, b, equal_var=False)
    low, high = test.confidence_interval(0.95)
    assert diff == pytest.approx((low + high) / 2) and half == pytest.approx((high - low) / 2)
    assert samplers.interval([1.0, 1.0, 1.0]) == 0.0


def test_gpu_check_runs_its_cpu_path(tmp_path):
    # The GPU script's code runs here on the CPU (tiny sizes); on a GPU only the device is new.
    out = tmp_path / "g.json"
    text = run("gpu_check.py", "--device", "cpu", "--out", str(out))
    r = json.loads(out.read_text())
    assert r["device"] == "cpu" and r["quick"]
    targets = {x["target"] for x in r["latency"]}
    assert {"eager fp32", "compile bf16 channels_last", "onnxruntime fp32"} <= targets
    for x in r["latency"]:
        assert "error" in x or x["latency_rel_ci"][0] <= x["latency_rel"] <= x["latency_rel_ci"][1]
    assert r["training_trial"]["status"] == "ok" and r["training_trial"]["evaluations_per_hour"] > 0
    assert "evaluations per hour" in text


def test_targets_quick_measures_every_target_their_agreement_and_resumes(tmp_path):
    out = tmp_path / "t.json"
    run("targets.py", "--out", str(out))
    r = json.loads(out.read_text())
    assert [s["backbone"] for s in r["spaces"]] == ["resnet18", "mobilenetv2_100"]
    for s in r["spaces"]:
        rows = s["architectures"]
        assert len(rows) == 3 and rows[0]["baseline"] == "none"
        assert all({"train-res eager", "eager", "onnxruntime"} <= set(x["rel"]) for x in rows)
        assert sum("torch_compile" in x["rel"] for x in rows) == 1
        assert "eager | onnxruntime" in s["kendall_tau"]
        assert -1 <= s["kendall_tau"]["eager | onnxruntime"]["tau"] <= 1
        assert s["measured_at"] and s["hardware"]["device"] == "cpu"
    # a run of one space keeps the other from the earlier run, in the same order, untouched
    resnet = r["spaces"][0]
    run("targets.py", "--out", str(out), "--configs", "mobilenetv2_quickstart.yaml")
    again = json.loads(out.read_text())
    assert [s["backbone"] for s in again["spaces"]] == ["resnet18", "mobilenetv2_100"]
    assert again["spaces"][0] == resnet
    assert again["spaces"][1]["architectures"] != r["spaces"][1]["architectures"]  # re-timed

    # --resume: a lease ended after the second architecture, and the first lacks a target (an
    # earlier run without ONNX Runtime there); the complete row is kept, the others timed
    mobilenet = ("--configs", "mobilenetv2_quickstart.yaml")
    rows = again["spaces"][1]["architectures"]
    del rows[2]
    del rows[0]["rel"]["onnxruntime"]
    out.write_text(json.dumps(again))
    text = run("targets.py", "--out", str(out), "--resume", *mobilenet)
    resumed = json.loads(out.read_text())["spaces"][1]["architectures"]
    assert [x["label"] for x in resumed] == [x["label"] for x in rows] + [resumed[2]["label"]]
    # kept as it was, not timed again, with the date it was timed
    assert resumed[1] == rows[1] | {"measured_at": again["spaces"][1]["measured_at"]}
    assert "measured_at" not in resumed[0] and "measured_at" not in resumed[2]
    assert text.count("kept from the earlier run") == 1
    assert "onnxruntime" in resumed[0]["rel"] and "onnxruntime" in resumed[2]["rel"]
    # rows timed elsewhere would not compare: a run at another resolution is refused
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "targets.py"), "--out", str(out), "--resume",
         "--resolution", "32", "--archs", "3", *mobilenet],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "--resume needs" in proc.stderr and "'resolution': 24" in proc.stderr


def test_scale_quick_drives_stub_trials_through_the_real_driver(tmp_path):
    out = tmp_path / "scale.json"
    run("scale.py", "--out", str(out))
    r = json.loads(out.read_text())
    (row,) = r["runs"]
    # every trial settled: the target COMPLETE, the rest PRUNED at a rung, nothing left RUNNING
    assert row["complete"] == r["trials"] // 3 == row["states"]["COMPLETE"]
    assert row["states"].get("RUNNING", 0) == 0
    assert row["pruned"] == row["states"]["PRUNED"] > 0
    # every trial handed to a worker was asked once and told once (duplicates never run)
    assert row["calls"]["ask"]["calls"] == row["calls"]["tell"]["calls"] == row["trials_settled"]
    assert row["complete"] < row["trials_settled"] <= sum(row["states"].values())
    assert row["calls"]["decide"]["calls"] > 0
    # each trial names the worker process that ran it; Tune reuses some (4 at a time here)
    assert 1 <= row["worker_processes"] < row["trials_settled"]
    assert row["trials_per_worker_process"] == row["trials_settled"] / row["worker_processes"]
    assert int(r["hardware"]["cpus"]) >= 1 and {"ray", "optuna", "sqlalchemy"} <= set(r["versions"])


def test_a_type_biases_the_short_schedule_only_if_it_shifts_further_than_random_sets():
    """Twice the seed noise once called any group 'biased' whose members happened to shift:
    where short and long rank differently, a third of random sets pass that test on clutter.
    The permutation test asks whether the group's label matters."""
    import random

    from evaluators.fidelity import analyse, random_sets_p, shifted_groups

    rng = random.Random(3)
    n, seeds = 24, [0, 1, 2]
    # Every architecture's long accuracy is its own; the short schedule favours 'se' (members
    # 0-5) by 0.05 and reorders the rest by an offset of each architecture's own, the same
    # for every seed: a short schedule that ranks differently, with no type in it.
    quality = [0.80 + 0.004 * i for i in range(n)]
    own = [rng.uniform(-0.03, 0.03) for _ in range(n)]
    rows = []
    for i in range(n):
        long = [quality[i] + 0.0005 * s for s in seeds]
        short = [quality[i] + own[i] + (0.05 if i < 6 else 0.0) + 0.0005 * s for s in seeds]
        groups = ["type:se" if i < 6 else "type:none"]
        groups.append("position:pre" if i % 4 == 1 else "position:post")  # unrelated to shift
        rows.append({"label": str(i), "groups": groups, "short": short, "long": long})
    for r in rows:
        r["latency_rel"] = 1.0
    figures = analyse(rows, seeds, top_k=6)
    shift = figures["rank_shift"]
    assert shift["type:se"]["mean_rank_shift"] > 5 and shift["type:se"]["random_sets_p"] < 0.01
    flagged = shifted_groups(figures)
    assert flagged.startswith("shifted beyond random sets of architectures: ")
    # the rest ('none') shifted the other way as a set; the positions did not
    assert "type:se (+" in flagged and "type:none (-" in flagged and "position" not in flagged
    # Its members shift, identically in every seed (2 sigma says yes), but no more than
    # random sets of six of these architectures do.
    pre = shift["position:pre"]
    assert pre["beyond_2_sigma"] and pre["random_sets_p"] > 0.05
    assert pre["architectures"] == 6
    # By hand: a pair holding both +3 shifts of four is as far out as 2 of the 6 pairs.
    assert random_sets_p([3.0, 3.0, -3.0, -3.0], [0, 1], draws=600) == pytest.approx(
        (200 + 1) / 601, abs=0.05
    )
    assert math.isnan(random_sets_p([1.0, -1.0], [0, 1]))  # every architecture: no test
