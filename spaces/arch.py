"""ArchConfig: the one currency between sampler, export and model.

A frozen pydantic model whose validation knows the backbone's channels at every position, so
an impossible architecture is refused with the field, the bad value and the allowed values
before any tensor is allocated. Options that do not apply to a stage's attention are
normalised to None, so two spellings of the same network hash the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from spaces.attention import (
    ATTENTIONS,
    AUTO,
    ELA_VARIANTS,
    REGISTRY,
    check_odd_kernel,
    complete_options,
    resolve_kernel,
)
from spaces.backbones import BACKBONES, STEMS, BackboneSpec, get_backbone
from spaces.errors import check_choice

SCHEMA_VERSION = 1
OPTION_FIELDS = ("kernel_size", "spatial_kernel_size", "variant", "reduction")


class StageChoice(BaseModel):
    """What one stage gets: an attention type, where in each block, and its options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attention: str = "none"
    position: str | None = None
    kernel_size: int | Literal["auto"] | None = None
    spatial_kernel_size: int | None = None
    variant: str | None = None
    reduction: int | None = None

    @field_validator("attention")
    @classmethod
    def _known_attention(cls, v: str) -> str:
        return check_choice("attention", v, ATTENTIONS)

    @field_validator("kernel_size")
    @classmethod
    def _odd_kernel(cls, v: int | str | None) -> int | str | None:
        if v is not None and v != AUTO:
            check_odd_kernel("kernel_size", v)
        return v

    @field_validator("spatial_kernel_size")
    @classmethod
    def _odd_spatial_kernel(cls, v: int | None) -> int | None:
        if v is not None:
            check_odd_kernel("spatial_kernel_size", v)
        return v

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, v: str | None) -> str | None:
        return v if v is None else check_choice("ELA variant", v, ELA_VARIANTS)

    @field_validator("reduction")
    @classmethod
    def _positive_reduction(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"reduction must be an integer >= 1, got {v}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, data: Any) -> Any:
        """Fill the attention's defaults and drop options it does not take."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        name = data.get("attention", "none")
        if name not in REGISTRY:
            return data  # the field validator reports it
        given = {k: data.get(k) for k in OPTION_FIELDS}
        opts = complete_options(name, given)
        for key in OPTION_FIELDS:
            data[key] = opts.get(key)
        if name == "none":
            data["position"] = None
        elif data.get("position") is None:
            data["position"] = "standard"
        return data

    @property
    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in OPTION_FIELDS if getattr(self, k) is not None}

    def label(self) -> str:
        """Short human name: ``eca@standard(k=auto)``."""
        if self.attention == "none":
            return "none"
        name = f"ela-{self.variant}" if self.attention == "ela" else self.attention
        opts = ",".join(f"{k}={v}" for k, v in self.options.items() if k != "variant")
        return f"{name}@{self.position}" + (f"({opts})" if opts else "")


class ArchConfig(BaseModel):
    """A complete, buildable architecture. ``build_model(arch)`` turns it into a module."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    backbone: str
    num_classes: int = 10
    in_chans: int = 3
    image_size: int = 32
    stem: Literal["imagenet", "cifar"] = "imagenet"
    widths: tuple[int, ...] | None = None
    stages: tuple[StageChoice, ...]

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        return check_choice("backbone", v, BACKBONES)

    @field_validator("stem")
    @classmethod
    def _known_stem(cls, v: str) -> str:
        return check_choice("stem", v, STEMS)

    @field_validator("num_classes", "in_chans", "image_size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be >= 1, got {v}")
        return v

    @model_validator(mode="after")
    def _fits_backbone(self) -> ArchConfig:
        backbone = get_backbone(self.backbone)
        n_stages = len(backbone.default_widths)
        if self.widths is not None and (len(self.widths) != n_stages or min(self.widths) < 1):
            raise ValueError(
                f"widths: {self.backbone} needs {n_stages} positive widths, got {list(self.widths)}"
            )
        if len(self.stages) != n_stages:
            raise ValueError(
                f"stages: {self.backbone} has {n_stages} stages, got {len(self.stages)}"
            )
        spec = self.spec
        for stage, choice in zip(spec.stages, self.stages, strict=True):
            check_stage_choice(stage.index, stage.channels, choice)
        return self

    @property
    def spec(self) -> BackboneSpec:
        backbone = get_backbone(self.backbone)
        return backbone.spec(self.widths or backbone.default_widths)

    @property
    def hash(self) -> str:
        """Content hash: equal for equal networks, stable across processes and versions."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def label(self) -> str:
        return " | ".join(s.label() for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """Plain data without the options that do not apply (they reload as None)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def save(self, path: str | Path, source: dict[str, Any] | None = None) -> Path:
        """Write the architecture file users hand around (``attnas export``, ``attnas train``):
        ``{arch: ..., source: ...}`` as YAML, or JSON for a ``.json`` path; ``source`` says
        where it came from (study, trial, pick). ``from_file`` reads either form back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"arch": self.to_dict()} | ({"source": source} if source else {})
        if path.suffix == ".json":
            path.write_text(json.dumps(payload, indent=2))
        else:
            path.write_text(yaml.safe_dump(payload, sort_keys=False, default_flow_style=None))
        return path

    @classmethod
    def _from_data(cls, data: object) -> ArchConfig:
        """Bare fields, or a saved file's ``{arch: ..., source: ...}``."""
        if not isinstance(data, dict):
            raise ValueError("an architecture file must hold a mapping of fields")
        return cls.model_validate(data.get("arch", data))

    @classmethod
    def from_yaml(cls, source: str | Path) -> ArchConfig:
        """Load from a path or a YAML string; only plain YAML (safe_load) is accepted."""
        text = Path(source).read_text() if _is_path(source) else str(source)
        return cls._from_data(yaml.safe_load(text))

    @classmethod
    def from_json(cls, source: str | Path) -> ArchConfig:
        text = Path(source).read_text() if _is_path(source) else str(source)
        return cls._from_data(json.loads(text))

    @classmethod
    def from_file(cls, path: str | Path) -> ArchConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"architecture file not found: {path}")
        return cls.from_json(path) if path.suffix == ".json" else cls.from_yaml(path)


def _is_path(source: str | Path) -> bool:
    if isinstance(source, Path):
        return True
    return "\n" not in source and Path(source).suffix in {".yaml", ".yml", ".json"}


def check_stage_choice(
    index: int, channels: dict[str, tuple[int, ...]], choice: StageChoice
) -> None:
    """Raise naming the stage, field, bad value and allowed values if ``choice`` cannot fit."""
    if choice.attention == "none":
        return
    where = f"stages[{index}]"
    if choice.position not in channels:
        raise ValueError(
            f"{where}.position: {choice.position!r} is not a position of this backbone; "
            f"allowed: {', '.join(channels)}"
        )
    spec = REGISTRY[choice.attention]
    for block, c in enumerate(channels[choice.position]):
        problem = spec.problem(c, choice.options)
        if problem:
            field = "variant" if choice.attention == "ela" else "reduction"
            allowed = _allowed_hint(choice, channels[choice.position])
            raise ValueError(
                f"{where}.{field}: {choice.label()} {problem}, but block {block} has {c} "
                f"channels at {choice.position!r}{allowed}"
            )
    if choice.kernel_size is not None:
        resolve_kernel(choice.kernel_size, min(channels[choice.position]))


def _allowed_hint(choice: StageChoice, channels: tuple[int, ...]) -> str:
    if choice.attention != "ela":
        return ""
    ok = [v for v, s in ELA_VARIANTS.items() if all(s.problem(c) is None for c in channels)]
    return f"; allowed variants here: {', '.join(ok) or 'none'}"


def uniform(backbone: str, choice: StageChoice | None = None, **arch: Any) -> ArchConfig:
    """The same stage choice in every stage: how the papers place their modules."""
    n = len(get_backbone(backbone).default_widths)
    choice = choice or StageChoice()
    return ArchConfig(backbone=backbone, stages=(choice,) * n, **arch)
