"""Decode a dataset's images once into one uint8 array, the input of image models."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .._progress import track
from ..features.preprocess import GRAY_MODES, load_square

log = logging.getLogger("labelwise")


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
    from ..data import open_image

    sample = table["path"].head(32)
    return 1 if all(open_image(p, mode=None).mode in GRAY_MODES for p in sample) else 3


def infer_size(table: pd.DataFrame, *, low: int = 16, high: int = 64) -> int:
    """The dataset's most common image side, clipped to ``[low, high]`` (for the small CNN)."""
    if {"width", "height"} <= set(table) and table["width"].notna().all() and len(table):
        sides = np.maximum(table["width"].to_numpy(), table["height"].to_numpy())
        common = Counter(sides.tolist()).most_common(1)[0][0]
    else:
        from ..data import open_image

        common = max(open_image(table["path"].iloc[0], mode=None).size)
    return int(min(max(int(common), low), high))
