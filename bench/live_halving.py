"""One live search with and without successive halving, on the same epoch budget.

Two studies of the quickstart config through the real driver (Ray, Optuna, real training),
each stopped by the same ``schedule.budget_epochs``: one with the full schedule, one with
successive halving (``min_epochs`` 1, ``eta`` 3: rungs at epochs 1 and 3 of 5). Reported:
trials finished and stopped, epochs spent, wall time, where the trials' time went (training,
each epoch's validation included, against everything else a trial does: building, latency
timing against its reference, Ray's dispatch, the record), and the hypervolume of each study's
(accuracy, latency_rel) front with one reference point for both (the worst values of the two
studies plus 10% of the range). The sampler and its seed are the same; one live run each
is one sample, not a distribution: the replay (bench/multifidelity.py) gives the spread.

Writes bench/results/live_halving.json. Run: .venv/bin/python bench/live_halving.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from benchio import QUICK_OVERRIDES, write_result
from rich.console import Console

from results.frame import trials_frame
from results.pareto import hypervolume, pareto_mask, reference_point
from search.config import load_config
from search.driver import run_search

ROOT = Path(__file__).resolve().parent
DIRECTIONS = ["maximize", "minimize"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--budget", type=int, default=120, help="epochs per study")
    ap.add_argument("--quick", action="store_true", help="CI: digits 8 px, 2 epochs, budget 6")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "live_halving.json")
    args = ap.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="attnas-live-"))
    if args.quick:
        args.budget = 6
    common = [f"output_dir={work}", "n_trials=1000", f"schedule.budget_epochs={args.budget}"]
    if args.quick:
        common += [*QUICK_OVERRIDES, "eval.train.epochs=2", "eval.seeds=[0]"]
        halving = ["schedule.min_epochs=1", "schedule.eta=2"]
    else:
        halving = ["schedule.min_epochs=1", "schedule.eta=3"]
    schedules = {
        "full": ["study=live-full", "schedule.name=full"],
        "successive_halving": ["study=live-sh", "schedule.name=successive_halving", *halving],
    }
    runs, frames = {}, {}
    try:
        for name, overrides in schedules.items():
            cfg = load_config(ROOT.parent / "configs" / "quickstart.yaml", common + overrides)
            t0 = time.perf_counter()
            outcome = run_search(cfg)
            frame = trials_frame(outcome.study)
            frames[name] = frame[frame["feasible"]][["accuracy", "latency_rel"]].to_numpy(float)
            # every trial a worker ran, stopped ones too; a repeat proposal is answered unrun
            ran = frame[frame["duration_s"].notna() & frame["duplicate_of"].isna()]
            runs[name] = {
                "trials_run": len(ran),
                "train_seconds": float(ran["train_seconds"].sum()),
                "trial_seconds": float(ran["duration_s"].sum()),
                "finished": outcome.completed,
                "stopped_at_a_rung": outcome.pruned,
                "epochs_spent": outcome.epochs_spent,
                "wall_seconds": time.perf_counter() - t0,
                "rungs": cfg.schedule.rungs(cfg.eval.train.epochs),
                "epochs_per_trial": cfg.eval.train.epochs,
            }
            console.print(f"  {name}: {runs[name]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    every = np.vstack(list(frames.values()))
    ref = reference_point(every, DIRECTIONS)
    for name, values in frames.items():
        runs[name]["hypervolume"] = hypervolume(values, DIRECTIONS, ref)
        runs[name]["front_size"] = int(pareto_mask(values, DIRECTIONS).sum())
    result = {
        "config": "configs/quickstart.yaml",
        "budget_epochs": args.budget,
        "quick": args.quick,
        "reference_point_min_space": ref.tolist(),
        "runs": runs,
    }
    full, sh = runs["full"]["hypervolume"], runs["successive_halving"]["hypervolume"]
    console.print(
        f"hypervolume on {args.budget} epochs: full {full:.4g}, successive halving {sh:.4g} "
        f"({sh / full:.2f}x); wall {runs['full']['wall_seconds']:.0f} s against "
        f"{runs['successive_halving']['wall_seconds']:.0f} s"
    )
    write_result(result, args.out)


if __name__ == "__main__":
    main()
