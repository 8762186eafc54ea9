"""Batch selection on embeddings: which ``n`` candidates to take, so that a batch is
informative *and* varied.

Every function works on row indices of one ``embeddings`` array ``(n_rows, d)`` and
returns the chosen rows in pick order with a score per pick. Nothing builds a pool × pool
matrix: memory grows linearly with the pool (at most one float32 copy of the candidates'
embeddings, for the diversity strategies), which keeps 100k-image pools in a few hundred
MB (bench/active.py --scale-rows).
"""

from __future__ import annotations

import numpy as np

from ..errors import LabelwiseError

# Two candidates this similar (cosine) are near-duplicates: a batch takes only one of them.
DUPLICATE_SIMILARITY = 0.99
# TypiClust: neighbours that define typicality, the smallest cluster worth a pick and the
# most clusters (values of Hacohen et al., 2022).
TYPICALITY_NEIGHBORS = 20
MIN_CLUSTER_SIZE = 5
MAX_CLUSTERS = 500
# Clustering with full k-means up to this many rows, mini-batch k-means beyond.
FULL_KMEANS_ROWS = 20_000


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def score_order(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions sorted by score, highest first; ties in random (seeded) order."""
    return np.lexsort((rng.random(len(scores)), -np.asarray(scores, dtype=np.float64)))


def top_distinct(
    scores: np.ndarray,
    embeddings: np.ndarray,
    candidates: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    similarity: float = DUPLICATE_SIMILARITY,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best-scored ``candidates``, skipping any whose embedding has cosine
    similarity ≥ ``similarity`` with one already taken (taken last if nothing else is left).

    ``scores`` is aligned with ``candidates``. Returns (rows, their scores).

    >>> X = np.array([[1.0, 0], [1.0, 0.001], [0, 1.0]])
    >>> top_distinct(np.array([0.9, 0.8, 0.1]), X, np.arange(3), 2, rng=np.random.default_rng(0))[0].tolist()
    [0, 2]
    """
    order = score_order(scores, rng)
    taken: list[int] = []  # positions in ``order``
    kept = np.zeros((n, embeddings.shape[1]))  # unit vectors of the taken rows
    skipped: list[int] = []
    # Candidates are normalised a block at a time, in score order: only the block and the
    # ``n`` taken rows are held, whatever the pool's size.
    block = max(4 * n, 256)
    for first in range(0, len(order), block):
        if len(taken) == n:
            break
        unit = _unit(embeddings[candidates[order[first : first + block]]])
        for i, vec in enumerate(unit):
            if len(taken) == n:
                break
            if taken and (kept[: len(taken)] @ vec).max() >= similarity:
                skipped.append(first + i)
            else:
                kept[len(taken)] = vec
                taken.append(first + i)
    taken += skipped[: n - len(taken)]
    picks = order[np.asarray(taken, dtype=np.int64)]
    return candidates[picks], np.asarray(scores, dtype=np.float64)[picks]


def cluster_top(
    scores: np.ndarray,
    embeddings: np.ndarray,
    candidates: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    shortlist: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Uncertainty with diversity: cluster the ``shortlist × n`` best-scored candidates
    into ``n`` groups (k-means on the embeddings) and take the best-scored of each group,
    so one batch does not spend its labels on many copies of one confusing look.

    Returns (rows, their scores), best first.
    """
    order = score_order(scores, rng)
    short = order[: min(len(order), max(n, shortlist * n))]
    if n >= len(short) or n <= 1:
        return top_distinct(scores, embeddings, candidates, n, rng=rng)
    groups = kmeans_labels(embeddings[candidates[short]], n, random_state=int(rng.integers(2**31 - 1)))
    best: dict[int, int] = {}
    for group, pos in zip(groups, short):  # in score order: the first of each group is its best
        best.setdefault(int(group), int(pos))
    picks = list(best.values())
    if len(picks) < n:  # k-means may leave groups empty
        chosen = set(picks)
        picks += [int(p) for p in short if p not in chosen][: n - len(picks)]
    picks_arr = np.asarray(picks, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    picks_arr = picks_arr[score_order(s[picks_arr], rng)]
    return candidates[picks_arr], s[picks_arr]


def kmeans_labels(x: np.ndarray, k: int, *, random_state: int = 0) -> np.ndarray:
    """Cluster index per row of ``x`` from k-means with ``k`` clusters (mini-batch k-means
    for more than :data:`FULL_KMEANS_ROWS` rows)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = max(1, min(k, len(x)))
    if len(x) > FULL_KMEANS_ROWS:
        model = MiniBatchKMeans(k, n_init=3, batch_size=4096, random_state=random_state)
    else:
        model = KMeans(k, n_init=1, random_state=random_state)
    return model.fit_predict(np.asarray(x, dtype=np.float32)).astype(np.int64)


def min_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of ``x`` to its nearest row of ``centers``
    (``inf`` when there are none); scikit-learn computes it in memory-bounded chunks."""
    from sklearn.metrics import pairwise_distances_argmin_min

    if not len(centers) or not len(x):
        return np.full(len(x), np.inf)
    return pairwise_distances_argmin_min(x, centers)[1].astype(np.float64)


def k_center_greedy(
    embeddings: np.ndarray,
    labeled: np.ndarray,
    candidates: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Core-set selection (Sener & Savarese, 2018): repeatedly take the candidate farthest
    from every labeled row and every row taken so far. Returns (rows, distance at pick).

    Holds the candidates' embeddings (float32) and one distance per candidate; each pick
    costs one matrix-vector product.
    """
    x = np.asarray(embeddings[candidates], dtype=np.float32)
    x2 = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    dist2 = min_distances(x, np.asarray(embeddings[labeled], dtype=np.float32)) ** 2
    picks: list[int] = []
    scores: list[float] = []
    for _ in range(n):
        if np.isinf(dist2).all():  # nothing labeled yet: start anywhere
            pos = int(rng.integers(len(candidates)))
        else:
            pos = int(np.argmax(dist2))
        picks.append(pos)
        scores.append(float(np.sqrt(dist2[pos])) if np.isfinite(dist2[pos]) else 0.0)
        c = x[pos]
        dist2 = np.minimum(dist2, np.maximum(x2 - 2.0 * (x @ c) + x2[pos], 0.0))
        dist2[pos] = -1.0  # taken: stays below every other distance
    return candidates[np.asarray(picks, dtype=np.int64)], np.asarray(scores)


def badge_seeding(
    residuals: np.ndarray,
    features: np.ndarray,
    candidates: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """BADGE (Ash et al., 2020): k-means++ seeding on gradient embeddings
    ``g_i = r_i ⊗ h_i`` with ``r_i = p_i - onehot(argmax p_i)`` (``residuals``, (m, C)) and
    ``h_i`` the last layer's input (``features``, (m, d)); rows aligned with ``candidates``.

    The gradient embeddings are never built: ``|g_i - g_j|² = |r_i|²|h_i|² + |r_j|²|h_j|²
    - 2 (r_i·r_j)(h_i·h_j)`` needs only ``r`` and ``h``. The first pick is the largest
    gradient, then each next one is drawn with probability ∝ squared distance to the
    nearest pick. Returns (rows, gradient norm of each pick).
    """
    r = np.asarray(residuals, dtype=np.float64)
    h = np.asarray(features, dtype=np.float32)  # the large one: kept in float32
    norm2 = (r**2).sum(1) * np.einsum("ij,ij->i", h, h, dtype=np.float64)
    picks = [int(np.argmax(norm2))]
    d2 = np.full(len(r), np.inf)
    for _ in range(1, n):
        c = picks[-1]
        d2 = np.minimum(d2, np.maximum(norm2 + norm2[c] - 2 * (r @ r[c]) * (h @ h[c]), 0.0))
        d2[picks] = 0.0
        total = d2.sum()
        if total <= 0:  # every gradient equals a pick's: any other row will do
            rest = np.setdiff1d(np.arange(len(r)), picks)
            picks.append(int(rng.choice(rest)))
        else:
            picks.append(int(rng.choice(len(r), p=d2 / total)))
    picks_arr = np.asarray(picks, dtype=np.int64)
    return candidates[picks_arr], np.sqrt(norm2[picks_arr])


def typicality(x: np.ndarray, *, k: int = TYPICALITY_NEIGHBORS) -> np.ndarray:
    """``1 / mean distance to the k nearest other rows`` for each row of ``x`` (a dense
    region's rows are typical). A single row has typicality 0."""
    from sklearn.neighbors import NearestNeighbors

    if len(x) < 2:
        return np.zeros(len(x))
    k = min(k, len(x) - 1)
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return 1.0 / np.maximum(dist[:, 1:].mean(1), 1e-12)


def typiclust(
    embeddings: np.ndarray,
    labeled: np.ndarray,
    candidates: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    max_clusters: int = MAX_CLUSTERS,
) -> tuple[np.ndarray, np.ndarray]:
    """TypiClust (Hacohen et al., 2022), for cold starts: cluster labeled and candidate
    rows into ``len(labeled) + n`` clusters (at most ``max_clusters``); then ``n`` times
    take the cluster with the fewest labeled rows (largest first among equals; clusters
    under :data:`MIN_CLUSTER_SIZE` rows last) and its most typical candidate.

    Returns (rows, typicality of each pick).
    """
    rows = np.concatenate([labeled, candidates])
    k = int(min(len(labeled) + n, max_clusters, len(rows)))
    groups = kmeans_labels(embeddings[rows], k, random_state=int(rng.integers(2**31 - 1)))
    is_candidate = np.r_[np.zeros(len(labeled), bool), np.ones(len(candidates), bool)]
    sizes = np.bincount(groups, minlength=k)
    covered = np.bincount(groups[~is_candidate], minlength=k)
    typical = np.zeros(len(rows))
    open_rows: dict[int, list[int]] = {}
    for g in range(k):
        members = np.flatnonzero(groups == g)
        typical[members] = typicality(np.asarray(embeddings[rows[members]], dtype=np.float64))
        cand = members[is_candidate[members]]
        open_rows[g] = list(cand[score_order(typical[cand], rng)])
    picks: list[int] = []
    scores: list[float] = []
    for _ in range(n):
        live = [g for g in range(k) if open_rows[g]]
        g = min(live, key=lambda c: (sizes[c] < MIN_CLUSTER_SIZE, covered[c], -sizes[c], c))
        pos = open_rows[g].pop(0)
        picks.append(int(rows[pos]))
        scores.append(float(typical[pos]))
        covered[g] += 1
    return np.asarray(picks, dtype=np.int64), np.asarray(scores)


def check_budget(n: int, n_candidates: int) -> None:
    """A one-line error when ``n`` picks are asked of fewer candidates."""
    if n < 1:
        raise LabelwiseError(f"the number of images to pick must be at least 1, got {n}")
    if n > n_candidates:
        raise LabelwiseError(f"asked for {n} images but the unlabeled pool holds only {n_candidates}")
