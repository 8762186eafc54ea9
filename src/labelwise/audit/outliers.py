"""Outliers in an embedding: images far from everything else, and images far from their class.

Both scores are robust z-scores (distance minus the median, over 1.4826 × the median absolute
deviation), so one threshold means the same on any backbone. An image far from everything is
far from its nearest neighbours *or* far from the bulk of the data in the whitened principal
components: a few hundred out-of-distribution images resemble each other, which hides them
from a neighbour distance alone, but not from the second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NEIGHBORS = 10
COMPONENTS = 32


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(values - median) / (1.4826 · MAD)``; NaN stays NaN; 0 everywhere when the MAD is 0."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full_like(values, np.nan, dtype=np.float64)
    median = float(np.median(finite))
    mad = 1.4826 * float(np.median(np.abs(finite - median)))
    if mad <= 1e-12:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - median) / mad


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def knn_distance(X: np.ndarray, *, k: int = NEIGHBORS, reference: np.ndarray | None = None) -> np.ndarray:
    """Mean cosine distance of each row of ``X`` to its ``k`` nearest rows of ``reference``
    (default ``X`` itself, the row excluded)."""
    from sklearn.neighbors import NearestNeighbors

    X = _unit(X)
    same = reference is None
    R = X if reference is None else _unit(reference)
    k = min(k + int(same), len(R))
    if k <= int(same):
        return np.full(len(X), np.nan)
    distance, _ = NearestNeighbors(n_neighbors=k).fit(R).kneighbors(X)
    distance = distance[:, 1:] if same else distance
    return (distance**2 / 2.0).mean(axis=1)


def bulk_distance(X: np.ndarray, *, components: int = COMPONENTS) -> np.ndarray:
    """Distance from the median of the data in whitened principal components (a Mahalanobis
    distance on the top ``components``)."""
    from sklearn.decomposition import PCA

    X = _unit(X)
    n_components = max(1, min(components, X.shape[1], len(X) - 1))
    Z = PCA(n_components=n_components, whiten=True, random_state=0).fit_transform(X)
    return np.linalg.norm(Z - np.median(Z, axis=0), axis=1)


def outlier_score(X: np.ndarray) -> np.ndarray:
    """The larger of the robust z-scores of :func:`knn_distance` and :func:`bulk_distance`."""
    if len(X) < 3:
        return np.zeros(len(X))
    return np.fmax(robust_z(knn_distance(X)), robust_z(bulk_distance(X)))


def class_outlier_score(X: np.ndarray, labels: pd.Series) -> np.ndarray:
    """Per labeled image: the robust z-score, within its class, of its distance to the class's
    nearest other images; NaN for unlabeled images and classes of fewer than ``NEIGHBORS + 2``."""
    score = np.full(len(X), np.nan)
    values = labels.to_numpy(dtype=object)
    for label in pd.unique(labels.dropna()):
        rows = np.flatnonzero(values == label)
        if len(rows) >= NEIGHBORS + 2:
            score[rows] = robust_z(knn_distance(X[rows]))
    return score
