"""Pseudo-labeling methods, registered by name.

Every method is a scikit-learn style estimator: ``fit(X, y)`` on embeddings ``X`` (n, d) and
class codes ``y`` (n,) with ``-1`` for unlabeled rows, after which it holds, for every row:

``transduction_``  (n,) int: its best guess (the given label for labeled rows);
``confidence_``    (n,) float in [0, 1] (1 for labeled rows);
``problematic_``   (n,) bool: rows the method will not vouch for (never a labeled row);
``why_``           (n,) object: the reason a row is problematic, ``""`` otherwise.

Given labels are never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._registry import Registry, kind
from ..errors import LabelwiseError

MethodFactory = Callable[..., Any]
#: ``factory(**options) -> estimator`` by name.
PSEUDO_LABELERS: Registry[MethodFactory] = kind("pseudolabelers", Registry("pseudo-labeling method", sort=True))


def register_method(factory: MethodFactory | None = None, *, name: str | None = None, description: str = "") -> Any:
    """Register ``factory(**options) -> estimator`` under ``name`` (its ``name`` attribute by
    default); without ``factory``, a decorator."""
    return PSEUDO_LABELERS.register(factory, name=name, description=description)


def list_methods() -> list[str]:
    """Names that :func:`get_method` (and ``pseudolabel --method``) accept."""
    return PSEUDO_LABELERS.names()


def get_method(name: str, **options: Any) -> Any:
    """A new, unfitted estimator of the method registered as ``name``."""
    return PSEUDO_LABELERS.get(name)(**options)


def check_inputs(X: Any, y: Any, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """``X`` as float64 (n, d), ``y`` as int64 (n,) and the number of classes; a one-line
    error for shapes that do not match, codes below -1, or no labeled row."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise LabelwiseError(f"embeddings must be (n, d) and labels (n,); got {X.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise LabelwiseError(f"labels must be integer class codes with -1 for unlabeled, got {y.dtype}")
    y = y.astype(np.int64)
    if (y < -1).any():
        raise LabelwiseError(f"labels must be class codes >= 0 or -1 for unlabeled; found {int(y.min())}")
    if not (y >= 0).any():
        raise LabelwiseError("no labeled rows: pseudo-labeling needs at least one labeled image per class")
    k = int(n_classes if n_classes is not None else y.max() + 1)
    if y.max() >= k:
        raise LabelwiseError(f"labels hold class {int(y.max())} but n_classes is {k}")
    if not np.isfinite(X).all():
        raise LabelwiseError("embeddings hold NaN or infinite values")
    return X, y, k


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1: Euclidean distances then rank like cosine distances."""
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def full_probs(probs: np.ndarray, columns: np.ndarray, n_classes: int) -> np.ndarray:
    """``probs`` whose columns are the classes ``columns``, widened to all ``n_classes``."""
    out = np.zeros((len(probs), n_classes))
    out[:, np.asarray(columns, dtype=np.int64)] = probs
    return out


def finish(estimator: Any, y: np.ndarray, probs: np.ndarray, *, threshold: float, problem: str) -> Any:
    """Set the common fitted attributes from class probabilities ``probs`` (n, K): best guess,
    its probability as confidence, problematic below ``threshold``; labeled rows keep their label."""
    labeled = y >= 0
    guess = probs.argmax(1)
    confidence = probs.max(1)
    estimator.transduction_ = np.where(labeled, y, guess)
    estimator.confidence_ = np.where(labeled, 1.0, confidence)
    estimator.problematic_ = ~labeled & (confidence < threshold)
    estimator.why_ = np.array(
        [f"{problem} ({c:.2f} < {threshold:g})" if p else "" for p, c in zip(estimator.problematic_, confidence)],
        dtype=object,
    )
    estimator.label_distributions_ = probs
    return estimator
