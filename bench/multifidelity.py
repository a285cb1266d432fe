"""Successive halving against the full schedule, replayed on the tabular benchmark.

Every architecture of the tabular table (bench/tabular.py) carries its per-epoch accuracy for
each seed, so a search can be replayed without training: a trial reaching a rung is stopped
or promoted by exactly the rule the driver applies (``search.halving.promotes``: the rung
accuracy is the mean over seeds at that epoch, the cost is the table's latency_rel), a
stopped trial is told PRUNED and costs the epochs up to its rung, a finished one costs the
whole schedule and is told its final values. As in the driver, a repeat proposal is answered
without cost, and pruned trials never reach a front.

For random, NSGA-II and TPE, each with the full schedule and with successive halving, over
``--seeds`` seeds: the hypervolume of the finished trials' (accuracy, latency_rel) front as a
ratio to the table's true front, against the epochs spent (each epoch trains every seed), and
the epochs each needs to reach ``--target`` (95%) of the true hypervolume; the headline
ratio of the best halving row's median to the best full row's carries its interval over
seeds (``ratio_interval``) and the saving stopping alone allows (``epochs_per_architecture``).
Runs are spread over ``--workers`` processes; each is seeded, so that changes no figure.
Within a run, trials are replayed one at a time (the asynchronous order of a cluster is not
modelled). Syne Tune's multi-objective ASHA is replayed beside them when ``syne_tune``
imports (``pip install -e '.[bench]'``); attnas does not depend on it, and its row is absent
otherwise.

Before any of it, ``table_signal`` says what the table can judge: a table whose final
accuracies two seeds rank differently (the 9-epoch digits table: tau 0.05) has a "true front"
that is one draw of seed noise, and a target on it cannot tell schedules apart.

Writes bench/results/multifidelity.json. Run: .venv/bin/python bench/multifidelity.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
import tabular  # noqa: E402
from benchio import write_result  # noqa: E402
from samplers import DIRECTIONS, interval, make_sampler  # noqa: E402

from results.pareto import hypervolume, pareto_mask, reference_point  # noqa: E402
from search.driver import DUPLICATE_STREAK_LIMIT  # noqa: E402
from search.halving import WITHIN_FRONT, RungEntry, promotes, rung_epochs  # noqa: E402

SAMPLERS = ("random", "nsga2", "tpe")
GOAL = 1 / 3  # issue 16: halving needs at most a third of the best full schedule's epochs
optuna.logging.set_verbosity(optuna.logging.WARNING)


def replay(
    name: str,
    seed: int,
    table: dict[str, dict],
    *,
    budget: int,
    rungs: list[int],
    eta: int,
    within_front: str = "crowding",
    fill_repeats: bool = False,
) -> dict[str, Any]:
    """One sampler run until ``budget`` epochs are spent: (epochs, accuracy, latency_rel)
    for every finished trial in order, and the rung decisions taken. With ``fill_repeats``,
    each repeat proposal is followed by a seeded random architecture not yet answered
    (enqueued, so the sampler is told it like any other), instead of counting towards the
    streak that stops a sampler which only repeats itself."""
    space = tabular.table_space()
    # The table's architectures as the parameters a trial would suggest, by hash.
    points = tabular.points_by_hash() if fill_repeats else {}
    unseen = {h: p for h, p in points.items() if h in table}
    filler = random.Random(seed)
    study = optuna.create_study(directions=DIRECTIONS, sampler=make_sampler(name, seed))
    epochs_total = len(next(iter(table.values()))["curves"][0])
    spent, finished, decisions = 0, [], []
    answered: dict[str, list[float] | None] = {}  # arch hash -> told values (None: pruned)
    pool: dict[int, list[RungEntry]] = {r: [] for r in rungs}
    streak = 0
    while spent < budget and streak < DUPLICATE_STREAK_LIMIT:
        trial = study.ask()
        arch = space.suggest(trial)
        if arch.hash in answered:  # a repeat: answered as the driver does, at no cost
            streak += 1  # ... and, as there, a sampler that only repeats itself stops
            values = answered[arch.hash]
            if values is None:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, values)
            if fill_repeats:
                if not unseen:
                    break  # the whole table is answered
                study.enqueue_trial(unseen[filler.choice(sorted(unseen))])
            continue
        streak = 0
        unseen.pop(arch.hash, None)
        row = table[arch.hash]
        stopped_at = None
        for r in rungs:
            entry = RungEntry(
                trial.number,
                tuple(curve[r - 1] for curve in row["curves"]),
                (row["latency_rel"],),
            )
            went_on = promotes(entry, pool[r], eta, ["minimize"], within_front)
            pool[r].append(entry)
            decisions.append((r, arch.hash, entry.accuracy, went_on))
            if not went_on:
                stopped_at = r
                break
        if stopped_at is not None:
            spent += stopped_at
            answered[arch.hash] = None
            study.tell(trial, state=TrialState.PRUNED)
            continue
        spent += epochs_total
        values = [row["accuracy"], row["latency_rel"]]
        answered[arch.hash] = values
        study.tell(trial, values)
        finished.append((spent, *values))
    return {"finished": finished, "decisions": decisions, "spent": spent, "asks": len(study.trials)}


def hv_at(finished: list[tuple], epochs: int, ref: np.ndarray, true_hv: float) -> float:
    points = np.asarray([[a, lat] for e, a, lat in finished if e <= epochs])
    if len(points) == 0:
        return 0.0
    return hypervolume(points, DIRECTIONS, ref) / true_hv


def epochs_to(finished: list[tuple], target: float, ref: np.ndarray, true_hv: float) -> int | None:
    for k in range(1, len(finished) + 1):
        if hv_at(finished[:k], finished[k - 1][0], ref, true_hv) >= target:
            return finished[k - 1][0]
    return None


def rung_tau(decisions: list[tuple], table: dict[str, dict]) -> float | None:
    """Kendall tau between rung and final accuracy over every architecture decided."""
    pairs = [(acc, table[h]["accuracy"]) for _, h, acc, _ in decisions]
    if len(pairs) < 3:
        return None
    return float(kendalltau(*zip(*pairs, strict=True)).statistic)


def table_signal(table: dict[str, dict], cheapest: int = 10) -> dict[str, Any]:
    """What a table can judge, before any schedule is replayed on it.

    A replay scores a search against the table's own final accuracies; if a second seed
    ranks the architectures differently, the "true front" is partly one draw of seed noise
    and no schedule can be told to find it. Three figures say how much:

    - ``epoch_tau``: per epoch, Kendall tau between the seed-mean accuracy at that epoch and
      the final one (what a rung there can know), and between the two seeds at that epoch
      (how much of it is the architecture rather than the seed);
    - ``split_seed_front``: the front picked by one seed's final accuracy, scored as a
      hypervolume ratio on the other seed's (each way round): a full search of the whole
      table reaches no more than this on a fresh seed;
    - ``cheapest_share``: the hypervolume ratio of the ``cheapest`` lowest-latency
      architectures alone, i.e. how much of the front latency decides by itself.
    """
    rows = list(table.values())
    curves = np.asarray([r["curves"] for r in rows], dtype=float)  # arch x seed x epoch
    latency = np.asarray([r["latency_rel"] for r in rows], dtype=float)
    final = curves[:, :, -1].mean(axis=1)
    epoch_tau = [
        {
            "epoch": e + 1,
            "mean_accuracy": float(curves[:, :, e].mean()),
            "tau_with_final": float(kendalltau(curves[:, :, e].mean(axis=1), final).statistic),
            "tau_between_seeds": (
                float(kendalltau(curves[:, 0, e], curves[:, 1, e]).statistic)
                if curves.shape[1] > 1
                else None
            ),
        }
        for e in range(curves.shape[2])
    ]
    split = []
    for picked, scored in ((0, 1), (1, 0)) if curves.shape[1] > 1 else ():
        truth = np.column_stack([curves[:, scored, -1], latency])
        ref = reference_point(truth, DIRECTIONS)
        chosen = pareto_mask(np.column_stack([curves[:, picked, -1], latency]), DIRECTIONS)
        split.append(
            hypervolume(truth[chosen], DIRECTIONS, ref) / hypervolume(truth, DIRECTIONS, ref)
        )
    every = np.column_stack([final, latency])
    ref = reference_point(every, DIRECTIONS)
    cheap = every[np.argsort(latency)[:cheapest]]
    return {
        "epoch_tau": epoch_tau,
        "split_seed_front": split,
        "true_front_size": int(pareto_mask(every, DIRECTIONS).sum()),
        "cheapest": cheapest,
        "cheapest_share": hypervolume(cheap, DIRECTIONS, ref) / hypervolume(every, DIRECTIONS, ref),
    }


def syne_tune_version() -> str | None:
    try:
        import syne_tune
    except ImportError:
        return None
    return syne_tune.__version__


def replay_moasha(
    seed: int, table: dict[str, dict], *, budget: int, rungs: list[int], eta: int
) -> dict[str, Any]:
    """Syne Tune's multi-objective ASHA (non-dominated sorting of (error, latency_rel) at each
    rung, random proposals) on the same table and epoch accounting as ``replay``: each epoch
    it lets a trial train costs one, a repeat proposal is answered at no cost."""
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import choice
    from syne_tune.optimizer.scheduler import SchedulerDecision
    from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

    np.random.seed(seed)  # MOASHA draws brackets and proposals from numpy's global state
    epochs_total = len(next(iter(table.values()))["curves"][0])
    scheduler = MOASHA(
        {"arch": choice(sorted(table))},
        metrics=["error", "latency_rel"],
        do_minimize=True,
        time_attr="epoch",
        max_t=epochs_total,
        grace_period=rungs[0] if rungs else epochs_total,
        reduction_factor=eta,
        random_seed=seed,
    )
    spent, finished, decisions, seen, streak, asks = 0, [], [], set(), 0, 0
    while spent < budget and streak < DUPLICATE_STREAK_LIMIT:
        arch = scheduler.suggest().config["arch"]
        asks += 1
        if arch in seen:
            streak += 1
            continue
        streak = 0
        seen.add(arch)
        row = table[arch]
        trial = Trial(trial_id=asks, config={"arch": arch}, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        for epoch in range(1, epochs_total + 1):
            spent += 1
            accuracy = statistics.fmean(curve[epoch - 1] for curve in row["curves"])
            result = {"epoch": epoch, "error": 1 - accuracy, "latency_rel": row["latency_rel"]}
            if epoch == epochs_total:
                scheduler.on_trial_complete(trial, result)
                finished.append((spent, row["accuracy"], row["latency_rel"]))
                break
            went_on = scheduler.on_trial_result(trial, result) != SchedulerDecision.STOP
            if epoch in rungs:
                decisions.append((epoch, arch, accuracy, went_on))
            if not went_on:
                scheduler.on_trial_remove(trial)
                break
    return {"finished": finished, "decisions": decisions, "spent": spent, "asks": asks}


def median_epochs(reach: list[int | None]) -> float | None:
    """Median epochs to the target over every seed, a seed that never reached it counting as
    never (infinitely many epochs); None when half or more never did. The median of only the
    seeds that reached it would flatter a schedule that sometimes stops a front member for
    good, which successive halving does."""
    median = statistics.median(math.inf if x is None else x for x in reach)
    return None if math.isinf(median) else median


def epochs_per_architecture(rungs: list[int], eta: int, epochs: int) -> float:
    """Expected epochs one architecture costs under successive halving when each rung keeps
    exactly 1/eta of what reaches it: every one pays the first rung, 1/eta of them the way to
    the second, ..., 1/eta**len(rungs) the whole schedule.

    Why: divided by ``epochs`` it is what halving saves per architecture, the ratio it would
    reach if it found the front after the same architectures as the full schedule (0.56x for
    rungs [1] of 3 epochs at eta 3). A ratio below it needs the extra architectures halving
    can afford to find the front sooner; a goal far below it cannot be reached on that table
    whatever the ranking."""
    stops = [*rungs, epochs]
    cost = float(stops[0])
    for k in range(1, len(stops)):
        cost += (stops[k] - stops[k - 1]) / eta**k
    return cost


def ratio_interval(
    halving: list[int | None], full: list[int | None], resamples: int = 2000
) -> tuple[float, float]:
    """95% percentile interval of median(halving) / median(full) epochs to the target, each
    row's seeds resampled with replacement (the runs are independent), from a fixed generator.

    Why: the headline ratio divides two medians of runs that range from 15 to 180 epochs each,
    so its distance from the 0.33x goal means nothing without its spread. A resample in which
    halving's median never reaches the target reads infinity; one where the full schedule's
    never does reads 0. The best rows are chosen on the point estimate and kept fixed, so the
    interval leaves out that choice's own (downward) bias."""
    rng = np.random.default_rng(0)
    h = np.array([math.inf if x is None else x for x in halving], dtype=float)
    f = np.array([math.inf if x is None else x for x in full], dtype=float)
    mh = np.median(rng.choice(h, (resamples, len(h))), axis=1)
    mf = np.median(rng.choice(f, (resamples, len(f))), axis=1)
    with np.errstate(invalid="ignore"):
        ratios = np.where(np.isinf(mf), 0.0, mh / mf)
    lo, hi = np.percentile(ratios, [2.5, 97.5], method="inverted_cdf")  # no inf - inf
    return float(lo), float(hi)


def headline(result: dict[str, Any]) -> dict[str, Any] | None:
    """The replay's verdict: the best halving row's median epochs to the target over the best
    full row's, with ``ratio_interval``, where the 0.33x goal lies against it, and what halving
    saves per architecture on this ladder (``epochs_per_architecture``); None when either
    schedule never reached the target in half its runs."""
    best = {}
    for schedule in ("full", "successive_halving"):
        rows = [
            r for r in result["rows"] if r["schedule"] == schedule and r["epochs_to_target_median"]
        ]
        if not rows:
            return None
        best[schedule] = min(rows, key=lambda r: r["epochs_to_target_median"])
    full, sh = best["full"], best["successive_halving"]
    ratio = sh["epochs_to_target_median"] / full["epochs_to_target_median"]
    lo, hi = ratio_interval(sh["epochs_to_target_runs"], full["epochs_to_target_runs"])
    goal = "met" if hi <= GOAL else "missed" if lo > GOAL else "inside the interval"
    epochs = result["epochs_per_trial"]
    return {
        "ratio": ratio, "ci95": (lo, hi), "goal": goal,
        "halving_sampler": sh["sampler"], "full_sampler": full["sampler"],
        "halving_epochs": sh["epochs_to_target_median"],
        "full_epochs": full["epochs_to_target_median"],
        "saving_bound": epochs_per_architecture(result["rungs"], result["eta"], epochs) / epochs,
    }  # fmt: skip


def summarise(
    name: str,
    schedule: str,
    runs: list[dict[str, Any]],
    *,
    checkpoints: list[int],
    ref: np.ndarray,
    true_hv: float,
    target: float,
    table: dict[str, dict],
) -> dict[str, Any]:
    """One row of the comparison: hypervolume at each checkpoint, epochs to the target."""
    row: dict[str, Any] = {"sampler": name, "schedule": schedule, "seeds": len(runs)}
    for c in checkpoints:
        ratios = [hv_at(r["finished"], c, ref, true_hv) for r in runs]
        row[f"hv@{c}"] = statistics.mean(ratios)
        row[f"hv@{c}_ci95"] = interval(ratios)
    reach = [epochs_to(r["finished"], target, ref, true_hv) for r in runs]
    row["reached_target"] = sum(x is not None for x in reach)
    row["epochs_to_target_runs"] = reach
    row["epochs_to_target_median"] = median_epochs(reach)
    row["finished_trials"] = statistics.mean(len(r["finished"]) for r in runs)
    taus = [t for r in runs if (t := rung_tau(r["decisions"], table)) is not None]
    row["rung_tau"] = statistics.mean(taus) if taus else None
    row["stopped_share"] = statistics.mean(
        sum(not d[3] for d in r["decisions"]) / max(1, len(r["decisions"])) for r in runs
    )
    return row


def _replay_cell(
    name: str,
    schedule: str,
    seed: int,
    table: dict[str, dict],
    settings: dict[str, Any],
    within_front: str,
    fill_repeats: bool = False,
) -> dict[str, Any]:
    """One run of one row (a process pool's unit of work)."""
    if schedule == "moasha":
        return replay_moasha(seed, table, **settings)
    rungs = settings["rungs"] if schedule == "successive_halving" else []
    return replay(
        name,
        seed,
        table,
        **settings | {"rungs": rungs},
        within_front=within_front,
        fill_repeats=fill_repeats,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--seeds",
        type=int,
        default=30,
        help="runs per row (with 10, the headline ratio's 95%% interval spanned 0.25-1.15x)",
    )
    ap.add_argument("--budget", type=int, default=600, help="epochs per replay")
    ap.add_argument("--min-epochs", type=int, default=1)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument(
        "--within-front", choices=WITHIN_FRONT, default="crowding", help="order inside a front"
    )
    ap.add_argument(
        "--fill-repeats",
        action="store_true",
        help="follow each repeat proposal with a random architecture not yet answered",
    )
    ap.add_argument("--workers", type=int, default=2, help="processes the runs are spread over")
    ap.add_argument("--quick", action="store_true", help="CI: 2 seeds, 60 epochs")
    ap.add_argument("--table", type=Path, default=tabular.TABLE)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "multifidelity.json")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.budget = 2, 60
    console = Console()
    table = tabular.load_table(args.table)
    epochs_total = len(next(iter(table.values()))["curves"][0])
    rungs = rung_epochs(args.min_epochs, args.eta, epochs_total)
    every = np.asarray([[r["accuracy"], r["latency_rel"]] for r in table.values()])
    ref = reference_point(every, DIRECTIONS)
    true_hv = hypervolume(every, DIRECTIONS, ref)
    checkpoints = sorted({c for c in (30, 60, 120, 240, 480, args.budget) if c <= args.budget})
    console.print(
        f"replaying {len(table)} architectures ({epochs_total} epochs each, rungs {rungs}, "
        f"eta {args.eta}), {args.seeds} seeds, {args.budget} epochs per run"
    )
    rows = []
    t0 = time.perf_counter()
    summary = {
        "checkpoints": checkpoints, "ref": ref, "true_hv": true_hv, "target": args.target,
        "table": table,
    }  # fmt: skip
    st = syne_tune_version()
    cells = [(name, schedule) for name in SAMPLERS for schedule in ("full", "successive_halving")]
    cells += [("syne_tune (random)", "moasha")] if st is not None else []
    settings = {"budget": args.budget, "rungs": rungs, "eta": args.eta}
    # Each run is seeded and alone in its process, so spreading them changes no figure.
    with (
        Progress(console=console, transient=True) as progress,
        ProcessPoolExecutor(args.workers, mp_context=mp.get_context("fork")) as pool,
    ):
        task = progress.add_task("replays", total=len(cells) * args.seeds)
        futures = {
            cell: [
                pool.submit(
                    _replay_cell, *cell, s, table, settings, args.within_front, args.fill_repeats
                )
                for s in range(args.seeds)
            ]
            for cell in cells
        }
        for runs in futures.values():
            for f in runs:
                f.add_done_callback(lambda _: progress.advance(task))
        for (name, schedule), runs in futures.items():
            rows.append(summarise(name, schedule, [f.result() for f in runs], **summary))
    for row in rows:
        console.print(
            f"  {row['sampler']:18s} {row['schedule']:18s} "
            + ", ".join(f"hv@{c} {row[f'hv@{c}']:.3f}" for c in checkpoints)
        )
    best_full = min(
        (
            r["epochs_to_target_median"]
            for r in rows
            if r["schedule"] == "full" and r["epochs_to_target_median"]
        ),
        default=None,
    )
    best_sh = min(
        (
            r["epochs_to_target_median"]
            for r in rows
            if r["schedule"] == "successive_halving" and r["epochs_to_target_median"]
        ),
        default=None,
    )
    result = {
        "table": args.table.name,
        "table_fingerprint": tabular.fingerprint(epochs_total),
        "table_rows": len(table),
        "epochs_per_trial": epochs_total,
        "rungs": rungs,
        "eta": args.eta,
        "within_front": args.within_front,
        "fill_repeats": args.fill_repeats,
        "budget_epochs": args.budget,
        "target": args.target,
        "true_hypervolume": true_hv,
        "table_signal": table_signal(table),
        "reference_point_min_space": ref.tolist(),
        "quick": args.quick,
        "rows": rows,
        "syne_tune": f"syne-tune {st}, MOASHA (its row)" if st else "not installed",
        "best_full_epochs_to_target": best_full,
        "best_halving_epochs_to_target": best_sh,
        "seconds": time.perf_counter() - t0,
    }
    out = Table(title=f"hypervolume ratio against epochs spent ({args.seeds} seeds, mean)")
    for c in ("sampler", "schedule", *(f"{c} ep" for c in checkpoints), "to 95%", "rung tau"):
        out.add_column(c)
    for r in rows:
        out.add_row(
            r["sampler"],
            r["schedule"],
            *(f"{r[f'hv@{c}']:.3f}±{r[f'hv@{c}_ci95']:.3f}" for c in checkpoints),
            f"{r['epochs_to_target_median']} ({r['reached_target']}/{r['seeds']})",
            "-" if r["rung_tau"] is None else f"{r['rung_tau']:.2f}",
        )
    console.print(out)
    if (verdict := headline(result)) is not None:
        lo, hi = verdict["ci95"]
        console.print(
            f"successive halving reaches {args.target:.0%} of the true hypervolume in "
            f"{verdict['halving_epochs']} epochs against {verdict['full_epochs']} for the best "
            "full schedule: "
            f"{verdict['ratio']:.2f}x (95% interval over seeds {lo:.2f}-{hi:.2f}; the goal, "
            f"<= {GOAL:.2f}x, is {verdict['goal']})"
        )
    write_result(result, args.out)


if __name__ == "__main__":
    main()
