"""WHAT can be built: attention modules, backbones, positions and architecture configs."""

from spaces.arch import SCHEMA_VERSION, ArchConfig, StageChoice, uniform
from spaces.attention import ATTENTIONS, REGISTRY, create_attention, eca_kernel_size
from spaces.backbones import BACKBONES, get_backbone
from spaces.build import build_model, deploy
from spaces.errors import describe
from spaces.space import Baseline, SearchSpace, SpaceConfig
from spaces.trained import load_trained

__all__ = [
    "ATTENTIONS",
    "BACKBONES",
    "REGISTRY",
    "SCHEMA_VERSION",
    "ArchConfig",
    "Baseline",
    "SearchSpace",
    "SpaceConfig",
    "StageChoice",
    "build_model",
    "create_attention",
    "deploy",
    "describe",
    "eca_kernel_size",
    "get_backbone",
    "load_trained",
    "uniform",
]
