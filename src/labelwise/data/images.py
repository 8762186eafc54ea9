"""Open and inspect single images, whether files on disk or entries of an ``.npz``.

An image inside an array file is addressed as ``"<file.npz>::<index>"`` so that the
dataset table stays one uniform column of paths.

High bit depths are scaled to 8 bits, never clipped: 16-bit images (``I;16``) by
``255 / 65535``; 32-bit integer images (``I``) the same way when their values fit in 16 bits
(unchanged when they fit in 8), else by their own minimum and maximum; float images (``F``)
from [0, 1] (or [0, 255]) when their values lie there, else by their own minimum and maximum.
Images above :func:`max_pixels` (Pillow's own limit by default) are reported as too large
rather than decoded; Pillow's warnings never reach the console.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .image_quality import MEASURE_SIDE, ImageMeasures, measure_image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif"})
HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
# Modes that become 8-bit L or RGB without guessing; anything else (multi-channel
# scientific formats, "I;16S", ...) is reported, not mangled.
SUPPORTED_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", *HIGH_BIT_MODES})
NPZ_SEPARATOR = "::"
# Pillow's own limit, where it stops decoding (twice the pixels at which it starts warning).
DEFAULT_MAX_PIXELS = 2 * 89_478_485
_limit = {"pixels": int(os.environ.get("LABELWISE_MAX_PIXELS") or DEFAULT_MAX_PIXELS)}

# labelwise checks the size itself (see max_pixels) and names the file; Pillow's checks would
# print raw warnings and turn a large image into "corrupt".
Image.MAX_IMAGE_PIXELS = None
warnings.filterwarnings("ignore", module=r"PIL(\..*)?$")


class ImageTooLarge(ValueError):
    """An image with more pixels than :func:`max_pixels` allows."""


def max_pixels() -> int:
    """The most pixels an image may have (0: no limit); ``$LABELWISE_MAX_PIXELS`` or Pillow's limit."""
    return _limit["pixels"]


def set_max_pixels(pixels: int | None) -> None:
    """Allow images up to ``pixels`` (0: any size; None: the default) in this process."""
    if pixels is not None and (isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0):
        from ..errors import LabelwiseError

        raise LabelwiseError(f"max_pixels must be a whole number >= 0 (0 = no limit), got {pixels!r}")
    _limit["pixels"] = int(os.environ.get("LABELWISE_MAX_PIXELS") or DEFAULT_MAX_PIXELS) if pixels is None else pixels


def _check_size(image: Image.Image) -> None:
    limit = _limit["pixels"]
    n = image.size[0] * image.size[1]
    if limit and n > limit:
        raise ImageTooLarge(f"too large ({n:,} px, more than {limit:,}); allow it with --max-pixels {n} (0: no limit)")


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` with a high bit depth scaled to 8-bit ``L`` (see the module docstring); others unchanged."""
    if image.mode not in HIGH_BIT_MODES:
        return image
    arr = np.asarray(image).astype(np.float64)
    finite = arr[np.isfinite(arr)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if image.mode.startswith("I;16"):
        scaled = arr * (255.0 / 65535.0)
    elif image.mode == "I" and low >= 0 and high <= 255:
        scaled = arr
    elif image.mode == "I" and low >= 0 and high <= 65535:
        scaled = arr * (255.0 / 65535.0)
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = arr * 255.0
    elif image.mode == "F" and low >= 0 and high <= 255:
        scaled = arr
    else:
        scaled = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8), mode="L")


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def split_npz_path(path: str) -> tuple[str, int] | None:
    """``"a.npz::12"`` → ``("a.npz", 12)``; ``None`` for an ordinary file path."""
    head, sep, tail = path.rpartition(NPZ_SEPARATOR)
    if not sep or not head.lower().endswith(".npz") or not tail.isdigit():
        return None
    return head, int(tail)


@functools.lru_cache(maxsize=4)
def load_npz_images(path: str) -> NpzImages:
    """Load the images of an ``.npz`` once per process (see :class:`NpzImages`)."""
    return NpzImages.from_file(path)


@dataclass(frozen=True)
class NpzImages:
    """Images held in an ``.npz``: a uint8 array ``(N, H, W[, C])`` or encoded bytes + offsets."""

    pixels: np.ndarray | None = None
    encoded: np.ndarray | None = None
    offsets: np.ndarray | None = None

    IMAGE_KEYS = ("images", "x", "X", "data", "imgs")
    ENCODED_KEYS = ("jpeg", "png", "encoded")

    @classmethod
    def from_file(cls, path: str) -> NpzImages:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            for key in cls.ENCODED_KEYS:
                if key in keys and "offsets" in keys:
                    return cls(encoded=npz[key], offsets=npz["offsets"])
            for key in cls.IMAGE_KEYS:
                if key in keys:
                    return cls(pixels=npz[key])
        from ..errors import LabelwiseError

        raise LabelwiseError(
            f"{path}: no image array found; expected a key among "
            f"{', '.join(cls.IMAGE_KEYS)} or 'jpeg' + 'offsets' (keys present: {', '.join(sorted(keys))})"
        )

    def __len__(self) -> int:
        if self.pixels is not None:
            return len(self.pixels)
        assert self.offsets is not None
        return len(self.offsets) - 1

    def raw(self, i: int) -> bytes:
        """The bytes that identify image ``i`` (encoded file, or pixels with their shape)."""
        if self.pixels is not None:
            arr = np.ascontiguousarray(self.pixels[i])
            return repr((arr.shape, arr.dtype.str)).encode() + arr.tobytes()
        assert self.encoded is not None and self.offsets is not None
        return self.encoded[self.offsets[i] : self.offsets[i + 1]].tobytes()

    def image(self, i: int) -> Image.Image:
        if self.pixels is not None:
            arr = self.pixels[i]
            if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
                arr = np.moveaxis(arr, 0, -1)  # CHW → HWC
            if arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.dtype != np.uint8:
                arr = _to_uint8(arr)
            return Image.fromarray(arr)
        return Image.open(io.BytesIO(self.raw(i)))


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float64)
    if arr.max(initial=0) <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def read_bytes(path: str) -> bytes:
    """Raw bytes of an image file, or the identifying bytes of an ``.npz`` entry."""
    npz = split_npz_path(path)
    if npz is not None:
        return load_npz_images(npz[0]).raw(npz[1])
    with open(path, "rb") as fh:
        return fh.read()


def open_image(path: str, *, mode: str | None = "RGB") -> Image.Image:
    """Open one image (file path or ``file.npz::i``), converted to ``mode`` if given.

    Raises :class:`ImageTooLarge` above :func:`max_pixels`. With ``mode=None`` the image is
    returned as stored (decoded lazily); pass it through :func:`to_8bit` before converting.
    """
    npz = split_npz_path(path)
    image = load_npz_images(npz[0]).image(npz[1]) if npz else Image.open(path)
    _check_size(image)
    if mode is not None and image.mode != mode:
        image = to_8bit(image)
        if image.mode != mode:
            image = image.convert(mode)
    return image


@dataclass(frozen=True)
class ImageInfo:
    """What inspecting one image found; ``problem`` is ``None`` for a usable image."""

    path: str
    problem: str | None = None
    content_hash: str | None = None
    n_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    format: str | None = None
    measures: ImageMeasures | None = None


def content_hash(data: bytes) -> str:
    """Hex digest used to find exact duplicates and to key cached embeddings."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def inspect_image(path: str, *, measure: bool = False) -> ImageInfo:
    """Read and fully decode one image; report why it is unusable instead of raising.

    With ``measure``, a usable image's statistics and near-duplicate descriptor
    (:class:`~labelwise.data.image_quality.ImageMeasures`) come with it.
    """
    npz = split_npz_path(path)
    if npz is None:
        if not os.path.exists(path):
            return ImageInfo(path, "missing file")
        if os.path.isdir(path):
            return ImageInfo(path, "is a folder, not an image")
        if not is_image_file(path):
            return ImageInfo(path, f"not an image (unsupported extension '{Path(path).suffix or 'none'}')")
    try:
        data = read_bytes(path)
    except (OSError, IndexError, ValueError) as exc:
        return ImageInfo(path, f"unreadable: {exc}")
    if not data:
        return ImageInfo(path, "empty file (0 bytes)")
    digest = content_hash(data)
    try:
        if npz is not None and load_npz_images(npz[0]).pixels is not None:
            image = load_npz_images(npz[0]).image(npz[1])
            fmt = "array"
        else:
            image = Image.open(io.BytesIO(data))
            fmt = image.format or "unknown"
        (width, height), mode = image.size, image.mode
        _check_size(image)
        if fmt == "JPEG":
            # Decoding at a reduced scale still reads the whole stream (so truncation is
            # caught) at a fraction of the cost for large photos; measuring needs
            # MEASURE_SIDE pixels on the long side.
            scale = min(1.0, MEASURE_SIDE / max(width, height, 1)) if measure else 1 / 8
            image.draft(mode, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
        image.load()
    except UnidentifiedImageError:
        return ImageInfo(path, "corrupt or not an image (cannot identify image file)", digest, len(data))
    except OSError as exc:
        reason = "truncated image" if "truncated" in str(exc).lower() else f"corrupt image: {exc}"
        return ImageInfo(path, reason, digest, len(data))
    except ImageTooLarge as exc:
        return ImageInfo(path, str(exc), digest, len(data))
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return ImageInfo(path, f"corrupt image: {exc}", digest, len(data))
    if mode not in SUPPORTED_MODES:
        return ImageInfo(path, f"unsupported mode '{mode}'", digest, len(data), width, height, mode, fmt)
    measures = None
    if measure:
        try:
            measures = measure_image(to_8bit(image))
        except (OSError, ValueError) as exc:
            return ImageInfo(path, f"corrupt image: {exc}", digest, len(data), width, height, mode, fmt)
    return ImageInfo(path, None, digest, len(data), width, height, mode, fmt, measures)


def iter_image_info(
    paths: Iterable[str], *, n_jobs: int = 2, chunk_size: int = 256, measure: bool = False
) -> Iterator[ImageInfo]:
    """Inspect images in order, ``n_jobs`` threads at a time, holding one chunk in memory
    (``measure``: see :func:`inspect_image`)."""
    inspect = functools.partial(inspect_image, measure=measure)
    if n_jobs <= 1:
        yield from map(inspect, paths)
        return
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        chunk: list[str] = []
        for path in paths:
            chunk.append(path)
            if len(chunk) >= chunk_size:
                yield from pool.map(inspect, chunk)
                chunk = []
        if chunk:
            yield from pool.map(inspect, chunk)
