"""Methods on the nearest neighbours of embeddings that several capabilities share: label
spreading (Zhou et al., 2004) over a cosine k-nearest-neighbour graph, with scikit-learn's
``LabelSpreading`` (:func:`fit_spreading`: the pseudo-labeling methods and the active-learning
loop both use it), and a similarity-weighted kNN vote (:func:`knn_propagate`: pseudo-labeling
and crowd-label propagation).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LabelwiseError

# Neighbours per row, clamping (share of a row's labels that comes from its neighbours) and the
# power sharpening cosine similarities (Iscen et al., 2019). Measured on MNIST-5k simclr
# features: k=10 and alpha=0.9 beat scikit-learn's unweighted knn kernel by 4 points test
# accuracy at 20 labels (bench/active.py), and the unweighted 10-neighbour graph with alpha 0.2
# by 23 / 6 / 4 points pool accuracy at 1 / 5 / 10 labels per class (bench/semi.py).
SPREAD_NEIGHBORS = 10
SPREAD_ALPHA = 0.9
SPREAD_POWER = 3

# Neighbour graphs of the latest few embeddings (CosineKNNKernel(cache=True)): self-training
# and the held-out accuracy estimate spread over the same rows many times, and the neighbour
# search is what costs (80% of one spread on MNIST-5k).
_GRAPHS: OrderedDict[tuple[str, int, float], Any] = OrderedDict()
_KEEP = 8


class CosineKNNKernel:
    """Affinities for :class:`~sklearn.semi_supervised.LabelSpreading`: each row is
    linked to its ``k`` nearest rows by cosine similarity raised to ``power`` (negative
    similarities count as 0); the graph on the training rows is made symmetric.

    Called as ``kernel(X, X)`` while fitting (a sparse ``(n, n)`` graph) and
    ``kernel(X_fit, X_new)`` when predicting (sparse ``(n_fit, n_new)``). With ``cache``, the
    fitting graphs of the latest few embeddings are kept (keyed by content), so refitting on
    the same rows with other labels searches no neighbours.
    """

    def __init__(
        self, k: int = SPREAD_NEIGHBORS, power: float = SPREAD_POWER, batch_size: int = 4096, cache: bool = False
    ) -> None:
        self.k = k
        self.power = power
        self.batch_size = batch_size
        self.cache = cache
        self._index: Any = None
        self._fit_id: int | None = None

    def __call__(self, A: np.ndarray, B: np.ndarray) -> Any:
        if A is not B or not self.cache:
            return self._graph(A, B)
        data = np.ascontiguousarray(A)
        # numpy's stubs give ndarray a __buffer__ only on Python >= 3.12 (mypy checks as 3.10): arg-type
        key = (
            hashlib.blake2b(data.view(np.uint8).ravel(), digest_size=16).hexdigest()  # type: ignore[arg-type]
            + str(data.shape)
            + str(data.dtype),
            self.k,
            float(self.power),
        )
        if key not in _GRAPHS:
            _GRAPHS[key] = self._graph(A, A)
            while len(_GRAPHS) > _KEEP:
                _GRAPHS.popitem(last=False)
        _GRAPHS.move_to_end(key)
        return _GRAPHS[key].copy()

    def _graph(self, A: np.ndarray, B: np.ndarray) -> Any:
        from scipy import sparse
        from sklearn.neighbors import NearestNeighbors

        same = A is B
        if self._index is None or self._fit_id != id(A):
            self._index = NearestNeighbors(n_neighbors=min(self.k + 1, len(A))).fit(_unit(A))
            self._fit_id = id(A)
        k = min(self.k + int(same), len(A))
        rows, cols, vals = [], [], []
        for start in range(0, len(B), self.batch_size):
            dist, idx = self._index.kneighbors(_unit(B[start : start + self.batch_size]), n_neighbors=k)
            if same:  # a row is not its own neighbour
                dist, idx = dist[:, 1:], idx[:, 1:]
            sim = np.clip(1.0 - dist**2 / 2.0, 0.0, None) ** self.power
            rows.append(idx.ravel())
            cols.append(np.repeat(np.arange(start, start + len(idx)), idx.shape[1]))
            vals.append(sim.ravel())
        W = sparse.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(A), len(B))
        )
        return (W + W.T).tocoo() if same else W.tocsr()


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def normalise_rows(p: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; an all-zero row (no path to any label) becomes uniform."""
    total = p.sum(1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / max(p.shape[1], 1))


def fit_spreading(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    n_neighbors: int = SPREAD_NEIGHBORS,
    alpha: float = SPREAD_ALPHA,
    power: float = SPREAD_POWER,
    cache: bool = False,
) -> tuple[Any, np.ndarray]:
    """Label spreading of ``y`` (n,) (``-1`` = unlabeled) over the cosine kNN graph of ``X`` (n, d)
    (:class:`CosineKNNKernel`), class-balanced: each class's spread mass is divided by its
    number of labels, so a class that happens to hold more labels does not flood the graph
    (Iscen et al., 2019).

    Returns the fitted ``LabelSpreading``, whose ``label_distributions_`` (n, len(classes_))
    are the balanced distributions, rows summing to 1 (uniform where no label reaches), and
    whether a label reached each row ((n,) bool). Its ``predict_proba`` labels new rows from
    their ``n_neighbors`` nearest fitted rows. ``cache`` keeps the graph for refits on ``X``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.semi_supervised import LabelSpreading

    model = LabelSpreading(kernel=CosineKNNKernel(n_neighbors, power, cache=cache), alpha=alpha, max_iter=200, tol=1e-4)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):  # 0/0 on rows no label reaches
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.asarray(X, dtype=np.float32), y)
    counts = np.bincount(y[y >= 0], minlength=n_classes)[model.classes_]
    dist = np.nan_to_num(model.label_distributions_, nan=0.0) / counts
    model.label_distributions_ = normalise_rows(dist)
    return model, dist.sum(1) > 0


@dataclass
class Propagation:
    """Result of :func:`knn_propagate` for every row.

    Attributes
    ----------
    labels : int array (n,): the given label, the propagated one where accepted, else ``-1``.
    suggested : int array (n,): the neighbours' vote for every unlabeled row (``-1`` for labeled rows).
    confidence : float array (n,): the vote's weighted share (1 for labeled rows).
    accepted : bool array (n,): the rows that received a label here.
    """

    labels: np.ndarray
    suggested: np.ndarray
    confidence: np.ndarray
    accepted: np.ndarray


def knn_propagate(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int | None = None,
    k: int = 10,
    threshold: float = 0.9,
    sample_weight: np.ndarray | None = None,
) -> Propagation:
    """Label the rows with ``labels == -1`` by a similarity-weighted vote of their ``k``
    nearest labeled rows (cosine), keeping only votes with confidence ≥ ``threshold``.

    Parameters
    ----------
    embeddings : (n, d) array.
    labels : int array (n,), class codes ``0..n_classes-1``, ``-1`` = unlabeled.
    k : neighbours that vote (fewer when there are fewer labeled rows).
    threshold : the least weighted vote share to accept, in [0, 1].
    sample_weight : (n,) weight of each labeled row's vote (e.g. its crowd confidence).

    Examples
    --------
    >>> X = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.95, 0.05], [0.05, 0.95]])
    >>> knn_propagate(X, np.array([0, 0, 1, 1, -1, -1]), k=2).labels.tolist()
    [0, 0, 1, 1, 0, 1]
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise LabelwiseError(f"embeddings must be (n, d) with n = len(labels); got {X.shape} and {len(y)}")
    if not 0 <= threshold <= 1:
        raise LabelwiseError(f"threshold must be in [0, 1], got {threshold}")
    if k < 1:
        raise LabelwiseError(f"k must be >= 1, got {k}")
    K = int(n_classes if n_classes is not None else y.max() + 1)
    seeds, pool = np.flatnonzero(y >= 0), np.flatnonzero(y < 0)
    suggested = np.full(len(y), -1)
    confidence = np.ones(len(y))
    if not len(seeds):
        raise LabelwiseError("no labeled rows to propagate from")
    if len(pool):
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        nn = NearestNeighbors(n_neighbors=min(k, len(seeds)), metric="cosine").fit(Xn[seeds])
        dist, idx = nn.kneighbors(Xn[pool])
        weight = np.clip(1.0 - dist, 1e-6, None)  # similarity; never 0, so every vote counts a little
        if sample_weight is not None:
            weight = weight * np.asarray(sample_weight, np.float64)[seeds][idx]
        votes = np.zeros((len(pool), K))
        np.add.at(votes, (np.repeat(np.arange(len(pool)), idx.shape[1]), y[seeds][idx].ravel()), weight.ravel())
        share = votes / np.maximum(votes.sum(1, keepdims=True), 1e-12)
        suggested[pool] = share.argmax(1)
        confidence[pool] = share.max(1)
    accepted = (y < 0) & (confidence >= threshold) & (suggested >= 0)
    return Propagation(np.where(accepted, suggested, y), suggested, confidence, accepted)
