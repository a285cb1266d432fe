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

``--device cuda`` asks the same question of a GPU server (batch 32, 224 px by default): eager
fp32 at the training resolution, then at the deployment resolution eager fp32, eager bf16
channels_last, ONNX Runtime's CUDA provider (fp32, input and output bound on the GPU),
torch.compile (bf16 channels_last) and torch.compile with CUDA graphs
(``compile_mode: reduce-overhead``), the last two on ``--compile-archs`` architectures. A
target that cannot run there is recorded with its one-line reason. The JSON is written after
every architecture, so a run cut short by a GPU lease keeps what it measured.

Writes bench/results/targets.json (``targets_cuda.json`` with ``--device cuda``).
Run: .venv/bin/python bench/targets.py [--quick] [--device cuda] [--resume]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from benchio import measured_at, runtime_versions, write_result
from rich.console import Console
from rich.table import Table
from scipy.stats import kendalltau, rankdata

from evaluators import LatencySettings, measure_latency
from evaluators.evaluate import reference_arch
from evaluators.fidelity import sample_archs
from evaluators.latency import hardware_info
from evaluators.runtimes import RuntimeUnavailable
from search.config import load_config
from spaces import SearchSpace, build_model

ROOT = Path(__file__).resolve().parent
CONFIGS = ("quickstart.yaml", "mobilenetv2_quickstart.yaml")


GPU_BATCH = 32  # a serving batch: at batch 1 a GPU times little but kernel launches


def targets(resolution: int, device: str = "cpu") -> dict[str, dict[str, Any]]:
    """The targets compared, by name; the first is what the quickstart optimises."""
    if device == "cpu":
        return {
            "train-res eager": {"runtime": "torch"},
            "eager": {"runtime": "torch", "image_size": resolution},
            "onnxruntime": {"runtime": "onnxruntime", "image_size": resolution},
            "torch_compile": {"runtime": "torch_compile", "image_size": resolution},
        }
    deploy = {"batch_size": GPU_BATCH, "image_size": resolution}
    fast = deploy | {"dtype": "bfloat16", "channels_last": True}
    return {
        "train-res eager": {"runtime": "torch", "batch_size": GPU_BATCH},
        "eager": {"runtime": "torch"} | deploy,
        "eager bf16 channels_last": {"runtime": "torch"} | fast,
        "onnxruntime": {"runtime": "onnxruntime"} | deploy,
        "torch_compile": {"runtime": "torch_compile"} | fast,
        "cuda graphs": {"runtime": "torch_compile", "compile_mode": "reduce-overhead"} | fast,
    }


def measure_space(
    config: str,
    n: int,
    resolution: int,
    compile_archs: int,
    sampling: dict,
    console: Console,
    device: str = "cpu",
    on_row: Callable[[dict[str, Any]], None] = lambda space: None,
    earlier: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every target on ``n`` architectures of one space; ``on_row`` sees the space's partial
    result, agreement included, after each architecture (a run cut short by a GPU lease
    keeps its Kendall taus over what it measured). A row of ``earlier`` (by label) that has
    every target this run would time is kept instead of timed again."""
    cfg = load_config(ROOT.parent / "configs" / config)
    space = SearchSpace(cfg.space)
    sample = sample_archs(space, n, seed=0)[:n]  # baselines first
    shape = (cfg.space.in_chans, cfg.space.image_size, cfg.space.image_size)
    chosen = targets(resolution, device)
    rows: list[dict[str, Any]] = []
    result = {
        "config": config,
        "backbone": cfg.space.backbone,
        "training_resolution": cfg.space.image_size,
        "requested": n,
        "architectures": rows,
    }
    for i, (baseline, arch) in enumerate(sample):
        wanted = [
            name
            for name, target in chosen.items()
            if target["runtime"] != "torch_compile" or i < compile_archs
        ]
        kept = (earlier or {}).get(arch.label())
        if kept is not None and set(wanted) <= set(kept["rel"]):
            rows.append(kept)
            on_row(result | agreement(rows, list(chosen)))
            console.print(f"  [{i + 1}/{len(sample)}] kept from the earlier run  {kept['label']}")
            continue
        model, ref = build_model(arch, seed=0), build_model(reference_arch(arch), seed=0)
        row: dict[str, Any] = {"label": arch.label(), "baseline": baseline or None, "rel": {}}
        for name in wanted:
            target = chosen[name]
            settings = LatencySettings(targets=[{**target, "name": "t"}], **sampling)
            try:
                r = measure_latency(model, ref, shape, settings, device)
            except RuntimeUnavailable as exc:  # e.g. CUDA graphs where no GPU is
                row.setdefault("unavailable", {})[name] = str(exc)
                continue
            row["rel"][name] = r.latency_rel
            row.setdefault("ci", {})[name] = list(r.latency_rel_ci)
        rows.append(row)
        on_row(result | agreement(rows, list(chosen)))
        console.print(
            f"  [{i + 1}/{len(sample)}] "
            + ", ".join(f"{k} {v:.3f}" for k, v in row["rel"].items())
            + f"  {row['label']}",
            highlight=False,
            soft_wrap=True,
        )
    return result | agreement(rows, list(chosen))


def agreement(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Kendall tau between every pair of targets, and the architectures whose rank moves
    most from the first target (the quickstart's) to each other one."""
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
    return {"kendall_tau": taus, "largest_rank_moves": moves}


def earlier_run(out: Path) -> dict[str, Any]:
    """``out``'s earlier result (empty if there is none), read once before this run rewrites it
    after every architecture."""
    return json.loads(out.read_text()) if out.exists() else {}


def kept_spaces(previous: dict[str, Any]) -> list[dict[str, Any]]:
    """Every space of the earlier run, each stamped with the hardware (and date, where that run
    kept one) it was measured on. A space this run measures replaces its earlier copy only
    once its first architecture is timed, so a run cut short before it keeps it."""
    stamp = {"measured_at": previous.get("measured_at"), "hardware": previous.get("hardware")}
    return [stamp | s for s in previous.get("spaces", [])]


def check_resumable(previous: dict[str, Any], out: Path, **same: Any) -> None:
    """``--resume`` keeps rows only from a run that timed the same device, resolution and
    sampling, or its rows would not compare with this run's."""
    theirs = {k: previous.get(k) for k in same}
    if previous and theirs != same:
        raise SystemExit(f"targets: --resume needs {out} from a run with {same}; it has {theirs}")


def earlier_rows(previous: dict[str, Any], config: str) -> dict[str, dict[str, Any]]:
    """``config``'s architectures from the earlier run, by label, for ``--resume``, each stamped
    with the date it was timed (a row kept twice keeps its first date)."""
    for space in previous.get("spaces", []):
        if space["config"] == config:
            when = space.get("measured_at") or previous.get("measured_at")
            return {
                row["label"]: row | {"measured_at": row.get("measured_at") or when}
                for row in space["architectures"]
            }
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 architectures, short sampling")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--resolution", type=int, help="deployment px (cpu 64, cuda 224)")
    ap.add_argument("--compile-archs", type=int, default=30)
    ap.add_argument("--out", type=Path, help="default results/targets.json (targets_cuda.json)")
    ap.add_argument(
        "--configs",
        nargs="+",
        choices=CONFIGS,
        default=list(CONFIGS),
        help="spaces to measure (default all); the others are kept from --out's earlier run, "
        "each with the hardware and date it was measured on (a GPU lease may fit one space)",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the architectures --out's earlier run already timed on every target (same "
        "device, resolution and sampling) and time the rest: a space may span GPU leases",
    )
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("targets: no CUDA device here; run it on a GPU machine (or --device cpu)")
    console = Console()
    n, compile_archs = (3, 1) if args.quick else (args.archs, args.compile_archs)
    resolution = args.resolution or (224 if args.device == "cuda" else 64)
    resolution = 24 if args.quick else resolution
    name = "targets" if args.device == "cpu" else f"targets_{args.device}"
    out = args.out or ROOT / "results" / f"{name}.json"
    sampling = {"repeats": 3, "warmup": 1, "min_sample_ms": 1, "max_seconds": 0.3}
    sampling = sampling if args.quick else {}
    t0 = time.perf_counter()
    hardware = hardware_info(torch.device(args.device))
    previous = earlier_run(out)
    if args.resume:
        check_resumable(previous, out, device=args.device, resolution=resolution, quick=args.quick)
    kept = kept_spaces(previous)
    spaces: list[dict[str, Any]] = []
    result = {
        "quick": args.quick,
        "device": args.device,
        "resolution": resolution,
        "hardware": hardware,
        "versions": runtime_versions(),
        "latency_settings": LatencySettings(**sampling).model_dump(exclude={"targets"}),
        "targets": targets(resolution, args.device),
        "spaces": spaces,
    }

    stamp = {"measured_at": measured_at(), "hardware": hardware}

    def in_order(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_config = {s["config"]: s for s in [*kept, *measured]}
        return [by_config[c] for c in CONFIGS if c in by_config]

    def save(partial: dict[str, Any]) -> None:
        result["spaces"] = in_order([*spaces, partial | stamp])
        result["seconds"] = time.perf_counter() - t0
        write_result(result, out, quiet=True)

    for config in args.configs:
        console.print(f"{config}: {n} architectures at {resolution} px ({args.device})")
        earlier = earlier_rows(previous, config) if args.resume else None
        space = measure_space(
            config,
            n,
            resolution,
            compile_archs,
            sampling,
            console,
            args.device,
            save,
            earlier,
        )
        spaces.append(space | stamp)
    spaces[:] = in_order(spaces)
    for s in spaces:
        t = Table(title=f"Kendall tau of latency_rel between targets ({s['config']})")
        for c in ("targets", "tau", "architectures"):
            t.add_column(c)
        for pair, v in s["kendall_tau"].items():
            t.add_row(pair, f"{v['tau']:.3f}", str(v["n"]))
        console.print(t)
    result["spaces"] = spaces
    result["seconds"] = time.perf_counter() - t0
    write_result(result, out)


if __name__ == "__main__":
    main()
