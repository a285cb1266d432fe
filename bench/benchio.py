"""What every benchmark does with its result: one JSON file that bench/report.py reads, and
one line saying where it went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console


def write_result(result: dict[str, Any], out: Path, quiet: bool = False) -> Path:
    """Write ``result`` to ``out``; ``quiet`` for a partial result saved as it grows (a run
    cut short still leaves what it measured), whose line would only repeat."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if not quiet:
        Console(soft_wrap=True).print(f"wrote {out}", highlight=False)
    return out


def runtime_versions() -> dict[str, str]:
    """What a latency depends on besides the hardware: the runtimes' versions (installed
    ones only) and cuDNN's."""
    import importlib.metadata as md

    import torch

    cudnn = torch.backends.cudnn
    out = {"cudnn": str(cudnn.version()), "cudnn_benchmark": str(cudnn.benchmark)}
    for package in ("torch", "triton", "timm", "onnxruntime", "onnxruntime-gpu", "numpy"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return out
