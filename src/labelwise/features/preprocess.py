"""Decode one image into the fixed-size uint8 array every backbone starts from."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..data import open_image
from ..errors import LabelwiseError

# Modes whose pixels are one intensity; everything else is fed as RGB.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
DECODE_ERRORS = (OSError, ValueError, SyntaxError, IndexError, Image.DecompressionBombError)
# Start-of-frame markers (SOF0..SOF15 except DHT, JPG and DAC), which carry the image size.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


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
        return square(image, size, mode)
    except DECODE_ERRORS as exc:
        raise LabelwiseError(f"{path}: cannot decode image ({exc}); load the dataset with checks on to exclude it") from None


def square(image: Image.Image, size: int, mode: str = "RGB") -> np.ndarray:
    """The resize-and-crop step of :func:`load_square`, for an image already opened."""
    if image.mode != mode:
        image = image.convert(mode)
    if image.size != (size, size):
        w, h = image.size
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        image = image.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)


def jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` of an 8-bit JPEG read from its frame header, else ``None``.

    >>> jpeg_frame(bytes.fromhex("ffd8 ffc0 0011 08 0020 0040 03") + bytes(9))
    (64, 32, 3)
    """
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 10 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in _SOF_MARKERS:
            if data[i + 4] != 8:
                return None
            height, width = int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height, data[i + 9]
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None
