"""Benchmark: seconds per evaluation at quickstart settings, and latency measurement spread.

Prints a table and writes bench/results/evaluate.json. On a CUDA machine it also times a
ResNet-18 CIFAR-shaped short schedule on synthetic tensors (labelled so: no dataset there).
Run: .venv/bin/python bench/evaluate.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from evaluators import EvalConfig, LatencySettings, TrainSettings, evaluate, measure_latency
from evaluators.latency import hardware_info
from search.config import load_config
from spaces import StageChoice, build_model, uniform

ROOT = Path(__file__).resolve().parent


def seconds_per_evaluation(cfg: EvalConfig, space, archs, console) -> list[dict]:
    rows = []
    for name, arch in archs:
        t0 = time.perf_counter()
        m = evaluate(arch, cfg)
        rows.append(
            {
                "arch": name,
                "seconds": time.perf_counter() - t0,
                "train_seconds": m.train_seconds,
                "accuracy": m.accuracy,
                "latency_rel": m.latency_rel,
            }
        )
        console.print(f"  {name}: {rows[-1]['seconds']:.1f} s, acc {m.accuracy:.3f}")
    return rows


def latency_spread(archs, image_shape, settings: LatencySettings, device: str) -> list[dict]:
    rows = []
    for name, arch in archs:
        model = build_model(arch, seed=0)
        ref = build_model(
            uniform(
                arch.backbone,
                **{
                    k: getattr(arch, k)
                    for k in ("widths", "stem", "num_classes", "in_chans", "image_size")
                },
            ),
            seed=0,
        )
        for rep in (1, 2):
            r = measure_latency(model, ref, image_shape, settings, device)
            rows.append(
                {
                    "arch": name,
                    "run": rep,
                    "latency_ms": r.latency_ms,
                    "iqr_over_median": r.latency_iqr_ms / r.latency_ms,
                    "latency_rel": r.latency_rel,
                    "rel_iqr_over_median": r.latency_rel_iqr / r.latency_rel,
                }
            )
    return rows


def gpu_schedule(epochs_list=(1, 3, 5)) -> list[dict]:
    """ResNet-18 (cifar stem) on CIFAR-10-shaped *synthetic* tensors, bf16 + channels_last."""
    from evaluators.data import Dataset, Split
    from evaluators.train import train

    g = torch.Generator().manual_seed(0)
    n_train, n_val = 50_000, 10_000
    imgs = torch.randint(0, 256, (n_train + n_val, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n_train + n_val,), generator=g)
    data = Dataset(
        "synthetic-cifar10-shape",
        Split(imgs[:n_train], labels[:n_train]),
        Split(imgs[n_train:], labels[n_train:]),
        Split(imgs[:0], labels[:0]),
        10,
        torch.full((3,), 0.5),
        torch.full((3,), 0.25),
        True,
    ).to("cuda")
    arch = uniform("resnet18", stem="cifar", image_size=32)
    rows = []
    for epochs in epochs_list:
        r = train(
            build_model(arch, seed=0),
            data,
            TrainSettings(epochs=epochs, batch_size=512, lr=0.4),
            seed=0,
        )
        torch.cuda.synchronize()
        rows.append(
            {
                "epochs": epochs,
                "seconds": r.seconds,
                "s_per_epoch": r.seconds / epochs,
                "data": "synthetic CIFAR-10-shaped tensors",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 epoch, 1 seed: prove the script works")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "evaluate.json")
    args = ap.parse_args()
    console = Console()
    cfg = load_config(ROOT.parent / "configs" / "quickstart.yaml")
    ev = cfg.eval
    if args.quick:
        ev = ev.model_copy(
            update={"seeds": (0,), "train": ev.train.model_copy(update={"epochs": 1})}
        )
    torch.set_num_threads(ev.threads)
    space_fields = cfg.space.model_dump(
        include={"backbone", "widths", "stem", "num_classes", "in_chans", "image_size"}
    )
    archs = [
        (
            "none",
            uniform(
                cfg.space.backbone, **{k: v for k, v in space_fields.items() if k != "backbone"}
            ),
        ),
        (
            "eca@standard",
            uniform(
                cfg.space.backbone,
                StageChoice(attention="eca"),
                **{k: v for k, v in space_fields.items() if k != "backbone"},
            ),
        ),
        (
            "ca@standard",
            uniform(
                cfg.space.backbone,
                StageChoice(attention="ca"),
                **{k: v for k, v in space_fields.items() if k != "backbone"},
            ),
        ),
    ]
    console.print(
        f"quickstart settings: {ev.train.epochs} epochs x {len(ev.seeds)} seeds, {ev.threads} thread(s)"
    )
    evals = seconds_per_evaluation(ev, cfg.space, archs, console)
    lat = latency_spread(
        archs, (cfg.space.in_chans, cfg.space.image_size, cfg.space.image_size), ev.latency, "cpu"
    )
    result = {
        "hardware": hardware_info(torch.device("cpu")),
        "quick": args.quick,
        "settings": {"epochs": ev.train.epochs, "seeds": list(ev.seeds), "threads": ev.threads},
        "evaluations": evals,
        "latency": lat,
    }
    if torch.cuda.is_available():
        result["gpu"] = {
            "hardware": hardware_info(torch.device("cuda")),
            "schedule": gpu_schedule(),
        }
    t = Table(title=f"seconds per evaluation ({result['hardware']['name']})")
    for c in ("arch", "seconds", "train s", "accuracy", "latency_rel"):
        t.add_column(c, justify="right")
    for r in evals:
        t.add_row(
            r["arch"],
            f"{r['seconds']:.1f}",
            f"{r['train_seconds']:.1f}",
            f"{r['accuracy']:.3f}",
            f"{r['latency_rel']:.3f}",
        )
    console.print(t)
    t = Table(title="latency spread (each architecture measured twice)")
    for c in ("arch", "run", "latency ms", "IQR/median", "latency_rel", "rel IQR/median"):
        t.add_column(c, justify="right")
    for r in lat:
        t.add_row(
            r["arch"],
            str(r["run"]),
            f"{r['latency_ms']:.3f}",
            f"{r['iqr_over_median']:.3f}",
            f"{r['latency_rel']:.3f}",
            f"{r['rel_iqr_over_median']:.3f}",
        )
    console.print(t)
    by_arch = {}
    for r in lat:
        by_arch.setdefault(r["arch"], []).append(r)
    drift = {
        a: (
            abs(rs[0]["latency_ms"] - rs[1]["latency_ms"])
            / statistics.fmean([x["latency_ms"] for x in rs]),
            abs(rs[0]["latency_rel"] - rs[1]["latency_rel"])
            / statistics.fmean([x["latency_rel"] for x in rs]),
        )
        for a, rs in by_arch.items()
    }
    console.print(
        "run-to-run drift (abs ms vs rel): "
        + ", ".join(f"{a}: {d[0]:.1%} vs {d[1]:.1%}" for a, d in drift.items())
    )
    result["drift"] = drift
    if "gpu" in result:
        for r in result["gpu"]["schedule"]:
            console.print(
                f"GPU {result['gpu']['hardware']['name']}: {r['epochs']} epochs {r['seconds']:.1f} s ({r['s_per_epoch']:.2f} s/epoch, {r['data']})"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
