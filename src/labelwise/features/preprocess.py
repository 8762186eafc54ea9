"""Decode one image into the fixed-size uint8 array every backbone starts from."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..data.images import open_image, to_8bit
from ..errors import LabelwiseError

# Modes whose pixels are one intensity; everything else is fed as RGB.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
DECODE_ERRORS = (OSError, ValueError, SyntaxError, IndexError, Image.DecompressionBombError)


def load_square(path: str, size: int, mode: str = "RGB") -> np.ndarray:
    """Decode ``path``, resize its shorter side to ``size`` and centre-crop to ``size × size``.

    Returns a read-only uint8 array of shape ``(size, size)`` for ``mode="L"`` or ``(size, size, 3)``
    for ``"RGB"``. Raises :class:`LabelwiseError` naming ``path`` if it does not decode.
    """
    try:
        image = open_image(path, mode=None)
        # JPEGs decode straight at 1/2, 1/4 or 1/8 scale when that still covers `size`:
        # a large photo then costs a fraction of a full decode.
        image.draft(mode, (size, size))
        image = to_8bit(image)
        if image.mode != mode:
            image = image.convert(mode)
        if image.size != (size, size):
            w, h = image.size
            side = min(w, h)
            box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
            image = image.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
        return np.asarray(image, dtype=np.uint8)
    except DECODE_ERRORS as exc:
        raise LabelwiseError(
            f"{path}: cannot decode image ({exc}); load the dataset with checks on to exclude it"
        ) from None
