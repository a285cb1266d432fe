"""Does the short schedule rank placements as a long one does? (``make bench-fidelity``)

A fixed, seeded sample of the quickstart space (``none`` and every uniform paper baseline
first, then random distinct architectures) trained with several seeds at the config's short
schedule and at a long reference recipe; see ``evaluators/fidelity.py`` for the figures.
The long recipe (``LONG_RECIPE``, 30 epochs, six times the quickstart's 5) was fixed when
this benchmark was written, before any tuning of the short schedule, and is never tuned with
it: short recipes can be compared against the same long runs, which the store keeps. Runs are appended to ``bench/data/fidelity_<dataset><size>.jsonl`` with per-epoch
curves, so the benchmark resumes where it stopped and may run across sessions.
``--quick`` proves the script in CI. Writes ``bench/results/fidelity.json`` for the headline
task (``make bench-fidelity``) and ``fidelity_<dataset><size>.json`` for any other, so that a
run on the quickstart's own task sits beside it instead of replacing it.

    python bench/fidelity.py [--config configs/quickstart.yaml] [--set eval.dataset=clutter]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchio import QUICK_OVERRIDES, write_result
from rich.console import Console
from rich.table import Table

from evaluators.fidelity import (
    analyse,
    complete_runs,
    load_store,
    make_plan,
    measure_plan_latency,
    ranking,
    run_plan,
    summary,
    table_rows,
    trained_on,
    training_seconds,
)
from evaluators.train import TrainSettings
from search.config import load_config
from spaces import SearchSpace

ROOT = Path(__file__).resolve().parent
# The long reference recipe: the quickstart's optimizer settings as they stood when the
# benchmark was introduced. Fixed; never tuned together with the short schedule.
LONG_RECIPE = {
    "epochs": 30,
    "batch_size": 64,
    "lr": 0.2,
    "label_smoothing": 0.1,
    "warmup_fraction": 0.2,
    "weight_decay": 5e-4,
    "optimizer": "sgd",
    # Pinned too, so that a short recipe without augmentation leaves the long one alone.
    "augment": True,
    # Scored with BatchNorm's running averages, as the stored long runs were: the reference
    # stays the one fixed before any tuning (after 30 epochs, the last ~34 steps at a learning
    # rate near zero, the averages describe the final weights).
    "bn_calibration": 0,
}
# Every training setting not named above is at its default (``TrainSettings()``), never the
# config's or a ``--set``'s: a short recipe that changes one (momentum, a training pool) would
# otherwise change the long reference too, and no stored long run would be found for it.
# The task whose figures head BENCHMARKS.md (``make bench-fidelity``): the embedded task on
# which the long schedule separates placements beyond seed noise.
HEADLINE_TASK = "clutter16"


def long_recipe(quick: bool = False, epochs: int | None = None) -> dict[str, Any]:
    """Every training setting of the long reference: ``LONG_RECIPE`` over the defaults (CI's
    ``--quick`` shortens it). ``epochs`` lengthens the same recipe for a longer short
    schedule (its warm-up is a fraction, so it scales), which keeps the 6x contract without
    touching any other setting: a length set by the contract, not a tuning."""
    recipe = TrainSettings().model_dump(mode="json") | LONG_RECIPE
    recipe |= {"epochs": epochs} if epochs else {}
    return recipe | ({"epochs": 2, "batch_size": 256} if quick else {})


CONTRACT_RATIO = 6
"""The benchmark's contract: the long reference trains at least this many times as long as
the short schedule, so that it stands for full training rather than a slightly longer run."""


def check_lengths(short: int, long: int, *, quick: bool = False, screen: bool = False) -> None:
    """The benchmark's contract: the long reference is at least ``CONTRACT_RATIO`` times the
    short schedule (twice in CI's ``--quick``). A ``--screen`` may go up to half of it: enough
    to see whether a longer short schedule ranks better before a longer reference is trained
    for it, and labelled so that nobody reads it as the benchmark."""
    ratio = 2 if quick or screen else CONTRACT_RATIO
    if long < ratio * short:
        hint = "" if screen or quick else " (--screen allows up to half, as a screen)"
        raise SystemExit(
            f"the long recipe ({long} epochs) must be at least {ratio} times the short "
            f"schedule ({short} epochs){hint}"
        )


def result_name(task: str, recipe: str | None, long_epochs: int | None = None) -> str:
    """``fidelity[_<task>][_long<N>][_recipe_<name>]``: the headline task's result keeps the
    plain name, another task's carries it, a longer reference than ``LONG_RECIPE``'s carries
    its length (its long runs are others), and a candidate short recipe is named after the
    result it is compared with."""
    name = "fidelity" if task == HEADLINE_TASK else f"fidelity_{task}"
    if long_epochs and long_epochs != LONG_RECIPE["epochs"]:
        name += f"_long{long_epochs}"
    return f"{name}_recipe_{recipe}" if recipe else name


def check_seeds(out: Path, seeds: int) -> None:
    """A rerun with fewer seeds than the stored result would replace it with a noisier one
    (a result is extended one seed at a time, in place): refuse, naming both counts."""
    if not out.exists():
        return
    stored = len(json.loads(out.read_text())["seeds"])
    if seeds < stored:
        raise SystemExit(
            f"{out.name} holds a {stored}-seed result; --seeds {seeds} would replace it with "
            f"fewer: pass --seeds {stored} (or more, to extend it) or --out elsewhere"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT.parent / "configs" / "quickstart.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--archs", type=int, default=30, help="architectures in the sample")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="CI: digits 8 px, tiny schedules")
    ap.add_argument("--store", type=Path, default=None, help="JSON-lines run store")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"default results/fidelity.json on {HEADLINE_TASK}, results/fidelity_<task>.json "
        "on another task",
    )
    ap.add_argument(
        "--recipe",
        default=None,
        metavar="NAME",
        help="a candidate short recipe (its --set overrides): writes "
        "results/fidelity[_<task>]_recipe_NAME.json, which BENCHMARKS.md compares with the "
        "others on its task",
    )
    ap.add_argument(
        "--long-epochs",
        type=int,
        default=None,
        metavar="N",
        help=f"the long reference's length (default {LONG_RECIPE['epochs']}); every other "
        "setting stays LONG_RECIPE's: for a short schedule longer than a sixth of it",
    )
    ap.add_argument(
        "--screen",
        action="store_true",
        help="allow a short schedule longer than a sixth of the long recipe (at most half of "
        "it), to screen a longer short schedule against the stored long runs before paying "
        "for a longer reference; the result says it is a screen, not the 6x benchmark",
    )
    ap.add_argument(
        "--analyse-only",
        action="store_true",
        help="train and time nothing: analyse the architectures whose runs are all stored",
    )
    args = ap.parse_args()

    overrides = list(args.overrides)
    if args.quick:
        overrides += [*QUICK_OVERRIDES, "eval.dataset=digits", "eval.train.epochs=1"]
        overrides += ["space.attentions=[none,se,eca]"]  # three baselines and one sampled
        args.archs, args.seeds = 4, 2
    cfg = load_config(args.config, overrides)
    if args.screen and not args.recipe:
        raise SystemExit("--screen needs --recipe NAME: a screen never replaces the benchmark")
    recipe = long_recipe(args.quick, args.long_epochs)
    check_lengths(cfg.eval.train.epochs, recipe["epochs"], quick=args.quick, screen=args.screen)
    space = SearchSpace(cfg.space)
    plan = make_plan(
        space,
        cfg.eval,
        archs=args.archs,
        seeds=args.seeds,
        long_recipe=recipe,
        sample_seed=args.sample_seed,
    )
    tag = f"{cfg.eval.dataset}{cfg.eval.image_size}"
    name = result_name(tag, args.recipe, args.long_epochs)
    args.out = args.out or ROOT / "results" / f"{name}.json"
    check_seeds(args.out, args.seeds)
    store = args.store or ROOT / "data" / f"fidelity_{tag}{'_quick' if args.quick else ''}.jsonl"
    console = Console()
    console.print(
        f"fidelity: {len(plan.archs)} architectures x {len(plan.seeds)} seeds, short "
        f"{cfg.eval.train.epochs} / long {plan.long['train']['epochs']} epochs on {tag}; "
        f"store {store}"
    )

    def progress(k: int, n: int, r: dict) -> None:
        last = r["accuracies"][-1] if r["accuracies"] else float("nan")
        console.print(
            f"  [{k}/{n}] {r['schedule']} seed {r['seed']} {last:.3f} {r['label']}",
            highlight=False,
            soft_wrap=True,
        )

    def timed(k: int, n: int, r: dict) -> None:
        console.print(
            f"  [{k}/{n}] latency_rel {r['latency_rel']:.3f} {r['label']}", highlight=False
        )

    if args.analyse_only:
        done = load_store(store)
    else:
        run_plan(plan, store, workers=args.workers, on_run=progress)
        done = measure_plan_latency(plan, store, on_arch=timed)
    complete = complete_runs(plan, done)
    rows = table_rows(plan, complete, done)
    if len(rows) < 3:
        raise SystemExit(f"only {len(rows)} architectures have all their runs in {store}")
    if len(rows) < len(plan.archs):
        console.print(f"[yellow]{len(rows)} of {len(plan.archs)} architectures complete[/]")
    figures = analyse(rows, plan.seeds, top_k=max(3, len(rows) // 4))
    result = {
        **figures,
        "config": str(args.config.name),
        "overrides": overrides,
        "dataset": tag,
        "quick": args.quick,
        "short_epochs": cfg.eval.train.epochs,
        "long_epochs": plan.long["train"]["epochs"],
        "short_recipe": plan.short["train"],
        "recipe": args.recipe or "config",
        # Shorter than the contract: a screen of a longer short schedule, not the benchmark.
        "screen": not args.quick
        and plan.long["train"]["epochs"] < CONTRACT_RATIO * cfg.eval.train.epochs,
        "long_recipe": plan.long["train"],
        "seeds": plan.seeds,
        "sample_seed": args.sample_seed,
        "training_seconds": training_seconds(complete),
        "trained_on": trained_on(complete),
        "architectures_planned": len(plan.archs),
        "architectures": [{k: v for k, v in r.items() if not k.endswith("_curves")} for r in rows],
    }
    table = Table(title=f"short vs long on {tag} (mean over {len(plan.seeds)} seeds)")
    for c in ("architecture", "short", "long", "latency_rel"):
        table.add_column(c)
    for label, short, long, latency in ranking(rows):
        table.add_row(label, f"{short:.4f}", f"{long:.4f}", f"{latency:.3f}" if latency else "-")
    console.print(table)
    console.print(summary(figures))
    for group, g in figures["rank_shift"].items():
        console.print(
            f"  {group}: mean rank shift {g['mean_rank_shift']:+.2f} ± {g['stderr']:.2f} "
            f"({g['architectures']} architectures; random sets shift as far: p "
            f"{g['random_sets_p']:.2f})"
        )
    write_result(result, args.out)


if __name__ == "__main__":
    main()
