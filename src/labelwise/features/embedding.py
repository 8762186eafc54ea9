"""``embed``: one feature vector per image of a dataset, computed once and cached."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._engine import Engine, map_batches, resolve_engine, scoped_engine, set_threads
from .._io import write_json, write_npy, write_table
from .._progress import track
from .._run import recorded
from ..data import Dataset, read_bytes
from ..data.images import content_hash
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError
from .backbones import Backbone, WeightsArg, create_backbone
from .cache import VectorCache, default_cache_dir

log = logging.getLogger("labelwise")


@recorded("embed", inputs=dataset_inputs(files=("weights",)))
@scoped_engine
def embed(
    data: Dataset | pd.DataFrame | str | os.PathLike[str],
    *,
    backbone: str = "pixels",
    size: int | None = None,
    weights: WeightsArg = None,
    pca: int | None = None,
    cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: str = "auto",
    random_state: int = 0,
    download: bool = False,
    out: str | os.PathLike[str] | None = None,
    read: ReadOptions | None = None,
    overwrite: bool = False,
    engine: str | None = None,
    ray_address: str | None = None,
) -> np.ndarray:
    """One feature vector per row of ``data``, cached by image content.

    Raw vectors are cached under ``cache_dir/<backbone>-<size>px-<weights_tag>/`` keyed by
    the image's content hash: a re-run computes nothing, added images cost only
    themselves, and identical images are computed once. Set-level steps (the ``pixels``
    standardisation, ``pca``) are applied after the cache and never stored.

    Parameters
    ----------
    data : Dataset, DataFrame with ``sample_id`` and ``path`` columns (``content_hash``
        is used when present), or anything :func:`labelwise.load_dataset` reads.
    backbone : a name from :func:`list_backbones`: ``pixels`` (resized raw pixels; no
        torch needed) or a torchvision CNN (its globally pooled penultimate features).
    size : input side in pixels; default 32 for ``pixels``, 224 for CNNs. Images are
        resized on their shorter side and centre-cropped.
    weights : CNN weights file (a ``state_dict``, or a checkpoint with a ``state_dict``
        or ``model`` entry). Default: the official file if it is already in the torch
        hub cache, else random initialisation seeded by ``random_state``, with a warning.
        Nothing is downloaded unless ``download`` (``timm/<name>`` backbones: fetch the
        official weights once into the hub cache).
    pca : reduce the vectors to this many principal components (fitted on ``data``).
    cache_dir : cache root; default ``$LABELWISE_CACHE_DIR`` or
        ``~/.cache/labelwise/embeddings``; ``False`` disables the cache.
    batch_size : images per forward pass.
    num_workers : image-decoding worker processes (threads for ``pixels``); default per
        backbone.
    device : ``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        or ``"mps"``.
    random_state : seed for random initialisation and PCA.
    out : folder to write ``embeddings.npy``, ``embeddings.csv`` (``sample_id,
        content_hash, row``), ``embedding_meta.json`` and the table embedded (``dataset.csv``
        + ``classes.json``) into, with the run's record.
    read : how to read ``data`` when it is a path (:class:`~labelwise.data.ReadOptions`).
    overwrite : replace the results of an earlier run in ``out``.
    engine : ``local`` (default, or ``$LABELWISE_ENGINE``) or ``ray``: encode on a pool of Ray
        actors, each loading the backbone once (one per GPU, else one per CPU), into the same
        cache. ``ray_address``: the cluster to join (default ``$RAY_ADDRESS``, else a local Ray).

    Returns
    -------
    ndarray of shape (n_rows, dim), float32
        Row ``i`` belongs to row ``i`` of the table.

    Raises
    ------
    LabelwiseError
        Unknown backbone, bad option, weights that do not fit, or an image that does
        not decode (load the dataset with checks on to exclude such images).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from labelwise import load_dataset
    >>> tmp = tempfile.mkdtemp()
    >>> digits = load_digits()
    >>> np.savez(f"{tmp}/digits.npz", images=(digits.images[:40] * 15).astype(np.uint8), labels=digits.target[:40])
    >>> ds = load_dataset(f"{tmp}/digits.npz")
    >>> X = embed(ds, backbone="pixels", size=8, pca=5, cache_dir=f"{tmp}/cache")
    >>> X.shape, X.dtype
    ((40, 5), dtype('float32'))
    >>> np.array_equal(X, embed(ds, backbone="pixels", size=8, pca=5, cache_dir=f"{tmp}/cache"))
    True
    """
    chosen = resolve_engine(engine, ray_address)
    start = time.perf_counter()
    if isinstance(data, (str, os.PathLike)):
        data = as_read_options(read).load(data)
    table = _table(data)
    for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0), ("pca", pca, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise LabelwiseError(f"{name} must be an integer >= {low}, got {value!r}")
    model = create_backbone(
        backbone, size=size, weights=weights, random_state=random_state, download=download
    ).for_table(table)

    hashes = _content_hashes(table)
    codes, uniques = pd.factorize(pd.Series(hashes, dtype=object))
    paths = table["path"].to_numpy()[np.unique(codes, return_index=True)[1]]
    cache = None if cache_dir is False else VectorCache(Path(cache_dir or default_cache_dir()) / model.cache_key)
    raw, n_computed = _raw_vectors(
        model,
        list(uniques),
        list(paths),
        cache,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        engine=chosen,
    )
    vectors = model.finish(raw[codes]) if len(table) else raw
    if pca is not None:
        vectors = _pca(vectors, pca, random_state)
    if out is not None:
        info = {
            "backbone": model.name,
            "size": model.size,
            "weights": model.weights_tag,
            "dim": int(vectors.shape[1]),
            "raw_dim": int(raw.shape[1]),
            "pca": pca,
            "n_images": len(table),
            "n_unique": len(uniques),
            "n_computed": n_computed,
            "n_cached": len(uniques) - n_computed,
            "cache": str(cache.folder) if cache is not None else None,
            "engine": chosen.name,
            "seconds": round(time.perf_counter() - start, 3),
        }
        _write_outputs(Path(out), table, hashes, vectors, info)
        if isinstance(data, Dataset):
            data.save(out)
    return vectors


def _raw_vectors(
    model: Backbone, hashes: list[str], paths: list[str], cache: VectorCache | None, **options: Any
) -> tuple[np.ndarray, int]:
    """Raw vectors ``(len(hashes), dim)`` of distinct images, computing only what the cache lacks."""
    missing = set(cache.missing(hashes)) if cache is not None else set(hashes)
    todo = np.array([h in missing for h in hashes], dtype=bool)
    log.info("embed %s: %d distinct images, %d cached", model.cache_key, len(hashes), len(hashes) - len(missing))
    pieces: list[tuple[np.ndarray, np.ndarray]] = []  # (positions, vectors)
    if cache is not None and not todo.all():
        pieces.append((np.flatnonzero(~todo), cache.load([h for h in hashes if h not in missing])))
    if todo.any():
        rows = np.flatnonzero(todo)
        pieces.append((rows, _compute(model, [hashes[i] for i in rows], [paths[i] for i in rows], cache, **options)))
    vectors = np.empty((len(hashes), pieces[0][1].shape[1] if pieces else model.dim), np.float32)
    for rows, part in pieces:
        vectors[rows] = part
    return vectors, int(todo.sum())


def _compute(
    model: Backbone,
    hashes: list[str],
    paths: list[str],
    cache: VectorCache | None,
    *,
    batch_size: int,
    engine: Engine,
    **options: Any,
) -> np.ndarray:
    """Encode ``paths``, adding each finished batch to the cache (kept even if a later one fails).

    The result is sized from the first batch: on Ray the network is built on the workers only.
    """
    computed: np.ndarray | None = None
    batches = (
        _encode_on_ray(model, paths, batch_size, engine, **options)
        if engine.is_ray
        else _encode_here(model, paths, batch_size, **options)
    )
    with cache.writer() if cache is not None else contextlib.nullcontext() as writer:
        for rows, batch in track(batches, total=math.ceil(len(paths) / batch_size), description=f"embed {model.name}"):
            if writer is not None:
                writer.append([hashes[i] for i in rows], batch)
            if computed is None:
                computed = np.empty((len(paths), batch.shape[1]), np.float32)
            computed[rows] = batch
    return computed if computed is not None else np.empty((0, model.dim), np.float32)


def _encode_here(
    model: Backbone, paths: list[str], batch_size: int, **options: Any
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    done = 0
    for batch in model.encode(paths, batch_size=batch_size, **options):
        yield np.arange(done, done + len(batch)), batch
        done += len(batch)


def _encode_on_ray(
    model: Backbone, paths: list[str], batch_size: int, engine: Engine, *, device: str, **_: Any
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    columns = {"row": np.arange(len(paths)), "path": np.asarray(paths, dtype=object)}
    for batch in map_batches(
        engine, columns, RayEncoder, constructor_kwargs={"model": model, "device": device}, batch_size=batch_size
    ):
        yield batch["row"], batch["vector"]


class RayEncoder:
    """A Ray actor's backbone, loaded once: encodes batches of ``path`` into ``vector``."""

    def __init__(self, model: Backbone, device: str, threads: int) -> None:
        set_threads(threads)
        self.model = model
        self.device = device

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        parts = list(self.model.encode(paths, batch_size=len(paths), num_workers=0, device=self.device))
        return {"row": batch["row"], "vector": np.concatenate(parts)}


def _write_outputs(
    out: Path, table: pd.DataFrame, hashes: list[str], vectors: np.ndarray, info: dict[str, Any]
) -> None:
    write_npy(out / "embeddings.npy", vectors)
    rows = {"sample_id": table["sample_id"].to_numpy(), "content_hash": hashes, "row": np.arange(len(table))}
    write_table(out / "embeddings.csv", pd.DataFrame(rows))
    write_json(out / "embedding_meta.json", info)


def _table(data: object) -> pd.DataFrame:
    table = data.table if isinstance(data, Dataset) else data
    if not isinstance(table, pd.DataFrame):
        raise LabelwiseError(
            f"data must be a Dataset, a table (DataFrame) or a path to load, got {type(data).__name__}"
        )
    missing = [c for c in ("sample_id", "path") if c not in table.columns]
    if missing:
        raise LabelwiseError(
            f"the table lacks column(s) {', '.join(missing)}; columns are: {', '.join(map(str, table.columns))}"
        )
    return table.reset_index(drop=True)


def _content_hashes(table: pd.DataFrame) -> list[str]:
    """The ``content_hash`` column, filled in (from the image bytes) where absent."""
    given = table["content_hash"] if "content_hash" in table.columns else pd.Series([None] * len(table))
    need = [i for i, h in enumerate(given) if not isinstance(h, str) or not h]
    hashes = list(given)
    paths = table["path"].astype(str).to_numpy()

    def one(path: str) -> str:
        try:
            return content_hash(read_bytes(path))
        except (OSError, IndexError, ValueError) as exc:
            raise LabelwiseError(f"{path}: cannot read image ({exc})") from None

    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, digest in zip(need, pool.map(one, paths[need]), strict=True):
            hashes[i] = digest
    return hashes


def _pca(vectors: np.ndarray, n_components: int, random_state: int) -> np.ndarray:
    limit = min(vectors.shape)
    if n_components > limit:
        raise LabelwiseError(
            f"pca={n_components} is more than the {limit} components that "
            f"{vectors.shape[0]} images × {vectors.shape[1]} features allow"
        )
    from sklearn.decomposition import PCA

    return PCA(n_components=n_components, random_state=random_state).fit_transform(vectors).astype(np.float32)
