"""Throughput: how many candidates per hour one worker scores at quickstart settings.

CPU: each architecture is evaluated once, end to end as a trial does it (build, train every
seed, time latency against the reference, count FLOPs); evaluations per hour = 3600 / seconds,
per worker (``attnas search`` runs ``concurrency`` of them; bench/overhead.py measures that).

GPU (when CUDA is present): ResNet-18 with the cifar stem for 1, 3 and 5 epochs on
CIFAR-10-shaped data resident on the device, bf16 autocast and channels_last, batch 512. The
tensors are synthetic (labelled so in the output: no dataset on the benchmark machine), which
times the schedule, not the accuracy. Published anchors, on other GPUs: a ResNet-18 CIFAR-10
epoch takes about 2 s on an A100; airbench reaches 94% in about 3.3 s on an A100.

Writes bench/results/throughput.json. Run: .venv/bin/python bench/throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from benchio import QUICK_OVERRIDES, write_result
from rich.console import Console
from rich.table import Table

from evaluators import EvalConfig, SeedTrainer, TrainSettings, evaluate
from evaluators.latency import hardware_info
from search.config import load_config
from spaces import StageChoice, build_model, uniform

ANCHORS = {
    "resnet18_cifar10_a100_s_per_epoch": 2.0,
    "airbench94_a100_s_total": 3.3,
}

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


def gpu_schedule(epochs_list=(1, 3, 5)) -> list[dict]:
    """ResNet-18 (cifar stem) on CIFAR-10-shaped *synthetic* tensors, bf16 + channels_last."""
    from evaluators.data import Dataset, Split

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
        trainer = SeedTrainer(
            build_model(arch, seed=0), data, TrainSettings(epochs=epochs, batch_size=512, lr=0.4), 0
        )
        t0 = time.perf_counter()
        for _ in range(epochs):
            trainer.train_epoch()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        rows.append(
            {
                "epochs": epochs,
                "seconds": seconds,
                "s_per_epoch": seconds / epochs,
                "data": "synthetic CIFAR-10-shaped tensors",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 epoch, 1 seed: prove the script works")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "throughput.json")
    args = ap.parse_args()
    console = Console()
    quick = [*QUICK_OVERRIDES, "eval.seeds=[0]", "eval.train.epochs=1"] if args.quick else []
    cfg = load_config(ROOT.parent / "configs" / "quickstart.yaml", quick)
    ev = cfg.eval
    torch.set_num_threads(ev.threads)
    fields = cfg.space.arch_fields()
    backbone = fields.pop("backbone")
    archs = [
        ("none", uniform(backbone, **fields)),
        ("eca@standard", uniform(backbone, StageChoice(attention="eca"), **fields)),
        ("ca@standard", uniform(backbone, StageChoice(attention="ca"), **fields)),
    ]
    console.print(
        f"quickstart settings: {ev.train.epochs} epochs x {len(ev.seeds)} seeds, {ev.threads} thread(s)"
    )
    evals = seconds_per_evaluation(ev, cfg.space, archs, console)
    result = {
        "hardware": hardware_info(torch.device("cpu")),
        "quick": args.quick,
        "settings": {"epochs": ev.train.epochs, "seeds": list(ev.seeds), "threads": ev.threads},
        "evaluations": evals,
        "evaluations_per_hour_per_worker": 3600 / statistics.fmean(r["seconds"] for r in evals),
        "gpu": None,
    }
    if torch.cuda.is_available():
        result["gpu"] = {
            "hardware": hardware_info(torch.device("cuda")),
            "schedule": gpu_schedule((1,) if args.quick else (1, 3, 5)),
            "anchors_other_gpus": ANCHORS,
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
    console.print(
        f"evaluations per hour per worker: {result['evaluations_per_hour_per_worker']:.0f}"
    )
    if result["gpu"] is None:
        console.print("GPU schedule: not measured (no CUDA device on this machine)")
    else:
        for r in result["gpu"]["schedule"]:
            console.print(
                f"GPU {result['gpu']['hardware']['name']}: {r['epochs']} epochs {r['seconds']:.1f} s "
                f"({r['s_per_epoch']:.2f} s/epoch, {r['data']}); anchor: ~2 s/epoch on an A100"
            )
    write_result(result, args.out)


if __name__ == "__main__":
    main()
