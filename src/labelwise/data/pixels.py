"""Decode images into the fixed-size uint8 arrays every backbone and image model starts from:
one image (:func:`load_square`), or a dataset's images at once (:func:`load_pixels`)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from PIL import Image

from .._progress import track
from ..errors import LabelwiseError
from .images import open_image, to_8bit

log = logging.getLogger("labelwise")

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


def load_pixels(paths: Sequence[str], size: int, channels: int, *, n_jobs: int = 2) -> np.ndarray:
    """``(n, size, size)`` (gray) or ``(n, size, size, 3)`` uint8: each image resized on its
    shorter side and centre-cropped. Raises a one-line error naming an image that fails."""
    mode = "L" if channels == 1 else "RGB"
    shape = (len(paths), size, size) if channels == 1 else (len(paths), size, size, 3)
    out = np.empty(shape, np.uint8)
    chunk = 256

    def work(start: int) -> int:
        for i in range(start, min(start + chunk, len(paths))):
            out[i] = load_square(paths[i], size, mode)
        return start

    starts = range(0, len(paths), chunk)
    with ThreadPoolExecutor(max(1, n_jobs)) as pool:
        for _ in track(pool.map(work, starts), total=len(starts), description="decoding images"):
            pass
    return out


def infer_channels(table: pd.DataFrame) -> int:
    """1 when every image is grayscale (by the checked ``mode`` column), else 3."""
    if "mode" in table and table["mode"].notna().all() and len(table):
        return 1 if table["mode"].isin(GRAY_MODES).all() else 3
    sample = table["path"].head(32)
    return 1 if all(open_image(p, mode=None).mode in GRAY_MODES for p in sample) else 3


def infer_size(table: pd.DataFrame, *, low: int = 16, high: int = 64) -> int:
    """The dataset's most common image side, clipped to ``[low, high]`` (for the small CNN)."""
    if {"width", "height"} <= set(table) and table["width"].notna().all() and len(table):
        sides = np.maximum(table["width"].to_numpy(), table["height"].to_numpy())
        common = Counter(sides.tolist()).most_common(1)[0][0]
    else:
        common = max(open_image(table["path"].iloc[0], mode=None).size)
    return int(min(max(int(common), low), high))
