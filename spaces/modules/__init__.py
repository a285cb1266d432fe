"""Attention modules that timm lacks or builds differently from the papers."""

from spaces.modules.cbam import AuthorsCbam
from spaces.modules.coord import CoordAttention
from spaces.modules.ela import ELA_VARIANTS, EfficientLocalAttention, ElaVariant
from spaces.modules.rcam import RepChannelAttention
from spaces.modules.sca import SpatialChannelAttention
from spaces.modules.seln import SELayerNorm

__all__ = [
    "AuthorsCbam",
    "CoordAttention",
    "ELA_VARIANTS",
    "EfficientLocalAttention",
    "ElaVariant",
    "RepChannelAttention",
    "SELayerNorm",
    "SpatialChannelAttention",
]
