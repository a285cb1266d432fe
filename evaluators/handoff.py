"""``attnas train``: the chosen architecture trained with a full-length recipe, and a folder a
deployment team can take without the study.

Training runs on the one evaluation path (``evaluators.evaluate``) with the study's data
split and settings, a longer schedule (cosine decay after a short warm-up), one seed, and a
per-epoch checkpoint, so a killed run resumes where it stopped and, on CPU, ends with exactly
the numbers of an uninterrupted one. The trained weights are written before the evaluation's
outcome is stored, so a stored outcome always has its weights beside it.

DIR/
  model.safetensors   the trained weights (EMA when on), tagged with the architecture hash
  arch.yaml           what to build (and where in the study it came from)
  train.json          per-epoch loss and validation accuracy, final validation and holdout
                      accuracy, recipe, normalisation, cost, hardware and versions
  model.onnx          the deploy form (RCAM fused), checked against PyTorch by ONNX Runtime
  README.md           the model card
  work/               the evaluation's own files (checkpoint while training)
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from evaluators.evaluate import (
    EpochReport,
    EvalConfig,
    Outcome,
    eval_dir,
    evaluate,
    get_dataset,
)
from evaluators.train import accuracy
from spaces import ArchConfig, deploy
from spaces.trained import ARCH, META, WEIGHTS, load_trained, save_weights

ONNX = "model.onnx"
CARD = "README.md"
# The full-length recipe over the study's own optimizer settings: longer, cosine decay, a
# short warm-up. Epochs default to six times the search's short schedule, at least 30.
FULL_WARMUP = 0.05


def full_recipe(cfg: EvalConfig, *, epochs: int | None = None, seed: int = 0) -> EvalConfig:
    """The search's evaluation settings turned into the training of the one shipped network:
    same data, split and optimizer; ``epochs`` (default max(30, 6x the search's)) with
    cosine decay; one seed; scored on the validation split, the holdout kept for the end."""
    train = cfg.train.model_dump() | {
        "epochs": epochs or max(30, 6 * cfg.train.epochs),
        "schedule": "cosine",
        "warmup_fraction": FULL_WARMUP,
    }
    return EvalConfig.model_validate(
        cfg.model_dump(mode="json") | {"train": train, "seeds": [seed], "split": "val"}
    )


def check_recipe(cfg: EvalConfig) -> None:
    """What only the hand-off refuses: it trains and ships exactly one network."""
    if len(cfg.seeds) != 1:
        raise ValueError(f"attnas train ships one network: give one seed, not {list(cfg.seeds)}")


@dataclass(frozen=True)
class Trained:
    """What ``train_and_hand_off`` produced."""

    folder: Path
    outcome: Outcome
    holdout_accuracy: float
    onnx_note: str  # "" when model.onnx was written, else why not


def _check_folder(out: Path, arch: ArchConfig) -> None:
    """Refuse a folder that holds another network's training."""
    existing = out / ARCH
    if existing.is_file():
        other = ArchConfig.from_file(existing)
        if other.hash != arch.hash:
            raise ValueError(
                f"{out} holds the training of another architecture ({other.label()}); "
                "choose another -o folder"
            )


def train_and_hand_off(
    arch: ArchConfig,
    cfg: EvalConfig,
    out: Path,
    *,
    source: dict[str, Any] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> Trained:
    """Train ``arch`` with ``cfg`` (see ``full_recipe``) into ``out``; resumable."""
    check_recipe(cfg)
    out = Path(out)
    _check_folder(out, arch)
    out.mkdir(parents=True, exist_ok=True)
    arch.save(out / ARCH, source)
    outcome = evaluate(
        arch,
        cfg,
        eval_dir(out / "work", arch, cfg),
        on_epoch=on_epoch,
        on_trained=lambda models: save_weights(models[0], out / WEIGHTS, arch),
    )
    if outcome.status != "ok":
        raise FloatingPointError(
            f"training diverged (NaN/inf loss) at epoch {outcome.failed_epoch}; lower the "
            "learning rate (--set train.lr=...)"
        )
    model = load_trained(out)
    data = get_dataset(cfg).to("cpu")
    holdout = accuracy(model, data, data.holdout)
    onnx_note = _write_onnx(arch, out)
    record = _training_record(arch, cfg, outcome, holdout, data, source)
    (out / META).write_text(json.dumps(record, indent=2))
    (out / CARD).write_text(model_card(record, onnx_note))
    return Trained(out, outcome, holdout, onnx_note)


def _write_onnx(arch: ArchConfig, out: Path) -> str:
    """The deploy form as ONNX, refused if ONNX Runtime does not reproduce PyTorch."""
    from spaces.onnx import ONNX_TOLERANCE, onnx_bytes, onnx_difference

    model = deploy(load_trained(out))
    x = torch.randn(2, arch.in_chans, arch.image_size, arch.image_size, generator=_gen())
    try:
        graph = onnx_bytes(model, x)
        difference = onnx_difference(graph, model, x)
    except ImportError as exc:  # the exporter or ONNX Runtime: the optional attnas[onnx]
        return f"not written ({exc.name} missing: pip install 'attnas[onnx]')"
    if difference > ONNX_TOLERANCE:
        raise ValueError(
            f"ONNX Runtime's output differs from PyTorch's by {difference:.2e} of the largest "
            f"output (allowed {ONNX_TOLERANCE:.0e}); not writing {ONNX}"
        )
    (out / ONNX).write_bytes(graph)
    return ""


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("attnas", "torch", "timm", "onnxruntime", "safetensors"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _training_record(
    arch: ArchConfig,
    cfg: EvalConfig,
    outcome: Outcome,
    holdout: float,
    data: Any,
    source: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "arch": arch.to_dict(),
        "arch_hash": arch.hash,
        "label": arch.label(),
        "source": source,
        "dataset": cfg.dataset,
        "data_dir": cfg.data_dir,
        "image_size": cfg.image_size,
        "split_seed": cfg.split_seed,
        "seed": cfg.seeds[0],
        "recipe": cfg.train.model_dump(mode="json"),
        "eval_fingerprint": cfg.fingerprint(),
        "epochs": [
            {"epoch": i + 1, "loss": loss, "val_accuracy": acc}
            for i, (loss, acc) in enumerate(zip(outcome.losses, outcome.accuracies, strict=False))
        ],
        "val_accuracy": outcome.accuracy,
        "holdout_accuracy": holdout,
        "holdout_images": len(data.holdout),
        "normalisation": {"mean": data.mean.tolist(), "std": data.std.tolist()},
        "input": {
            "name": "image",
            "shape": [None, arch.in_chans, arch.image_size, arch.image_size],
        },
        "params": outcome.params,
        "flops": outcome.flops,
        "latencies": outcome.latencies,
        "train_seconds": outcome.train_seconds,
        "device": outcome.device,
        "hardware": outcome.hardware,
        "versions": _versions(),
    }


def model_card(record: dict[str, Any], onnx_note: str = "") -> str:
    """A short README.md: what the network is, where it came from, how good, how fast."""
    arch = ArchConfig.model_validate(record["arch"])
    source = record.get("source") or {}
    lines = [
        f"# attnas model: {record['label']}",
        "",
        f"A {arch.backbone} ({arch.stem} stem, {arch.num_classes} classes, "
        f"{arch.in_chans}x{arch.image_size}x{arch.image_size} input) with attention placed per "
        "stage by an attnas search, trained by `attnas train`.",
        "",
        "| stage | attention | position | options |",
        "|---|---|---|---|",
    ]
    for i, s in enumerate(arch.stages):
        options = ", ".join(f"{k}={v}" for k, v in s.options.items()) or "-"
        position = s.position if s.attention != "none" else "-"
        lines.append(f"| {i} | {s.attention} | {position} | {options} |")
    lines += ["", "## Where it came from", ""]
    if source:
        lines.append(
            f"Study `{source.get('study')}`, trial {source.get('trial')}, picked as "
            f"`{source.get('pick')}`"
            + (f" (paper baseline `{source['baseline']}`)" if source.get("baseline") else "")
            + "."
        )
        metrics = source.get("metrics") or {}
        if metrics.get("accuracy") is not None:
            lines.append(
                f"In the search's short schedule it scored {metrics['accuracy']:.4f} "
                f"(seeds {metrics.get('seeds')})."
            )
        lines += [f"- {note}" for note in source.get("notes") or []]
    else:
        lines.append("An architecture file, not a study trial.")
    recipe = record["recipe"]
    lines += [
        "",
        "## Accuracy",
        "",
        f"Trained on `{record['dataset']}` (split seed {record['split_seed']}, seed "
        f"{record['seed']}) for {recipe['epochs']} epochs: {recipe['optimizer']} lr "
        f"{recipe['lr']}, batch {recipe['batch_size']}, {recipe['schedule']} decay after "
        f"{recipe['warmup_fraction']:.0%} warm-up, label smoothing {recipe['label_smoothing']}"
        + (f", EMA {recipe['ema_decay']}" if recipe.get("ema_decay") else "")
        + ".",
        "",
        "| split | accuracy |",
        "|---|---|",
        f"| validation (last epoch) | {record['val_accuracy']:.4f} |",
        f"| holdout ({record['holdout_images']} images the search never scored) | "
        f"{record['holdout_accuracy']:.4f} |",
        "",
        "## Cost",
        "",
        f"- parameters: {record['params']:,}",
        f"- FLOPs (one image): {record['flops']:,}",
    ]
    for name, t in (record.get("latencies") or {}).items():
        lines.append(
            f"- latency on `{name}` ({t['runtime']}, batch {t['batch_size']}, "
            f"{t['threads']} threads, {t['image_size']} px): {t['latency_ms']:.3f} ms, "
            f"{t['latency_rel']:.3f}x the same network without attention"
        )
    hardware = record.get("hardware") or {}
    lines.append(f"- measured on: {hardware.get('name', record.get('device'))}")
    norm = record["normalisation"]
    lines += [
        "",
        "## Use it",
        "",
        f"Input `image`: float32, shape (batch, {arch.in_chans}, {arch.image_size}, "
        f"{arch.image_size}), pixel values scaled to 0-1 then normalised with mean "
        f"{[round(m, 4) for m in norm['mean']]} and std {[round(s, 4) for s in norm['std']]}. "
        "Output `logits`: (batch, classes).",
        "",
        "```python",
        "from spaces import load_trained",
        "model = load_trained('THIS_FOLDER')   # CPU, float32, eval mode",
        "",
        "import timm, spaces.timm_model      # registers the 'attnas' model with timm",
        "model = timm.create_model('attnas', arch='THIS_FOLDER', pretrained=True)",
        "```",
        "",
        f"`{ONNX}`: "
        + (onnx_note or "the deploy form (RCAM fused), checked against PyTorch with ONNX Runtime."),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()) + ".",
        "",
    ]
    return "\n".join(lines)
