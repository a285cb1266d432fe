"""What every benchmark does with its result: one JSON file that bench/report.py reads, and
one line saying where it went."""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from rich.console import Console

# What ``--quick`` runs with wherever it trains or times the quickstart network (CI's proof
# that a script works, whose numbers are never reported): 8 px images, large batches (a
# fraction of the optimizer steps per epoch) and token latency sampling. A script adds the
# length (epochs, seeds, trials) it needs to exercise its own logic.
QUICK_OVERRIDES = (
    "space.image_size=8",
    "eval.image_size=8",
    "eval.train.batch_size=256",
    "eval.latency.repeats=3",
    "eval.latency.min_sample_ms=1",
    "eval.latency.max_seconds=0.3",
)


# How many runs of a script a result keeps side by side (``keep_history``).
HISTORY_RUNS = 10


def measured_at() -> str:
    """When a result was measured (UTC, to the minute): the histories and the report date
    each run by it."""
    return datetime.now(UTC).isoformat(timespec="minutes")


def keep_history(
    previous: dict[str, Any], result: dict[str, Any], headline: Callable[[dict], dict]
) -> list[dict]:
    """The last ``HISTORY_RUNS`` runs' headlines, oldest first, ``result``'s last.

    Why: a latency ratio is steady within a run but moves between sittings and machines (a
    neighbour's load, another host of the same kind); only runs kept side by side show by how
    much. A ``previous`` result stored before runs kept a history becomes its first row."""
    past = previous.get("history") or ([headline(previous)] if previous.get("latency") else [])
    return [*past, headline(result)][-HISTORY_RUNS:]


def write_result(result: dict[str, Any], out: Path, quiet: bool = False) -> Path:
    """Write ``result`` to ``out``; ``quiet`` for a partial result saved as it grows (a run
    cut short still leaves what it measured), whose line would only repeat."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if not quiet:
        Console(soft_wrap=True).print(f"wrote {out}", highlight=False)
    return out


def fresh_processes(*modules: str) -> BaseContext:
    """A multiprocessing context whose processes start clean but cheap: a fork server that
    imported ``modules`` (torch's 2 s and the like) once forks each of them. A spawned process
    pays those imports again (2-8 s each here), a plain fork inherits the parent's threads and
    warmed state; what these processes time or sample must start from neither. (Preloading
    ``__main__`` instead saves nothing: every child still re-imports the script.)"""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", *modules])
    return ctx


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
