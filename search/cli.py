"""The ``attnas`` command line: typer for arguments, rich for progress and tables.

Every command turns a bad input into one red line and exit code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

# Plain click help (rich_markup_mode=None): rich's panels show flags as taking a "<bool>"
# value they refuse, and box-draw into logs and pipes.
app = typer.Typer(
    help="Search where and which attention modules go in a CNN.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
space_app = typer.Typer(help="Inspect a search space.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(space_app, name="space")
# Table width outside a terminal: the front table's longest row (a four-stage label with its
# baseline tag, about 135 characters, and two or three objective columns) on one line.
LOG_COLUMNS = 200


def _console(stderr: bool) -> Console:
    """soft_wrap: a printed path or command is never broken across lines. Outside a terminal
    (logs, pipes, CI) rich would draw tables 80 columns wide, folding a four-stage label over
    four lines of the front table: there they get ``LOG_COLUMNS``, unless COLUMNS says."""
    stream = sys.stderr if stderr else sys.stdout
    log = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, soft_wrap=True, width=LOG_COLUMNS if log else None)


console = _console(stderr=False)
err = _console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set eval.train.epochs=3 (repeatable)."),
]
# How a trial is picked from a study (export, train).
PickOpt = Annotated[
    str, typer.Option(help="From a study: knee, max-accuracy, min-latency, or trial:N.")
]
MaxLatencyOpt = Annotated[
    float | None, typer.Option(help="Pick among trials at most this slow (ms).")
]
MaxFlopsOpt = Annotated[
    float | None, typer.Option(help="Pick among trials with at most this many FLOPs.")
]
# Commands that score one architecture take evaluation keys only (no ``eval.`` prefix).
EvalSetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override an evaluation key: --set train.epochs=3 (repeatable)."),
]


def friendly(fn: F) -> F:
    """Bad input -> one line on stderr and exit 2, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from evaluators.data import DataError
        from search.config import ConfigError
        from search.study import StudyLockedError
        from spaces import describe

        try:
            return fn(*args, **kwargs)
        except (
            ConfigError,
            DataError,
            StudyLockedError,
            FileNotFoundError,
            ValidationError,
            ValueError,
        ) as exc:
            err.print(f"[bold red]error:[/] {describe(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _counter(what: str) -> Any:
    from search.display import counter

    return counter(console, what)


def _run_overrides(set_: list[str] | None, **options: Any) -> list[str]:
    """``--set`` items, then the dedicated options that were given, as config overrides (a
    given 0 included: ``--n-trials 0`` must reach the config's check, not vanish)."""
    return list(set_ or []) + [f"{k}={v}" for k, v in options.items() if v is not None]


def _print_front(study: Any) -> None:
    from results.summary import front_view

    table, separation, verdict = front_view(study)
    console.print(table)
    if separation:
        console.print(separation)
    if verdict:
        console.print(
            f"against the papers (search accuracies; attnas validate re-checks): {verdict}"
        )


def _run(cfg: Any, *, resume: bool = False) -> None:
    from evaluators.data import check_data_dir
    from search.display import search_display
    from search.driver import check_ray_address, run_search
    from search.paths import StudyPaths
    from search.study import check_existing, check_unlocked, mask_url

    check_ray_address(cfg.ray_address)  # nobody listening: one line, nothing written
    check_data_dir(cfg.eval.dataset, cfg.eval.data_dir, cfg.eval.download)
    if cfg.storage is None:
        cfg.study_dir.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
    check_existing(cfg)  # corrupt or unreachable storage, another config or folder: no output
    check_unlocked(StudyPaths(cfg.study_dir), cfg.study, cfg.storage_url)  # another driver
    console.print(
        f"study [bold]{cfg.study}[/] in {cfg.study_dir} (storage {mask_url(cfg.storage_url)})"
    )
    with search_display(console, cfg.n_trials) as on_event:
        outcome = run_search(cfg, resume=resume, on_event=on_event)
    if outcome.moved_aside:
        console.print(f"an earlier study's files in the folder were moved to {outcome.moved_aside}")
    _print_front(outcome.study)
    console.print(
        f"{outcome.completed}/{outcome.target} architectures evaluated "
        f"({outcome.told_this_run} trials told this run, {outcome.failed_this_run} failed; "
        f"{outcome.duplicates} duplicate proposals answered from cache, not counted) "
        f"in {outcome.seconds:.0f} s"
    )
    if cfg.schedule.halving or cfg.schedule.budget_epochs:
        budget = cfg.schedule.budget_epochs
        console.print(
            f"{outcome.pruned} trials stopped at a rung (not counted); "
            f"{outcome.epochs_spent} epochs trained"
            + (f" of a budget of {budget}" if budget else "")
        )
    console.print(
        f"study: {outcome.paths.root}   open it with: optuna-dashboard {mask_url(cfg.storage_url)}"
    )
    console.print(f"logs: {outcome.paths.logs} (driver.log, and trial-<number>.log per trial)")
    if outcome.stop_reason:
        hint = f"; resume with: attnas resume {outcome.paths.root}" if outcome.resumable else ""
        err.print(f"[yellow]stopped:[/] {outcome.stop_reason}{hint}")
        raise typer.Exit(3 if outcome.completed < outcome.target else 0)


@app.command()
@friendly
def search(
    config: Annotated[Path, typer.Argument(help="Search config YAML.")] = Path(
        "configs/quickstart.yaml"
    ),
    n_trials: Annotated[int | None, typer.Option(help="Target number of COMPLETE trials.")] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (e.g. auto, or host:6379).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (resumable).")
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (folder under output_dir).")] = None,
    set_: SetOpt = None,
) -> None:
    """Run a search; on an existing study this resumes it (same config required)."""
    from search.config import load_config

    overrides = _run_overrides(
        set_, n_trials=n_trials, ray_address=address, timeout_s=timeout, study=study
    )
    _run(load_config(config, overrides))


@app.command()
@friendly
def resume(
    study_dir: Annotated[Path, typer.Argument(help="The study folder, e.g. runs/quickstart.")],
    n_trials: Annotated[int | None, typer.Option(help="Raise the target number of trials.")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    set_: SetOpt = None,
) -> None:
    """Resume a study: settle what a dead driver left, then run only the remaining budget."""
    from search.configio import load_study_config

    overrides = _run_overrides(set_, n_trials=n_trials, ray_address=address, timeout_s=timeout)
    _run(load_study_config(study_dir, overrides), resume=True)


@app.command()
@friendly
def status(study_dir: Annotated[Path, typer.Argument(help="The study folder.")]) -> None:
    """Trials by state, the best so far, the current Pareto front."""
    from results.rungs import RUNG_COLUMNS, rung_summaries, rung_table_rows
    from results.summary import recent_failures, state_counts
    from search.configio import load_study_config
    from search.study import TARGET_ATTR, open_study

    cfg = load_study_config(study_dir)
    study = open_study(cfg, must_exist=True)
    counts = state_counts(study)
    target = study.user_attrs.get(TARGET_ATTR, cfg.n_trials)
    console.print(
        f"study [bold]{cfg.study}[/]: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" (target {target} architectures)"
    )
    _print_front(study)
    rungs = rung_summaries(study)
    if rungs:
        table = Table(title="successive halving")
        for column in RUNG_COLUMNS:
            table.add_column(column)
        for row in rung_table_rows(rungs):
            table.add_row(*row)
        console.print(table)
    for number, reason in recent_failures(study):
        console.print(f"  FAIL #{number}: {reason}", highlight=False)


@space_app.command("show")
@friendly
def space_show(
    config: Annotated[Path, typer.Argument(help="Search config YAML.")] = Path(
        "configs/quickstart.yaml"
    ),
    set_: SetOpt = None,
) -> None:
    """The dimensions, allowed values per stage, size and baselines of a config's space."""
    from search.config import load_config
    from spaces import SearchSpace

    cfg = load_config(config, set_ or [])
    space = SearchSpace(cfg.space)
    table = Table(title=f"{cfg.space.backbone} search space")
    table.add_column("parameter")
    table.add_column("values")
    for name, values in space.distributions().items():
        table.add_row(name, ", ".join(map(_marked, values)))
    console.print(table)
    console.print(_stage_table(space))
    console.print(f"distinct architectures: [bold]{space.size():,}[/]")
    console.print(_baseline_table(space))
    for name, reason in space.skipped_baselines():
        console.print(f"  skipped {name}: {reason}", highlight=False)
    if any(_marked(a) != a for a in cfg.space.attentions):
        console.print("  * design inferred from the paper's abstract (no public code)")


def _marked(value: object) -> str:
    """An attention's name with a * when its design is inferred rather than the authors'."""
    from spaces.attention import REGISTRY

    spec = REGISTRY.get(value) if isinstance(value, str) else None
    return f"{value}*" if spec is not None and spec.confidence == "inferred" else str(value)


def _baseline_table(space) -> Table:  # noqa: ANN001  (spaces.SearchSpace, imported lazily)
    """Each paper baseline, its placement and where its settings come from."""
    table = Table(title="uniform paper baselines (run once per study)")
    for column in ("baseline", "placement per stage", "source", "settings"):
        table.add_column(column, overflow="fold")
    for b in space.baselines():
        p = b.provenance
        table.add_row(_marked(b.name), b.arch.label(), f"{p.paper}; {p.table}", p.settings)
    return table


def _stage_table(space) -> Table:  # noqa: ANN001  (spaces.SearchSpace, imported lazily)
    """Channels each position sees per stage: why a module or ELA variant fits or not."""
    from spaces import get_backbone

    backbone = get_backbone(space.config.backbone)
    table = Table(title="channels seen at each position (per block)")
    table.add_column("stage")
    table.add_column("blocks", justify="right")
    for position in space.positions:
        table.add_column(position, overflow="fold")
    for stage in space.spec.stages:
        searched = stage.index in space.domains
        row = [str(stage.index) + ("" if searched else " (fixed: none)"), str(stage.num_blocks)]
        for position in space.positions:
            counts = stage.channels[position]
            row.append(str(counts[0]) if len(set(counts)) == 1 else ",".join(map(str, counts)))
        table.add_row(*row)
    table.caption = "; ".join(f"{p}: {backbone.position_notes[p]}" for p in space.positions)
    return table


def _with_ci(value: float | None, ci: tuple[float, float] | None) -> str:
    """A measured value first, then its 95% confidence interval when it has one."""
    if not value:
        return "-"
    return f"{value:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else f"{value:.3f}"


# evaluators.data.DATASETS, spelled out: importing it here would import torch for every
# --help (a test keeps the two equal).
DATASET_HELP = (
    "digits, clutter, cued, synthetic, cifar10, cifar100, mnist, fashion_mnist, imagefolder."
)


@app.command()
@friendly
def evaluate(
    arch_file: Annotated[
        Path, typer.Argument(help="Architecture YAML/JSON (e.g. from attnas export).")
    ],
    config: Annotated[
        Path | None, typer.Option(help="Take eval settings from this search config.")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help=DATASET_HELP)] = None,
    data_dir: Annotated[str | None, typer.Option(help="Dataset directory.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the evaluation under this folder: a killed run resumes from its last "
            "epoch, a finished one is reused (checked against the architecture and settings)."
        ),
    ] = None,
    set_: EvalSetOpt = None,
) -> None:
    """Train and measure one architecture; prints a metrics table."""
    from evaluators import EvalConfig, eval_dir
    from evaluators.evaluate import evaluate as run_eval
    from search.config import apply_overrides, load_config
    from spaces import ArchConfig

    arch = ArchConfig.from_file(arch_file)
    base = (
        load_config(config).eval.model_dump(mode="json")
        if config
        else {"image_size": arch.image_size}
    )
    overrides = _run_overrides(
        set_,
        dataset=dataset,
        data_dir=data_dir,
        **{"train.epochs": epochs},
        seeds=f"[{seeds}]" if seeds else None,
    )
    cfg = EvalConfig.model_validate(apply_overrides(base, overrides))
    from evaluators.evaluate import get_dataset

    get_dataset(cfg)  # bad data dirs fail here, before any progress bar is drawn
    with _counter("epochs") as progress:
        task = progress.add_task("", total=cfg.train.epochs)
        m = run_eval(
            arch,
            cfg,
            eval_dir(workdir, arch, cfg) if workdir else None,
            on_epoch=lambda e: progress.update(
                task,
                completed=e.epoch,
                description=f"accuracy {e.accuracy:.3f} (mean of {len(e.accuracies)} seeds)",
            ),
        )
    table = Table(title=f"{arch_file.name}: {arch.label()}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("status", m.status),
        (
            "accuracy",
            f"{m.accuracy:.4f} ± {m.accuracy_std:.4f} ({len(m.seeds)} seeds)"
            if m.accuracy is not None
            else f"- (diverged at epoch {m.failed_epoch})",
        ),
        ("latency_ms", _with_ci(m.latency_ms, m.latency_ci_ms)),
        ("latency_rel", _with_ci(m.latency_rel, m.latency_rel_ci)),
        *(
            (f"{key}@{name}", _with_ci(t[key], t[ci]))
            for name, t in list(m.latencies.items())[1:]  # the first is the plain rows above
            for key, ci in (("latency_ms", "latency_ci_ms"), ("latency_rel", "latency_rel_ci"))
        ),
        ("flops", f"{m.flops:,}"),
        ("params", f"{m.params:,}"),
        ("train_seconds", f"{m.train_seconds:.1f}"),
        ("device", m.hardware.get("name", m.device)),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if m.status != "ok":
        raise typer.Exit(1)


@app.command()
@friendly
def export(
    study_dir: Annotated[Path, typer.Argument(help="The study folder.")],
    pick: PickOpt = "knee",
    max_latency_ms: MaxLatencyOpt = None,
    max_flops: MaxFlopsOpt = None,
    front: Annotated[
        bool, typer.Option("--front", help="Export every Pareto point (-o is a folder).")
    ] = False,
    onnx: Annotated[
        bool, typer.Option("--onnx", help="Also write an ONNX model (deploy form).")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Output file (.yaml/.json; default best.yaml), or with --front a folder "
            "(default front/).",
        ),
    ] = None,
) -> None:
    """Write a chosen architecture as a config that build_model and `attnas evaluate` load."""
    from results.export import export_front, export_pick
    from search.configio import load_study_config
    from search.study import open_study

    study = open_study(load_study_config(study_dir), must_exist=True)
    if front:
        written = export_front(study, output or Path("front"), onnx=onnx)
    else:
        written = export_pick(
            study,
            pick,
            output or Path("best.yaml"),
            onnx=onnx,
            max_latency_ms=max_latency_ms,
            max_flops=max_flops,
        )
    for path in written:
        console.print(f"wrote {path}")


@app.command()
@friendly
def train(
    source: Annotated[
        Path,
        typer.Argument(help="A study folder (with --pick) or an architecture YAML/JSON."),
    ],
    pick: PickOpt = "knee",
    max_latency_ms: MaxLatencyOpt = None,
    max_flops: MaxFlopsOpt = None,
    config: Annotated[
        Path | None,
        typer.Option(help="For an architecture file: take eval settings from this config."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs (default: 6x the search's, at least 30).")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help=DATASET_HELP)] = None,
    data_dir: Annotated[str | None, typer.Option(help="Dataset directory.")] = None,
    seed: Annotated[int, typer.Option(help="The training seed.")] = 0,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Output folder (default: STUDY/trained or ./trained)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Run as one task on this Ray cluster (shared -o folder).")
    ] = None,
    set_: EvalSetOpt = None,
) -> None:
    """Train the chosen architecture with a full-length recipe and write a folder to ship:
    weights (safetensors), arch.yaml, train.json, model.onnx and a model card. Resumable:
    run the same command again after a crash."""
    from evaluators import EvalConfig
    from evaluators.handoff import check_recipe, full_recipe
    from search.config import apply_overrides

    arch, base, src, default_out = _train_source(source, pick, max_latency_ms, max_flops, config)
    overrides = _run_overrides(None, dataset=dataset, data_dir=data_dir)
    cfg = full_recipe(
        EvalConfig.model_validate(apply_overrides(base, overrides)), epochs=epochs, seed=seed
    )
    if set_:  # an explicit --set wins over the recipe's defaults (e.g. train.schedule)
        cfg = EvalConfig.model_validate(apply_overrides(cfg.model_dump(mode="json"), set_))
    check_recipe(cfg)
    out = output or default_out
    from evaluators.evaluate import get_dataset

    get_dataset(cfg)  # a bad data dir fails here, before any progress bar is drawn
    console.print(f"training {arch.label()} for {cfg.train.epochs} epochs into {out}")
    result = _train_with_progress(arch, cfg, out, src, address)
    table = Table(title=f"trained into {out}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    o = result.outcome
    for k, v in (
        ("validation accuracy", f"{o.accuracy:.4f}"),
        ("holdout accuracy", f"{result.holdout_accuracy:.4f}"),
        ("latency_rel", _with_ci(o.latency_rel, o.latency_rel_ci)),
        ("params", f"{o.params:,}"),
        ("flops", f"{o.flops:,}"),
        ("train_seconds", f"{o.train_seconds:.1f}"),
    ):
        table.add_row(k, v)
    console.print(table)
    if result.onnx_note:
        console.print(f"[yellow]model.onnx {result.onnx_note}[/]")
    console.print(f"wrote {out} (model.safetensors, arch.yaml, train.json, model.onnx, README.md)")


def _train_source(
    source: Path,
    how: str,
    max_latency_ms: float | None,
    max_flops: float | None,
    config: Path | None,
) -> tuple[Any, dict[str, Any], dict[str, Any] | None, Path]:
    """(arch, eval settings, where it came from, default output folder) for ``attnas train``."""
    from search.config import load_config
    from spaces import ArchConfig

    if source.is_dir():
        from results.export import arch_of, trial_source
        from results.export import pick as pick_trial
        from search.configio import load_study_config
        from search.study import open_study

        study_cfg = load_study_config(source)
        study = open_study(study_cfg, must_exist=True)
        row = pick_trial(study, how, max_latency_ms=max_latency_ms, max_flops=max_flops)
        arch = arch_of(study, int(row["number"]))
        src = trial_source(study, row, how)
        return arch, study_cfg.eval.model_dump(mode="json"), src, source / "trained"
    arch = ArchConfig.from_file(source)
    base = (
        load_config(config).eval.model_dump(mode="json")
        if config
        else {"image_size": arch.image_size}
    )
    return arch, base, None, Path("trained")


def _train_with_progress(arch: Any, cfg: Any, out: Path, src: Any, address: str | None) -> Any:
    from evaluators.handoff import train_and_hand_off

    with _counter("epochs") as progress:
        task = progress.add_task("", total=cfg.train.epochs)

        def show(e: Any) -> None:
            known = e.accuracy == e.accuracy  # NaN: a cluster task reports epochs only
            progress.update(
                task,
                completed=e.epoch,
                description=f"loss {e.loss:.3f}  val accuracy {e.accuracy:.4f}" if known else "",
            )

        if address is None:
            return train_and_hand_off(arch, cfg, out, source=src, on_epoch=show)
        return _train_on_cluster(arch, cfg, out, src, address, show)


def _train_on_cluster(
    arch: Any, cfg: Any, out: Path, src: Any, address: str, show: Callable[[Any], None]
) -> Any:
    """One Ray task on the cluster at ``address`` (with a GPU when it has one); the folder
    must be on storage the task's node shares. Progress is read from the evaluation's own
    per-epoch log."""
    import time

    import ray

    from evaluators import EpochReport
    from evaluators.handoff import train_and_hand_off
    from search.driver import init_ray

    init_ray(address)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(num_gpus=gpus)(train_and_hand_off).remote(
        arch, cfg, out.resolve(), source=src
    )
    log = out.resolve() / "work"
    while True:
        ready, _ = ray.wait([task], timeout=2.0)
        epochs = sorted(log.glob("*/epochs.jsonl"))
        if epochs:
            lines = epochs[0].read_text().splitlines()
            if lines:
                show(EpochReport(len(lines), float("nan"), [], float("nan")))
        if ready:
            return ray.get(task)
        time.sleep(0.5)


@app.command()
@friendly
def report(
    study_dir: Annotated[Path, typer.Argument(help="The study folder.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder (default STUDY_DIR/report).")
    ] = None,
) -> None:
    """Pareto plot, interactive HTML, hypervolume, per-stage chart and summary.md."""
    from results.report import write_report
    from search.configio import load_study_config
    from search.study import open_study

    study = open_study(load_study_config(study_dir), must_exist=True)
    for path in write_report(study, output or Path(study_dir) / "report"):
        console.print(f"wrote {path}")


@app.command()
@friendly
def validate(
    study_dir: Annotated[Path, typer.Argument(help="The study folder.")],
    seeds: Annotated[int, typer.Option(help="Fresh seeds per architecture.")] = 3,
) -> None:
    """Re-train the front and the best baselines with K seeds on the never-searched holdout split."""
    import dataclasses
    import json

    from evaluators.holdout import revalidate
    from results.validate import plan, verdict
    from search.configio import load_study_config
    from search.paths import StudyPaths
    from search.study import open_study

    cfg = load_study_config(study_dir)
    study = open_study(cfg, must_exist=True)
    items = plan(study)
    out = Path(study_dir) / "report" / "validate.json"
    with _counter("validate") as progress:
        task = progress.add_task("", total=len(items))
        rows = revalidate(
            items,
            cfg.eval,
            seeds,
            StudyPaths(cfg.study_dir).evals,
            on_done=lambda r: progress.update(
                task, advance=1, description=f"#{r['trial']} {r['mean']:.4f} ± {r['std']:.4f}"
            ),
        )
    comparisons, sentence = verdict(rows)
    result = {
        "seeds": seeds,
        "split": "holdout",
        "rows": rows,
        "verdict": sentence,
        "comparisons": [dataclasses.asdict(c) for c in comparisons],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    table = Table(title=f"holdout accuracy over {seeds} seeds")
    for c in ("trial", "role", "mean", "std", "search acc", "architecture"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            str(r["trial"]),
            r["role"] + (f" ({r['baseline']})" if r["baseline"] else ""),
            f"{r['mean']:.4f}",
            f"{r['std']:.4f}",
            f"{r['search_accuracy']:.4f}",
            r["label"],
        )
    console.print(table)
    for r in rows:
        if r.get("source"):
            console.print(f"  {r['baseline']}: {r['source']}", highlight=False)
    verdicts = Table(title="each front point against the best baseline at equal or lower cost")
    for c in ("trial", "baseline", "difference", "standard error", "beyond 2 sigma"):
        verdicts.add_column(c)
    for c in comparisons:
        verdicts.add_row(
            str(c.trial),
            f"{c.baseline} (trial {c.baseline_trial})" if c.baseline else "none as cheap",
            f"{c.difference:+.4f}",
            f"{c.stderr:.4f}",
            "yes" if c.beyond_noise else "no",
        )
    console.print(verdicts)
    if result["verdict"]:
        console.print(result["verdict"])
    console.print(f"wrote {out}; `attnas report {study_dir}` includes it")


@app.command()
@friendly
def fidelity(
    config: Annotated[Path, typer.Argument(help="Search config YAML.")] = Path(
        "configs/quickstart.yaml"
    ),
    archs: Annotated[int, typer.Option(help="Architectures in the sample (baselines first).")] = 8,
    seeds: Annotated[int, typer.Option(help="Seeds per architecture and schedule.")] = 2,
    long_factor: Annotated[
        int, typer.Option(help="The long schedule has this many times the short's epochs.")
    ] = 6,
    workers: Annotated[
        int | None, typer.Option(help="Runs at a time (default: the config's concurrency).")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Can the short schedule be trusted? Train a sample of the space short and long, and
    print how well the short ranking agrees (Kendall tau) before spending the budget."""
    import json

    from evaluators.fidelity import (
        analyse,
        complete_runs,
        make_plan,
        measure_plan_latency,
        ranking,
        run_plan,
        shifted_groups,
        summary,
        table_rows,
    )
    from search.config import load_config
    from spaces import SearchSpace

    cfg = load_config(config, set_ or [])
    plan = make_plan(
        SearchSpace(cfg.space),
        cfg.eval,
        archs=archs,
        seeds=seeds,
        long_recipe={"epochs": cfg.eval.train.epochs * long_factor},
    )
    out_dir = cfg.study_dir / "fidelity"
    with _counter("runs") as progress:
        task = progress.add_task("", total=None)

        def on_run(k: int, n: int, r: dict) -> None:
            progress.update(
                task, completed=k, total=n, description=f"{r['schedule']} {r['label']}"[:60]
            )

        run_plan(plan, out_dir / "runs.jsonl", workers=workers or cfg.concurrency, on_run=on_run)
        done = measure_plan_latency(
            plan,
            out_dir / "runs.jsonl",
            on_arch=lambda k, n, r: progress.update(
                task, completed=k, total=n, description=f"latency {r['label']}"[:60]
            ),
        )
    rows = table_rows(plan, complete_runs(plan, done), done)
    figures = analyse(rows, plan.seeds, top_k=max(3, len(rows) // 4))
    table = Table(
        title=f"short ({cfg.eval.train.epochs} epochs) against long ({plan.long['train']['epochs']})"
    )
    for c in ("architecture", "short", "long"):
        table.add_column(c)
    for label, short, long, _ in ranking(rows):
        table.add_row(label, f"{short:.4f}", f"{long:.4f}")
    console.print(table)
    console.print(summary(figures))
    console.print(_fidelity_verdict(figures, len(rows)))
    console.print(shifted_groups(figures))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "fidelity.json"
    result = {**figures, "short_epochs": cfg.eval.train.epochs, "seeds": plan.seeds}
    result["long_epochs"] = plan.long["train"]["epochs"]
    result["architectures"] = rows
    out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {out}")


def _fidelity_verdict(figures: dict, architectures: int) -> str:
    """The closing line of ``attnas fidelity``: whether the long schedule separates the
    sample at all, then whether the short one ranks it alike, and what to change."""
    from evaluators.fidelity import SEPARATION_P, TARGET_TAU, seed_outlook, seeds_needed

    tau = figures["kendall_tau"]
    if figures["long_separation_p"] >= SEPARATION_P:
        bound = figures.get("long_placement_sd_upper", math.nan)
        within = "" if math.isnan(bound) else f" (true spread at most {100 * bound:.2f} points sd)"
        return (
            "[yellow]the long schedule does not tell these architectures apart beyond seed "
            "noise:[/] more seeds, a larger validation split or a harder task will help; a "
            "different short schedule cannot. Until then their accuracies are tied as far "
            f"as this task can tell{within}, and only cost separates them"
        )
    if tau >= TARGET_TAU:
        return "the short schedule ranks these architectures much as the long one does"
    seeds = [seeds_needed(figures)] if "short_seed_tau" in figures else []
    seeds += [seed_outlook(figures)] if "unlimited_seeds_tau" in figures else []
    advice = _fidelity_advice(
        tau,
        figures["tau_ceiling"],
        architectures,
        figures.get("settling_gap_ci"),
        "; ".join(seeds) or None,
        figures.get("unlimited_seeds_tau_ci"),
    )
    return "[yellow]the short schedule ranks these architectures unlike the long one:[/] " + advice


def _fidelity_advice(
    tau: float,
    ceiling: float,
    architectures: int,
    settling_gap_ci: list[float] | None = None,
    seeds: str | None = None,
    unlimited_ci: list[float] | None = None,
) -> str:
    """What to change when the short schedule ranks unlike the long one: its recipe when tau
    falls clearly short of what seed noise alone would leave (``gap_is_bias``), its length
    when the long recipe itself, stopped at that length, still ranks unlike its end
    (``checkpoint_fidelity``), also its recipe when even unlimited seeds would stay below the
    target (``unlimited_ci``, from ``unlimited_seeds_tau``), else the seeds (how many and
    what they could reach: ``seeds``, in ``seeds_needed``'s and ``seed_outlook``'s words)."""
    from evaluators.fidelity import TARGET_TAU, gap_is_bias

    bias = gap_is_bias(tau, ceiling, architectures)
    if bias is None:  # one seed: noise cannot be told from bias
        return "lengthen it or change its recipe before searching"
    if bias and settling_gap_ci and settling_gap_ci[0] > 0:
        return (
            f"lengthen it before searching: the long recipe stopped at this length does not "
            f"rank like its own end either (seed noise alone would leave tau {ceiling:.2f})"
        )
    if bias:
        return (
            f"lengthen it or change its recipe before searching (seed noise alone would leave "
            f"tau {ceiling:.2f})"
        )
    if unlimited_ci and unlimited_ci[1] < TARGET_TAU:
        return (
            f"lengthen it or change its recipe before searching: it is about as far as seed "
            f"noise allows (tau {ceiling:.2f}), but even unlimited seeds would not reach tau "
            f"{TARGET_TAU} (95% upper bound {unlimited_ci[1]:.2f})"
        )
    more = f"; {seeds}" if seeds else ""
    return (
        f"about as far as seed noise allows (tau {ceiling:.2f}): add seeds to both schedules{more}"
    )


@app.command()
def version() -> None:
    """Print the version."""
    from importlib.metadata import version as v

    typer.echo(v("attnas"))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    sys.exit(main())
