"""Backbone families and their registry; see ``base.Backbone`` for the protocol."""

from __future__ import annotations

from spaces.backbones.base import STEMS, Backbone, BackboneSpec, StageSpec
from spaces.backbones.convnext import CONVNEXT_POSITIONS, CONVNEXTS
from spaces.backbones.mobilenetv2 import MOBILENETV2_POSITIONS, MOBILENETV2S
from spaces.backbones.resnet import RESNET_POSITIONS, RESNET_STEM_WIDTH, RESNETS
from spaces.errors import check_choice

BACKBONES: dict[str, Backbone] = {b.name: b for b in (*RESNETS, *CONVNEXTS, *MOBILENETV2S)}


def get_backbone(name: str) -> Backbone:
    return BACKBONES[check_choice("backbone", name, BACKBONES)]


__all__ = [
    "BACKBONES",
    "CONVNEXT_POSITIONS",
    "MOBILENETV2_POSITIONS",
    "RESNET_POSITIONS",
    "RESNET_STEM_WIDTH",
    "STEMS",
    "Backbone",
    "BackboneSpec",
    "StageSpec",
    "get_backbone",
]
