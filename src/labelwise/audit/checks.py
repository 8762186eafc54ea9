"""The audit's per-image checks: one score per image (higher: more of the issue), one threshold.

Scores come from the statistics of the streaming pass (:mod:`labelwise.data.image_quality`) or,
for outliers, from embeddings (:mod:`labelwise.audit.outliers`). Each check is an entry of the
``audits`` registry (``labelwise list audits``); its default threshold was chosen on the planted
CIFAR-10 set of ``bench/audit.py`` (figures in the README) and is an option of ``audit``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._registry import Registry, kind


@dataclass(frozen=True)
class AuditInputs:
    """What the checks look at, one row per image.

    table : ``sample_id``, ``path``, ``label``, ``split`` and the measured statistics
        (``brightness`` …, ``width``, ``height``).
    embeddings : ``(n, dim)`` float32 or ``None`` (no outlier checks then).
    """

    table: pd.DataFrame
    embeddings: np.ndarray | None = None


@dataclass(frozen=True)
class ImageCheck:
    """One issue type found image by image."""

    name: str
    score: Callable[[AuditInputs], np.ndarray]
    threshold: float
    description: str
    needs_embeddings: bool = False
    #: What the score is, for the report.
    scale: str = ""


#: Every per-image check by issue name; near-duplicates, leaks and conflicts are pairwise (see
#: :mod:`labelwise.audit.duplicates`) and listed too so that ``--checks`` can name them.
CHECKS: Registry[ImageCheck] = kind("audits", Registry("audit check"))


def _column(inputs: AuditInputs, name: str) -> np.ndarray:
    return inputs.table[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _register(check: ImageCheck) -> None:
    CHECKS.register(check, name=check.name, description=check.description)


#: The log-average luminance below which an image's darkness is judged by its highlights alone.
DARK_KEY_FLOOR = 0.08


def dark_score(inputs: AuditInputs) -> np.ndarray:
    """1 - the geometric mean of the 95th percentile of luminance and the log-average luminance
    (the key), the key floored at :data:`DARK_KEY_FLOOR`.

    The key sees a gamma-darkened photo whose highlights survive (most pixels crushed towards
    black); the floor keeps a bright figure on black (a digit, a lit object) from counting as dark
    for its background.
    """
    key = np.maximum(_column(inputs, "key"), DARK_KEY_FLOOR)
    return 1.0 - np.sqrt(np.clip(_column(inputs, "dark_level") * key, 0, 1))


def light_score(inputs: AuditInputs) -> np.ndarray:
    """The 1st percentile of luminance: even the darkest pixels are pale."""
    return _column(inputs, "light_level")


def blurry_score(inputs: AuditInputs) -> np.ndarray:
    """1 - sharpness (Laplacian per unit of contrast), floored at 0."""
    return np.clip(1.0 - _column(inputs, "sharpness"), 0.0, 1.0)


def low_information_score(inputs: AuditInputs) -> np.ndarray:
    """1 - luminance contrast / 0.05: a near-constant image scores close to 1."""
    return np.clip(1.0 - _column(inputs, "contrast") / 0.05, 0.0, 1.0)


def grayscale_score(inputs: AuditInputs) -> np.ndarray:
    """1 - colourfulness / 0.01, in a dataset of colour images (0 everywhere when most are gray)."""
    colorfulness = _column(inputs, "colorfulness")
    if np.nanmedian(colorfulness) < 0.01:  # a grayscale dataset: gray is not odd
        return np.zeros_like(colorfulness)
    return np.clip(1.0 - colorfulness / 0.01, 0.0, 1.0)


def aspect_ratio_score(inputs: AuditInputs) -> np.ndarray:
    """How many times wider (or taller) than the dataset's median aspect ratio."""
    ratio = np.log(_column(inputs, "width") / _column(inputs, "height"))
    return np.exp(np.abs(ratio - np.nanmedian(ratio)))


def size_score(inputs: AuditInputs) -> np.ndarray:
    """How many times larger (or smaller) in area than the dataset's median image."""
    area = np.log(_column(inputs, "width") * _column(inputs, "height"))
    return np.exp(np.abs(area - np.nanmedian(area)))


for _check in (
    ImageCheck("dark", dark_score, 0.78, "images too dark to see what they show", scale="1 - luminance"),
    ImageCheck("light", light_score, 0.5, "washed-out images: even their darkest pixels are pale", scale="luminance"),
    ImageCheck("blurry", blurry_score, 0.7, "blurred images, few edges for their contrast", scale="1 - sharpness"),
    ImageCheck(
        "low_information", low_information_score, 0.8, "near-constant images that show nothing", scale="1 - contrast"
    ),
    ImageCheck("grayscale", grayscale_score, 0.9, "gray images in a colour dataset", scale="1 - colourfulness"),
    ImageCheck(
        "odd_aspect_ratio", aspect_ratio_score, 2.0, "images far wider or taller than the rest", scale="× median"
    ),
    ImageCheck("odd_size", size_score, 4.0, "images far larger or smaller in area than the rest", scale="× median"),
):
    _register(_check)


def _outlier(inputs: AuditInputs) -> np.ndarray:
    from .outliers import outlier_score

    assert inputs.embeddings is not None
    return outlier_score(inputs.embeddings)


def _class_outlier(inputs: AuditInputs) -> np.ndarray:
    from .outliers import class_outlier_score

    assert inputs.embeddings is not None
    return class_outlier_score(inputs.embeddings, inputs.table["label"])


_register(
    ImageCheck(
        "outlier",
        _outlier,
        4.0,
        "images far from everything else in the embedding",
        needs_embeddings=True,
        scale="robust z",
    )
)
_register(
    ImageCheck(
        "class_outlier",
        _class_outlier,
        6.0,
        "labeled images far from the other images of their class",
        needs_embeddings=True,
        scale="robust z",
    )
)

#: Pairwise issues, found together by :func:`labelwise.audit.duplicates.duplicate_findings`.
PAIRWISE = ("near_duplicate", "leak", "conflict")
#: An image flagged as near-constant is not also reported dark, light, blurry or an outlier.
MASKED_BY_LOW_INFORMATION = ("dark", "light", "blurry", "outlier", "class_outlier")


def known_checks() -> list[str]:
    return [*PAIRWISE, *CHECKS.names()]
