"""How many trials per second the driver sustains, and so how large a cluster it can feed.

The real driver (Ray Tune, the Optuna study, the study's records, successive halving with
its stored rung decisions) runs thousands of *stub* trials: an evaluation that trains
nothing, writes a fixed ``cost.json`` (FLOPs and parameters derived from the architecture's
hash), reports per-epoch accuracies after a short sleep per epoch, and returns a valid
outcome, so everything the driver does per trial is real and nothing else costs time.
Objectives are (accuracy, flops): a stub has no latency to measure.

Measured for each (storage, concurrency): trials per second over the run after warm-up
(the first 10% of trials, while Ray starts its actors, are left out), and the driver's own
time per call, p50 and p99, for each of its three jobs: ask (the searcher's ``suggest``:
sample, decode, store the record), decide (a rung report: rank, store the decision) and
tell (store the record, tell Optuna). Concurrency 16 and 64 run on this machine's 2 cores
with fractional CPUs per trial: the stub mostly sleeps, so what saturates is the driver.

Writes bench/results/scale.json. Run: .venv/bin/python bench/scale.py [--quick]
(PostgreSQL: a throw-away local server, as the tests start one; skipped where none exists.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchio import measured_at, write_result
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent
EPOCHS = 3  # rungs at 1 and 3 epochs (min_epochs 1, eta 3)
SEEDS = (0, 1)


def stub_trial(config: dict[str, Any]) -> None:
    """A Ray Tune trainable that trains nothing and imports no torch (64 of them share 2
    cores and 24 GiB): fixed costs, made-up per-epoch accuracies (a function of the
    architecture, so rungs have something to rank), a short sleep per epoch. It writes and
    reports exactly the files and results a real worker does, as plain JSON; the driver
    validates them with its own models. ``config["stub"]`` (added by ``StubbedDriver``)
    carries what a real worker computes from the architecture."""
    import os
    import statistics
    import tempfile
    import time
    from pathlib import Path

    from ray import tune

    stub = config["stub"]
    key = {"arch_hash": stub["arch_hash"], "eval_fingerprint": stub["fingerprint"]}
    folder = Path(config["evals_dir"]) / f"{stub['arch_hash']}-{stub['fingerprint']}"
    folder.mkdir(parents=True, exist_ok=True)
    cost = key | {"params": stub["params"], "flops": stub["flops"], "latencies": {}}
    fd, tmp = tempfile.mkstemp(dir=folder)
    with os.fdopen(fd, "w") as f:
        json.dump(cost, f)
    os.replace(tmp, folder / "cost.json")
    # Which worker process ran the trial: Tune reuses an actor only when a staged trial needs
    # it, and every new one is a process start on the machine the driver shares.
    (folder / "worker_pid").write_text(str(os.getpid()))
    seeds, epochs = config["eval"]["seeds"], config["eval"]["train"]["epochs"]
    sleep = float(os.environ.get("ATTNAS_STUB_SLEEP", "0.1"))
    per_seed: list[list[float]] = [[] for _ in seeds]
    for epoch in range(1, epochs + 1):
        time.sleep(sleep)
        for s, accs in zip(seeds, per_seed, strict=True):
            accs.append(0.5 + 0.4 * stub["quality"] * epoch / epochs + 0.001 * s)
        accuracies = [a[-1] for a in per_seed]
        tune.report(
            {"epoch": epoch, "accuracy": statistics.fmean(accuracies), "accuracies": accuracies}
        )
    finals = [a[-1] for a in per_seed]
    outcome = key | {
        "status": "ok",
        "arch": config["arch"],
        "split": config["eval"]["split"],
        "seeds": seeds,
        "accuracy": statistics.fmean(finals),
        "accuracy_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        "accuracies": [statistics.fmean(e) for e in zip(*per_seed, strict=True)],
        "accuracies_per_seed": per_seed,
        "latency_ms": None,
        "latency_iqr_ms": None,
        "latency_rel": None,
        "reference_latency_ms": None,
        "flops": stub["flops"],
        "params": stub["params"],
        "train_seconds": sleep * epochs,
        "device": "cpu",
        "hardware": {"name": "stub"},
    }
    tune.report({"outcome": json.dumps(outcome), "node": "stub"})


def stubbed_config(run: Any, d: Any) -> dict[str, Any]:
    """The driver's trial config plus what the stub needs to answer like a real worker."""
    config = SAVED_TRIAL_CONFIG(run, d)
    digest = int(d.arch_hash[:12], 16)
    config["stub"] = {
        "arch_hash": d.arch_hash,
        "fingerprint": run.eval_fp,
        "params": 100_000 + digest % 50_000,
        "flops": 1_000_000 + digest % 500_000,
        "quality": (digest >> 20) % 1000 / 1000,
    }
    return config


SAVED_TRIAL_CONFIG: Any = None


class CallTimer:
    """Wraps the driver's ask / decide / tell so each call's duration is kept."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {"ask": [], "decide": [], "tell": []}
        self.finished: list[float] = []  # perf_counter at each settled trial

    def wrap(self, name: str, fn: Callable[..., Any], keep: Callable[..., bool]) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            if keep(*args, out=out, **kwargs):
                self.seconds[name].append(time.perf_counter() - t0)
            if name == "tell":
                self.finished.append(time.perf_counter())
            return out

        return timed

    def install(self) -> Callable[[], None]:
        """Patch ``SearchRun`` for this process (time its three jobs; give each trial config
        what the stub needs); returns the undo."""
        from search.driver import SearchRun

        global SAVED_TRIAL_CONFIG
        saved = {
            n: getattr(SearchRun, n)
            for n in ("next_config", "on_result", "trial_finished", "_trial_config")
        }
        SAVED_TRIAL_CONFIG = saved["_trial_config"]
        SearchRun._trial_config = stubbed_config

        def is_config(*_: Any, out: Any, **__: Any) -> bool:
            return isinstance(out, dict)  # a trial handed out, not "wait" or "finished"

        def at_rung(run: Any, _tid: str, result: dict, *, out: Any) -> bool:
            return result.get("epoch") in run.rung_epochs

        SearchRun.next_config = self.wrap("ask", saved["next_config"], is_config)
        SearchRun.on_result = self.wrap("decide", saved["on_result"], at_rung)
        SearchRun.trial_finished = self.wrap("tell", saved["trial_finished"], lambda *a, **k: True)

        def undo() -> None:
            for n, f in saved.items():
                setattr(SearchRun, n, f)

        return undo


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "calls": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"p50_ms": 1000 * statistics.median(ordered), "p99_ms": 1000 * p99, "calls": len(values)}


def run_one(storage: str | None, concurrency: int, trials: int, work: Path) -> dict[str, Any]:
    """One study driving about ``trials`` stub trials at ``concurrency`` on ``storage`` (None:
    SQLite). ``n_trials`` counts fully trained trials only; with eta 3 two in three stop at
    the first rung, so a third of ``trials`` is asked for."""
    import ray

    from search.config import load_config
    from search.driver import init_ray, run_search

    name = f"scale-{'pg' if storage else 'sqlite'}-{concurrency}"
    overrides = [
        f"output_dir={work}",
        f"study={name}",
        f"n_trials={max(1, trials // 3)}",
        f"concurrency={concurrency}",
        f"resources.cpus_per_trial={2 / concurrency}",
        "objectives=[accuracy,flops]",
        # Random sampling: every trial costs the driver the same (sampling aside), and a
        # converging NSGA-II population would mostly propose architectures already answered.
        "sampler.name=random",
        "eval.measure_latency=false",
        f"eval.train.epochs={EPOCHS}",
        f"eval.seeds=[{','.join(map(str, SEEDS))}]",
        "schedule.name=successive_halving",
        "schedule.min_epochs=1",
        "schedule.eta=3",
        "max_failures=0",
    ] + ([f"storage={storage}"] if storage else [])
    cfg = load_config(ROOT.parent / "configs" / "quickstart.yaml", overrides)
    timer = CallTimer()
    undo = timer.install()
    init_ray(None, num_cpus=2)
    t0 = time.perf_counter()
    try:
        outcome = run_search(cfg, trainable=stub_trial)
    finally:
        undo()
        ray.shutdown()
    wall = time.perf_counter() - t0
    states = Counter(t.state.name for t in outcome.study.get_trials(deepcopy=False))
    pids = {p.read_text() for p in cfg.study_dir.glob("evals/*/worker_pid")}
    settled = timer.finished
    warm = settled[len(settled) // 10] if len(settled) > 10 else t0
    steady = [t for t in settled if t > warm]
    rate = len(steady) / (steady[-1] - warm) if len(steady) > 1 else float("nan")
    return {
        "storage": "postgresql" if storage else "sqlite",
        "concurrency": concurrency,
        "trials_settled": len(settled),
        "complete": outcome.completed,
        "pruned": outcome.pruned,
        "duplicates": outcome.duplicates,
        "states": dict(states),
        "wall_seconds": wall,
        "trials_per_second": rate,
        "offered_trials_per_second": concurrency / (EPOCHS * _sleep()),
        "worker_processes": len(pids),
        "trials_per_worker_process": len(settled) / max(1, len(pids)),
        "calls": {k: _quantiles(v) for k, v in timer.seconds.items()},
    }


def machine(storage_urls: list[str]) -> dict[str, Any]:
    """What the figures depend on besides the code: the machine, the driver's libraries and
    the PostgreSQL server's version."""
    import importlib.metadata as md
    import os

    import sqlalchemy
    import torch

    from evaluators.latency import hardware_info

    versions = {}
    for package in ("ray", "optuna", "sqlalchemy", "psycopg2-binary"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    for url in storage_urls:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            versions["postgresql"] = conn.execute(sqlalchemy.text("SHOW server_version")).scalar()
        engine.dispose()
    hardware = hardware_info(torch.device("cpu")) | {"cpus": str(os.cpu_count())}
    return {"hardware": hardware, "versions": versions}


def _commit() -> str | None:
    """The short hash of the checkout the figures were measured on (None outside git)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


SETTINGS = ("trials", "epochs", "seeds", "stub_sleep_s", "quick")  # what makes rows comparable


def carried_rows(previous: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of an earlier result with the same settings, for the configurations this run
    does not measure: each configuration at 2,000 trials takes 10-40 minutes, so a change
    that concerns one storage is rerun on that storage alone, and the table keeps the others
    with the date and commit they were measured at (the report shows both)."""
    if any(previous.get(k) != result.get(k) for k in SETTINGS):
        return []
    return list(previous.get("runs", []))


def merged_runs(fresh: list[dict[str, Any]], carried: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This run's rows, and the carried ones whose (storage, concurrency) it has not
    measured, in (storage, concurrency) order."""
    done = {(r["storage"], r["concurrency"]) for r in fresh}
    rows = [*fresh, *(r for r in carried if (r["storage"], r["concurrency"]) not in done)]
    order = {"sqlite": 0, "postgresql": 1}
    return sorted(rows, key=lambda r: (order.get(r["storage"], 2), r["concurrency"]))


def _sleep() -> float:
    import os

    return float(os.environ.get("ATTNAS_STUB_SLEEP", "0.1"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    ap.add_argument(
        "--quick", action="store_true", help="CI: about 45 trials at concurrency 4, SQLite"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "scale.json")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.concurrency, args.no_postgres = 45, [4], True
    console = Console()
    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {
        "trials": args.trials,
        "epochs": EPOCHS,
        "seeds": list(SEEDS),
        "stub_sleep_s": _sleep(),
        "quick": args.quick,
        "runs": rows,
    }
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    carried = carried_rows(previous, result)
    commit = _commit()
    with tempfile.TemporaryDirectory(prefix="attnas-scale-") as tmp:
        storages: list[str | None] = [None]
        server = None
        if not args.no_postgres:
            try:
                sys.path.insert(0, str(ROOT.parent))  # tests/pg.py: the suite's throw-away server
                from tests.pg import postgres_server

                server = postgres_server()
                storages.append(server.__enter__()["url"])
            except Exception as exc:  # no server binaries, not root: SQLite alone, said so
                console.print(f"[yellow]PostgreSQL skipped: {exc}[/]")
                server = None
        result |= machine([s for s in storages if s])
        try:
            for storage in storages:
                for concurrency in args.concurrency:
                    work = Path(tmp) / f"{len(rows)}"
                    row = run_one(storage, concurrency, args.trials, work)
                    row["measured_at"] = measured_at()
                    row["commit"] = commit
                    rows.append(row)
                    result["runs"] = merged_runs(rows, carried)
                    write_result(result, args.out, quiet=True)  # a cut-short run keeps its rows
                    console.print(
                        f"{row['storage']} x{concurrency}: {row['trials_per_second']:.1f} "
                        f"trials/s ({row['trials_settled']} settled in {row['wall_seconds']:.0f} s)"
                    )
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    kept = [r for r in result["runs"] if r not in rows]
    if kept:
        console.print(
            f"kept {len(kept)} rows of an earlier run with the same settings: "
            + ", ".join(f"{r['storage']} x{r['concurrency']}" for r in kept)
        )
    table = Table(title=f"driver throughput, {args.trials} stub trials, successive halving")
    for c in ("storage", "concurrency", "trials/s", "offered", "ask p50/p99 ms"):
        table.add_column(c)
    table.add_column("decide p50/p99 ms")
    table.add_column("tell p50/p99 ms")
    for r in rows:
        c = r["calls"]
        table.add_row(
            r["storage"],
            str(r["concurrency"]),
            f"{r['trials_per_second']:.1f}",
            f"{r['offered_trials_per_second']:.0f}",
            *(f"{c[k]['p50_ms']:.1f} / {c[k]['p99_ms']:.1f}" for k in ("ask", "decide", "tell")),
        )
    console.print(table)
    write_result(result, args.out)


if __name__ == "__main__":
    main()
