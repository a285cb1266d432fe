"""A tabular benchmark: every architecture of a complete sub-space, evaluated once.

Samplers are then compared by replaying them against this table (bench/samplers.py) instead
of training: like NAS-Bench, the table *is* the ground truth, so its fidelity only has to be
fixed, not high. The sub-space is the quickstart's ResNet-18 with stages 2 and 3 searched
(6 attentions x 3 positions, ELA-B/S): 19 choices per stage, 361 architectures, each trained
for 3 epochs at 8 px on digits with two seeds in lockstep (the table's accuracy is their mean,
and every epoch's accuracy per seed is kept for replaying schedules such as successive
halving), with its paired latency ratio measured.

Building is resumable: rows are appended to the CSV as they finish and a rerun skips the
architectures already there. Rows carry the evaluation fingerprint (which includes the model
builder's version), and rows of another fingerprint are ignored, so a table built by an older
proxy is rebuilt rather than mixed in. The latency ratio is the exception: it is timed on the
untrained network (seed 0) with the pinned latency settings, so a row whose settings differ
only in what training cannot change (``SAME_TIMING``) lends its ``latency_rel`` to the rebuilt
row instead of timing the same network again. Run: .venv/bin/python bench/tabular.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

ROOT = Path(__file__).resolve().parent
TABLE = ROOT / "data" / "tabular_resnet18_s23.csv"
COLUMNS = (
    "arch_hash",
    "label",
    "params_json",
    "accuracy",
    "accuracy_std",
    "curves_json",
    "latency_rel",
    "flops",
    "eval_fingerprint",
    "seconds",
)

SPACE: dict[str, Any] = {
    "backbone": "resnet18",
    "widths": [16, 32, 64, 128],
    "stem": "cifar",
    "num_classes": 10,
    "in_chans": 1,
    "image_size": 8,
    "searched_stages": [2, 3],
    "attentions": ["none", "se", "eca", "ela", "ca", "cbam"],
    "positions": ["pre", "standard", "post"],
    "kernel_sizes": ["auto"],
    "variants": ["B", "S"],
    "reductions": [16],
}
EVAL: dict[str, Any] = {
    "dataset": "digits",
    "image_size": 8,
    "seeds": [0, 1],
    "threads": 1,
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.2},
    # The node gate serialises timing across workers: a looser interval keeps the build short.
    "latency": {
        "batch_size": 1,
        "repeats": 10,
        "threads": 1,
        "rel_ci": 0.01,
        "max_seconds": 3,
        "warmup": 10,
        "min_sample_ms": 40,
    },  # pinned: a default change must not orphan the table
}


def table_space():
    from spaces import SearchSpace

    return SearchSpace(SPACE)


def all_points() -> list[dict[str, Any]]:
    """One flat parameter set per distinct architecture of the sub-space."""
    import itertools

    from spaces import ArchConfig, StageChoice

    space = table_space()
    per_stage = {i: sorted(d.choices, key=lambda c: c.label()) for i, d in space.domains.items()}
    points = []
    for combo in itertools.product(*per_stage.values()):
        chosen = dict(zip(per_stage, combo, strict=True))
        stages = tuple(chosen.get(s.index, StageChoice()) for s in space.spec.stages)
        points.append(space.encode(ArchConfig(**space.config.arch_fields(), stages=stages)))
    return points


def eval_config(epochs: int = 3):  # noqa: ANN201  (evaluators.EvalConfig, imported lazily)
    """The table's pinned settings; a longer table (``--epochs``) differs only in length, so
    successive halving can be replayed with several rungs."""
    from evaluators import EvalConfig

    return EvalConfig.model_validate(EVAL | {"train": EVAL["train"] | {"epochs": epochs}})


def table_path(epochs: int) -> Path:
    return TABLE if epochs == 3 else TABLE.with_name(f"{TABLE.stem}_e{epochs}.csv")


# Training settings that change what is scored but not the network that is timed: rows
# stored under them differ from the current ones only in those settings.
SAME_TIMING: tuple[dict[str, Any], ...] = ({"bn_calibration": 0},)


def timing_donors(epochs: int) -> set[str]:
    """Fingerprints of stored rows whose ``latency_rel`` the current table may reuse."""
    from evaluators import EvalConfig

    base = eval_config(epochs).model_dump(mode="json")
    return {
        EvalConfig.model_validate(base | {"train": base["train"] | change}).fingerprint()
        for change in SAME_TIMING
    }


def _evaluate(params: dict[str, Any], epochs: int, latency_rel: float | None) -> dict[str, Any]:
    from evaluators import evaluate
    from evaluators.hygiene import node_gate

    arch = table_space().decode(params)
    t0 = time.perf_counter()
    cfg = eval_config(epochs)
    if latency_rel is not None:
        cfg = cfg.model_copy(update={"measure_latency": False})
    # The gate keeps the other worker from training while this one times latency.
    m = evaluate(arch, cfg, gate=node_gate())
    return {
        "arch_hash": arch.hash,
        "label": arch.label(),
        "params_json": json.dumps(params, sort_keys=True),
        "accuracy": m.accuracy,
        "accuracy_std": m.accuracy_std,
        "curves_json": json.dumps(m.accuracies_per_seed),
        "latency_rel": m.latency_rel if latency_rel is None else latency_rel,
        "flops": m.flops,
        # the table's settings, not cfg's: skipping the timing changes the fingerprint
        "eval_fingerprint": eval_config(epochs).fingerprint(),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def fingerprint(epochs: int = 3) -> str:
    return eval_config(epochs).fingerprint()


def load_table(
    path: Path = TABLE, *, fingerprints: set[str] | None = None
) -> dict[str, dict[str, Any]]:
    """arch hash -> row of the current evaluation fingerprint (or of one of ``fingerprints``),
    with numbers parsed."""
    if not path.is_file():
        raise SystemExit(f"no tabular benchmark at {path}; build it: python bench/tabular.py")
    current: dict[int, set[str]] = {}  # epochs -> the fingerprints a row of that length may carry
    rows = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            r["curves"] = json.loads(r.pop("curves_json"))
            epochs = len(r["curves"][0])
            if epochs not in current:
                current[epochs] = fingerprints or {fingerprint(epochs)}
            if r.get("eval_fingerprint") not in current[epochs]:
                continue  # an older proxy's row: rebuilt, never mixed in
            for key in ("accuracy", "accuracy_std", "latency_rel", "seconds"):
                r[key] = float(r[key])
            r["flops"] = int(r["flops"])
            rows[r["arch_hash"]] = r
    return rows


def points_by_hash() -> dict[str, dict[str, Any]]:
    """``all_points`` keyed by the hash of the architecture each one decodes to."""
    space = table_space()
    return {space.decode(p).hash: p for p in all_points()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="evaluate 2 architectures only")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per architecture")
    ap.add_argument("--out", type=Path, help="default: bench/data/tabular_resnet18_s23[_eN].csv")
    args = ap.parse_args()
    args.out = args.out or table_path(args.epochs)
    console = Console()
    points = points_by_hash()
    done = set(load_table(args.out)) if args.out.is_file() else set()
    todo = [h for h in points if h not in done]
    donors = timing_donors(args.epochs)
    timed = load_table(args.out, fingerprints=donors) if args.out.is_file() else {}
    lent = {h: r["latency_rel"] for h, r in timed.items()}
    if args.quick:
        todo = todo[:2]
    console.print(
        f"{len(points)} architectures in the sub-space, {len(done)} in the table; "
        f"{sum(h in lent for h in todo)} to train keep their stored timing"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.is_file() and args.out.open().readline().strip() != ",".join(COLUMNS):
        args.out.unlink()  # an older layout: its rows are another proxy's anyway
    new_file = not args.out.is_file()
    t0 = time.perf_counter()
    with (
        args.out.open("a", newline="") as f,
        ProcessPoolExecutor(max_workers=args.workers) as pool,
        Progress(console=console) as progress,
    ):
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        task = progress.add_task("evaluating", total=len(todo))
        for future in as_completed(
            [pool.submit(_evaluate, points[h], args.epochs, lent.get(h)) for h in todo]
        ):
            writer.writerow(future.result())
            f.flush()
            progress.advance(task)
    elapsed = time.perf_counter() - t0
    console.print(f"added {len(todo)} rows in {elapsed:.0f} s; table: {args.out}")


if __name__ == "__main__":
    main()
