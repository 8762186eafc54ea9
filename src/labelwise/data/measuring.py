"""Measure every image of a table in one streaming pass, keeping only what the audit needs.

Per image that is a row of statistics (:data:`~labelwise.data.image_quality.QUALITY_COLUMNS`),
a 63-number descriptor and a gray thumbnail of at most 64×64 pixels. Thumbnails go into a
memory-mapped file when a folder is given, so memory does not grow with the number of images
(100,000 photos hold 400 MB of thumbnails on disk, not in memory).

A saved folder records :data:`MEASURES_VERSION`; one saved by a labelwise that measured other
statistics is not :meth:`Measurements.current` and is measured again rather than misread.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._progress import track
from ..errors import LabelwiseError
from .image_quality import DESCRIPTOR_SIZE, QUALITY_COLUMNS, THUMB_SIDE
from .images import iter_image_info

MEASURES_DIR = "measures"
#: Raised whenever a statistic is added or changes meaning (2: ``key``; ``dark_level`` the 95th percentile).
MEASURES_VERSION = 2
_FILES = ("statistics.csv", "descriptors.npy", "thumbnails.npy", "thumbnail_shapes.npy")
_VERSION_FILE = "version.json"
# Images measured between two releases of the written thumbnails' pages.
_RELEASE_EVERY = 10_000


@dataclass
class Measurements:
    """What :func:`measure_images` found, row ``i`` for path ``i``.

    Attributes
    ----------
    table : ``path``, ``content_hash``, ``n_bytes``, ``width``, ``height``, ``mode``, ``format``,
        ``problem`` (None when usable) and the statistics; NaN statistics for unusable images.
    descriptors : float32 ``(n, 63)``, zeros for unusable images.
    thumbnails : uint8 ``(n, 64, 64)``, each thumbnail in the top-left corner of its slot.
    thumbnail_shapes : int ``(n, 2)``, each thumbnail's height and width (0, 0 when unusable).
    """

    table: pd.DataFrame
    descriptors: np.ndarray
    thumbnails: np.ndarray
    thumbnail_shapes: np.ndarray

    def __len__(self) -> int:
        return len(self.table)

    @property
    def usable(self) -> np.ndarray:
        return self.table["problem"].isna().to_numpy()

    def thumbnail(self, i: int) -> np.ndarray:
        """Image ``i``'s gray thumbnail at its own shape."""
        h, w = self.thumbnail_shapes[i]
        return np.asarray(self.thumbnails[i, :h, :w])

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write into ``folder`` (thumbnails are already there when measured into it)."""
        from .._io import record_written, write_json, write_npy, write_table

        folder = Path(folder)
        write_table(folder / _FILES[0], self.table)
        for name, array in zip(_FILES[1:], (self.descriptors, self.thumbnails, self.thumbnail_shapes), strict=True):
            target = folder / name
            if isinstance(array, np.memmap) and Path(array.filename or "").resolve() == target.resolve():
                array.flush()
                record_written(target)
            else:
                write_npy(target, np.asarray(array))
        write_json(folder / _VERSION_FILE, {"version": MEASURES_VERSION, "statistics": list(QUALITY_COLUMNS)})
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Measurements:
        """Read a folder that :meth:`current` accepts (else a :class:`LabelwiseError`)."""
        folder = Path(folder)
        if not cls.current(folder):
            raise LabelwiseError(
                f"{folder}: measured by another labelwise (not version {MEASURES_VERSION}); measure again"
            )
        table = pd.read_csv(folder / _FILES[0], dtype={"problem": object, "content_hash": object})
        table["problem"] = table["problem"].where(table["problem"].notna(), None)
        return cls(
            table,
            np.load(folder / _FILES[1]),
            np.load(folder / _FILES[2], mmap_mode="r"),
            np.load(folder / _FILES[3]),
        )

    @classmethod
    def exists(cls, folder: str | os.PathLike[str]) -> bool:
        """Whether ``folder`` holds saved measurements (of any version)."""
        return all((Path(folder) / name).exists() for name in _FILES)

    @classmethod
    def current(cls, folder: str | os.PathLike[str]) -> bool:
        """Whether ``folder`` holds measurements of this :data:`MEASURES_VERSION`."""
        path = Path(folder) / _VERSION_FILE
        if not cls.exists(folder) or not path.exists():
            return False
        try:
            return json.loads(path.read_text()).get("version") == MEASURES_VERSION
        except (ValueError, AttributeError):
            return False


def release_pages(array: np.ndarray) -> None:
    """Drop the pages of a memory-mapped ``array`` from this process's memory (written pages are
    flushed first; all stay in the file): read and written thumbnails need not stay resident."""
    mapped = getattr(array, "_mmap", None)
    if mapped is None or not hasattr(mapped, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if isinstance(array, np.memmap) and array.mode in ("r+", "w+"):
        array.flush()
    mapped.madvise(mmap.MADV_DONTNEED)


def measure_images(
    paths: Sequence[str],
    *,
    n_jobs: int = 2,
    folder: str | os.PathLike[str] | None = None,
    description: str = "Measuring images",
) -> Measurements:
    """Inspect and measure ``paths`` in order (unusable images get a ``problem``, never raise).

    With ``folder``, thumbnails are written into ``folder/thumbnails.npy`` as they come and the
    rest is saved there at the end (:meth:`Measurements.save`).
    """
    n = len(paths)
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        thumbnails: np.ndarray = np.lib.format.open_memmap(
            Path(folder) / _FILES[2], mode="w+", dtype=np.uint8, shape=(n, THUMB_SIDE, THUMB_SIDE)
        )
    else:
        thumbnails = np.zeros((n, THUMB_SIDE, THUMB_SIDE), dtype=np.uint8)
    descriptors = np.zeros((n, DESCRIPTOR_SIZE), dtype=np.float32)
    shapes = np.zeros((n, 2), dtype=np.int16)
    statistics = np.full((n, len(QUALITY_COLUMNS)), np.nan)
    numbers = np.full((3, n), -1, dtype=np.int64)
    text: dict[str, list[str | None]] = {name: [None] * n for name in ("problem", "content_hash", "mode", "format")}
    infos = iter_image_info(iter(paths), n_jobs=n_jobs, measure=True)
    for i, info in enumerate(track(infos, total=n, description=description)):
        for name in text:
            text[name][i] = getattr(info, name)
        numbers[:, i] = [-1 if v is None else v for v in (info.n_bytes, info.width, info.height)]
        m = info.measures
        if m is None:
            continue
        statistics[i] = m.statistics()
        descriptors[i] = m.descriptor
        h, w = m.thumbnail.shape
        shapes[i] = h, w
        thumbnails[i, :h, :w] = m.thumbnail
        if i % _RELEASE_EVERY == _RELEASE_EVERY - 1:
            release_pages(thumbnails)
    table = pd.DataFrame({"path": list(paths), "content_hash": text["content_hash"]})
    for row, col in enumerate(("n_bytes", "width", "height")):
        table[col] = pd.arrays.IntegerArray(numbers[row], numbers[row] < 0)
    table["mode"], table["format"], table["problem"] = text["mode"], text["format"], text["problem"]
    for j, col in enumerate(QUALITY_COLUMNS):
        table[col] = statistics[:, j]
    result = Measurements(table, descriptors, thumbnails, shapes)
    if folder is not None:
        result.save(folder)
    return result
