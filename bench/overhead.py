"""Benchmark: what attnas's machinery (Ray Tune, Optuna storage, durable files, the latency
gate) adds on top of the evaluations themselves.

The same distinct architectures, seeds and concurrency are scored twice, side by side in one
run: (b) by ``attnas search`` (Ray Tune + Optuna + checkpoints), then (a) by a bare process
pool calling ``evaluators.evaluate``. overhead = (b - a) / a, in total and per trial.
Writes bench/results/overhead.json. Run: .venv/bin/python bench/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent


def _evaluate(args: tuple[dict, dict]) -> float:
    from evaluators import EvalConfig, evaluate
    from spaces import ArchConfig

    arch, cfg = args
    return evaluate(ArchConfig.model_validate(arch), EvalConfig.model_validate(cfg)).accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 epoch, 1 seed, 4 trials")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "overhead.json")
    args = ap.parse_args()
    from search.config import load_config
    from search.driver import run_search

    console = Console()
    n = 4 if args.quick else args.trials
    overrides = [f"n_trials={n}", "sampler.name=random", "study=overhead"]
    if args.quick:
        overrides += ["eval.train.epochs=1", "eval.seeds=[0]"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            ROOT.parent / "configs" / "quickstart.yaml", overrides + [f"output_dir={tmp}"]
        )
        t0 = time.perf_counter()
        outcome = run_search(cfg)
        searched = time.perf_counter() - t0
        trials = [t for t in outcome.study.trials if t.state.name == "COMPLETE"]
        distinct = {
            t.user_attrs["arch_hash"]: t.user_attrs["arch"]
            for t in trials
            if not t.user_attrs.get("cached")
        }
    eval_cfg = cfg.eval.model_dump(mode="json") | {"cache_dir": None}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=cfg.concurrency) as pool:
        list(pool.map(_evaluate, [(a, eval_cfg) for a in distinct.values()]))
    bare = time.perf_counter() - t0
    k = len(distinct)
    result = {
        "trials": n,
        "distinct_trained": k,
        "concurrency": cfg.concurrency,
        "epochs": cfg.eval.train.epochs,
        "seeds": list(cfg.eval.seeds),
        "search_seconds": searched,
        "bare_seconds": bare,
        "overhead_total": (searched - bare) / bare,
        "overhead_per_trial_s": (searched - bare) / k,
        "note": "search time includes starting a local Ray cluster and the latency gate",
    }
    table = Table(
        title=f"machinery overhead ({k} distinct architectures, concurrency {cfg.concurrency})"
    )
    for c in ("bare pool s", "attnas search s", "overhead", "per trial s"):
        table.add_column(c, justify="right")
    table.add_row(
        f"{bare:.1f}",
        f"{searched:.1f}",
        f"{result['overhead_total']:+.1%}",
        f"{result['overhead_per_trial_s']:+.2f}",
    )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
