"""GPU check: the CUDA path proven in one run of a few minutes on a machine with a GPU.

1. Latency on every GPU target, candidate (ca@standard, and ca@mid on MobileNetV2) against the
   no-attention reference at 224 px: eager float32, eager float32 channels_last, eager bf16 and
   fp16 channels_last, torch.compile bf16 channels_last, without and with CUDA graphs
   (``compile_mode: reduce-overhead``; compile time reported apart), and
   ONNX Runtime's CUDA provider (float32). Each row: latency_ms with its 95% interval and
   IQR/median, latency_rel with its interval, blocks sampled (CUDA events, per-forward A/B,
   each timed pass from an idle GPU). First, the reference against a separately built copy of
   itself, eager fp32 and bf16: 1.000 is exact, and its distance from 1 is the noise floor.
2. One training trial as the search runs it (``evaluators.evaluate``: the embedded clutter
   task, 5 epochs, 2 seeds in lockstep, bf16 autocast and channels_last on a GPU, its latency
   included) and the evaluations per hour that implies; on a GPU also a ResNet-18 epoch on
   CIFAR-10-shaped tensors (``bench/throughput.py``'s schedule).

Prints a table and writes ``bench/results/gpu_check.json`` (hardware, runtime versions,
settings with every number), and each earlier GPU run's latency_rel per row beside this one's
(``history``): a ratio steady within a run can move between machines of one kind.
``--device cpu --quick`` runs the same code on the CPU with tiny
sizes: that is what the test suite checks, so on a GPU only the hardware is new.

Run on a GPU machine: .venv/bin/python bench/gpu_check.py
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from benchio import keep_history, measured_at, runtime_versions, write_result
from report import GPU_COLUMNS, gpu_row
from rich.console import Console
from rich.table import Table

from evaluators import EvalConfig, LatencySettings, evaluate, measure_latency
from evaluators.latency import hardware_info
from evaluators.runtimes import RuntimeUnavailable
from spaces import StageChoice, build_model, uniform

ROOT = Path(__file__).resolve().parent

# (row name, target settings): every GPU configuration a user would ship.
TARGETS: list[tuple[str, dict[str, Any]]] = [
    ("eager fp32", {"runtime": "torch"}),
    ("eager fp32 channels_last", {"runtime": "torch", "channels_last": True}),
    ("eager bf16 channels_last", {"runtime": "torch", "dtype": "bfloat16", "channels_last": True}),
    ("eager fp16 channels_last", {"runtime": "torch", "dtype": "float16", "channels_last": True}),
    (
        "compile bf16 channels_last",
        {"runtime": "torch_compile", "dtype": "bfloat16", "channels_last": True},
    ),
    (
        "compile bf16 channels_last CUDA graphs",
        {
            "runtime": "torch_compile",
            "dtype": "bfloat16",
            "channels_last": True,
            "compile_mode": "reduce-overhead",
        },
    ),
    ("onnxruntime fp32", {"runtime": "onnxruntime"}),
]
SELF_CHECK = ("eager fp32", "eager bf16 channels_last")


def models(image_size: int, quick: bool) -> list[tuple[str, Any, Any]]:
    """(name, candidate arch, reference arch) at the deployment resolution. The first pair is
    the reference timed against a separately built copy of itself: its latency_rel should read
    1.000, and how far it strays is the noise floor every other row is read against."""
    small = {"widths": (16, 32, 64, 128)} if quick else {}
    pairs = [
        ("resnet18 none (against itself)", "resnet18", None, small),
        ("resnet18 ca@standard", "resnet18", StageChoice(attention="ca"), small),
        (
            "mobilenetv2_100 ca@mid",
            "mobilenetv2_100",
            StageChoice(attention="ca", position="mid"),
            {"widths": (8, 16, 16, 32, 48, 80, 160)} if quick else {},
        ),
    ]
    out = []
    for name, backbone, choice, extra in pairs[:2] if quick else pairs:
        common = {"num_classes": 1000, "image_size": image_size, **extra}
        out.append((name, uniform(backbone, choice, **common), uniform(backbone, **common)))
    return out


def latency_row(
    model_name: str, cand, ref, row_name: str, target: dict[str, Any], device: str,
    image_size: int, batch: int, quick: bool, console,
) -> dict[str, Any]:  # fmt: skip
    """One (model, target) measurement, or the one-line reason it could not run here."""
    sampling = {"repeats": 3, "warmup": 1, "min_sample_ms": 1, "max_seconds": 0.5} if quick else {}
    settings = LatencySettings(
        targets=[{**target, "batch_size": batch, "name": row_name.replace(" ", "_")}], **sampling
    )
    row: dict[str, Any] = {"model": model_name, "target": row_name, **target}
    try:
        r = measure_latency(cand, ref, (3, image_size, image_size), settings, device)
    except (RuntimeUnavailable, RuntimeError) as exc:
        row["error"] = str(exc).strip().splitlines()[0]
        console.print(f"  {model_name} / {row_name}: [yellow]{row['error']}[/]")
        return row
    row |= {
        "latency_ms": r.latency_ms,
        "latency_ci_ms": list(r.latency_ci_ms),
        "iqr_over_median": r.latency_iqr_ms / r.latency_ms,
        "reference_ms": r.reference_ms,
        "latency_rel": r.latency_rel,
        "latency_rel_ci": list(r.latency_rel_ci),
        "latency_rel_iqr_over_median": r.latency_rel_iqr / r.latency_rel,
        "blocks": r.blocks,
        "seconds": r.seconds,
        "compile_seconds": r.compile_seconds,
        "runtime_version": r.runtime_version,
        "batch_size": batch,
        "image_size": image_size,
    }
    console.print(f"  {model_name} / {row_name}: {r.latency_ms:.3f} ms, rel {r.latency_rel:.3f}")
    return row


def latency_rows(
    device: str, image_size: int, batch: int, quick: bool, console, compiled: bool
) -> Iterator[dict[str, Any]]:
    """Every (model, target) row, the compiled targets only when ``compiled`` (they take
    minutes, so the script runs them last: a run cut short still has everything else)."""
    for model_name, cand_arch, ref_arch in models(image_size, quick):
        cand, ref = build_model(cand_arch, seed=0), build_model(ref_arch, seed=0)
        for row_name, target in TARGETS:
            if (target["runtime"] == "torch_compile") != compiled:
                continue
            if device == "cpu" and target.get("dtype") == "float16":
                continue  # half precision on a CPU is neither shipped nor meaningful
            if "against itself" in model_name and row_name not in SELF_CHECK:
                continue  # the noise floor needs the plain and the shipped eager forms only
            yield latency_row(
                model_name, cand, ref, row_name, target, device, image_size, batch, quick, console
            )


def training_trial(device: str, quick: bool) -> dict[str, Any]:
    """One trial as the search runs it: the embedded clutter task at the quickstart's network
    width and schedule (5 epochs, 2 seeds in lockstep), on ``device``."""
    size = 16
    arch = uniform("resnet18", StageChoice(attention="ca"), stem="cifar", image_size=size,
                   in_chans=1, num_classes=10, widths=(16, 32, 64, 128))  # fmt: skip
    cfg = EvalConfig(
        dataset="clutter",
        image_size=size,
        seeds=(0, 1),
        device=device,
        train={"epochs": 1 if quick else 5, "batch_size": 64},
        latency={"repeats": 3, "max_seconds": 0.5 if quick else 3.0},
    )
    t0 = time.perf_counter()
    outcome = evaluate(arch, cfg)
    seconds = time.perf_counter() - t0
    return {
        "arch": arch.label(),
        "dataset": f"clutter {size} px",
        "epochs": cfg.train.epochs,
        "seeds": len(cfg.seeds),
        "seconds": seconds,
        "train_seconds": outcome.train_seconds,
        "evaluations_per_hour": 3600 / seconds,
        "accuracy": outcome.accuracy,
        "latency_rel": outcome.latency_rel,
        "status": outcome.status,
    }


def cifar_epoch(device: str) -> list[dict]:
    """On a GPU: ResNet-18 epochs on CIFAR-10-shaped tensors (bench/throughput.py's schedule)."""
    if device != "cuda":
        return []
    import sys

    sys.path.insert(0, str(ROOT))
    from throughput import gpu_schedule

    return gpu_schedule((1,))


def guarded(section: str, fn: Callable[[], Any], console) -> Any:
    """``fn()``, or a record of why it failed: one section that breaks on new hardware must not
    cost the numbers of the others (the device is lent for minutes)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - recorded and printed, never swallowed silently
        console.print(f"[red]{section} failed:[/] {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def latency_table(latency: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for c in GPU_COLUMNS:
        table.add_column(c)
    for r in latency:
        table.add_row(*gpu_row(r))
    return table


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """What one run says, to set beside the others: when, on what, and each row's latency_rel."""
    return {
        "measured_at": result.get("measured_at"),  # None: stored before runs were dated
        "gpu": result["hardware"].get("name"),
        "latency_rel": {
            f"{x['model']} / {x['target']}": x["latency_rel"]
            for x in result["latency"]
            if "error" not in x
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (the point), or cpu to test the script")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: proves the script works")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_check.json")
    args = ap.parse_args()
    console = Console()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_check: no CUDA device here; run it on a GPU machine (or --device cpu)"
        )
    image_size, batch = (32, 2) if args.quick else (224, 32)
    console.print(f"gpu_check on {args.device}: {image_size} px, batch {batch}")
    # read before the first partial save overwrites it
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "device": args.device,
        "quick": args.quick,
        "measured_at": measured_at(),
        "hardware": hardware_info(torch.device(args.device)),
        "versions": runtime_versions(),
        "image_size": image_size,
        "batch_size": batch,
        "latency": [],
    }

    comparable = not args.quick and previous.get("device") == args.device
    comparable = comparable and not previous.get("quick")

    def save(quiet: bool = True) -> None:
        # after every row, so a run cut short by the lease still leaves what it measured
        result["seconds"] = time.perf_counter() - t0
        if comparable:
            result["history"] = keep_history(previous, result, headline)
        write_result(result, args.out, quiet=quiet)

    def rows(compiled: bool) -> None:
        for row in latency_rows(args.device, image_size, batch, args.quick, console, compiled):
            result["latency"].append(row)
            save()

    guarded("latency", lambda: rows(compiled=False), console)
    result["training_trial"] = guarded(
        "training trial", lambda: training_trial(args.device, args.quick), console
    )
    save()
    result["cifar_shaped_epochs"] = guarded(
        "cifar epoch", lambda: cifar_epoch(args.device), console
    )
    save()
    guarded("compiled latency", lambda: rows(compiled=True), console)
    console.print(latency_table(result["latency"], f"latency at {image_size} px, batch {batch} "
                                f"({args.device})"))  # fmt: skip
    trial = result["training_trial"]
    if "error" not in trial:
        console.print(
            f"training trial: {trial['seconds']:.1f} s ({trial['train_seconds']:.1f} s training), "
            f"{trial['evaluations_per_hour']:.0f} evaluations per hour"
        )
    save(quiet=False)


if __name__ == "__main__":
    main()
