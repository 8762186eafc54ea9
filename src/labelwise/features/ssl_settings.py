"""The settings a SimCLR training run depends on (no torch needed to hold them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import LabelwiseError


@dataclass(frozen=True)
class SimCLRSettings:
    """What a training run depends on, besides the images and the seed.

    Attributes
    ----------
    epochs : passes over the images.
    batch_size : images per step (each gives two views, so ``2·batch_size - 2`` negatives).
    temperature : NT-Xent temperature.
    width : channels of the CNN's stem; features have ``8·width`` dimensions.
    min_scale : smallest crop, as a fraction of the image area.
    max_degrees : largest rotation of a view.
    lr, weight_decay : AdamW peak learning rate (one warm-up epoch, then cosine) and weight decay.
    projection : output size of the projection head.
    """

    epochs: int = 30
    batch_size: int = 256
    temperature: float = 0.2
    width: int = 16
    min_scale: float = 0.5
    max_degrees: float = 15.0
    lr: float = 2e-3
    weight_decay: float = 1e-4
    projection: int = 64

    def __post_init__(self) -> None:
        for name, least in (("epochs", 1), ("batch_size", 2), ("width", 1), ("projection", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise LabelwiseError(f"simclr {name} must be an integer >= {least}, got {value!r}")
        for name, low, high in (
            ("temperature", 0.0, math.inf),
            ("min_scale", 0.0, 1.0),
            ("lr", 0.0, math.inf),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
                raise LabelwiseError(f"simclr {name} must be a number in ({low:g}, {high:g}], got {value!r}")
        for name, high in (("max_degrees", 180.0), ("weight_decay", math.inf)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
                raise LabelwiseError(f"simclr {name} must be a number in [0, {high:g}], got {value!r}")
