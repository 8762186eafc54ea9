"""Near-duplicate images: the same picture after re-encoding, resizing, a small crop, a colour
shift or a mirror.

Two steps, neither of which holds a pool × pool matrix:

1. **Candidates**: each image's :data:`CANDIDATES` nearest images by descriptor
   (:mod:`~labelwise.data.image_quality`), searched as they are and mirrored, with
   scikit-learn's chunked nearest-neighbour search.
2. **Verification** on the gray thumbnails, pixel by pixel: the normalised cross-correlation of
   the two images brought to one frame (resized onto each other), or of the smaller one slid
   over the larger at the same scale (a crop), mirrored or not; the best is the pair's
   ``score`` (1 = the same pixels up to brightness and contrast).

A pair whose score reaches the threshold is a near-duplicate; groups are the connected
components of those pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import LabelwiseError
from .image_quality import mirror_signs
from .measuring import Measurements, measure_images

CANDIDATES = 10
MIN_DESCRIPTOR_SIMILARITY = 0.5
NEAR_DUPLICATE_SCORE = 0.95
# A crop may take this share of each side at most (slid over the larger image at one scale).
MAX_CROP = 0.2
_MIN_STD = 2.0  # gray levels: flatter thumbnails have no pattern to correlate
# Below this many pixels (16×16) two different images correlate easily (two 8×8 digits of one
# class do at 0.95); a match there must be all but pixel-exact.
SMALL_PIXELS = 256
SMALL_SCORE = 0.995


@dataclass
class NearDuplicates:
    """Verified candidate pairs of a set of images and their groups at one threshold.

    Attributes
    ----------
    pairs : ``i < j``, ``descriptor_similarity``, ``score`` and the ``threshold`` it needs (higher
        for images under :data:`SMALL_PIXELS`), one row per candidate pair verified at any score.
    threshold : the score a pair needs.
    group : int ``(n,)``, each image's group (-1 for an image with no near-duplicate).
    """

    pairs: pd.DataFrame
    threshold: float
    group: np.ndarray

    @property
    def n_groups(self) -> int:
        return int(self.group.max() + 1) if len(self.group) else 0

    def matched(self) -> pd.DataFrame:
        """The pairs at or above their threshold (stricter for tiny images)."""
        return self.pairs[self.pairs["score"] >= self.pairs["threshold"]].reset_index(drop=True)


def find_near_duplicates(
    measurements: Measurements,
    *,
    threshold: float = NEAR_DUPLICATE_SCORE,
    candidates: int = CANDIDATES,
    n_jobs: int = 2,
) -> NearDuplicates:
    """Find the near-duplicate pairs and groups among measured images (unusable ones never match)."""
    if not 0.0 < threshold <= 1.0:
        raise LabelwiseError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if candidates < 1:
        raise LabelwiseError(f"candidates must be at least 1, got {candidates}")
    pairs = candidate_pairs(measurements, candidates=candidates, n_jobs=n_jobs)
    sizes = measurements.table[["height", "width"]].to_numpy(dtype=np.float64, na_value=0.0)
    pairs["score"] = [
        match_score(measurements.thumbnail(i), sizes[i], measurements.thumbnail(j), sizes[j])
        for i, j in zip(pairs["i"], pairs["j"], strict=True)
    ]
    small = np.minimum(*(measurements.thumbnail_shapes.prod(axis=1)[pairs[c]] for c in ("i", "j"))) < SMALL_PIXELS
    pairs["threshold"] = np.where(small, max(threshold, SMALL_SCORE), threshold)
    return NearDuplicates(pairs, threshold, group_pairs(len(measurements), pairs[pairs["score"] >= pairs["threshold"]]))


def candidate_pairs(measurements: Measurements, *, candidates: int = CANDIDATES, n_jobs: int = 2) -> pd.DataFrame:
    """Pairs ``i < j`` among each usable image's nearest descriptors (plain or mirrored)."""
    from sklearn.neighbors import NearestNeighbors

    rows = np.flatnonzero(measurements.usable & (np.abs(measurements.descriptors).sum(axis=1) > 0))
    empty = pd.DataFrame({"i": [], "j": [], "descriptor_similarity": []}).astype({"i": "int64", "j": "int64"})
    if len(rows) < 2:
        return empty
    X = np.ascontiguousarray(measurements.descriptors[rows])
    k = min(candidates + 1, len(rows))
    index = NearestNeighbors(n_neighbors=k, n_jobs=n_jobs).fit(X)
    found = []
    for query in (X, X * mirror_signs()):
        distance, neighbor = index.kneighbors(query)
        similarity = 1.0 - distance**2 / 2.0  # unit vectors
        a = np.repeat(np.arange(len(rows)), k)
        found.append(pd.DataFrame({"a": a, "b": neighbor.ravel(), "s": similarity.ravel()}))
    both = pd.concat(found, ignore_index=True)
    both = both[(both["a"] != both["b"]) & (both["s"] >= MIN_DESCRIPTOR_SIMILARITY)]
    i = rows[np.minimum(both["a"], both["b"])]
    j = rows[np.maximum(both["a"], both["b"])]
    pairs = pd.DataFrame({"i": i, "j": j, "descriptor_similarity": both["s"].to_numpy()})
    pairs = pairs.groupby(["i", "j"], as_index=False)["descriptor_similarity"].max()
    return pairs.sort_values(["i", "j"]).reset_index(drop=True) if len(pairs) else empty


def match_score(a: np.ndarray, size_a: np.ndarray, b: np.ndarray, size_b: np.ndarray) -> float:
    """How well two gray thumbnails match (see the module docstring); ``size_*`` the images'
    original (height, width), which says how the thumbnails' scales relate."""
    if a.size == 0 or b.size == 0 or a.std() < _MIN_STD or b.std() < _MIN_STD:
        return 0.0
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    best = max(_ncc(fa, _resize(fb, fa.shape)), _ncc(fa, _resize(fb[:, ::-1], fa.shape)))
    scale_a = a.shape[1] / max(size_a[1], 1.0)
    scale_b = b.shape[1] / max(size_b[1], 1.0)
    for big, small, factor in ((fa, fb, scale_a / scale_b), (fb, fa, scale_b / scale_a)):
        shape = (round(small.shape[0] * factor), round(small.shape[1] * factor))
        fits = all(
            big_side * (1 - MAX_CROP) <= side <= big_side for side, big_side in zip(shape, big.shape, strict=True)
        )
        if fits and (shape[0] < big.shape[0] or shape[1] < big.shape[1]):
            scaled = small if shape == small.shape else _resize(small, shape)
            best = max(best, _sliding_ncc(big, scaled), _sliding_ncc(big, scaled[:, ::-1]))
    return float(best)


def _resize(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if image.shape == tuple(shape):
        return image
    resized = Image.fromarray(image, mode="F").resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def _sliding_ncc(big: np.ndarray, small: np.ndarray) -> float:
    """The best normalised cross-correlation of ``small`` over every position inside ``big``."""
    windows = np.lib.stride_tricks.sliding_window_view(big, small.shape)
    flat = windows.reshape(-1, small.size)
    flat = flat - flat.mean(axis=1, keepdims=True)
    template = (small - small.mean()).ravel()
    norms = np.sqrt((flat * flat).sum(axis=1) * float(template @ template))
    scores = np.divide(flat @ template, norms, out=np.zeros(len(flat), dtype=np.float32), where=norms > 0)
    return float(scores.max())


def group_pairs(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """Connected components of ``pairs`` (``i``, ``j`` columns) over ``n`` items; -1 where alone.

    Groups are numbered from 0 in the order of their first member.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    group = np.full(n, -1, dtype=np.int64)
    if len(pairs) == 0:
        return group
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members = np.zeros(n, dtype=bool)
    members[i] = members[j] = True
    _, first = np.unique(component[members], return_index=True)
    order = np.argsort(first)  # components by their first member
    renumber = dict(zip(np.unique(component[members])[order], range(len(order)), strict=True))
    group[members] = [renumber[c] for c in component[members]]
    return group


def near_duplicate_groups(
    table: pd.DataFrame, *, threshold: float = NEAR_DUPLICATE_SCORE, n_jobs: int = 2
) -> pd.Series:
    """Each row's near-duplicate group (-1: none), measuring the images of ``table["path"]``.

    The same index as ``table``; what ``split`` keeps together and ``query`` asks once.
    """
    measurements = measure_images(table["path"].tolist(), n_jobs=n_jobs, description="Finding near-duplicates")
    found = find_near_duplicates(measurements, threshold=threshold, n_jobs=n_jobs)
    return pd.Series(found.group, index=table.index, name="near_duplicate_group")


def groups_from_audit(table: pd.DataFrame, audit: pd.DataFrame) -> pd.Series:
    """``table``'s near-duplicate groups as an audit table (``audit.csv``) records them."""
    rows = audit[audit["issue"].isin(["near_duplicate", "leak"]) & audit["group"].notna()]
    by_id = rows.drop_duplicates("sample_id").set_index("sample_id")["group"].astype("int64")
    return table["sample_id"].map(by_id).fillna(-1).astype("int64").rename("near_duplicate_group")
