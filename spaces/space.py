"""SearchSpace: the flat Optuna encoding of per-stage choices, its decoder and the baselines.

Every searched stage always samples the same parameter names (``stage{i}_attn``,
``stage{i}_pos``, ...), whatever the attention, so NSGA-II's and multivariate TPE's relative
sampling see a fixed-dimension space. Values that do not apply are ignored by the decoder,
and ArchConfig's normalisation makes all such parameter sets decode to one hashable arch.

A stage's value lists are filtered up front to the values that fit the stage at *every*
allowed position (e.g. ELA-T is dropped from a stage whose first block sees 16 channels at
``pre``), so every parameter set decodes to a valid architecture.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from spaces.arch import ArchConfig, StageChoice, check_stage_choice
from spaces.attention import ATTENTIONS, AUTO, ELA_VARIANTS, REGISTRY, check_odd_kernel
from spaces.backbones import STEMS, BackboneSpec, StageSpec, get_backbone
from spaces.baselines import NONE_PROVENANCE, Provenance, placements
from spaces.errors import check_choice, describe

log = logging.getLogger(__name__)

# Option field of StageChoice -> (flat parameter suffix, SpaceConfig list that feeds it).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "position": ("pos", "positions"),
    "kernel_size": ("kernel", "kernel_sizes"),
    "spatial_kernel_size": ("skernel", "spatial_kernel_sizes"),
    "variant": ("variant", "variants"),
    "reduction": ("reduction", "reductions"),
}


def _nearest(value: Any, allowed: tuple[Any, ...]) -> Any:
    """``value`` if allowed, else the closest allowed number, else the first allowed value."""
    if value in allowed:
        return value
    numbers = [v for v in allowed if isinstance(v, int)]
    if isinstance(value, int) and numbers:
        return min(numbers, key=lambda v: (abs(v - value), v))
    return allowed[0]


class TrialLike(Protocol):
    """The slice of ``optuna.Trial`` the space needs; lets tests pass a fake."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class SpaceConfig(BaseModel):
    """The allowed values of each dimension; what a search config's ``space:`` holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backbone: str = "resnet18"
    widths: tuple[int, ...] | None = None
    stem: Literal["imagenet", "cifar"] = "imagenet"
    num_classes: int = 10
    in_chans: int = 3
    image_size: int = 32
    searched_stages: tuple[int, ...] | None = None  # None: all; others stay without attention
    attentions: tuple[str, ...] = ATTENTIONS
    positions: tuple[str, ...] | None = None  # None: every position the backbone allows
    kernel_sizes: tuple[int | Literal["auto"], ...] = (AUTO,)
    spatial_kernel_sizes: tuple[int, ...] = (3,)
    variants: tuple[str, ...] = tuple(ELA_VARIANTS)
    reductions: tuple[int, ...] = (16,)

    @field_validator("backbone")
    @classmethod
    def _backbone(cls, v: str) -> str:
        get_backbone(v)
        return v

    @field_validator("stem")
    @classmethod
    def _stem(cls, v: str) -> str:
        return check_choice("stem", v, STEMS)

    @field_validator("attentions")
    @classmethod
    def _attentions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            check_choice("attention", name, ATTENTIONS)
        if not v:
            raise ValueError("attentions: give at least one")
        return tuple(dict.fromkeys(v))

    @field_validator("kernel_sizes")
    @classmethod
    def _kernels(cls, v: tuple[Any, ...]) -> tuple[Any, ...]:
        for k in v:
            if k != AUTO:
                check_odd_kernel("kernel_sizes", k)
        return v

    @field_validator("spatial_kernel_sizes")
    @classmethod
    def _spatial_kernels(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        for k in v:
            check_odd_kernel("spatial_kernel_sizes", k)
        return v

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            check_choice("ELA variant", name, ELA_VARIANTS)
        return v

    @field_validator("reductions")
    @classmethod
    def _reductions(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        for r in v:
            if r < 1:
                raise ValueError(f"reductions: must be integers >= 1, got {r}")
        return v

    @model_validator(mode="after")
    def _fits_backbone(self) -> SpaceConfig:
        backbone = get_backbone(self.backbone)
        for p in self.positions or ():
            if p not in backbone.positions:
                raise ValueError(
                    f"positions: {p!r} is not a position of {self.backbone}; "
                    f"allowed: {', '.join(backbone.positions)}"
                )
        n = len(backbone.default_widths)
        for s in self.searched_stages or ():
            if not 0 <= s < n:
                raise ValueError(
                    f"searched_stages: {s} out of range; {self.backbone} has 0..{n - 1}"
                )
        # Building the reference arch checks widths and the stage count.
        ArchConfig(**self.arch_fields(), stages=(StageChoice(),) * n)
        return self

    def arch_fields(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "widths": self.widths,
            "stem": self.stem,
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
            "image_size": self.image_size,
        }


@dataclass(frozen=True)
class Baseline:
    name: str
    arch: ArchConfig
    provenance: Provenance


@dataclass(frozen=True)
class StageDomain:
    """The values one searched stage may take, each valid at every allowed position."""

    stage: StageSpec
    values: dict[str, tuple[Any, ...]]  # flat suffix ("attn", "pos", ...) -> choices
    choices: frozenset[StageChoice]  # every distinct canonical choice


class SearchSpace:
    def __init__(self, config: SpaceConfig | dict[str, Any] | None = None) -> None:
        self.config = SpaceConfig.model_validate(config or {})
        backbone = get_backbone(self.config.backbone)
        self.spec: BackboneSpec = backbone.spec(self.config.widths or backbone.default_widths)
        self.positions = self.config.positions or backbone.positions
        searched = self.config.searched_stages
        self.domains: dict[int, StageDomain] = {
            s.index: self._domain(s)
            for s in self.spec.stages
            if searched is None or s.index in searched
        }
        self._baselines: list[Baseline] | None = None

    # -- domain ---------------------------------------------------------------------------
    def _problem(self, stage: StageSpec, choice: StageChoice) -> str | None:
        """Why ``choice`` fails at some allowed position of ``stage``, or None if it fits all."""
        channels = {p: stage.channels[p] for p in self.positions}
        try:
            for p in self.positions:
                check_stage_choice(stage.index, channels, choice.model_copy(update={"position": p}))
        except ValueError as exc:
            return str(exc).split(": ", 1)[-1]
        return None

    def _fits(self, stage: StageSpec, choice: StageChoice) -> bool:
        return self._problem(stage, choice) is None

    def _raw_values(self) -> dict[str, tuple[Any, ...]]:
        return {
            s: self.positions if f == "position" else getattr(self.config, src)
            for f, (s, src) in DIMENSIONS.items()
        }

    def _why_not(self, stage: StageSpec, candidates: set[StageChoice]) -> str:
        for c in sorted(candidates, key=lambda c: c.label()):
            problem = self._problem(stage, c)
            if problem:
                return problem
        return "no candidates"

    def _domain(self, stage: StageSpec) -> StageDomain:
        cfg = self.config
        values: dict[str, tuple[Any, ...]] = {"attn": ()}
        raw = self._raw_values()
        for field, (suffix, _) in DIMENSIONS.items():
            pool = raw[suffix]
            if field != "position":
                # Keep only values that fit this stage for some attention that takes them.
                takers = [a for a in cfg.attentions if field in REGISTRY[a].defaults]
                pool = tuple(
                    v
                    for v in pool
                    if any(
                        self._fits(stage, StageChoice(attention=a, **{field: v})) for a in takers
                    )
                )
            values[suffix] = tuple(pool)
        candidates = self._enumerate(stage, values)
        choices = {c for c in candidates if self._fits(stage, c)}
        values["attn"] = tuple(a for a in cfg.attentions if any(c.attention == a for c in choices))
        if not choices:
            raise ValueError(
                f"stage {stage.index}: none of the allowed attentions fits at every allowed position "
                f"({self._why_not(stage, self._enumerate(stage, self._raw_values()))}); "
                "allow 'none', other variants or positions"
            )
        return StageDomain(stage, values, frozenset(choices))

    def _enumerate(self, stage: StageSpec, values: dict[str, tuple[Any, ...]]) -> set[StageChoice]:
        out: set[StageChoice] = set()
        for attention in self.config.attentions:
            fields = ["position", *REGISTRY[attention].defaults] if attention != "none" else []
            pools = [values[DIMENSIONS[f][0]] for f in fields]  # an emptied pool: no candidates
            for combo in itertools.product(*pools):
                out.add(StageChoice(attention=attention, **dict(zip(fields, combo, strict=True))))
        return out

    # -- encoding --------------------------------------------------------------------------
    def param_names(self) -> list[str]:
        return [f"stage{i}_{suffix}" for i, d in self.domains.items() for suffix in d.values]

    def distributions(self) -> dict[str, tuple[Any, ...]]:
        return {
            f"stage{i}_{suffix}": vals
            for i, d in self.domains.items()
            for suffix, vals in d.values.items()
            if vals
        }

    def suggest(self, trial: TrialLike) -> ArchConfig:
        params = {
            name: trial.suggest_categorical(name, list(choices))
            for name, choices in self.distributions().items()
        }
        return self.decode(params)

    def decode(self, params: dict[str, Any]) -> ArchConfig:
        """Flat params -> ArchConfig, deterministically; unused params are ignored."""
        stages = []
        for stage in self.spec.stages:
            if stage.index not in self.domains:
                stages.append(StageChoice())
                continue
            attention = params[f"stage{stage.index}_attn"]
            fields: dict[str, Any] = {}
            if attention != "none":
                for field in ("position", *REGISTRY[attention].defaults):
                    fields[field] = params.get(f"stage{stage.index}_{DIMENSIONS[field][0]}")
            stages.append(StageChoice(attention=attention, **fields))
        return ArchConfig(**self.config.arch_fields(), stages=tuple(stages))

    def encode(self, arch: ArchConfig) -> dict[str, Any]:
        """ArchConfig -> flat params (for ``study.enqueue_trial``); decode(encode(a)) == a."""
        problem = self.why_not_in_space(arch)
        if problem:
            raise ValueError(problem)
        return self._params(arch)

    def encode_baseline(self, baseline: Baseline) -> dict[str, Any]:
        """The parameters nearest a paper baseline whose options (the authors' kernel or
        reduction) may lie outside the space's lists: what the sampler is told it tried. The
        trial itself runs ``baseline.arch`` exactly."""
        return self._params(baseline.arch)

    def _params(self, arch: ArchConfig) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for i, domain in self.domains.items():
            choice = arch.stages[i]
            for suffix, vals in domain.values.items():
                if not vals:
                    continue
                field = next((f for f, (s, _) in DIMENSIONS.items() if s == suffix), "attention")
                params[f"stage{i}_{suffix}"] = _nearest(getattr(choice, field), vals)
        return params

    def why_not_in_space(self, arch: ArchConfig) -> str | None:
        if arch.model_dump(include=set(self.config.arch_fields())) != self.config.arch_fields():
            return "backbone, widths, stem, classes or image size differ from the space's"
        for stage, choice in zip(self.spec.stages, arch.stages, strict=True):
            domain = self.domains.get(stage.index)
            if domain is None:
                if choice.attention != "none":
                    return f"stage {stage.index} is not searched, so it must stay 'none'"
            elif choice not in domain.choices:
                return f"stage {stage.index}: {choice.label()} is not among the space's choices"
        return None

    def size(self) -> int:
        """The number of distinct architectures (after normalisation)."""
        return math.prod(len(d.choices) for d in self.domains.values())

    # -- baselines -------------------------------------------------------------------------
    def _paper_baselines(self) -> list[tuple[str, ArchConfig | str, Provenance]]:
        """Each paper's placement over the searched stages (see ``spaces.baselines``): its
        architecture, or why it cannot be built here."""
        fields = self.config.arch_fields()
        n = len(self.spec.stages)
        out: list[tuple[str, ArchConfig | str, Provenance]] = [
            ("none", ArchConfig(**fields, stages=(StageChoice(),) * n), NONE_PROVENANCE)
        ]
        positions = get_backbone(self.config.backbone).paper_positions
        for p in placements(self.spec, dict(positions)):
            variant = p.choices[-1].variant if p.choices[-1] else None
            if p.attention not in self.config.attentions:
                out.append((p.name, f"{p.attention} is not in space.attentions", p.provenance))
                continue
            if variant and variant not in self.config.variants:
                out.append((p.name, f"variant {variant} is not in space.variants", p.provenance))
                continue
            stages = tuple(
                c if c is not None and i in self.domains else StageChoice()
                for i, c in enumerate(p.choices)
            )
            try:
                out.append((p.name, ArchConfig(**fields, stages=stages), p.provenance))
            except ValueError as exc:
                out.append((p.name, describe(exc), p.provenance))
        return out

    def _baseline_problem(self, arch: ArchConfig) -> str | None:
        """Why a baseline cannot run as a comparator here: its type or position per stage must
        be searched; its options (kernel, reduction) are the authors' and may lie outside the
        space's lists."""
        if arch.model_dump(include=set(self.config.arch_fields())) != self.config.arch_fields():
            return "backbone, widths, stem, classes or image size differ from the space's"
        for stage, choice in zip(self.spec.stages, arch.stages, strict=True):
            domain = self.domains.get(stage.index)
            if domain is None or choice.attention == "none":
                continue
            if choice.attention not in domain.values["attn"]:
                return f"stage {stage.index}: {choice.attention} does not fit this stage"
            if choice.position not in domain.values.get("pos", ()):
                return f"position {choice.position!r} is not in space.positions"
        return None

    def _judged_baselines(self) -> list[tuple[str, ArchConfig | str, str | None, Provenance]]:
        """(name, arch or reason, why this space cannot hold it or None, provenance)."""
        return [
            (name, a, a if isinstance(a, str) else self._baseline_problem(a), prov)
            for name, a, prov in self._paper_baselines()
        ]

    def baselines(self) -> list[Baseline]:
        """The papers' placements that this space can hold, for enqueueing once."""
        if self._baselines is None:
            self._baselines = self._kept_baselines()
        return list(self._baselines)

    def _kept_baselines(self) -> list[Baseline]:
        kept = []
        for name, arch, reason, prov in self._judged_baselines():
            if reason:
                log.info("baseline %s skipped: %s", name, reason)
            elif isinstance(arch, ArchConfig):  # always, when there is no reason
                kept.append(Baseline(name, arch, prov))
        return kept

    def baseline(self, name: str) -> Baseline | None:
        return next((b for b in self.baselines() if b.name == name), None)

    def skipped_baselines(self) -> list[tuple[str, str]]:
        return [(name, reason) for name, _, reason, _ in self._judged_baselines() if reason]
