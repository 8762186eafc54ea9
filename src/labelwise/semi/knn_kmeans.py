"""``knn-kmeans``: an ensemble of kNN classifiers and a k-means seeded at the labeled
images must agree; what they do not agree on, and its neighbourhood, is problematic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from ..features.neighbors import knn_propagate
from .methods import check_inputs, register_method, unit_rows

WEIGHTINGS = ("uniform", "distance", "similarity")


class KnnKMeans(BaseEstimator):
    """Pseudo labels that two views of the embedding agree on.

    1. **kNN ensemble**: a kNN classifier over the labeled rows for every ``k`` in ``ks`` and
       every weighting in ``weightings`` (``uniform`` and ``distance`` are scikit-learn's;
       ``similarity`` is :func:`labelwise.features.neighbors.knn_propagate`'s cosine-weighted
       vote). ``k`` is capped at the smallest class's number of labeled rows, so that a
       uniform vote can always be won by one class. A row whose members agree at least
       ``agreement`` of the time, with a mean vote share (its confidence) of at least
       ``threshold``, gets the majority's label as candidate; otherwise it is problematic.
    2. **Seeded k-means**: one centroid per labeled row, initialised at that row's embedding
       (``init`` = the labeled embeddings, ``n_init=1``); every row takes the label of the
       row its cluster was seeded with.
    3. The candidate is the pseudo label where both agree; anything else is problematic,
       and so is every unlabeled row with a problematic row among its ``n_neighbors``
       nearest neighbours.

    Embeddings are scaled to unit length first (cosine geometry).

    Attributes
    ----------
    knn_votes_ : (n, members) int, each member's vote (labeled rows: their label).
    kmeans_ : the fitted :class:`sklearn.cluster.KMeans`; ``cluster_labels_`` (n,) the label it gives.
    members_ : ``[(k, weighting)]`` in column order of ``knn_votes_``.
    near_ : (n,) bool, rows problematic only because a nearest neighbour is.

    Examples
    --------
    >>> X = np.array([[0, 1.0], [0.1, 1], [1, 0], [1, 0.1], [0.05, 1], [1, 0.05]])
    >>> KnnKMeans(n_neighbors=1).fit(X, np.array([0, -1, 1, -1, -1, -1])).transduction_.tolist()
    [0, 0, 1, 1, 0, 1]
    """

    def __init__(
        self,
        *,
        ks: Sequence[int] = (3, 5, 10),
        weightings: Sequence[str] = WEIGHTINGS,
        agreement: float = 0.75,
        threshold: float = 0.5,
        n_neighbors: int = 5,
        n_classes: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.ks = ks
        self.weightings = weightings
        self.agreement = agreement
        self.threshold = threshold
        self.n_neighbors = n_neighbors
        self.n_classes = n_classes
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> KnnKMeans:
        from sklearn.cluster import KMeans

        from ..errors import LabelwiseError

        X, y, k = check_inputs(X, y, self.n_classes)
        unknown = [w for w in self.weightings if w not in WEIGHTINGS]
        if unknown or not len(self.weightings) or not len(self.ks) or min(self.ks) < 1:
            raise LabelwiseError(
                f"knn-kmeans needs ks >= 1 and weightings from {', '.join(WEIGHTINGS)}; got {list(self.ks)}, {list(self.weightings)}"
            )
        Xn = unit_rows(X)
        seeds, pool = np.flatnonzero(y >= 0), np.flatnonzero(y < 0)
        counts = np.bincount(y[seeds], minlength=k)
        cap = int(counts[counts > 0].min())
        self.members_ = [(kk, w) for kk in sorted({min(int(kk), cap) for kk in self.ks}) for w in self.weightings]
        votes = np.repeat(y[:, None], len(self.members_), axis=1)
        shares = np.ones((len(y), len(self.members_)))
        for j, (kk, w) in enumerate(self.members_):
            if len(pool):
                votes[pool, j], shares[pool, j] = self._member(Xn, y, seeds, pool, kk, w, k)
        majority = np.array([np.bincount(v, minlength=k).argmax() for v in votes])
        agree = (votes == majority[:, None]).mean(1)
        share = np.where(votes == majority[:, None], shares, 0.0).sum(1) / len(self.members_)

        self.kmeans_ = KMeans(n_clusters=len(seeds), init=Xn[seeds], n_init=1, random_state=self.random_state).fit(Xn)
        self.cluster_labels_ = y[seeds][self.kmeans_.labels_]

        unlabeled = y < 0
        split = unlabeled & ((agree < self.agreement) | (share < self.threshold))
        differ = unlabeled & ~split & (self.cluster_labels_ != majority)
        problematic = split | differ
        why = np.full(len(y), "", dtype=object)
        why[split] = [
            f"kNN votes split ({a:.0%} agree, mean vote share {s:.2f})" for a, s in zip(agree[split], share[split])
        ]
        why[differ] = "k-means cluster and kNN vote disagree"
        near = self._near_problematic(Xn, problematic) & unlabeled & ~problematic
        why[near] = "a nearest neighbour is problematic"
        self.knn_votes_ = votes
        self.transduction_ = np.where(unlabeled, majority, y)
        self.confidence_ = np.where(unlabeled, share, 1.0)
        self.problematic_ = problematic | near
        self.near_ = near
        self.why_ = why
        return self

    @staticmethod
    def _member(
        Xn: np.ndarray, y: np.ndarray, seeds: np.ndarray, pool: np.ndarray, k: int, weighting: str, n_classes: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """One kNN classifier's vote and vote share for the ``pool`` rows."""
        if weighting == "similarity":
            found = knn_propagate(Xn, y, n_classes=n_classes, k=k, threshold=1.0)
            return found.suggested[pool], found.confidence[pool]
        from sklearn.neighbors import KNeighborsClassifier

        model = KNeighborsClassifier(n_neighbors=k, weights=weighting).fit(Xn[seeds], y[seeds])
        probs = model.predict_proba(Xn[pool])
        return model.classes_[probs.argmax(1)], probs.max(1)

    def _near_problematic(self, Xn: np.ndarray, problematic: np.ndarray) -> np.ndarray:
        """Rows with a problematic row among their ``n_neighbors`` nearest (themselves excluded)."""
        from sklearn.neighbors import NearestNeighbors

        if not problematic.any() or self.n_neighbors < 1 or len(Xn) < 2:
            return np.zeros(len(Xn), bool)
        k = min(self.n_neighbors + 1, len(Xn))
        _, idx = NearestNeighbors(n_neighbors=k).fit(Xn).kneighbors(Xn)
        others = np.where(idx == np.arange(len(Xn))[:, None], -1, idx)
        return np.array([problematic[row[row >= 0][: self.n_neighbors]].any() for row in others])


register_method(KnnKMeans, name="knn-kmeans")
