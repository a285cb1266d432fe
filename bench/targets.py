"""Deployment targets: does the runtime change which placement is cheap?

For a seeded sample of architectures (every uniform paper baseline first) of the quickstart
space (ResNet-18, cifar stem) and of the MobileNetV2 quickstart space, ``latency_rel`` is
measured on each target at a deployment resolution, and once with eager PyTorch at the
training resolution (what the quickstart optimises):

- ``train-res eager``: torch, the config's training resolution;
- ``eager``, ``onnxruntime``: at ``--resolution`` (64 px: the cifar stem keeps full resolution
  in its first stage, so 64 px costs what 256 px costs an ImageNet stem);
- ``torch_compile``: at ``--resolution``, on at most ``--compile-archs`` architectures
  (each compiles two networks, tens of seconds apiece on a CPU).

All targets use batch 1 and one thread. Reported: Kendall tau between every pair of targets
(over the architectures both measured), and the architectures whose rank moves most between
the training-resolution eager number and each deployment target.

Writes bench/results/targets.json. Run: .venv/bin/python bench/targets.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

import torch
from benchio import write_result
from rich.console import Console
from rich.table import Table
from scipy.stats import kendalltau, rankdata

from evaluators import LatencySettings, measure_latency
from evaluators.evaluate import reference_arch
from evaluators.fidelity import sample_archs
from evaluators.latency import hardware_info
from search.config import load_config
from spaces import SearchSpace, build_model

ROOT = Path(__file__).resolve().parent
CONFIGS = ("quickstart.yaml", "mobilenetv2_quickstart.yaml")


def targets(resolution: int) -> dict[str, dict[str, Any]]:
    return {
        "train-res eager": {"runtime": "torch"},
        "eager": {"runtime": "torch", "image_size": resolution},
        "onnxruntime": {"runtime": "onnxruntime", "image_size": resolution},
        "torch_compile": {"runtime": "torch_compile", "image_size": resolution},
    }


def measure_space(
    config: str, n: int, resolution: int, compile_archs: int, sampling: dict, console
) -> dict[str, Any]:
    cfg = load_config(ROOT.parent / "configs" / config)
    space = SearchSpace(cfg.space)
    sample = sample_archs(space, n, seed=0)[:n]  # baselines first
    shape = (cfg.space.in_chans, cfg.space.image_size, cfg.space.image_size)
    rows = []
    for i, (baseline, arch) in enumerate(sample):
        model, ref = build_model(arch, seed=0), build_model(reference_arch(arch), seed=0)
        row: dict[str, Any] = {"label": arch.label(), "baseline": baseline or None, "rel": {}}
        for name, target in targets(resolution).items():
            if name == "torch_compile" and i >= compile_archs:
                continue
            settings = LatencySettings(targets=[{**target, "name": "t"}], **sampling)
            r = measure_latency(model, ref, shape, settings, "cpu")
            row["rel"][name] = r.latency_rel
            row.setdefault("ci", {})[name] = list(r.latency_rel_ci)
        rows.append(row)
        console.print(
            f"  [{i + 1}/{len(sample)}] "
            + ", ".join(f"{k} {v:.3f}" for k, v in row["rel"].items())
            + f"  {row['label']}",
            highlight=False,
            soft_wrap=True,
        )
    names = list(targets(resolution))
    taus = {}
    for a, b in itertools.combinations(names, 2):
        both = [r for r in rows if a in r["rel"] and b in r["rel"]]
        if len(both) >= 3:
            x, y = [r["rel"][a] for r in both], [r["rel"][b] for r in both]
            taus[f"{a} | {b}"] = {"tau": float(kendalltau(x, y).statistic), "n": len(both)}
    moves = {}
    for name in names[1:]:
        both = [r for r in rows if name in r["rel"]]
        base = rankdata([r["rel"]["train-res eager"] for r in both])
        other = rankdata([r["rel"][name] for r in both])
        shift = sorted(
            ((float(o - b), r["label"]) for b, o, r in zip(base, other, both, strict=True)),
            key=lambda t: -abs(t[0]),
        )
        moves[name] = [{"rank_shift": s, "label": label} for s, label in shift[:3]]
    return {
        "config": config,
        "backbone": cfg.space.backbone,
        "training_resolution": cfg.space.image_size,
        "architectures": rows,
        "kendall_tau": taus,
        "largest_rank_moves": moves,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 architectures, short sampling")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--compile-archs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "targets.json")
    args = ap.parse_args()
    console = Console()
    n, compile_archs = (3, 1) if args.quick else (args.archs, args.compile_archs)
    resolution = 24 if args.quick else args.resolution
    sampling = {"repeats": 3, "warmup": 1, "min_sample_ms": 1, "max_seconds": 0.3}
    sampling = sampling if args.quick else {}
    t0 = time.perf_counter()
    spaces = []
    for config in CONFIGS:
        console.print(f"{config}: {n} architectures at {resolution} px")
        spaces.append(measure_space(config, n, resolution, compile_archs, sampling, console))
    for s in spaces:
        t = Table(title=f"Kendall tau of latency_rel between targets ({s['config']})")
        for c in ("targets", "tau", "architectures"):
            t.add_column(c)
        for pair, v in s["kendall_tau"].items():
            t.add_row(pair, f"{v['tau']:.3f}", str(v["n"]))
        console.print(t)
    import onnxruntime

    result = {
        "quick": args.quick,
        "resolution": resolution,
        "hardware": hardware_info(torch.device("cpu")),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "latency_settings": LatencySettings(**sampling).model_dump(exclude={"targets"}),
        "spaces": spaces,
        "seconds": time.perf_counter() - t0,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
