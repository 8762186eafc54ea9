"""Backbones: the feature extractors ``embed`` can use, registered by name (timm style).

A backbone turns image paths into raw vectors, which are what the cache stores, and
then optionally post-processes the whole set (``finish``), which is never cached.
"""

from __future__ import annotations

import abc
import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

import numpy as np
import pandas as pd

from .._registry import Registry, kind
from ..data.pixels import GRAY_MODES, load_square
from ..errors import LabelwiseError

WeightsArg = str | os.PathLike[str] | None
log = logging.getLogger("labelwise")


class Backbone(abc.ABC):
    """One configured feature extractor: ``encode`` paths into ``(n, dim)`` float32 rows.

    Attributes
    ----------
    name : registry name.
    size : input side in pixels.
    weights_tag : what the weights are (``random-seed0``, ``sha256-…``, a hub file name);
        part of the cache key, so two weights never share cached vectors.
    """

    name: str
    size: int
    weights_tag: str

    @property
    def cache_key(self) -> str:
        """Folder name in the cache: ``<name>-<size>px-<weights_tag>``."""
        return f"{self.name}-{self.size}px-{self.weights_tag}"

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of one raw vector."""

    @abc.abstractmethod
    def encode(
        self, paths: Sequence[str], *, batch_size: int = 64, num_workers: int | None = None, device: str = "auto"
    ) -> Iterator[np.ndarray]:
        """Yield float32 arrays ``(batch, dim)`` for ``paths``, in order."""

    def for_table(self, table: pd.DataFrame) -> Backbone:
        """This backbone adapted to the images of ``table`` (default: unchanged)."""
        return self

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        """Set-level post-processing of raw vectors ``(n, dim)`` (default: none)."""
        return vectors


BackboneFactory = Callable[..., Backbone]
F = TypeVar("F", bound=BackboneFactory)
#: ``factory(*, size, weights, random_state[, download]) -> Backbone`` by name.
BACKBONES: Registry[BackboneFactory] = kind("backbones", Registry("backbone"))


def register_backbone(factory: F, *, name: str | None = None, description: str = "") -> F:
    """Register ``factory(*, size, weights, random_state) -> Backbone`` under ``name``.

    Used as a decorator (the name is the function's) or called with ``name=``.
    """
    return cast(F, BACKBONES.register(factory, name=name, description=description))


def register_backbone_prefix(prefix: str, factory: BackboneFactory, *, description: str = "") -> None:
    """Make every name ``prefix + rest`` a backbone: ``factory(name, *, size, weights,
    random_state, ...)`` builds it. Listed as the pattern ``prefix<name>``."""
    BACKBONES.register_prefix(prefix, lambda name: functools.partial(factory, name), description=description)


def list_backbones() -> list[str]:
    """Names that :func:`create_backbone` and ``embed(backbone=...)`` accept; a registered
    prefix shows once, as a pattern such as ``timm/<name>``.

    >>> list_backbones()[:2]
    ['pixels', 'simclr']
    """
    return BACKBONES.names()


def default_backbone() -> str:
    """The backbone for images no pretrained weights fit: ``simclr`` (features learned from the
    images themselves) when PyTorch is installed, else ``pixels``, with a warning."""
    if "simclr" in BACKBONES:
        try:
            import torch  # noqa: F401
        except ImportError:
            log.warning(
                "PyTorch is not installed: using raw pixels, which are much weaker than simclr features "
                "(pip install 'labelwise[torch]')"
            )
        else:
            return "simclr"
    return "pixels"


def create_backbone(
    name: str, *, size: int | None = None, weights: WeightsArg = None, random_state: int = 0, download: bool = False
) -> Backbone:
    """Build the backbone registered as ``name``.

    Parameters
    ----------
    name : one of :func:`list_backbones`, with a pattern's ``<name>`` filled in
        (``timm/resnet18``).
    size : input side in pixels; ``None`` for the backbone's default.
    weights : weights file, for backbones that have weights.
    random_state : seed for anything random (e.g. random initialisation).
    download : fetch missing pretrained weights once, for backbones that can
        (``timm/<name>``); nothing is ever downloaded otherwise.

    Raises
    ------
    LabelwiseError
        For an unknown name (the message lists the valid ones) or bad options.
    """
    factory = BACKBONES.get(name)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise LabelwiseError(f"size must be a positive number of pixels, got {size!r}")
    options: dict[str, object] = {}
    if download:
        if "download" not in inspect.signature(factory).parameters:  # partial() keeps the signature
            raise LabelwiseError(f"the {name} backbone cannot download weights; drop the download option")
        options["download"] = True
    return factory(size=size, weights=weights, random_state=random_state, **options)


class PixelsBackbone(Backbone):
    """Raw pixels: resized to ``size × size``, scaled to [0, 1], flattened (HWC order).

    Grayscale sets stay one channel (``dim = size²``); a set with any colour image is
    RGB (``3·size²``). ``finish`` standardises each feature over the set.
    """

    name = "pixels"

    def __init__(self, size: int = 32, channels: int = 3) -> None:
        self.size = size
        self.channels = channels
        self.weights_tag = "gray" if channels == 1 else "rgb"

    @property
    def dim(self) -> int:
        return self.channels * self.size * self.size

    def for_table(self, table: pd.DataFrame) -> PixelsBackbone:
        modes = table["mode"] if "mode" in table.columns else _read_modes(table["path"].tolist())
        gray = len(modes) > 0 and all(m in GRAY_MODES for m in modes)
        return PixelsBackbone(self.size, 1 if gray else 3)

    def encode(
        self, paths: Sequence[str], *, batch_size: int = 64, num_workers: int | None = None, device: str = "auto"
    ) -> Iterator[np.ndarray]:
        mode = "L" if self.channels == 1 else "RGB"

        def one(path: str) -> np.ndarray:
            return load_square(path, self.size, mode).reshape(-1)

        # Pillow releases the GIL while decoding and resizing, so threads scale.
        threads = num_workers if num_workers is not None else min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for start in range(0, len(paths), batch_size):
                batch = list(pool.map(one, paths[start : start + batch_size]))
                yield np.stack(batch).astype(np.float32) / np.float32(255.0)

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        std = vectors.std(axis=0)
        std[std == 0] = 1.0  # constant pixels (e.g. a black border) stay 0 instead of NaN
        return ((vectors - vectors.mean(axis=0)) / std).astype(np.float32)


@register_backbone
def pixels(*, size: int | None = None, weights: WeightsArg = None, random_state: int = 0) -> Backbone:
    """Raw pixels at ``size`` (default 32); no torch needed."""
    if weights is not None:
        raise LabelwiseError("the pixels backbone has no weights; drop the weights option or pick a CNN backbone")
    return PixelsBackbone(size or 32)


def _read_modes(paths: list[str]) -> list[str]:
    from ..data import open_image

    def mode(path: str) -> str:
        try:
            with open_image(path, mode=None) as image:  # reads the header only
                return image.mode
        except (OSError, ValueError) as exc:
            raise LabelwiseError(f"{path}: cannot open image ({exc})") from None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(mode, paths))
