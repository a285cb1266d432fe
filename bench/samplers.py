"""Samplers side by side: how fast each approaches the true front, and what each ask costs.

Efficiency: every sampler (nsga2, tpe, gp, random) is replayed for several seeds against the
tabular benchmark (bench/tabular.py: every architecture of a 361-point sub-space evaluated
once), through the same flat encoding and sampler settings ``attnas search`` uses, with no
baselines enqueued. The hypervolume of the (accuracy max, latency_rel min) front after 25, 50
and 100 trials is reported as a ratio to the table's true front, with one reference point
for all (the table's worst values plus 10% of the range). A trial that proposes an already
seen architecture counts, as it does in a real search (told from the cache).

Cost: seconds per ask + suggest + tell with 100, 1,000 and 5,000 finished trials already in
an in-memory study (the samplers' own cost; storage I/O is separate), each cell in its own
process under a time limit so an O(n^3) sampler cannot stall the run.

Writes bench/results/samplers.json. Run: .venv/bin/python bench/samplers.py [--quick]
"""

from __future__ import annotations

import argparse
import json
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

from results.pareto import hypervolume, pareto_mask, reference_point  # noqa: E402

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


def replay(name: str, seed: int, table: dict[str, dict], n_trials: int) -> np.ndarray:
    """Objective values in trial order for one sampler run against the table."""
    space = tabular.table_space()
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler(name, seed)
    )
    values = []
    for _ in range(n_trials):
        trial = study.ask()
        row = table[space.suggest(trial).hash]
        v = [row["accuracy"], row["latency_rel"]]
        study.tell(trial, v)
        values.append(v)
    return np.asarray(values)


def efficiency(
    table: dict[str, dict], seeds: dict[str, int], checkpoints: list[int], console
) -> list[dict]:
    every = np.asarray([[r["accuracy"], r["latency_rel"]] for r in table.values()])
    ref = reference_point(every, DIRECTIONS)
    true_hv = hypervolume(every, DIRECTIONS, ref)
    front = {tuple(v) for v in every[pareto_mask(every, DIRECTIONS)]}
    rows = []
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
            distinct.append(len({tuple(v) for v in values}))
        row: dict[str, Any] = {"sampler": name, "seeds": seeds[name]}
        for k in checkpoints:
            row[f"hv@{k}"] = statistics.mean(ratios[k])
            row[f"hv@{k}_std"] = statistics.stdev(ratios[k]) if seeds[name] > 1 else 0.0
            row[f"front@{k}"] = statistics.mean(found[k])
        row["distinct_archs"] = statistics.mean(distinct)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        console.print(
            f"  {name}: " + ", ".join(f"hv@{k} {row[f'hv@{k}']:.3f}" for k in checkpoints)
        )
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
    ctx = mp.get_context("spawn")
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, 25 trials, costs at 100 only")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--gp-seeds", type=int, default=3, help="GP asks take seconds each")
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

    t = Table(title=f"hypervolume / true front ({len(table)}-architecture table, mean ± std)")
    t.add_column("sampler")
    for k in checkpoints:
        t.add_column(f"{k} trials", justify="right")
    t.add_column(f"true front found at {checkpoints[-1]}", justify="right")
    t.add_column("distinct archs", justify="right")
    t.add_column("seeds", justify="right")
    for r in eff_rows:
        t.add_row(
            r["sampler"],
            *(f"{r[f'hv@{k}']:.3f} ± {r[f'hv@{k}_std']:.3f}" for k in checkpoints),
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
        "quick": args.quick,
        "efficiency": eff_rows,
        "cost": cost_rows,
        "cost_limit_s": args.limit,
        "optuna": optuna.__version__,
        **ref,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
