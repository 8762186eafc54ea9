"""What one decoded image looks like, in a few numbers: brightness, contrast, sharpness,
information and colour, and a small descriptor that near-duplicate search compares.

Both are measured on a copy scaled down to :data:`MEASURE_SIDE` pixels on its long side, so
they cost the same for a thumbnail and for a photo and mean the same at any resolution;
:func:`~labelwise.data.images.inspect_image` computes them in the streaming pass that
``explore`` makes, and :mod:`labelwise.audit` turns them into findings.

The descriptor is the low-frequency block of the 2-D DCT of the image in gray at 32×32 (a
real-valued perceptual hash): without its constant term and scaled to unit length it does not
change with brightness or contrast, hardly with re-encoding, resizing or a crop of a few
pixels, and a mirrored image has the same coefficients with the odd horizontal frequencies'
signs flipped (:func:`mirror_signs`), so one index finds mirrored copies too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

MEASURE_SIDE = 256
THUMB_SIDE = 64
DESCRIPTOR_SIDE = 32
DESCRIPTOR_BLOCK = 8
DESCRIPTOR_SIZE = DESCRIPTOR_BLOCK * DESCRIPTOR_BLOCK - 1

#: Per-image statistics, in this order (each a float; see :class:`ImageMeasures`).
QUALITY_COLUMNS = (
    "brightness",
    "key",
    "dark_level",
    "light_level",
    "contrast",
    "sharpness",
    "entropy",
    "colorfulness",
)


@dataclass(frozen=True)
class ImageMeasures:
    """Statistics of one image (all in [0, 1] but ``sharpness`` ≥ 0 and ``entropy`` in bits, 0-8).

    brightness : mean luminance.
    key : the log-average luminance, ``exp(mean(log(luminance + 1/255)))``: low when most of the
        image is near black, even if a few highlights are bright.
    dark_level : the 95th percentile of luminance (low: even the highlights are dark).
    light_level : the 1st percentile of luminance (high: even the darkest pixels are pale).
    contrast : standard deviation of luminance.
    sharpness : standard deviation of the Laplacian of luminance over its own standard
        deviation (edges per unit of contrast: low for a blurred image whatever its contrast).
    entropy : Shannon entropy of the 256-bin luminance histogram.
    colorfulness : mean over pixels of (max - min) over the RGB channels (0 for gray).
    descriptor : the near-duplicate descriptor, float32, unit length (zeros for a flat image).
    thumbnail : the image in gray, uint8, at most :data:`THUMB_SIDE` pixels on its long side
        (its aspect kept): what a near-duplicate pair is verified on, pixel by pixel.
    """

    brightness: float
    key: float
    dark_level: float
    light_level: float
    contrast: float
    sharpness: float
    entropy: float
    colorfulness: float
    descriptor: np.ndarray
    thumbnail: np.ndarray

    def statistics(self) -> tuple[float, ...]:
        """The values of :data:`QUALITY_COLUMNS`, in order."""
        return tuple(getattr(self, name) for name in QUALITY_COLUMNS)


def measure_image(image: Image.Image) -> ImageMeasures:
    """Measure a decoded image (any mode that converts to RGB)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if max(rgb.size) > MEASURE_SIDE:
        rgb = rgb.copy()
        rgb.thumbnail((MEASURE_SIDE, MEASURE_SIDE), Image.Resampling.BILINEAR)
    gray_image = rgb.convert("L")
    gray = np.asarray(gray_image, dtype=np.float32) / 255.0
    pixels = np.asarray(rgb, dtype=np.int16)
    contrast = float(gray.std())
    histogram = np.bincount(np.asarray(gray_image).ravel(), minlength=256).astype(np.float64)
    p = histogram[histogram > 0] / histogram.sum()
    low, high = np.percentile(gray, [1, 95])
    return ImageMeasures(
        brightness=float(gray.mean()),
        key=float(np.exp(np.log(gray + 1.0 / 255.0).mean())),
        dark_level=float(high),
        light_level=float(low),
        contrast=contrast,
        sharpness=_sharpness(gray, contrast),
        entropy=float(-(p * np.log2(p)).sum()),
        colorfulness=float((pixels.max(axis=2) - pixels.min(axis=2)).mean() / 255.0),
        descriptor=describe(gray_image),
        thumbnail=_thumbnail(gray_image),
    )


def _thumbnail(gray_image: Image.Image) -> np.ndarray:
    if max(gray_image.size) > THUMB_SIDE:
        gray_image = gray_image.copy()
        gray_image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    return np.asarray(gray_image, dtype=np.uint8)


def _sharpness(gray: np.ndarray, contrast: float) -> float:
    if gray.shape[0] < 3 or gray.shape[1] < 3 or contrast < 1e-6:
        return 0.0
    laplacian = (
        gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    )  # the 4-neighbour Laplacian on the interior
    return float(laplacian.std() / contrast)


def describe(gray_image: Image.Image) -> np.ndarray:
    """The near-duplicate descriptor of an ``L`` image (see the module docstring)."""
    from scipy.fft import dctn

    small = gray_image.resize((DESCRIPTOR_SIDE, DESCRIPTOR_SIDE), Image.Resampling.BOX, reducing_gap=None)
    coefficients = dctn(np.asarray(small, dtype=np.float64), type=2, norm="ortho")
    block = coefficients[:DESCRIPTOR_BLOCK, :DESCRIPTOR_BLOCK].ravel()[1:]
    norm = float(np.linalg.norm(block))
    return (block / norm if norm > 1e-6 else np.zeros_like(block)).astype(np.float32)


def mirror_signs() -> np.ndarray:
    """Multiply a descriptor by this to get the descriptor of the horizontally mirrored image."""
    u = np.tile(np.arange(DESCRIPTOR_BLOCK), DESCRIPTOR_BLOCK)  # column (horizontal) frequency
    return np.where(u % 2 == 1, -1.0, 1.0).astype(np.float32)[1:]
