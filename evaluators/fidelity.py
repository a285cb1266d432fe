"""How far can a short schedule be trusted? Short against long training of a space sample.

A fixed, seeded sample of a search space (every uniform paper baseline first, then random
distinct architectures) is trained with several seeds at the short schedule a search uses
and at a long reference recipe. Every (architecture, seed, schedule) run goes through
``evaluate`` and is appended to a JSON-lines store with its per-epoch accuracies, so a
fidelity check resumes where it stopped and its curves can be replayed. Latency is timed
once per architecture, alone, after every training run has finished (``measure_plan_latency``):
timed beside a training run it reads several percent off.

``analyse`` gives Kendall tau and Spearman rho between short and long mean accuracy, the
share of the long schedule's (accuracy, latency_rel) Pareto front inside the short
schedule's top-k, the seed sigma at each length, and per attention type and per position
the mean rank shift from short to long with its standard error over seeds and how often
random sets of as many architectures shift as far (``random_sets_p``), how early
the long recipe's own ranking settles (``checkpoint_fidelity``), what seed noise alone would
leave of the ranking (``noise_ceiling``) and what unlimited seeds would reach
(``unlimited_seeds_tau``). Used by ``attnas fidelity`` and ``bench/fidelity.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import multiprocessing
import random
import signal
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.evaluate import EvalConfig, evaluate, measure_cost
from evaluators.hygiene import node_gate
from spaces import ArchConfig, SearchSpace


def sample_archs(space: SearchSpace, n: int, seed: int) -> list[tuple[str, ArchConfig]]:
    """(baseline name or "", arch): every baseline, then seeded random distinct ones, up to
    ``n`` in all (never fewer than the baselines). A larger ``n`` extends a smaller sample."""
    chosen: dict[str, tuple[str, ArchConfig]] = {}
    for b in space.baselines():
        chosen.setdefault(b.arch.hash, (b.name, b.arch))
    rng = random.Random(seed)
    options = space.distributions()
    tries = 0
    while len(chosen) < n and tries < 100 * n:
        tries += 1
        params = {name: rng.choice(list(values)) for name, values in options.items()}
        try:
            arch = space.decode(params)
        except ValueError:
            continue
        chosen.setdefault(arch.hash, ("", arch))
    return list(chosen.values())


@dataclass(frozen=True)
class FidelityPlan:
    """What to train: the sample, the seeds, and the two schedules (plain eval settings)."""

    archs: list[tuple[str, ArchConfig]]
    seeds: list[int]
    short: dict[str, Any]
    long: dict[str, Any]
    searched: frozenset[int]

    def config(self, schedule: str, seed: int) -> EvalConfig:
        """One training run's settings. Latency is not timed here: training runs share the
        machine with each other, so ``measure_plan_latency`` times every architecture once,
        alone, after the pool has finished."""
        settings = self.short if schedule == "short" else self.long
        return EvalConfig.model_validate(settings | {"seeds": [seed], "measure_latency": False})

    def latency_config(self) -> EvalConfig:
        """The timing's settings: the short schedule's data and latency settings with default
        training settings, since training never changes what is timed (a built network at
        seed 0). One timing per architecture then serves every short recipe compared."""
        return EvalConfig.model_validate(self.short | {"measure_latency": True, "train": {}})

    def runs(self) -> list[tuple[ArchConfig, str, int]]:
        """Seed by seed: a run stopped while extending a stored sample to more seeds leaves
        whole seeds behind, each count analysable on its own (``--analyse-only --seeds k``)."""
        return [
            (arch, schedule, seed)
            for seed in self.seeds
            for _, arch in self.archs
            for schedule in ("short", "long")
        ]


def make_plan(
    space: SearchSpace,
    short: EvalConfig,
    *,
    archs: int,
    seeds: int,
    long_recipe: dict[str, Any],
    sample_seed: int = 0,
) -> FidelityPlan:
    """The long schedule is the short one's settings with ``long_recipe`` (training keys,
    ``epochs`` among them) over them."""
    base = short.model_dump(mode="json")
    long = json.loads(json.dumps(base))
    long["train"] |= long_recipe
    return FidelityPlan(
        sample_archs(space, archs, sample_seed),
        list(range(seeds)),
        base,
        long,
        frozenset(space.domains),
    )


def run_key(arch: ArchConfig, cfg: EvalConfig, seed: int) -> tuple[str, str, int]:
    return (arch.hash, cfg.fingerprint(), seed)


def _train_one(args: tuple[dict[str, Any], dict[str, Any], str]) -> dict[str, Any]:
    arch_dict, cfg_dict, schedule = args
    arch = ArchConfig.model_validate(arch_dict)
    cfg = EvalConfig.model_validate(cfg_dict)
    t0 = time.perf_counter()
    o = evaluate(arch, cfg, gate=node_gate())
    return {
        "arch_hash": arch.hash,
        "eval_fingerprint": cfg.fingerprint(),
        "label": arch.label(),
        "seed": cfg.seeds[0],
        "schedule": schedule,
        "epochs": cfg.train.epochs,
        "status": o.status,
        "accuracies": o.accuracies,
        "latency_rel": o.latency_rel,
        "params": o.params,
        "flops": o.flops,
        "seconds": round(time.perf_counter() - t0, 2),
        # where it trained: seeds added later on a GPU (bf16 autocast) share the store's keys
        # (the fingerprint leaves the device out), so the device is kept beside each run
        "hardware": o.hardware,
    }


# The ANOVA p-value below which the long schedule separates a sample's placements beyond
# seed noise; at or above it, no short schedule has a ranking to match. One level for the
# benchmark's summary, BENCHMARKS.md and ``attnas fidelity``.
SEPARATION_P = 0.05
# The short-against-long Kendall tau a trustworthy short schedule should reach (issue 14's
# target), and the most seeds per schedule ``seeds_for_tau`` considers.
TARGET_TAU = 0.6
MAX_SEEDS = 64
# The confidence of the upper bound on how far placements differ at the long schedule.
SPREAD_CONFIDENCE = 0.95
LATENCY_SEED = -1  # the store's key for an architecture's latency record (not a training run)


def _store_key(r: dict[str, Any]) -> tuple[str, str, int]:
    return (r["arch_hash"], r["eval_fingerprint"], r["seed"])


def load_store(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a kill mid-write: that run is simply redone
            done[_store_key(r)] = r
    return done


def _append(store: Path, r: dict[str, Any]) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    with store.open("a") as f:
        f.write(json.dumps(r) + "\n")


def measure_plan_latency(
    plan: FidelityPlan,
    store: Path,
    *,
    on_arch: Callable[[int, int, dict[str, Any]], None] = lambda k, n, r: None,
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Time every architecture of ``plan`` not yet timed in ``store``, one at a time in this
    process, so that no training run competes with the timing (the pool is closed by now)."""
    done = load_store(store)
    cfg = plan.latency_config()
    todo = [
        arch for _, arch in plan.archs if (arch.hash, cfg.fingerprint(), LATENCY_SEED) not in done
    ]
    for k, arch in enumerate(todo, 1):
        lat = measure_cost(arch, cfg).latency
        r = {
            "arch_hash": arch.hash,
            "eval_fingerprint": cfg.fingerprint(),
            "seed": LATENCY_SEED,
            "label": arch.label(),
            "latency_rel": lat.latency_rel if lat else None,
            "latency_rel_ci": list(lat.latency_rel_ci) if lat else None,
        }
        _append(store, r)
        done[_store_key(r)] = r
        on_arch(k, len(todo), r)
    return done


def run_plan(
    plan: FidelityPlan,
    store: Path,
    *,
    workers: int = 1,
    on_run: Callable[[int, int, dict[str, Any]], None] = lambda k, n, r: None,
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Train every run of ``plan`` not yet in ``store`` (appending each as it finishes)."""
    done = load_store(store)
    todo = []
    for arch, schedule, seed in plan.runs():
        cfg = plan.config(schedule, seed)
        if run_key(arch, cfg, seed) not in done:
            todo.append((arch.to_dict(), cfg.model_dump(mode="json"), schedule))

    def record(k: int, r: dict[str, Any]) -> None:
        _append(store, r)
        done[_store_key(r)] = r
        on_run(k, len(todo), r)

    if workers <= 1:
        for k, job in enumerate(todo, 1):
            record(k, _train_one(job))
        return done
    # Spawned, not forked: a fork of a process whose threads (Ray's, torch's pool) hold locks
    # can deadlock in the child, as it did under the test suite.
    context = multiprocessing.get_context("spawn")
    before = set(multiprocessing.active_children())
    with _sigterm_raises():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            futures = [pool.submit(_train_one, job) for job in todo]
            for k, fut in enumerate(as_completed(futures), 1):
                record(k, fut.result())
        except BaseException:
            # stopped (SIGTERM, Ctrl-C, a failed run): the workers must not train on as
            # orphans; every run finished so far is in the store already
            pool.shutdown(wait=False, cancel_futures=True)
            for worker in set(multiprocessing.active_children()) - before:
                worker.terminate()
            raise
        pool.shutdown()
    return done


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM ends the process through ``SystemExit`` while the pool runs, so that its workers
    are stopped too: by the default action the parent died alone, and each worker trained on
    to the end of its run (minutes on ``cued``), unseen. Only the main thread can set it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


CompleteRuns = list[tuple[str, ArchConfig, dict[str, list[dict[str, Any]]]]]


def complete_runs(
    plan: FidelityPlan, done: dict[tuple[str, str, int], dict[str, Any]]
) -> CompleteRuns:
    """(baseline, architecture, runs per schedule in seed order) for each architecture whose
    runs are all stored: what the figures stand on, whatever else a stopped benchmark left."""
    complete = []
    for baseline, arch in plan.archs:
        keys = {
            schedule: [run_key(arch, plan.config(schedule, s), s) for s in plan.seeds]
            for schedule in ("short", "long")
        }
        if all(k in done for ks in keys.values() for k in ks):
            complete.append(
                (baseline, arch, {sc: [done[k] for k in ks] for sc, ks in keys.items()})
            )
    return complete


def _runs_behind(complete: CompleteRuns) -> list[tuple[str, dict[str, Any]]]:
    """(schedule, run) for every run of the complete architectures."""
    return [
        (schedule, run)
        for _, _, runs in complete
        for schedule, seeded in runs.items()
        for run in seeded
    ]


def trained_on(complete: CompleteRuns) -> dict[str, int]:
    """How many of the runs behind the figures trained on each device (runs stored before the
    device was recorded count as ``unrecorded``): the provenance of a reference whose seeds
    may come from different machines."""
    names = [run.get("hardware", {}).get("name", "unrecorded") for _, run in _runs_behind(complete)]
    return dict(Counter(names))


def training_seconds(complete: CompleteRuns) -> dict[str, float]:
    """Seconds of training the figures stand on, per schedule, summed over their runs:
    what the benchmark cost however many sittings (or ``--analyse-only`` reruns) it took."""
    total: Counter[str] = Counter()
    for schedule, run in _runs_behind(complete):
        total[schedule] += run.get("seconds", 0.0)
    return {schedule: round(total[schedule], 1) for schedule in ("short", "long")}


def _final(run: dict[str, Any]) -> float:
    """The run's last accuracy; a diverged run scores 0 (it would rank last in a search)."""
    return run["accuracies"][-1] if run["status"] == "ok" and run["accuracies"] else 0.0


def _groups(arch: ArchConfig, searched: frozenset[int]) -> list[str]:
    """The attention types and positions an architecture uses in its searched stages."""
    out = set()
    for i, stage in enumerate(arch.stages):
        if i in searched:
            out.add(f"type:{stage.attention}")
            if stage.attention != "none":
                out.add(f"position:{stage.position}")
    return sorted(out)


def table_rows(
    plan: FidelityPlan,
    complete: CompleteRuns,
    done: dict[tuple[str, str, int], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per complete architecture (see ``complete_runs``): final short and long accuracy
    per seed, curves, cost; ``done`` holds the latency timings."""
    rows = []
    latency_fingerprint = plan.latency_config().fingerprint()
    for baseline, arch, runs in complete:
        timed = done.get((arch.hash, latency_fingerprint, LATENCY_SEED))
        rows.append(
            {
                "label": arch.label(),
                "arch_hash": arch.hash,
                "baseline": baseline or None,
                "groups": _groups(arch, plan.searched),
                "short": [_final(r) for r in runs["short"]],
                "long": [_final(r) for r in runs["long"]],
                "short_curves": [r["accuracies"] for r in runs["short"]],
                "long_curves": [r["accuracies"] for r in runs["long"]],
                "latency_rel": timed["latency_rel"] if timed else None,
                "params": runs["short"][0]["params"],
            }
        )
    return rows


def _ranks(values: list[float]) -> list[float]:
    """Rank 1 = best (highest accuracy); ties share the mean rank."""
    from scipy.stats import rankdata

    return list(rankdata([-v for v in values], method="average"))


def _pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated (max accuracy, min latency_rel) points."""
    front = []
    for i, (a, lat) in enumerate(points):
        if not any(
            b >= a and m <= lat and (b > a or m < lat) for j, (b, m) in enumerate(points) if j != i
        ):
            front.append(i)
    return front


def analyse(rows: list[dict[str, Any]], seeds: list[int], top_k: int) -> dict[str, Any]:
    """The fidelity figures (see the module docstring) from ``table_rows``."""
    from scipy.stats import kendalltau, spearmanr

    short = [statistics.fmean(r["short"]) for r in rows]
    long = [statistics.fmean(r["long"]) for r in rows]
    lat = [r["latency_rel"] if r["latency_rel"] is not None else math.inf for r in rows]
    long_front = _pareto(list(zip(long, lat, strict=True)))
    top = set(sorted(range(len(rows)), key=lambda i: -short[i])[:top_k])

    def sigma(key: str) -> float:
        if len(seeds) < 2:
            return float("nan")
        return statistics.fmean(statistics.stdev(r[key]) for r in rows)

    # The rank shift per seed (short seed s against long seed s): its spread over the seeds
    # says how much of a group's mean shift is noise.
    seed_shifts = [
        [float(long_rank - short_rank) for long_rank, short_rank in zip(rl, rs, strict=True)]
        for rs, rl in (
            (_ranks([r["short"][s] for r in rows]), _ranks([r["long"][s] for r in rows]))
            for s in range(len(seeds))
        )
    ]
    arch_shifts = [statistics.fmean(per_seed) for per_seed in zip(*seed_shifts, strict=True)]
    members: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        for group in r["groups"]:
            members[group].append(i)
    groups = {}
    for group, idx in sorted(members.items()):
        means = [statistics.fmean(shift[i] for i in idx) for shift in seed_shifts]
        mean = statistics.fmean(means)
        se = statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else float("nan")
        groups[group] = {
            "mean_rank_shift": mean,
            "stderr": se,
            "beyond_2_sigma": bool(abs(mean) > 2 * se) if not math.isnan(se) else None,
            "random_sets_p": random_sets_p(arch_shifts, idx),
            "architectures": len(idx),
        }
    return {
        **noise_ceiling(rows),
        "kendall_tau": float(kendalltau(short, long).statistic),
        "spearman_rho": float(spearmanr(short, long).statistic),
        "long_front": [rows[i]["label"] for i in long_front],
        "long_front_in_short_top_k": sum(i in top for i in long_front) / len(long_front),
        "top_k": top_k,
        "seed_sigma_short": sigma("short"),
        "seed_sigma_long": sigma("long"),
        "rank_shift": groups,
        **checkpoint_fidelity(rows),
        **unlimited_seeds_tau(rows),
    }


SHIFT_P = 0.05  # a type or position shifts beyond random sets of architectures below this p


def shifted_groups(figures: dict[str, Any]) -> str:
    """One sentence: which attention types or positions the short schedule favours or
    penalises beyond random sets of as many architectures (``random_sets_p``), or none."""
    flagged = [
        f"{group} ({g['mean_rank_shift']:+.1f} ranks from short to long, p "
        f"{g['random_sets_p']:.2g})"
        for group, g in figures["rank_shift"].items()
        if g.get("random_sets_p", 1.0) < SHIFT_P
    ]
    if flagged:
        return "shifted beyond random sets of architectures: " + ", ".join(flagged)
    return (
        "no attention type or position shifts from short to long further than random sets of "
        f"as many architectures do (p >= {SHIFT_P})"
    )


def random_sets_p(arch_shifts: list[float], members: list[int], draws: int = 4000) -> float:
    """How often a random set of as many architectures shifts at least as far (mean rank
    shift, either way) as this group does: a permutation test of the group's label.

    Twice the standard error over seeds asks whether *these* architectures shift, which almost
    any set does when short and long rank differently: on clutter, with 3 seeds, a third of
    random same-size sets pass it. A type or position biases the short schedule only if its
    members shift more than architectures picked at random. Seeded, so a result is stable."""
    k = len(members)
    if k == 0 or k == len(arch_shifts):
        return float("nan")
    observed = abs(statistics.fmean(arch_shifts[i] for i in members))
    rng = random.Random(0)
    hits = sum(
        abs(statistics.fmean(rng.sample(arch_shifts, k))) >= observed - 1e-12 for _ in range(draws)
    )
    return (hits + 1) / (draws + 1)


Proxy = Callable[[dict[str, Any], int], float]  # (row, seed index) -> an accuracy


def _held_out_tau(rows: list[dict[str, Any]], proxy: Proxy) -> float:
    """Kendall tau between a proxy and the long schedule's end on disjoint seeds: for each seed
    s, the proxy's mean over the other seeds against seed s's long accuracy, averaged over s.
    No seed's noise is on both sides, so a proxy that is the long end itself scores only what
    seed noise leaves, and every other proxy is read against that. NaN below two seeds."""
    from scipy.stats import kendalltau

    n = min(len(r["long"]) for r in rows)
    if n < 2:
        return float("nan")
    taus = [
        kendalltau(
            [statistics.fmean(proxy(r, o) for o in range(n) if o != s) for r in rows],
            [r["long"][s] for r in rows],
        ).statistic
        for s in range(n)
    ]
    return float(statistics.fmean(taus))


def _gap_interval(
    rows: list[dict[str, Any]], better: Proxy, worse: Proxy, resamples: int = 400
) -> list[float]:
    """95% percentile interval of held-out tau(better) - tau(worse), architectures resampled
    with replacement, both proxies on each resample (paired: what they share cancels). A
    fixed generator keeps the report reproducible."""
    rng = random.Random(0)
    gaps = []
    for _ in range(resamples):
        sample = [rows[rng.randrange(len(rows))] for _ in rows]
        gaps.append(_held_out_tau(sample, better) - _held_out_tau(sample, worse))
    gaps = [g for g in gaps if not math.isnan(g)]
    if not gaps:
        return [float("nan"), float("nan")]
    return _central_95(gaps, gaps)


def _central_95(low_side: list[float], high_side: list[float]) -> list[float]:
    """The 2.5th percentile of ``low_side`` and the 97.5th of ``high_side`` (the same
    resamples, where they differ only in how undefined ones are counted): a bootstrap's 95%
    percentile interval."""
    low, high = sorted(low_side), sorted(high_side)
    return [low[int(0.025 * (len(low) - 1))], high[int(0.975 * (len(high) - 1))]]


def checkpoint_fidelity(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How early the long recipe settles its own ranking: at each epoch k, the held-out-seed
    tau (``_held_out_tau``) between its accuracy after k epochs and its end, beside the short
    schedule's and the long end's against itself (the most this measure can show); and, with
    paired intervals over architectures, whether the long recipe stopped at the short
    schedule's length ranks worse than its end (``settling_gap_ci``) and the short schedule
    worse than that (``recipe_gap_ci``).

    Why: it separates the two reasons a short schedule can rank badly. If the long recipe
    stopped at the short schedule's length already ranks like its end, a short recipe can
    too, and its gap is the recipe's; if it does not, the ranking is made late in training,
    and a schedule of that length would have to rank better than the long recipe itself does
    at that point (lengthening it is the likelier fix). The same figures say how far
    successive halving's early rungs (the long recipe, stopped) can be trusted. A diverged
    run counts 0 at every epoch it did not reach, as ``_final`` scores it."""
    if not rows or "long_curves" not in rows[0]:
        return {}
    epochs = max(len(c) for r in rows for c in r["long_curves"])
    short_epochs = min(epochs, max(len(c) for r in rows for c in r["short_curves"]))

    def at(k: int) -> Proxy:
        return lambda r, s: r["long_curves"][s][k - 1] if len(r["long_curves"][s]) >= k else 0.0

    def end(r: dict[str, Any], s: int) -> float:
        return r["long"][s]

    def short(r: dict[str, Any], s: int) -> float:
        return r["short"][s]

    checkpoints = [
        {"epoch": k, "held_out_tau": _held_out_tau(rows, at(k))} for k in range(1, epochs + 1)
    ]
    return {
        "long_checkpoint_tau": checkpoints,
        "short_held_out_tau": _held_out_tau(rows, short),
        "long_held_out_tau": _held_out_tau(rows, end),
        "stopped_epoch": short_epochs,
        "stopped_held_out_tau": checkpoints[short_epochs - 1]["held_out_tau"],
        "settling_gap_ci": _gap_interval(rows, end, at(short_epochs)),
        "recipe_gap_ci": _gap_interval(rows, at(short_epochs), short),
    }


def noise_ceiling(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How well each schedule agrees with itself, and whether the long one separates
    placements at all.

    ``<schedule>_seed_tau`` is the mean Kendall tau between the rankings two different seeds
    give at that schedule: no proxy can rank like the long schedule better than the long
    schedule ranks like itself, so tau(short, long) must be read against ``long_seed_tau``.
    ``long_separation_f``/``_p`` is a one-way ANOVA of the long accuracies with architectures
    as groups and seeds as repeats: p >= ``SEPARATION_P`` means the task does not separate these
    placements beyond seed noise, and no short schedule can be tuned to rank them.

    ``tau_ceiling`` is the tau(short, long) that these seed counts allow when both schedules
    rank by the same underlying quality and differ only by their seed noise, and
    ``tau_ceiling_long`` the most any proxy, however reliable, could reach against this long
    reference (see ``attainable_tau``). An observed tau well below ``tau_ceiling`` is bias:
    the short schedule ranks by something else; one near it may be noise alone, and
    ``unlimited_seeds_tau`` says whether more seeds could close the gap."""
    from scipy.stats import f_oneway

    out: dict[str, Any] = {}
    seeds = {}
    for schedule in ("short", "long"):
        out[f"{schedule}_seed_tau"], seeds[schedule] = _seed_agreement(rows, schedule)
    short = mean_reliability(out["short_seed_tau"], seeds["short"])
    long = mean_reliability(out["long_seed_tau"], seeds["long"])
    out["tau_ceiling"] = attainable_tau(short, long)
    out["tau_ceiling_long"] = attainable_tau(1.0, long)
    out["seeds_for_target_tau"] = seeds_for_tau(
        out["short_seed_tau"], out["long_seed_tau"], TARGET_TAU
    )
    groups = [r["long"] for r in rows]
    if len(groups) > 1 and all(len(g) > 1 for g in groups):
        test = f_oneway(*groups)
        out["long_separation_f"], out["long_separation_p"] = (
            float(test.statistic),
            float(test.pvalue),
        )
    else:
        out["long_separation_f"] = out["long_separation_p"] = float("nan")
    out |= placement_spread([r["long"][: seeds["long"]] for r in rows])
    return out


def _seed_agreement(rows: list[dict[str, Any]], schedule: str) -> tuple[float, int]:
    """The mean Kendall tau between two seeds' rankings at ``schedule`` (NaN below two seeds),
    and the seeds every architecture has there."""
    from scipy.stats import kendalltau

    n = min(len(r[schedule]) for r in rows)
    taus = [
        kendalltau([r[schedule][a] for r in rows], [r[schedule][b] for r in rows]).statistic
        for a, b in itertools.combinations(range(n), 2)
    ]
    return (float(statistics.fmean(taus)) if taus else float("nan")), n


def _noise_free_agreement(rows: list[dict[str, Any]]) -> float:
    """The Pearson-scale correlation between the two schedules' seed-free qualities: tau of
    the seed means turned into r by Greiner's relation, divided by the square root of the
    product of both means' reliabilities (Spearman's correction for attenuation). NaN when a
    schedule's seeds do not agree at all (nothing to correct by). It can exceed 1 on a
    small sample; 1 means the schedules rank by the same quality."""
    from scipy.stats import kendalltau

    short_tau, short_seeds = _seed_agreement(rows, "short")
    long_tau, long_seeds = _seed_agreement(rows, "long")
    product = mean_reliability(short_tau, short_seeds) * mean_reliability(long_tau, long_seeds)
    if not product > 0:
        return float("nan")
    tau = kendalltau(
        [statistics.fmean(r["short"]) for r in rows], [statistics.fmean(r["long"]) for r in rows]
    ).statistic
    return _as_r(tau) / math.sqrt(product)


def unlimited_seeds_tau(rows: list[dict[str, Any]], resamples: int = 400) -> dict[str, Any]:
    """The tau(short, long) that unlimited seeds at both schedules would approach, with its
    95% interval over architectures resampled with replacement (a fixed generator keeps the
    report reproducible).

    Why: ``tau_ceiling`` and ``seeds_for_tau`` assume the short schedule ranks by the long
    one's quality, and a gap within two standard errors of the ceiling only fails to show
    bias; it does not show its absence. This estimate runs ``attainable_tau`` backwards (the
    observed agreement corrected for both schedules' seed noise), so it says what more seeds
    could buy: an interval wholly below ``TARGET_TAU`` means no seed count reaches it with
    this recipe, one that reaches 1 that more seeds might. A resample whose seeds do not
    agree at all bounds nothing and counts at both ends of the interval."""
    rng = random.Random(0)
    draws = [
        _noise_free_agreement([rows[rng.randrange(len(rows))] for _ in rows])
        for _ in range(resamples)
    ]
    bounds = _central_95(
        [-math.inf if math.isnan(d) else d for d in draws],
        [math.inf if math.isnan(d) else d for d in draws],
    )
    return {
        "unlimited_seeds_tau": _as_tau(_noise_free_agreement(rows)),
        "unlimited_seeds_tau_ci": [_as_tau(b) for b in bounds],
    }


def _as_r(tau: float) -> float:
    """Kendall's tau as a Pearson-scale correlation, r = sin(pi tau / 2) (Greiner's relation,
    exact for bivariate normal scores)."""
    return math.sin(math.pi * tau / 2)


def _as_tau(r: float) -> float:
    """A Pearson-scale correlation, clipped to [-1, 1], as Kendall's tau (Greiner)."""
    if math.isnan(r):
        return r
    return 2 / math.pi * math.asin(max(-1.0, min(1.0, r)))


def seed_outlook(figures: dict[str, Any]) -> str:
    """What more seeds can buy, in words, from ``unlimited_seeds_tau``."""
    tau = figures["unlimited_seeds_tau"]
    low, high = figures["unlimited_seeds_tau_ci"]
    if math.isnan(tau):
        return "the seeds do not agree enough to say what more of them would reach"
    estimate = (
        f"with unlimited seeds tau would approach {tau:.2f} (95% interval {low:.2f} to {high:.2f})"
    )
    if high < TARGET_TAU:
        return f"{estimate}: no seed count reaches {TARGET_TAU} with this short recipe"
    at_estimate = _seeds_at_estimate(figures)
    if low >= TARGET_TAU:
        return f"{estimate}: enough seeds reach {TARGET_TAU}; {at_estimate}"
    return (
        f"{estimate}: this sample cannot tell whether any seed count reaches {TARGET_TAU}; "
        f"{at_estimate}"
    )


def _seeds_at_estimate(figures: dict[str, Any]) -> str:
    """The seeds per schedule that ``TARGET_TAU`` takes if the schedules' seed-free agreement
    is ``unlimited_seeds_tau``'s point estimate, in words; where none up to ``MAX_SEEDS``
    does, what that many would read."""
    agreement = _as_r(figures["unlimited_seeds_tau"])
    short, long = figures["short_seed_tau"], figures["long_seed_tau"]
    k = seeds_for_tau(short, long, TARGET_TAU, agreement)
    if k is not None:
        return f"at the estimate it takes {k} seeds per schedule"
    most = expected_tau(short, long, MAX_SEEDS, agreement)
    return f"at the estimate none does: {MAX_SEEDS} seeds per schedule would read {most:.2f}"


def placement_spread(groups: list[list[float]]) -> dict[str, float]:
    """How far the architectures' long accuracies differ beyond seed noise, as a size rather
    than a p-value: a p above ``SEPARATION_P`` alone cannot tell "tied" from "too few seeds
    to tell", while an upper bound on the spread says how large a difference could have gone
    unseen.

    One-way random-effects ANOVA over equally many seeds per architecture:
    ``long_placement_sd`` estimates the standard deviation of the architectures' true long
    accuracies (0 when the means vary no more than seed noise makes them),
    ``long_placement_sd_upper`` is its one-sided ``SPREAD_CONFIDENCE`` upper bound (from the exact
    F interval of the variance ratio, scaled by the within-architecture variance); both read
    against ``seed_sigma_long``. NaN without two seeds."""
    import numpy as np
    from scipy.stats import f as f_dist

    nan = float("nan")
    values = np.asarray(groups, dtype=float)
    archs, seeds = values.shape if values.ndim == 2 else (len(groups), 0)
    if archs < 2 or seeds < 2:
        return {"long_placement_sd": nan, "long_placement_sd_upper": nan}
    within = float(values.var(axis=1, ddof=1).mean())
    between = float(seeds * values.mean(axis=1).var(ddof=1))
    dfb, dfw = archs - 1, archs * (seeds - 1)
    ratio = between / within if within > 0 else math.inf
    # (between / within) / (1 + seeds * theta) follows F(dfb, dfw), theta = var_b / var_w.
    theta_upper = max(0.0, (ratio / f_dist.ppf(1 - SPREAD_CONFIDENCE, dfb, dfw) - 1) / seeds)
    return {
        "long_placement_sd": math.sqrt(max(0.0, (between - within) / seeds)),
        "long_placement_sd_upper": math.sqrt(theta_upper * within),
    }


def mean_reliability(seed_tau: float, seeds: int) -> float:
    """How reliably the mean over ``seeds`` seeds ranks architectures, from the Kendall tau
    between two single seeds' rankings: tau becomes a Pearson correlation by Greiner's
    relation r = sin(pi tau / 2) (exact for bivariate normal scores), then the Spearman-Brown
    formula gives the reliability of a mean of ``seeds`` such repeats. NaN without two seeds."""
    if math.isnan(seed_tau):
        return float("nan")
    r = max(0.0, _as_r(seed_tau))
    return seeds * r / (1 + (seeds - 1) * r)


def seeds_for_tau(
    short_seed_tau: float, long_seed_tau: float, target: float, agreement: float = 1.0
) -> int | None:
    """The fewest seeds per architecture, the same number at both schedules, with which the
    short schedule would be expected to reach ``target`` against the long reference (see
    ``expected_tau``). At the default ``agreement`` of 1 the short schedule is free of bias
    (ranking by the long one's quality, with its own seed noise): how much of the gap to a
    target is noise that more seeds buy off. None when no count up to ``MAX_SEEDS`` does
    (seeds that barely agree carry almost no ranking, or the bias keeps it below); NaN seed
    agreements (one seed) give None too."""
    for k in range(1, MAX_SEEDS + 1):
        if expected_tau(short_seed_tau, long_seed_tau, k, agreement) >= target:
            return k
    return None


def expected_tau(
    short_seed_tau: float, long_seed_tau: float, seeds: int, agreement: float = 1.0
) -> float:
    """The tau(short, long) expected from the means of ``seeds`` seeds at both schedules
    when their seed-free qualities correlate by ``agreement`` (Pearson scale; 1: no bias, and
    then it is ``attainable_tau``): ``agreement`` attenuated by the square root of both means'
    reliabilities, back to tau by Greiner's relation. Why: with the estimated bias
    (``unlimited_seeds_tau``) it says what a given seed budget would read, where the no-bias
    figure would promise a target that the bias keeps out of reach."""
    return attainable_tau(
        mean_reliability(short_seed_tau, seeds), mean_reliability(long_seed_tau, seeds), agreement
    )


def seeds_needed(figures: dict[str, Any]) -> str:
    """``seeds_for_tau`` at ``TARGET_TAU`` in words (computed from the seed agreements, so a
    result stored before the figure existed reads the same)."""
    k = seeds_for_tau(figures["short_seed_tau"], figures["long_seed_tau"], TARGET_TAU)
    if k is None:
        return f"no seed count up to {MAX_SEEDS} would reach tau {TARGET_TAU} without bias"
    return f"tau {TARGET_TAU} would need {k} seeds per schedule without bias"


def attainable_tau(reliability_a: float, reliability_b: float, agreement: float = 1.0) -> float:
    """The highest expected Kendall tau between two rankings of the same true quality measured
    with these reliabilities: Spearman's correction for attenuation (the correlation cannot
    exceed the square root of the product of the reliabilities), back to tau by Greiner's
    relation. A target above it cannot be met with these seeds, whatever the recipe. With
    ``agreement`` below 1 the two true qualities correlate by that much (Pearson scale), and
    it is the expected tau of a biased ranking (``expected_tau``)."""
    product = reliability_a * reliability_b
    if math.isnan(product):
        return float("nan")
    return _as_tau(agreement * math.sqrt(max(0.0, product)))


def gap_is_bias(tau: float, ceiling: float, architectures: int) -> bool | None:
    """Whether tau(short, long) falls short of what seed noise alone would leave by more than
    two standard errors of a Kendall tau over this many architectures (the conservative,
    no-association one: sqrt(2(2n+5) / 9n(n-1)), 0.13 at 30): then the short schedule ranks
    by something else, and more seeds will not help. None when it cannot tell (one seed)."""
    if math.isnan(ceiling) or architectures < 3:
        return None
    return tau < ceiling - 2 * tau_stderr(architectures)


def tau_stderr(n: int) -> float:
    """The standard error of a Kendall tau over ``n`` items under no association,
    sqrt(2(2n+5) / 9n(n-1)): conservative (the largest) for the taus read here."""
    return math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))


def ranking(rows: list[dict[str, Any]]) -> list[tuple[str, float, float, float | None]]:
    """(label with its baseline tag, mean short, mean long accuracy, latency_rel), best long
    first: the table both ``attnas fidelity`` and the benchmark print."""
    out = [
        (
            (f"[{r['baseline']}] " if r["baseline"] else "") + r["label"],
            statistics.fmean(r["short"]),
            statistics.fmean(r["long"]),
            r["latency_rel"],
        )
        for r in rows
    ]
    return sorted(out, key=lambda x: -x[2])


def summary(figures: dict[str, Any]) -> str:
    text = (
        f"Kendall tau {figures['kendall_tau']:.3f}, Spearman rho {figures['spearman_rho']:.3f}; "
        f"long front in short top-{figures['top_k']}: {figures['long_front_in_short_top_k']:.0%}; "
        f"seed sigma short {figures['seed_sigma_short']:.4f}, "
        f"long {figures['seed_sigma_long']:.4f}"
    )
    if "long_seed_tau" in figures:
        p = figures["long_separation_p"]
        text += (
            f"; seed against seed: tau short {figures['short_seed_tau']:.3f}, "
            f"long {figures['long_seed_tau']:.3f}"
        )
        if not math.isnan(figures.get("tau_ceiling", math.nan)):
            text += (
                f"; tau these seeds allow {figures['tau_ceiling']:.2f} (a noiseless short "
                f"schedule: {figures['tau_ceiling_long']:.2f}); {seeds_needed(figures)}"
            )
        if "unlimited_seeds_tau" in figures:
            text += f"; {seed_outlook(figures)}"
        if not math.isnan(figures.get("long_held_out_tau", math.nan)):
            low, high = figures["settling_gap_ci"]
            text += (
                f"; on held-out seeds: the long end {figures['long_held_out_tau']:.2f}, the long "
                f"recipe stopped at epoch {figures['stopped_epoch']} "
                f"{figures['stopped_held_out_tau']:.2f} (gap {low:+.2f} to {high:+.2f}), the "
                f"short schedule {figures['short_held_out_tau']:.2f}"
            )
        if not math.isnan(p):
            text += (
                f"; placements differ at the long schedule beyond seed noise (ANOVA p {p:.3g})"
                if p < SEPARATION_P
                else f"; the long schedule does not separate these placements beyond seed noise "
                f"(ANOVA p {p:.3g}): no short schedule can rank them"
            )
        if not math.isnan(figures.get("long_placement_sd", math.nan)):
            text += f"; {spread_sentence(figures)}"
    return text


def spread_sentence(figures: dict[str, Any]) -> str:
    """The placements' spread at the long schedule in accuracy points, beside seed noise."""
    return (
        f"the architectures' long accuracies spread by sd "
        f"{100 * figures['long_placement_sd']:.2f} points beyond seed noise "
        f"({SPREAD_CONFIDENCE:.0%} upper bound "
        f"{100 * figures['long_placement_sd_upper']:.2f}; one seed's sd "
        f"{100 * figures['seed_sigma_long']:.2f})"
    )
