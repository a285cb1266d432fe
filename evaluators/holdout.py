"""Re-training on the holdout split for ``attnas validate``, on the one evaluation path.

The search's accuracies were scored on ``val`` with the search's seeds and the front was
picked by them, so they are optimistically biased. Here each architecture is evaluated again
with fresh seeds (offset so they never coincide with the search's) and scored on ``holdout``,
a split the search never saw. The evaluations are durable in the study's ``evals/`` folder
under their own fingerprint (split and seeds differ), so an interrupted validation resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from evaluators.evaluate import EvalConfig, eval_dir, evaluate
from evaluators.hygiene import node_gate
from spaces import ArchConfig

SEED_OFFSET = 1000  # validation seeds never coincide with the search's seeds


def holdout_config(cfg: EvalConfig, seeds: int) -> EvalConfig:
    """The search's settings, with ``seeds`` fresh seeds, scored on the holdout split."""
    return EvalConfig.model_validate(
        cfg.model_dump()
        | {
            "seeds": tuple(range(SEED_OFFSET, SEED_OFFSET + seeds)),
            "split": "holdout",
            "measure_latency": False,  # the search measured it; only accuracy is in question
        }
    )


def revalidate(
    items: Iterable[dict[str, Any]],
    cfg: EvalConfig,
    seeds: int,
    evals_root: Path | None = None,
    on_done: Callable[[dict[str, Any]], None] = lambda row: None,
) -> list[dict[str, Any]]:
    """For each item (a dict with ``arch``), the item plus its holdout accuracies, mean and
    standard deviation over the fresh seeds (NaN mean when training diverged)."""
    holdout = holdout_config(cfg, seeds)
    rows = []
    for item in items:
        arch = ArchConfig.model_validate(item["arch"])
        workdir = eval_dir(evals_root, arch, holdout) if evals_root is not None else None
        outcome = evaluate(arch, holdout, workdir, gate=node_gate())
        ok = outcome.status == "ok"
        row = {k: v for k, v in item.items() if k != "arch"} | {
            "accuracies": [a[-1] for a in outcome.accuracies_per_seed] if ok else [],
            "mean": outcome.accuracy if ok else float("nan"),
            "std": outcome.accuracy_std if ok else 0.0,
        }
        rows.append(row)
        on_done(row)
    return rows
