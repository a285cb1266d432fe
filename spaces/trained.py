"""A trained network's folder (what ``attnas train`` writes) back as a model.

The folder depends on nothing else: ``arch.yaml`` says what to build, ``model.safetensors``
holds the weights (safetensors: no pickle, so loading a file someone sent you runs no code),
and ``train.json`` how they were trained. The weights file names the architecture hash it
belongs to, and loading checks it, so weights are never put into a network they were not
trained for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from spaces.arch import ArchConfig
from spaces.build import build_model

WEIGHTS = "model.safetensors"
ARCH = "arch.yaml"
META = "train.json"


def save_weights(model: nn.Module, path: Path, arch: ArchConfig) -> Path:
    """``model``'s weights as safetensors (CPU, contiguous), tagged with ``arch``'s hash."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"arch_hash": arch.hash, "format": "pt"})
    tmp.replace(path)  # a killed save leaves the old file or none, never half of one
    return path


def trained_arch(folder: str | Path) -> ArchConfig:
    folder = Path(folder)
    missing = [n for n in (ARCH, WEIGHTS) if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a trained attnas folder (missing {', '.join(missing)}); "
            "`attnas train` writes one"
        )
    return ArchConfig.from_file(folder / ARCH)


def load_weights(model: nn.Module, path: Path, arch: ArchConfig) -> nn.Module:
    """Load ``path`` into ``model`` (built from ``arch``), refusing another network's file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        tagged = (f.metadata() or {}).get("arch_hash")
    if tagged is not None and tagged != arch.hash:
        raise ValueError(
            f"{path} holds weights for architecture {tagged}, not {arch.hash} ({arch.label()})"
        )
    model.load_state_dict(load_file(str(path)))
    return model


def load_trained(folder: str | Path) -> nn.Module:
    """The trained network of ``folder``: CPU, float32, eval mode, its training form (RCAM
    unfused; ``spaces.deploy`` folds it, and ``model.onnx`` is that deploy form)."""
    arch = trained_arch(folder)
    model = build_model(arch, seed=0)
    return load_weights(model, Path(folder) / WEIGHTS, arch).float().eval()


def training_record(folder: str | Path) -> dict[str, Any]:
    """``train.json``: the per-epoch metrics, accuracies and normalisation of ``folder``."""
    path = Path(folder) / META
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} an `attnas train` folder?")
    return json.loads(path.read_text())
