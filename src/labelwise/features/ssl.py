"""``simclr``: features a small CNN learns from the dataset's own images, without labels.

When no pretrained weights fit the images (digits, scans, microscopy …) or none are
available offline, the ``cnn`` network (:class:`~labelwise.networks.modules.SmallResNet`) is
trained with SimCLR on every image of the table being embedded, labeled or not; the
features are its pooled output, L2-normalised. Training took 584 s for MNIST-5k (5,000 28×28
images, 30 epochs) and 160 s for scikit-learn's 1,797 digits, each on one thread of a 2-core
machine shared with other jobs; ``bench/semi.py`` measures what the features are worth for
pseudo-labeling.

The trained encoder belongs to the set of images: its ``weights_tag`` is a digest of their
content hashes, the training settings and the seed, so vectors are cached per set and a
re-run computes nothing (training happens only when vectors are missing). Adding images
makes a new set, hence a new encoder. ``weights=FILE`` (a state_dict saved by
:meth:`SimCLRBackbone.save_weights`) skips training.

torch is imported only to train or encode, never to register the backbone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._io import atomic_path
from ..data.pixels import load_square
from ..errors import LabelwiseError, require
from .backbones import Backbone, WeightsArg, register_backbone
from .ssl_settings import SimCLRSettings

if TYPE_CHECKING:
    import torch

    from .ssl_train import Encoder

log = logging.getLogger("labelwise")

# Bump when training changes in a way that changes the encoder for the same settings:
# it is part of the weights tag, so old cached vectors are not mixed with new ones.
TRAINING_VERSION = 1
WEIGHTS_FILE = "simclr_encoder.pt"


class SimCLRBackbone(Backbone):
    """The ``cnn`` trained with SimCLR on the images of the table it is adapted to.

    Parameters
    ----------
    size : input side; default the table's most common side, clipped to 16–64 (the
        size stored in a weights file, when given).
    weights : an encoder state_dict from :meth:`save_weights`: no training.
    random_state : seed of initialisation, batch order and views.
    settings : training options (:class:`SimCLRSettings`).
    cache_folder : where the trained encoder is kept (``simclr_encoder.pt``) and looked
        for before training; None keeps it in memory only.

    Attributes
    ----------
    history_ : one row per training epoch (loss, lr, seconds); empty when not trained here.
    """

    name = "simclr"

    def __init__(
        self,
        *,
        size: int | None = None,
        weights: WeightsArg = None,
        random_state: int = 0,
        settings: SimCLRSettings | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
    ) -> None:
        self.settings = settings or SimCLRSettings()
        self.random_state = random_state
        self.cache_folder = Path(cache_folder) if cache_folder is not None else None
        self.weights_file = Path(weights) if weights is not None else None
        self._size = size
        self.channels: int | None = None
        self._train_paths: list[str] | None = None
        self._encoder: Encoder | None = None
        self.history_: list[dict[str, Any]] = []
        self.weights_tag = f"seed{random_state}"
        if self.weights_file is not None:
            encoder = _load_encoder(self.weights_file)
            self._encoder = encoder
            self.channels = int(encoder.mean.numel())
            self._size = size or int(encoder.input_size)
            self.settings = replace(self.settings, width=encoder.width)
            self.weights_tag = f"sha256-{_file_digest(self.weights_file)[:12]}"

    @property
    def size(self) -> int:  # type: ignore[override]
        return self._size or 32

    @property
    def dim(self) -> int:
        return 8 * self.settings.width

    def for_table(self, table: pd.DataFrame) -> SimCLRBackbone:
        """A copy that trains (when first asked for vectors) on the distinct images of ``table``."""
        from ..data.pixels import infer_channels, infer_size

        other = SimCLRBackbone(
            size=self._size, random_state=self.random_state, settings=self.settings, cache_folder=self.cache_folder
        )
        other.weights_file, other._encoder, other.channels = self.weights_file, self._encoder, self.channels
        other.weights_tag = self.weights_tag
        if not len(table):
            return other
        other._size = self._size or infer_size(table)
        if self.weights_file is not None:
            return other  # fixed weights: the tag is the file's digest
        other.channels = infer_channels(table)
        hashes = _content_hashes(table)
        first = pd.Series(table["path"].astype(str).to_numpy()).groupby(hashes, sort=True).first()
        other._train_paths = first.tolist()  # one per distinct image, by hash: the order is the set's
        key = {
            "images": first.index.tolist(),
            "settings": asdict(self.settings),
            "size": other.size,
            "channels": other.channels,
            "seed": self.random_state,
            "version": TRAINING_VERSION,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        other.weights_tag = f"seed{self.random_state}-{digest[:16]}"
        return other

    def encode(
        self, paths: Sequence[str], *, batch_size: int = 64, num_workers: int | None = None, device: str = "auto"
    ) -> Iterator[np.ndarray]:
        from .ssl_train import encode_images

        encoder = self.encoder(device=device, fallback_paths=paths)
        mode = "L" if encoder.mean.numel() == 1 else "RGB"
        threads = num_workers if num_workers else min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for start in range(0, len(paths), batch_size):
                pixels = np.stack(
                    list(pool.map(lambda p: load_square(p, self.size, mode), paths[start : start + batch_size]))
                )
                yield encode_images(encoder, pixels, batch_size=batch_size)

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        """Rows scaled to unit length (the loss compares directions), so Euclidean neighbours are cosine ones."""
        norm = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norm, 1e-12)).astype(np.float32)

    def encoder(self, *, device: str = "auto", fallback_paths: Sequence[str] = ()) -> Encoder:
        """The trained encoder: from ``weights``, else from ``cache_folder``, else trained now
        on the table's images (on ``fallback_paths`` when not adapted to a table)."""
        torch = require("torch", "torch", "the simclr backbone")
        from .._torch import resolve_device

        dev = resolve_device(device)
        if self._encoder is None:
            if self._train_paths is None:  # used without for_table: learn from what is encoded
                table = pd.DataFrame({"path": list(fallback_paths)})
                trained = self.for_table(table)
                self._size, self.channels, self._train_paths = trained._size, trained.channels, trained._train_paths
                self.weights_tag = trained.weights_tag
            self._encoder = self._cached_encoder() or self._train(dev)
        # One memory format whether trained here or loaded, so both give the same vectors.
        return self._encoder.to(dev).to(memory_format=torch.channels_last)

    def save_weights(self, path: str | os.PathLike[str], *, device: str = "auto") -> Path:
        """Write the encoder's state_dict to ``path`` atomically (training first if needed)."""
        import torch

        encoder = self.encoder(device=device)
        with atomic_path(path) as tmp:
            torch.save({k: v.cpu() for k, v in encoder.state_dict().items()}, tmp)
        return Path(path)

    def _cached_encoder(self) -> Encoder | None:
        path = self.cache_folder / WEIGHTS_FILE if self.cache_folder is not None else None
        if path is None or not path.is_file():
            return None
        try:
            encoder = _load_encoder(path)
        except LabelwiseError as exc:
            log.warning("%s; training again", exc)
            return None
        log.info("simclr: trained encoder reused from %s", path)
        return encoder

    def _train(self, device: torch.device) -> Encoder:
        from ..data.pixels import load_pixels
        from .ssl_train import train_encoder

        assert self._train_paths is not None and self.channels is not None
        log.info(
            "simclr: training on %d images (%d px, %d epochs) on %s",
            len(self._train_paths),
            self.size,
            self.settings.epochs,
            device,
        )
        pixels = load_pixels(self._train_paths, self.size, self.channels)
        encoder, self.history_ = train_encoder(pixels, self.settings, random_state=self.random_state, device=device)
        if self.cache_folder is not None:
            self._encoder = encoder
            self.save_weights(self.cache_folder / WEIGHTS_FILE, device=str(device))
        return encoder


@register_backbone
def simclr(
    *,
    size: int | None = None,
    weights: WeightsArg = None,
    random_state: int = 0,
    epochs: int = SimCLRSettings.epochs,
    batch_size: int = SimCLRSettings.batch_size,
    temperature: float = SimCLRSettings.temperature,
    width: int = SimCLRSettings.width,
    min_scale: float = SimCLRSettings.min_scale,
    cache_folder: str | os.PathLike[str] | None = None,
) -> Backbone:
    """The ``cnn`` trained with SimCLR on the images being embedded; see :class:`SimCLRBackbone`."""
    settings = SimCLRSettings(
        epochs=epochs, batch_size=batch_size, temperature=temperature, width=width, min_scale=min_scale
    )
    return SimCLRBackbone(
        size=size, weights=weights, random_state=random_state, settings=settings, cache_folder=cache_folder
    )


def _load_encoder(path: Path) -> Encoder:
    """An encoder from a state_dict file; a one-line error when the file is not one."""
    require("torch", "torch", "the simclr backbone")
    from .._torch import read_state_dict
    from .ssl_train import Encoder

    if not path.is_file():
        raise LabelwiseError(f"{path}: weights file not found")
    state = read_state_dict(path)
    stem = state.get("features.0.0.weight")
    if stem is None or stem.ndim != 4 or "mean" not in state:
        raise LabelwiseError(
            f"{path}: not a simclr encoder (no 'features.0.0.weight' and 'mean'); "
            "save one with SimCLRBackbone.save_weights"
        )
    encoder = Encoder(channels=int(stem.shape[1]), width=int(stem.shape[0]))
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3])[:160]
        raise LabelwiseError(f"{path}: weights do not fit the simclr encoder ({detail})") from None
    return encoder.eval()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_hashes(table: pd.DataFrame) -> list[str]:
    from .embedding import _content_hashes as hashes_of

    return hashes_of(table.reset_index(drop=True))
