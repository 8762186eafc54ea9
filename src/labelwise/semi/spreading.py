"""``spreading``: label spreading on a k-nearest-neighbour graph (scikit-learn)."""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator

from .methods import check_inputs, finish, full_probs, register_method, unit_rows

# kNN graphs of the latest few embeddings: self-training and the cross-validation spread
# over the same rows many times, and the neighbour search is what costs.
_GRAPHS: OrderedDict[tuple[str, int], sparse.csr_matrix] = OrderedDict()
_KEEP = 8


def knn_graph(X: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """The connectivity graph of each row's ``n_neighbors`` nearest rows (itself included),
    as ``LabelSpreading(kernel="knn")`` builds it; cached for the latest embeddings."""
    from sklearn.neighbors import NearestNeighbors

    key = (hashlib.blake2b(np.ascontiguousarray(X).view(np.uint8).ravel(), digest_size=16).hexdigest() + str(X.shape), n_neighbors)
    if key not in _GRAPHS:
        _GRAPHS[key] = NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors_graph(X, n_neighbors, mode="connectivity")
        while len(_GRAPHS) > _KEEP:
            _GRAPHS.popitem(last=False)
    _GRAPHS.move_to_end(key)
    return _GRAPHS[key].copy()


class Spreading(BaseEstimator):
    """scikit-learn's ``LabelSpreading`` on the kNN graph of unit-length embeddings (cosine
    neighbours; the graph of ``kernel="knn"``, built once per embedding and size), with the
    common pseudo-labeling attributes (see :mod:`labelwise.semi.methods`).

    Parameters
    ----------
    n_neighbors : neighbours per row in the graph; several (a tuple) average the spreads
        over graphs of each size.
    alpha : how much a labeled row may move away from its label inside the spreading
        (reported labels of labeled rows never change).
    threshold : rows whose spread probability is below it are problematic.
    n_classes : number of classes (default ``max(y) + 1``).

    Examples
    --------
    >>> X = np.array([[0, 1.0], [0.1, 1], [1, 0], [1, 0.1], [0.05, 1], [1, 0.05]])
    >>> Spreading(n_neighbors=3).fit(X, np.array([0, -1, 1, -1, -1, -1])).transduction_.tolist()
    [0, 0, 1, 1, 0, 1]
    """

    def __init__(self, *, n_neighbors: int | tuple[int, ...] = 10, alpha: float = 0.2, threshold: float = 0.9,
                 max_iter: int = 100, n_classes: int | None = None) -> None:
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.threshold = threshold
        self.max_iter = max_iter
        self.n_classes = n_classes

    def fit(self, X: np.ndarray, y: np.ndarray) -> Spreading:
        from sklearn.semi_supervised import LabelSpreading

        X, y, k = check_inputs(X, y, self.n_classes)
        Xn = unit_rows(X)
        sizes = (self.n_neighbors,) if np.isscalar(self.n_neighbors) else tuple(self.n_neighbors)
        probs = np.zeros((len(X), k))
        for size in sizes:
            graph = knn_graph(Xn, max(1, min(int(size), len(X))))
            model = LabelSpreading(kernel=lambda a, b, g=graph: g, alpha=self.alpha, max_iter=self.max_iter)
            with warnings.catch_warnings():  # max_iter reached / 0/0 on rows no labeled row reaches
                warnings.simplefilter("ignore")
                model.fit(Xn, y)
            probs += full_probs(np.nan_to_num(model.label_distributions_, nan=0.0), model.classes_, k) / len(sizes)
        unreached = probs.sum(1) == 0
        seeded = np.isin(np.arange(k), y[y >= 0])
        probs[unreached] = seeded / seeded.sum()
        finish(self, y, probs, threshold=self.threshold, problem="spread probability low")
        if unreached.any():
            self.why_[unreached & self.problematic_] = "no labeled image reachable in the neighbour graph"
        return self


register_method(Spreading, name="spreading")
