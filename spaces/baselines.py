"""The papers' uniform placements, built as their authors built them, each saying where from.

A baseline is the comparator a user's front is judged against, so it follows the authors'
released settings rather than the search space's option lists: ECA uses the kernels its
authors released for that family, coordinate attention skips MobileNetV2's expansion-1 block
as its code does, and SE and CBAM on MobileNetV2 use the reduction that reproduces the CA
paper's parameter counts. The attention type and position must still be ones the space
searches (a space without CA has no CA baseline), but options may lie outside its lists: the
driver runs a baseline trial with this exact architecture (see ``search.driver``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spaces.arch import ArchConfig, StageChoice
from spaces.attention import AUTO, ELA_VARIANTS, REGISTRY
from spaces.backbones import BackboneSpec, StageSpec, get_backbone


@dataclass(frozen=True)
class Provenance:
    """Where a baseline's placement and settings come from, for the reader of a front."""

    paper: str
    table: str
    settings: str

    def line(self) -> str:
        return f"{self.paper}; {self.table}; {self.settings}"


@dataclass(frozen=True)
class PaperPlacement:
    """One baseline: per stage, the choice its paper makes (None: that stage stays plain)."""

    name: str
    attention: str
    choices: tuple[StageChoice | None, ...]
    provenance: Provenance


def family(backbone: str) -> str:
    """``resnet_basic``, ``resnet_bottleneck``, ``mobilenetv2`` or ``convnext``."""
    if backbone in ("resnet18", "resnet34"):
        return "resnet_basic"
    if backbone.startswith("resnet"):
        return "resnet_bottleneck"
    return backbone.split("_")[0]


SE_PAPER = "Hu et al., Squeeze-and-Excitation Networks (CVPR 2018)"
ECA_PAPER = "Wang et al., ECA-Net (CVPR 2020)"
CA_PAPER = "Hou et al., Coordinate Attention (CVPR 2021)"
CBAM_PAPER = "Woo et al., CBAM (ECCV 2018)"
ELA_PAPER = "Xu & Wan, ELA (arXiv 2403.01123)"
SELN_PAPER = "Park et al., SELNeXt (CMC 2025)"
CA_TABLE = "CA paper's MobileNetV2 comparison (+SE 3.89M, +CBAM 3.89M, +CA 3.95M params)"
# SE and CBAM as the CA paper's comparators: r = 24 is the only reduction whose parameter count
# at 224 px, 1000 classes matches its table (3.888M and 3.890M; r = 16 gives 4.08M, 32 3.79M).
MOBILENETV2_COMPARATOR_REDUCTION = 24
# ECA's released per-stage kernels (BangguWu/ECANet): ResNet-50 3,5,5,7 (the paper's "80
# extra parameters"), ResNet-18/34 3 everywhere, MobileNetV2 1 below 96 channels, else 3.
ECA_RESNET50_KERNELS = (3, 5, 5, 7)
ECA_MOBILENETV2_SPLIT = 96


def _seen(stage: StageSpec, position: str) -> int:
    return min(stage.channels[position])


def _eca_kernel(fam: str, stage: StageSpec, position: str) -> tuple[int | str, str]:
    if fam == "resnet_basic":
        return 3, "released ECA-ResNet-18/34: kernel 3 in every stage"
    if fam == "resnet_bottleneck":
        k = ECA_RESNET50_KERNELS[min(stage.index, len(ECA_RESNET50_KERNELS) - 1)]
        return k, "released ECA-ResNet-50: per-stage kernels 3,5,5,7"
    if fam == "mobilenetv2":
        k = 1 if _seen(stage, position) < ECA_MOBILENETV2_SPLIT else 3
        return k, "released ECA-MobileNetV2: kernel 1 below 96 channels, 3 otherwise"
    return AUTO, "no released kernels for this family: the paper's adaptive formula"


def placements(spec: BackboneSpec, paper_positions: dict[str, str]) -> list[PaperPlacement]:
    """Every paper's placement on ``spec`` (uniform over all stages; the space narrows it)."""
    fam = family(spec.name)
    out: list[PaperPlacement] = []
    for attention in REGISTRY:
        if attention == "none":
            continue
        position = paper_positions.get(attention, "standard")
        for variant in ELA_VARIANTS if attention == "ela" else (None,):
            build = _BUILDERS.get(attention, _generic)
            choices, provenance = build(fam, spec, attention, position, variant)
            name = f"ela-{variant}" if variant else attention
            out.append(PaperPlacement(name, attention, choices, provenance))
    return out


_Built = tuple[tuple[StageChoice | None, ...], Provenance]


def _every(spec: BackboneSpec, **choice: object) -> tuple[StageChoice | None, ...]:
    return tuple(StageChoice(**choice) for _ in spec.stages)


def _se_like(
    fam: str, spec: BackboneSpec, attention: str, position: str, variant: str | None
) -> _Built:
    paper = SE_PAPER if attention == "se" else CBAM_PAPER
    if fam == "mobilenetv2":
        r = MOBILENETV2_COMPARATOR_REDUCTION
        settings = (
            f"r={r}, the reduction that reproduces the CA paper's parameter count; "
            f"after the depthwise conv as in the CA paper's comparison"
        )
        return _every(spec, attention=attention, position=position, reduction=r), Provenance(
            paper, CA_TABLE, settings
        )
    table = "ImageNet ResNet results table" if attention == "cbam" else "Table 2 (SE-ResNet)"
    settings = f"r=16, {position} (end of the residual branch, before the add)"
    if attention == "cbam":
        settings = f"r=16, 7x7 spatial conv, {position}"
    return _every(spec, attention=attention, position=position, reduction=16), Provenance(
        paper, table, settings
    )


def _eca(fam: str, spec: BackboneSpec, attention: str, position: str, _: str | None) -> _Built:
    choices, why = [], ""
    for stage in spec.stages:
        k, why = _eca_kernel(fam, stage, position)
        choices.append(StageChoice(attention="eca", position=position, kernel_size=k))
    return tuple(choices), Provenance(
        ECA_PAPER, "ImageNet comparison tables (ResNet, MobileNetV2)", why
    )


def _ca(fam: str, spec: BackboneSpec, attention: str, position: str, _: str | None) -> _Built:
    choice = StageChoice(attention="ca", position=position)
    if fam == "mobilenetv2":
        # houqb/CoordAttention's MobileNetV2 adds CA only to blocks that expand: stage 0's
        # single block (expansion 1) stays plain even when the space searches stage 0.
        choices = (None, *(choice for _ in spec.stages[1:]))
        return choices, Provenance(
            CA_PAPER, CA_TABLE, "reduction 32 (mip = max(8, C/32)); not in the expansion-1 block"
        )
    return _every(spec, attention="ca", position=position), Provenance(
        CA_PAPER, "ImageNet results", f"reduction 32 (mip = max(8, C/32)), {position}"
    )


def _ela(
    fam: str, spec: BackboneSpec, attention: str, position: str, variant: str | None
) -> _Built:
    return _every(spec, attention="ela", position=position, variant=variant), Provenance(
        ELA_PAPER, "variant table (T/B/S/L)", f"ELA-{variant}, {position}"
    )


INFERRED_PAPERS = {
    "rcam": "Ye et al., RCAM (Computer Engineering and Design 2024)",
    "sca": "Liu et al., SCA (Mathematics 2022)",
}
INFERRED = "design inferred from the abstract, no public code"


def _generic(
    fam: str, spec: BackboneSpec, attention: str, position: str, variant: str | None
) -> _Built:
    options = dict(REGISTRY[attention].defaults)
    if REGISTRY[attention].confidence == "inferred":
        paper = f"{INFERRED_PAPERS.get(attention, attention)} [{INFERRED}]"
        provenance = Provenance(paper, "no table reproduced", f"{position}, defaults {options}")
    else:
        provenance = Provenance(SELN_PAPER, "ImageNet-1k results", f"r=16, {position}")
    return _every(spec, attention=attention, position=position, **options), provenance


_BUILDERS: dict[str, Callable[[str, BackboneSpec, str, str, str | None], _Built]] = {
    "se": _se_like,
    "cbam": _se_like,
    "eca": _eca,
    "ca": _ca,
    "ela": _ela,
}


NONE_PROVENANCE = Provenance("the backbone without attention", "-", "the latency reference")


def provenance_of(name: str, arch: ArchConfig) -> Provenance | None:
    """The provenance of baseline ``name`` as recorded with ``arch`` (what a report shows)."""
    if name == "none":
        return NONE_PROVENANCE
    backbone = get_backbone(arch.backbone)
    spec = backbone.spec(arch.widths or backbone.default_widths)
    found = (p for p in placements(spec, dict(backbone.paper_positions)) if p.name == name)
    return next((p.provenance for p in found), None)
