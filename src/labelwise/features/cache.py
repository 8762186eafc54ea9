"""On-disk cache of feature vectors, one folder per backbone configuration.

Layout of a folder (``<backbone>-<size>px-<weights_tag>``)::

    vectors-00000.npy   float32 (rows, dim), append-only shards, read with mmap
    vectors-00001.npy
    index.parquet       content_hash → shard, row

Shards and the index are each written atomically (temporary file, then rename) and a
shard is always complete before the index names it, so an interrupted run keeps every
shard it finished and never leaves a half-written file behind.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd

from .._io import write_npy, write_table

log = logging.getLogger("labelwise")

INDEX_FILE = "index.parquet"
SHARD_BYTES = 64 << 20  # one shard per ~64 MiB, or per FLUSH_SECONDS of work, whichever comes first,
FLUSH_SECONDS = 30.0  # so that a run killed even by SIGKILL loses at most that much


def default_cache_dir() -> Path:
    """``$LABELWISE_CACHE_DIR``, else ``$XDG_CACHE_HOME/labelwise/embeddings`` (``~/.cache/...``)."""
    if os.environ.get("LABELWISE_CACHE_DIR"):
        return Path(os.environ["LABELWISE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "labelwise" / "embeddings"


class VectorCache:
    """Vectors keyed by image content hash, stored in ``folder``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> cache = VectorCache(tempfile.mkdtemp())
    >>> cache.add(["a", "b"], np.eye(2, dtype=np.float32))
    >>> cache.missing(["b", "c"]), cache.load(["b"]).tolist()
    (['c'], [[0.0, 1.0]])
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._index = self._read_index()

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, hashes: Sequence[str]) -> list[str]:
        """The hashes in ``hashes`` that have no cached vector, in order."""
        return [h for h in hashes if h not in self._index]

    def load(self, hashes: Sequence[str]) -> np.ndarray:
        """Cached vectors ``(len(hashes), dim)`` float32, in the order of ``hashes``."""
        locations = pd.DataFrame([self._index[h] for h in hashes], columns=["shard", "row"])
        out: np.ndarray | None = None
        for shard, group in locations.groupby("shard", sort=False):
            vectors = np.load(self.folder / str(shard), mmap_mode="r")
            if out is None:
                out = np.empty((len(hashes), vectors.shape[1]), np.float32)
            out[group.index.to_numpy()] = vectors[group["row"].to_numpy()]
        return out if out is not None else np.empty((0, 0), np.float32)

    def add(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` ``(len(hashes), dim)`` as a new shard and index it."""
        if len(hashes) != len(vectors):
            raise ValueError(f"{len(hashes)} hashes for {len(vectors)} vectors")
        if not len(hashes):
            return
        shard = self._reserve_shard()
        write_npy(self.folder / shard, np.ascontiguousarray(vectors, dtype=np.float32))
        # Another process may have indexed its own shards since we read the index: merge,
        # so that at worst a lost race costs a recomputation, never a wrong vector.
        index = {**self._read_index(), **self._index, **{h: (shard, i) for i, h in enumerate(hashes)}}
        table = pd.DataFrame([(h, s, r) for h, (s, r) in index.items()], columns=["content_hash", "shard", "row"])
        write_table(self.folder / INDEX_FILE, table)
        self._index = index

    def writer(self, *, flush_seconds: float | None = None) -> CacheWriter:
        """A buffer that adds vectors a shard at a time; use it as a context manager."""
        return CacheWriter(self, flush_seconds=flush_seconds)

    def _reserve_shard(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        taken = [int(p.stem[8:]) for p in self.folder.glob("vectors-*.npy") if p.stem[8:].isdigit()]
        number = max(taken, default=-1) + 1
        while True:
            name = f"vectors-{number:05d}.npy"
            try:  # O_EXCL: two processes never pick the same shard name
                os.close(os.open(self.folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return name
            except FileExistsError:
                number += 1

    def _read_index(self) -> dict[str, tuple[str, int]]:
        path = self.folder / INDEX_FILE
        if not path.is_file():
            return {}
        try:
            table = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # a damaged index only costs recomputation
            log.warning("%s: unreadable embedding index (%s); recomputing", path, exc)
            return {}
        rows = {}
        for shard, group in table.groupby("shard", sort=False):
            n_rows = _shard_rows(self.folder / str(shard))
            for h, r in zip(group["content_hash"], group["row"], strict=True):
                if r < n_rows:
                    rows[str(h)] = (str(shard), int(r))
        return rows


class CacheWriter:
    """Buffers vectors and writes a shard every ~:data:`SHARD_BYTES` or :data:`FLUSH_SECONDS`,
    and on exit even when the block fails (Ctrl-C, SIGTERM), so work already done is kept."""

    def __init__(self, cache: VectorCache, *, flush_seconds: float | None = None) -> None:
        self.cache = cache
        self.flush_seconds = FLUSH_SECONDS if flush_seconds is None else flush_seconds
        self._hashes: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._since = time.monotonic()

    def append(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        self._hashes.extend(hashes)
        self._vectors.append(vectors)
        if sum(v.nbytes for v in self._vectors) >= SHARD_BYTES or time.monotonic() - self._since >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._hashes:
            self.cache.add(self._hashes, np.concatenate(self._vectors))
            self._hashes, self._vectors = [], []
        self._since = time.monotonic()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.flush()


def _shard_rows(path: Path) -> int:
    """Rows in a shard, or 0 if it is missing or damaged (its entries are then recomputed)."""
    try:
        return int(np.load(path, mmap_mode="r").shape[0])
    except (OSError, ValueError, EOFError):
        return 0
