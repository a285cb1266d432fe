"""Samplers side by side: how fast each approaches the true front, and what each ask costs.

Efficiency: every sampler (nsga2, tpe, gp, random) is replayed for several seeds against the
tabular benchmark (bench/tabular.py: every architecture of a 361-point sub-space evaluated
once), through the same flat encoding and sampler settings ``attnas search`` uses, with no
baselines enqueued. As in a real search, a proposal of an architecture already evaluated is
told its values without counting toward the budget (``search.driver``), so "k trials" means
k distinct architectures. The hypervolume of the (accuracy max, latency_rel min) front after
25, 50 and 100 architectures is reported as a ratio to the table's true front, with one
reference point for all (the table's worst values plus 10% of the range), as a mean over
seeds with its 95% confidence interval, and each sampler's difference from random with a
Welch 95% interval: a sampler "beats random" only where that interval excludes zero.

Cost: seconds per ask + suggest + tell with 100, 1,000 and 5,000 finished trials already in
an in-memory study (the samplers' own cost; storage I/O is separate), each cell in its own
process under a time limit so an O(n^3) sampler cannot stall the run.

Writes bench/results/samplers.json. Run: .venv/bin/python bench/samplers.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
import tabular  # noqa: E402
from benchio import fresh_processes, write_result  # noqa: E402

from results.pareto import hypervolume, pareto_mask, reference_point  # noqa: E402
from search.driver import DUPLICATE_STREAK_LIMIT  # noqa: E402

SAMPLERS = ("nsga2", "tpe", "gp", "random")
DIRECTIONS = ["maximize", "minimize"]
optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler exactly as ``attnas search`` builds it from the quickstart config."""
    from search.config import load_config
    from search.study import make_sampler as build

    cfg = load_config(
        ROOT.parent / "configs" / "quickstart.yaml",
        [f"sampler.name={name}", f"sampler.seed={seed}"],
    )
    return build(cfg)


def replay(name: str, seed: int, table: dict[str, dict], n_archs: int) -> np.ndarray:
    """Objective values of the first ``n_archs`` distinct architectures one sampler run
    proposes against the table (fewer if it only repeats itself, as the driver stops)."""
    space = tabular.table_space()
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler(name, seed)
    )
    values, seen, streak = [], set(), 0
    while len(values) < n_archs and streak < DUPLICATE_STREAK_LIMIT:
        trial = study.ask()
        arch = space.suggest(trial)
        row = table[arch.hash]
        v = [row["accuracy"], row["latency_rel"]]
        study.tell(trial, v)
        streak = streak + 1 if arch.hash in seen else 0
        if arch.hash not in seen:
            seen.add(arch.hash)
            values.append(v)
    return np.asarray(values)


def interval(values: list[float]) -> float:
    """Half-width of the 95% t confidence interval of the mean."""
    from scipy.stats import t

    n = len(values)
    return float(t.ppf(0.975, n - 1) * statistics.stdev(values) / n**0.5) if n > 1 else math.nan


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of a - b and the half-width of its Welch 95% confidence interval."""
    from scipy.stats import t

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = (va + vb) ** 0.5
    if se == 0:
        return statistics.mean(a) - statistics.mean(b), 0.0
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return statistics.mean(a) - statistics.mean(b), float(t.ppf(0.975, dof) * se)


def efficiency(
    table: dict[str, dict], seeds: dict[str, int], checkpoints: list[int], console
) -> list[dict]:
    every = np.asarray([[r["accuracy"], r["latency_rel"]] for r in table.values()])
    ref = reference_point(every, DIRECTIONS)
    true_hv = hypervolume(every, DIRECTIONS, ref)
    front = {tuple(v) for v in every[pareto_mask(every, DIRECTIONS)]}
    rows = []
    per_seed: dict[str, dict[int, list[float]]] = {}
    for name in SAMPLERS:
        ratios: dict[int, list[float]] = {k: [] for k in checkpoints}
        found: dict[int, list[float]] = {k: [] for k in checkpoints}
        distinct: list[int] = []
        t0 = time.perf_counter()
        for seed in range(seeds[name]):
            values = replay(name, seed, table, max(checkpoints))
            for k in checkpoints:
                ratios[k].append(hypervolume(values[:k], DIRECTIONS, ref) / true_hv)
                found[k].append(len(front & {tuple(v) for v in values[:k]}) / len(front))
            distinct.append(len(values))
        per_seed[name] = ratios
        row: dict[str, Any] = {"sampler": name, "seeds": seeds[name]}
        for k in checkpoints:
            row[f"hv@{k}"] = statistics.mean(ratios[k])
            row[f"hv@{k}_std"] = statistics.stdev(ratios[k]) if seeds[name] > 1 else 0.0
            row[f"hv@{k}_ci95"] = interval(ratios[k])
            row[f"front@{k}"] = statistics.mean(found[k])
        row["distinct_archs"] = statistics.mean(distinct)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        console.print(
            f"  {name}: " + ", ".join(f"hv@{k} {row[f'hv@{k}']:.3f}" for k in checkpoints)
        )
    for row in rows:
        for k in checkpoints:
            a, b = per_seed[row["sampler"]][k], per_seed["random"][k]
            if row["sampler"] == "random" or len(a) < 2 or len(b) < 2:
                continue
            diff, half = welch(a, b)
            row[f"vs_random@{k}"] = diff
            row[f"vs_random@{k}_ci95"] = half
            row[f"beats_random@{k}"] = diff - half > 0
    return rows, {
        "reference_point_min_space": ref.tolist(),
        "true_hypervolume": true_hv,
        "true_front_size": len(front),
    }


def _cost_cell(name: str, n_finished: int, asks: int, out: mp.Queue) -> None:
    space = tabular.table_space()
    table = list(tabular.load_table().values())
    rng = np.random.default_rng(0)
    dists = {
        k: optuna.distributions.CategoricalDistribution(list(v))
        for k, v in space.distributions().items()
    }
    finished = []
    for _ in range(n_finished):
        params = {k: d.choices[rng.integers(len(d.choices))] for k, d in dists.items()}
        row = table[rng.integers(len(table))]
        finished.append(
            optuna.trial.create_trial(
                params=params, distributions=dists, values=[row["accuracy"], row["latency_rel"]]
            )
        )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(name, 0))
    study.add_trials(finished)
    times = []
    for _ in range(asks):
        t0 = time.perf_counter()
        trial = study.ask()
        row = table[int(rng.integers(len(table)))]
        space.suggest(trial)
        study.tell(trial, [row["accuracy"], row["latency_rel"]])
        times.append(time.perf_counter() - t0)
    out.put(statistics.median(times))


def cost(sizes: list[int], asks: int, limit_s: float, console) -> list[dict]:
    rows = []
    ctx = fresh_processes("optuna", "tabular", "search.driver", "results.pareto")
    for name in SAMPLERS:
        row: dict[str, Any] = {"sampler": name}
        for n in sizes:
            queue: mp.Queue = ctx.Queue()
            proc = ctx.Process(target=_cost_cell, args=(name, n, asks, queue))
            proc.start()
            proc.join(limit_s)
            if proc.is_alive():
                proc.terminate()
                proc.join()
                row[f"s_per_ask@{n}"] = None  # over the limit
            else:
                row[f"s_per_ask@{n}"] = queue.get() if not queue.empty() else None
        rows.append(row)
        console.print(f"  {name}: {row}")
    return rows


def _cell(r: dict, k: int) -> str:
    text = f"{r[f'hv@{k}']:.3f} ± {r[f'hv@{k}_ci95']:.3f}"
    if f"vs_random@{k}" in r:
        text += f" ({r[f'vs_random@{k}']:+.3f} ± {r[f'vs_random@{k}_ci95']:.3f})"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, 25 trials, costs at 100 only")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--gp-seeds", type=int, default=10, help="GP asks take seconds each")
    ap.add_argument("--limit", type=float, default=180.0, help="seconds per cost cell")
    ap.add_argument("--table", type=Path, default=tabular.TABLE)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "samplers.json")
    args = ap.parse_args()
    console = Console()
    table = tabular.load_table(args.table)
    expected = len(tabular.all_points())
    if len(table) < expected and not args.quick:
        raise SystemExit(f"the table has {len(table)} of {expected} rows; finish bench/tabular.py")
    seeds = {name: 1 if args.quick else args.seeds for name in SAMPLERS}
    if not args.quick:
        seeds["gp"] = args.gp_seeds
    checkpoints = [10, 25] if args.quick else [25, 50, 100]
    sizes = [100] if args.quick else [100, 1000, 5000]
    asks = 3

    console.print(f"efficiency: {len(table)} architectures in the table, seeds {seeds}")
    eff_rows, ref = efficiency(table, seeds, checkpoints, console)
    console.print("cost: seconds per ask+suggest+tell")
    cost_rows = cost(sizes, asks, args.limit, console)

    t = Table(
        title=f"hypervolume / true front ({len(table)}-architecture table, mean ± 95% CI; "
        "difference from random)"
    )
    t.add_column("sampler")
    for k in checkpoints:
        t.add_column(f"{k} archs", justify="right")
    t.add_column(f"true front found at {checkpoints[-1]}", justify="right")
    t.add_column("distinct archs", justify="right")
    t.add_column("seeds", justify="right")
    for r in eff_rows:
        t.add_row(
            r["sampler"],
            *(_cell(r, k) for k in checkpoints),
            f"{r[f'front@{checkpoints[-1]}']:.0%}",
            f"{r['distinct_archs']:.0f}",
            str(r["seeds"]),
        )
    console.print(t)
    c = Table(title="sampler cost: seconds per ask+suggest+tell (in-memory study)")
    c.add_column("sampler")
    for n in sizes:
        c.add_column(f"{n:,} finished", justify="right")
    for r in cost_rows:
        c.add_row(
            r["sampler"],
            *(
                f"{r[f's_per_ask@{n}']:.4f}"
                if r[f"s_per_ask@{n}"] is not None
                else f"> {args.limit:.0f} s"
                for n in sizes
            ),
        )
    console.print(c)
    result = {
        "table": str(args.table.relative_to(ROOT.parent))
        if args.table.is_relative_to(ROOT.parent)
        else str(args.table),
        "table_rows": len(table),
        "table_fingerprint": tabular.fingerprint(),
        "quick": args.quick,
        "efficiency": eff_rows,
        "cost": cost_rows,
        "cost_limit_s": args.limit,
        "optuna": optuna.__version__,
        **ref,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
