"""Near-duplicate images: the same picture after re-encoding, resizing, a small crop, a colour
shift or a mirror.

Two steps, neither of which holds a pool × pool matrix:

1. **Candidates**: each image's :data:`CANDIDATES` nearest images by descriptor
   (:mod:`~labelwise.data.image_quality`), searched as they are and mirrored, with
   scikit-learn's chunked nearest-neighbour search.
2. **Verification** on the gray thumbnails, pixel by pixel: the normalised cross-correlation of
   the two images brought to one frame (resized onto each other), or of the smaller one slid
   over the larger at the same scale (a crop), mirrored or not; the best is the pair's
   ``score`` (1 = the same pixels up to brightness and contrast). Pairs go in batches, each
   thumbnail padded into one frame with its own resampling matrices, correlations by FFT; a
   pair is first compared at half the resolution, and one that scores :data:`COARSE_MARGIN`
   below the threshold there is not compared again (most candidates are different pictures).

A pair whose score reaches the threshold is a near-duplicate; groups are the connected
components of those pairs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import LabelwiseError
from .image_quality import mirror_signs
from .measuring import Measurements, measure_images, release_pages

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
        for images under :data:`SMALL_PIXELS`), one row per candidate pair verified at any score
        (a pair rejected at half resolution keeps its coarse score, far below the threshold).
    threshold : the score a pair needs.
    group : int ``(n,)``, each image's group (-1 for an image with no near-duplicate).
    """

    pairs: pd.DataFrame
    threshold: float
    group: np.ndarray

    @property
    def n_groups(self) -> int:
        return int(self.group.max() + 1) if len(self.group) else 0

    def among(self, keep: np.ndarray) -> NearDuplicates:
        """The same pairs and groups, numbered among the images where ``keep`` is true (every pair's
        images must be among them, as unusable images never pair)."""
        position = np.cumsum(keep) - 1
        pairs = self.pairs.assign(i=position[self.pairs["i"]], j=position[self.pairs["j"]])
        return NearDuplicates(pairs, self.threshold, self.group[keep])

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
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    pairs["score"] = verify_pairs(measurements, i, j, at_least=threshold, n_jobs=n_jobs)
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
    lows, highs, similarities = [], [], []
    for query in (X, X * mirror_signs()):
        distance, neighbor = index.kneighbors(query)
        similarity = (1.0 - distance**2 / 2.0).ravel()  # unit vectors
        a, b = np.repeat(np.arange(len(rows)), k), neighbor.ravel()
        keep = (a != b) & (similarity >= MIN_DESCRIPTOR_SIMILARITY)
        lows.append(np.minimum(a, b)[keep])
        highs.append(np.maximum(a, b)[keep])
        similarities.append(similarity[keep])
    low, high, similarity = (np.concatenate(x) for x in (lows, highs, similarities))
    if not len(low):
        return empty
    # Each pair once, with its best similarity: sorted by pair, then by similarity (highest first).
    key = low * len(rows) + high
    order = np.lexsort((-similarity, key))
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    return pd.DataFrame({"i": rows[low[first]], "j": rows[high[first]], "descriptor_similarity": similarity[first]})


def verify_pairs(
    measurements: Measurements, i: np.ndarray, j: np.ndarray, *, at_least: float | None = None, n_jobs: int = 2
) -> np.ndarray:
    """:func:`match_score` of each pair ``(i[k], j[k])``, in batches of pairs (``n_jobs`` threads).

    With ``at_least``, pairs are first compared on thumbnails of half the resolution, and one that
    scores below ``at_least - COARSE_MARGIN`` there keeps that coarse score; only the others are
    compared at full resolution (:data:`COARSE_MARGIN` was measured on the planted bench: every
    pair that matches at full resolution scores above that cut at half).
    """
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    scores = np.zeros(len(i), dtype=np.float32)
    shapes = measurements.thumbnail_shapes.astype(np.int64)
    sizes = measurements.table[["height", "width"]].to_numpy(dtype=np.float64, na_value=0.0)
    todo = np.flatnonzero((shapes[i].min(axis=1) > 0) & (shapes[j].min(axis=1) > 0))

    def run(rows: np.ndarray, coarse: bool) -> np.ndarray:
        # Pairs of like shapes batched together pad little.
        order = rows[np.lexsort((shapes[j[rows], 1], shapes[j[rows], 0], shapes[i[rows], 1], shapes[i[rows], 0]))]
        parts = [order[k : k + _BATCH] for k in range(0, len(order), _BATCH)]

        def one(part: np.ndarray) -> np.ndarray:
            a = _Thumbs(measurements.thumbnails, i[part], shapes[i[part]], coarse=coarse)
            b = _Thumbs(measurements.thumbnails, j[part], shapes[j[part]], coarse=coarse)
            return _batch_scores(a, sizes[i[part]], b, sizes[j[part]], flat=np.inf if coarse else 0.0)

        with ThreadPoolExecutor(max(1, n_jobs)) as pool:
            for k, (part, found) in enumerate(zip(parts, pool.map(one, parts), strict=True)):
                scores[part] = found
                if k % _RELEASE_EVERY == _RELEASE_EVERY - 1:
                    release_pages(measurements.thumbnails)
        release_pages(measurements.thumbnails)
        return scores[rows]

    if at_least is not None:
        big = np.minimum(shapes[i].min(axis=1), shapes[j].min(axis=1)) >= 2 * _COARSE_MIN_SIDE
        coarse = todo[big[todo]]
        hopeless = run(coarse, True) < at_least - COARSE_MARGIN
        todo = np.setdiff1d(todo, coarse[hopeless])
    run(todo, False)
    return scores


def match_score(a: np.ndarray, size_a: np.ndarray, b: np.ndarray, size_b: np.ndarray) -> float:
    """How well two gray thumbnails match (see the module docstring); ``size_*`` the images'
    original (height, width), which says how the thumbnails' scales relate."""
    if a.size == 0 or b.size == 0:
        return 0.0
    one = np.zeros(1, dtype=np.int64)
    thumbs = [_Thumbs(x[None], one, np.array([x.shape])) for x in (a, b)]
    sizes = [np.asarray(x, dtype=np.float64)[None] for x in (size_a, size_b)]
    return float(_batch_scores(thumbs[0], sizes[0], thumbs[1], sizes[1])[0])


# Pairs verified at once: about 0.3 MB of arrays per pair of 64-px thumbnails.
_BATCH = 128
#: How far below the threshold a pair may score at half resolution and still be compared at full.
COARSE_MARGIN = 0.2
# Thumbnails with a side under twice this are compared at full resolution only.
_COARSE_MIN_SIDE = 12
# Batches between two releases of the thumbnails' mapped pages (random rows: keep it small).
_RELEASE_EVERY = 4


class _Thumbs:
    """Thumbnails ``rows`` of ``source``, each ``shape[k]``, padded into one frame (``coarse``: at
    half the resolution, 2×2 pixels averaged, an odd last row or column dropped)."""

    def __init__(self, source: np.ndarray, rows: np.ndarray, shape: np.ndarray, *, coarse: bool = False) -> None:
        frame = shape.max(axis=0)
        pixels: np.ndarray = np.asarray(source[rows, : frame[0], : frame[1]], dtype=np.float32)
        if coarse:
            shape, frame = shape // 2, frame // 2
            h, w = 2 * frame
            pixels = (
                pixels[:, 0:h:2, 0:w:2] + pixels[:, 1:h:2, 0:w:2] + pixels[:, 0:h:2, 1:w:2] + pixels[:, 1:h:2, 1:w:2]
            ) / 4
        self.shape = shape
        self.pixels = pixels * _mask(shape, pixels.shape[1:])

    def __len__(self) -> int:
        return len(self.shape)

    def take(self, sel: np.ndarray) -> _Thumbs:
        out = object.__new__(_Thumbs)
        out.shape, out.pixels = self.shape[sel], self.pixels[sel]
        return out


def _mask(shape: np.ndarray, frame: tuple[int, ...]) -> np.ndarray:
    """``(n, *frame)``: 1 inside each item's top-left ``shape[k]``, 0 in the padding."""
    rows = np.arange(frame[0])[None, :, None] < shape[:, 0, None, None]
    cols = np.arange(frame[1])[None, None, :] < shape[:, 1, None, None]
    return (rows & cols).astype(np.float32)


def _batch_scores(a: _Thumbs, size_a: np.ndarray, b: _Thumbs, size_b: np.ndarray, *, flat: float = 0.0) -> np.ndarray:
    """:func:`match_score` of pairs ``a[k]``, ``b[k]`` (original sizes ``(n, 2)``); ``flat`` the
    score of a pair with a thumbnail too flat to correlate."""
    n_a, n_b = a.shape.prod(axis=1), b.shape.prod(axis=1)
    is_flat = (_std(a.pixels, n_a) < _MIN_STD) | (_std(b.pixels, n_b) < _MIN_STD)
    frame = np.maximum(a.pixels.shape[1:], b.pixels.shape[1:])
    # b resampled into a's frame, as it is and mirrored (the mirror within b's own width).
    rows = _resampling(b.shape[:, 0], a.shape[:, 0], frame[0]) @ _pad(b.pixels, frame)
    mask_a = _mask(a.shape, tuple(frame))
    pixels_a = _pad(a.pixels, frame)
    best = np.zeros(len(a))
    for flip in (False, True):
        resampled = rows @ _resampling(b.shape[:, 1], a.shape[:, 1], frame[1], flip_input=flip).transpose(0, 2, 1)
        best = np.maximum(best, _ncc(pixels_a, resampled, mask_a, n_a))
    scale_a = a.shape[:, 1] / np.maximum(size_a[:, 1], 1.0)
    scale_b = b.shape[:, 1] / np.maximum(size_b[:, 1], 1.0)
    for big, small, factor in ((a, b, scale_a / scale_b), (b, a, scale_b / scale_a)):
        scaled = np.round(small.shape * factor[:, None]).astype(np.int64)
        fits = ((big.shape * (1 - MAX_CROP) <= scaled) & (scaled <= big.shape)).all(axis=1)
        fits &= (scaled < big.shape).any(axis=1) & ~is_flat
        sel = np.flatnonzero(fits)
        if len(sel):
            best[sel] = np.maximum(best[sel], _sliding_ncc(big.take(sel), small.take(sel), scaled[sel]))
    return np.where(is_flat, flat, best)


def _std(pixels: np.ndarray, n: np.ndarray) -> np.ndarray:
    total = pixels.sum(axis=(1, 2), dtype=np.float64)
    squares = np.square(pixels, dtype=np.float64).sum(axis=(1, 2))
    return np.sqrt(np.maximum(squares / n - (total / n) ** 2, 0.0))


def _pad(pixels: np.ndarray, frame: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[1:]
    if (h, w) == tuple(frame):
        return pixels
    return np.pad(pixels, ((0, 0), (0, int(frame[0]) - h), (0, int(frame[1]) - w)))


@lru_cache(maxsize=4096)
def _resize_matrix(n_from: int, n_to: int) -> np.ndarray:
    """Pillow's bilinear resampling of ``n_from`` samples to ``n_to`` as an ``(n_to, n_from)`` matrix
    (the filter is separable and linear: resizing the identity along one axis gives its weights)."""
    eye = Image.fromarray(np.eye(n_from, dtype=np.float32), mode="F")
    return np.asarray(eye.resize((n_from, n_to), Image.Resampling.BILINEAR), dtype=np.float32)


def _resampling(
    n_from: np.ndarray, n_to: np.ndarray, size: int, *, flip_input: bool = False, flip_output: bool = False
) -> np.ndarray:
    """``(n, size, size)`` matrices resampling item k's ``n_from[k]`` samples to ``n_to[k]`` in the
    top-left corner (its input or output reversed within its own length when asked: a mirror)."""
    pairs, inverse = np.unique(np.column_stack([n_from, n_to]), axis=0, return_inverse=True)
    stack = np.zeros((len(pairs), size, size), dtype=np.float32)
    for k, (f, t) in enumerate(pairs):
        matrix = _resize_matrix(int(f), int(t))
        matrix = matrix[:, ::-1] if flip_input else matrix
        stack[k, :t, :f] = matrix[::-1] if flip_output else matrix
    return stack[inverse.ravel()]


def _ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``a[k]`` and ``b[k]`` over ``mask[k]`` (``n[k]`` pixels)."""
    a = (a - (a.sum(axis=(1, 2)) / n)[:, None, None]) * mask
    b = (b - (b.sum(axis=(1, 2), dtype=np.float64) / n)[:, None, None].astype(np.float32)) * mask
    products = np.stack([(a * b).sum(axis=(1, 2)), (a * a).sum(axis=(1, 2)), (b * b).sum(axis=(1, 2))])
    numerator, denominator = products[0].astype(np.float64), np.sqrt(products[1] * products[2], dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros(len(a)), where=denominator > 0)


def _sliding_ncc(big: _Thumbs, small: _Thumbs, shape: np.ndarray) -> np.ndarray:
    """The best normalised cross-correlation of each ``small[k]``, resampled to ``shape[k]`` (plain
    or mirrored), over every position inside ``big[k]``: correlations by FFT, window statistics from
    running sums over the few positions there are (a crop takes at most :data:`MAX_CROP` a side)."""
    from scipy import fft

    frame = np.maximum(big.pixels.shape[1:], small.pixels.shape[1:])
    H, W = (int(v) for v in frame)
    n = shape.prod(axis=1).astype(np.float64)
    rows = _resampling(small.shape[:, 0], shape[:, 0], H) @ _pad(small.pixels, frame)
    mask = _mask(shape, (H, W))
    templates = []
    for flip in (False, True):
        template = rows @ _resampling(small.shape[:, 1], shape[:, 1], W, flip_output=flip).transpose(0, 2, 1)
        templates.append((template - (template.sum(axis=(1, 2), dtype=np.float64) / n)[:, None, None]) * mask)
    energy = np.square(templates[0], dtype=np.float64).sum(axis=(1, 2))
    pixels = _pad(big.pixels, frame).astype(np.float64)
    pixels -= (pixels.sum(axis=(1, 2)) / big.shape.prod(axis=1))[:, None, None]
    pixels *= _mask(big.shape, (H, W))
    # Top-left positions (y, x) with the window inside big: fewer than (MAX_CROP * side + 1) ** 2.
    span = big.shape - shape + 1
    py, px = (int(v) for v in span.max(axis=0))
    h, w = shape[:, 0, None, None], shape[:, 1, None, None]
    y, x = np.arange(py)[None, :, None], np.arange(px)[None, None, :]
    k = np.arange(len(n))[:, None, None]
    sums = []
    for values in (pixels, pixels * pixels):
        across = np.zeros((len(n), H, W + 1))
        across[:, :, 1:] = values.cumsum(axis=2)
        cols = np.minimum(x + w, W)[:, 0]  # (n, px)
        k2 = k[:, 0]
        windows = across[k2[:, None], np.arange(H)[None, :, None], cols[:, None, :]] - across[:, :, :px]
        down = np.zeros((len(n), H + 1, px))
        down[:, 1:] = windows.cumsum(axis=1)
        sums.append(down[k, np.minimum(y + h, H), x] - down[:, :py, :])
    variance = sums[1] - sums[0] ** 2 / n[:, None, None]  # per window, times its pixels
    valid = (y < span[:, 0, None, None]) & (x < span[:, 1, None, None])
    usable = valid & (variance > 0.01 * n[:, None, None])  # a flat window has no pattern (only rounding)
    denominator = np.sqrt(np.maximum(variance, 0.0) * energy[:, None, None])
    spectrum = fft.rfft2(pixels.astype(np.float32))
    best = np.zeros(len(n))
    for template in templates:
        product = spectrum * np.conj(fft.rfft2(template))
        correlation = fft.irfft2(product, s=(H, W))[:, :py, :px]
        ncc = np.divide(correlation, denominator, out=np.zeros(correlation.shape), where=usable)
        best = np.maximum(best, ncc.reshape(len(n), -1).max(axis=1))
    return np.minimum(best, 1.0)


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
