"""``spreading``: the pseudo-labeling method on :func:`labelwise.features.neighbors.fit_spreading`."""

from __future__ import annotations

from typing import cast

import numpy as np
from sklearn.base import BaseEstimator

from ..features.neighbors import (
    SPREAD_ALPHA,
    SPREAD_NEIGHBORS,
    SPREAD_POWER,
    CosineKNNKernel,
    fit_spreading,
    normalise_rows,
)
from .methods import check_inputs, finish, full_probs, register_method

__all__ = [
    "SPREAD_ALPHA",
    "SPREAD_NEIGHBORS",
    "SPREAD_POWER",
    "CosineKNNKernel",
    "Spreading",
    "fit_spreading",
    "normalise_rows",
]


class Spreading(BaseEstimator):
    """Label spreading over a cosine kNN graph of the embeddings, class-balanced
    (:func:`fit_spreading`), with the common pseudo-labeling attributes (see
    :mod:`labelwise.semi.methods`).

    Parameters
    ----------
    n_neighbors : neighbours per row in the graph; several (a tuple) average the spreads
        over graphs of each size.
    alpha : share of a row's labels that comes from its neighbours in each step (reported
        labels of labeled rows never change).
    power : exponent sharpening the cosine similarities that weight the graph's edges.
    threshold : rows whose spread probability is below it are problematic.
    n_classes : number of classes (default ``max(y) + 1``).

    Examples
    --------
    >>> X = np.array([[0, 1.0], [0.1, 1], [1, 0], [1, 0.1], [0.05, 1], [1, 0.05]])
    >>> Spreading(n_neighbors=3).fit(X, np.array([0, -1, 1, -1, -1, -1])).transduction_.tolist()
    [0, 0, 1, 1, 0, 1]
    """

    def __init__(
        self,
        *,
        n_neighbors: int | tuple[int, ...] = SPREAD_NEIGHBORS,
        alpha: float = SPREAD_ALPHA,
        power: float = SPREAD_POWER,
        threshold: float = 0.9,
        n_classes: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.power = power
        self.threshold = threshold
        self.n_classes = n_classes

    def fit(self, X: np.ndarray, y: np.ndarray) -> Spreading:
        X, y, k = check_inputs(X, y, self.n_classes)
        sizes: tuple[int, ...] = (
            (cast(int, self.n_neighbors),)
            if np.isscalar(self.n_neighbors)
            else tuple(cast("tuple[int, ...]", self.n_neighbors))
        )
        probs = np.zeros((len(X), k))
        reached = np.zeros(len(X), bool)
        for size in sizes:
            model, hit = fit_spreading(
                X, y, k, n_neighbors=max(1, min(int(size), len(X) - 1)), alpha=self.alpha, power=self.power, cache=True
            )
            probs += full_probs(model.label_distributions_, model.classes_, k) / len(sizes)
            reached |= hit
        finish(self, y, probs, threshold=self.threshold, problem="spread probability low")
        if not reached.all():
            self.why_[~reached & self.problematic_] = "no labeled image reachable in the neighbour graph"
        return self


register_method(Spreading, name="spreading")
