"""Image embeddings: one feature vector per image, computed once and cached.

Importing this package does not import torch; the torchvision backbones import it
when they are created.
"""

from . import ssl as _ssl  # noqa: F401 - registers simclr
from . import timm_backbones as _timm_backbones  # noqa: F401 - registers timm/<name>, efficientnet_lite0
from . import torchvision_backbones as _torchvision_backbones  # noqa: F401 - registers the CNNs
from .backbones import (
    Backbone,
    PixelsBackbone,
    create_backbone,
    default_backbone,
    list_backbones,
    register_backbone,
)
from .cache import VectorCache, default_cache_dir
from .choice import auto_backbone, pretrained_available
from .embedding import embed

__all__ = [
    "Backbone",
    "PixelsBackbone",
    "VectorCache",
    "auto_backbone",
    "create_backbone",
    "default_backbone",
    "default_cache_dir",
    "embed",
    "list_backbones",
    "pretrained_available",
    "register_backbone",
]
