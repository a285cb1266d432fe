"""Framework overhead: what Ray Tune, Optuna storage and the durable files add on top of the
evaluations themselves, and what the latency hygiene costs.

The same K distinct architectures, seeds and concurrency are scored side by side in one run:

- ``search``: ``attnas search`` at quickstart settings (random sampler, so the K architectures
  are fixed up front by the study), through Ray Tune and the Optuna study, with checkpoints.
- ``bare+gate``: a bare process pool calling ``evaluators.evaluate`` on the same
  architectures with the same node gate the search workers use (nobody trains while another
  evaluation times latency). This is the like-for-like baseline: overhead = (search - bare+gate)
  / bare+gate, in total and per trial.
- ``bare``: the same pool without the gate: cheaper, but its latency numbers are taken while
  the other process trains; the difference is the price of honest latency, not of attnas.

The local Ray cluster's start-up is timed on its own and reported next to the total, since a
cluster that already runs (``--address``) does not pay it. The bare pool runs before and after
the search and the two are averaged, so warm caches favour neither side.

Writes bench/results/overhead.json. Run: .venv/bin/python bench/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchio import QUICK_OVERRIDES, write_result
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent


def _evaluate(args: tuple[dict, dict, bool]) -> float:
    from evaluators import EvalConfig, evaluate
    from evaluators.hygiene import node_gate
    from spaces import ArchConfig

    arch, cfg, gated = args
    gate = node_gate() if gated else None
    return evaluate(
        ArchConfig.model_validate(arch), EvalConfig.model_validate(cfg), gate=gate
    ).accuracy


def bare_pool(archs: list[dict], eval_cfg: dict, workers: int, gated: bool) -> float:
    t0 = time.perf_counter()
    # Spawned, not forked: this process has run torch (the search's pre-flight check of the
    # latency targets), and a fork of a process whose OpenMP pool is up deadlocks.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_evaluate, [(a, eval_cfg, gated) for a in archs]))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 epoch, 1 seed, 2 trials")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "overhead.json")
    args = ap.parse_args()
    import ray

    from results.record import read_record
    from search.config import load_config
    from search.driver import init_ray, run_search

    console = Console()
    n = 2 if args.quick else args.trials
    overrides = [f"n_trials={n}", "sampler.name=random", "study=overhead"]
    if args.quick:  # proves the script only
        overrides += [*QUICK_OVERRIDES, "eval.train.epochs=1", "eval.seeds=[0]"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            ROOT.parent / "configs" / "quickstart.yaml", overrides + [f"output_dir={tmp}"]
        )
        # The architectures the search will evaluate: the baselines first, then the random
        # sampler's draws, all decided by the study; read back after the search.
        eval_cfg = cfg.eval.model_dump(mode="json")
        t0 = time.perf_counter()
        init_ray(cfg.ray_address)
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        outcome = run_search(cfg)
        searched = time.perf_counter() - t0
        ray.shutdown()
        records = [read_record(t) for t in outcome.study.trials if t.state.name == "COMPLETE"]
        distinct = [r.arch for r in records if r is not None and r.counts]
    console.print(f"search: {len(distinct)} distinct architectures in {searched:.1f} s")
    bare_gated = [bare_pool(distinct, eval_cfg, cfg.concurrency, gated=True)]
    bare_free = bare_pool(distinct, eval_cfg, cfg.concurrency, gated=False)
    bare_gated.append(bare_pool(distinct, eval_cfg, cfg.concurrency, gated=True))
    gated = statistics.fmean(bare_gated)
    k = len(distinct)
    total = searched + startup
    result = {
        "trials": n,
        "quick": args.quick,
        "distinct_trained": k,
        "concurrency": cfg.concurrency,
        "epochs": cfg.eval.train.epochs,
        "seeds": list(cfg.eval.seeds),
        "ray_startup_seconds": startup,
        "search_seconds": searched,
        "bare_gated_seconds_runs": bare_gated,
        "bare_gated_seconds": gated,
        "bare_ungated_seconds": bare_free,
        "overhead_total": (searched - gated) / gated,
        "overhead_total_with_startup": (total - gated) / gated,
        "overhead_per_trial_s": (searched - gated) / k,
        "gate_cost": (gated - bare_free) / bare_free,
        "evaluations_per_hour_search": 3600 * k / searched,
        "evaluations_per_hour_bare_gated": 3600 * k / gated,
    }
    table = Table(
        title=f"machinery overhead ({k} distinct architectures, concurrency {cfg.concurrency}, "
        f"{cfg.eval.train.epochs} epochs x {len(cfg.eval.seeds)} seeds)"
    )
    for c in ("run", "seconds", "evaluations/hour", "vs bare+gate"):
        table.add_column(c, justify="right")
    table.add_row(
        "bare pool, no gate",
        f"{bare_free:.1f}",
        f"{3600 * k / bare_free:.0f}",
        f"{(bare_free - gated) / gated:+.1%}",
    )
    table.add_row("bare pool + gate", f"{gated:.1f}", f"{3600 * k / gated:.0f}", "0")
    table.add_row(
        "attnas search",
        f"{searched:.1f}",
        f"{3600 * k / searched:.0f}",
        f"{result['overhead_total']:+.1%}",
    )
    table.add_row(
        "  + local Ray start",
        f"{total:.1f}",
        f"{3600 * k / total:.0f}",
        f"{result['overhead_total_with_startup']:+.1%}",
    )
    console.print(table)
    console.print(
        f"per trial: {result['overhead_per_trial_s']:+.2f} s; bare runs with gate: "
        + ", ".join(f"{s:.1f}" for s in bare_gated)
    )
    write_result(result, args.out)


if __name__ == "__main__":
    main()
