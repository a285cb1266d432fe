"""The timm model ``attnas``: an attnas network built, and its trained weights loaded, by
``timm.create_model``, so timm's data config, transforms, training and validation scripts
take it like any timm model.

    import spaces.timm_model  # registers "attnas" with timm
    model = timm.create_model("attnas", arch="runs/quickstart/trained", pretrained=True)
    model = timm.create_model("attnas", arch="best.yaml", num_classes=100)  # untrained
    model = timm.create_model(
        "attnas", arch="best.yaml", pretrained=True,
        pretrained_cfg_overlay=dict(file="elsewhere/model.safetensors"),
    )

``arch`` is an ``attnas train`` folder (its architecture, weights, and the normalisation it
was trained with), an architecture YAML/JSON (``attnas export``), a dict or an ArchConfig.
``num_classes`` and ``in_chans`` may differ from the trained network's: timm then drops the
classifier or adapts the first convolution, as it does for its own models.

timm's ``train.py`` and ``validate.py`` import no plugins, so run them through this module,
which registers the model first: ``python -m spaces.timm_model PATH/TO/train.py --model
attnas --model-kwargs arch=DIR ...`` (see the README).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

from timm.models import build_model_with_cfg, register_model
from torch import nn

from spaces.arch import ArchConfig
from spaces.build import build_model
from spaces.trained import WEIGHTS, trained_arch, training_record

# timm's train.py passes these to every model; attnas networks have no such options, so
# only their "off" values are accepted.
_TIMM_DEFAULTS = ("drop_rate", "drop_path_rate", "drop_block_rate", "bn_momentum", "bn_eps")


def _resolve(arch: str | Path | dict[str, Any] | ArchConfig) -> tuple[ArchConfig, Path | None]:
    """The architecture, and the trained folder when ``arch`` names one."""
    if isinstance(arch, ArchConfig):
        return arch, None
    if isinstance(arch, dict):
        return ArchConfig.model_validate(arch.get("arch", arch)), None
    path = Path(arch)
    if path.is_dir():
        return trained_arch(path), path
    return ArchConfig.from_file(path), None


def _first_conv(model: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))


def _classifier(model: nn.Module) -> str:
    head = model.get_classifier()
    return next(name for name, m in model.named_modules() if m is head)


def pretrained_cfg(arch: ArchConfig, folder: Path | None) -> dict[str, Any]:
    """timm's description of the trained network: input, normalisation, head, weights."""
    probe = build_model(arch)
    chans = arch.in_chans
    if folder is not None:
        norm = training_record(folder)["normalisation"]
        mean, std = tuple(norm["mean"]), tuple(norm["std"])
    else:  # an untrained network: the usual ImageNet statistics for 3 channels, else 0.5
        mean, std = (
            ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
            if chans == 3
            else (
                (0.5,) * chans,
                (0.5,) * chans,
            )
        )
    return {
        "architecture": "attnas",
        "input_size": (chans, arch.image_size, arch.image_size),
        "num_classes": arch.num_classes,
        "mean": mean,
        "std": std,
        "crop_pct": 1.0,  # trained on whole images, never centre-cropped
        "interpolation": "bilinear",
        "first_conv": _first_conv(probe),
        "classifier": _classifier(probe),
        "file": str(folder / WEIGHTS) if folder is not None else None,
    }


def _build(arch: ArchConfig, num_classes: int, in_chans: int, **options: Any) -> nn.Module:
    unsupported = {k: v for k, v in options.items() if k not in _TIMM_DEFAULTS or v}
    if unsupported:
        raise ValueError(
            f"attnas models take no {', '.join(sorted(unsupported))}; allowed: arch, "
            "num_classes, in_chans (and timm's drop/bn options at their defaults)"
        )
    target = ArchConfig.model_validate(
        arch.to_dict() | {"num_classes": num_classes, "in_chans": in_chans}
    )
    return build_model(target, seed=0)


@register_model
def attnas(
    pretrained: bool = False,
    arch: str | Path | dict[str, Any] | ArchConfig | None = None,
    **kwargs: Any,
) -> nn.Module:
    """An attnas network; ``pretrained`` loads the trained weights of an ``attnas train``
    folder (or those named by ``pretrained_cfg_overlay=dict(file=...)``)."""
    if arch is None:
        raise ValueError(
            "timm.create_model('attnas') needs arch=: an `attnas train` folder, an "
            "architecture YAML/JSON, a dict or an ArchConfig"
        )
    config, folder = _resolve(arch)
    kwargs.pop("cache_dir", None)
    cfg = pretrained_cfg(config, folder)
    overlay = kwargs.pop("pretrained_cfg_overlay", None) or {}
    given = kwargs.pop("pretrained_cfg", None)
    if pretrained and not (overlay.get("file") or cfg["file"] or given):
        raise ValueError(
            f"pretrained=True needs trained weights: {arch} is not an `attnas train` folder; "
            "pass one, or pretrained_cfg_overlay=dict(file=PATH/model.safetensors)"
        )
    return build_model_with_cfg(
        _build,
        "attnas",
        pretrained,
        pretrained_cfg=given or cfg,
        pretrained_cfg_overlay=overlay,
        arch=config,
        **kwargs,
    )


def main() -> None:
    """``python -m spaces.timm_model SCRIPT [ARGS...]``: run a timm script (train.py,
    validate.py, ...) with the ``attnas`` model registered."""
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if len(sys.argv) >= 2 else 2)
    script = Path(sys.argv[1])
    if not script.is_file():
        raise SystemExit(f"timm script not found: {script}")
    sys.argv = [str(script), *sys.argv[2:]]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
