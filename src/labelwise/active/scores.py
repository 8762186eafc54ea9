"""Acquisition scores over plain arrays: higher means "label this first".

The score functions take probabilities ``(n, n_classes)`` (BALD: Monte Carlo samples
``(n_samples, n, n_classes)``) and return ``(n,)``. :func:`stream_scores` computes them
over a pool in batches, so memory does not grow with the pool; each row's score depends
only on that row, which is why streamed and in-memory scores are equal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import LabelwiseError

EPS = 1e-12


def _probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise LabelwiseError(f"probabilities must be (n, n_classes), got shape {p.shape}")
    return p


def least_confident_scores(probs: np.ndarray) -> np.ndarray:
    """``1 - max_c p_c``.

    >>> least_confident_scores(np.array([[0.9, 0.1], [0.5, 0.5]])).round(2).tolist()
    [0.1, 0.5]
    """
    return 1.0 - _probs(probs).max(1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_first - p_second)``: 1 when the two likeliest classes tie.

    >>> margin_scores(np.array([[0.6, 0.3, 0.1], [0.45, 0.45, 0.1]])).round(2).tolist()
    [0.7, 1.0]
    """
    p = _probs(probs)
    if p.shape[1] < 2:
        return np.zeros(len(p))
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy ``-sum_c p_c log p_c`` (nats).

    >>> entropy_scores(np.array([[1.0, 0.0], [0.5, 0.5]])).round(3).tolist()
    [0.0, 0.693]
    """
    p = _probs(probs)
    return 0.0 - (p * np.log(np.clip(p, EPS, 1.0))).sum(1)  # 0.0 - x: no -0.0 for certain rows


def bald_scores(samples: np.ndarray) -> np.ndarray:
    """Mutual information between the label and the model (BALD) from Monte Carlo
    samples ``(n_samples, n, n_classes)``: entropy of the mean prediction minus the mean
    entropy of the samples. High when the samples are each confident but disagree.

    >>> agree = [[0.5, 0.5], [0.5, 0.5]]; disagree = [[1.0, 0.0], [0.0, 1.0]]
    >>> bald_scores(np.array([agree, disagree]).transpose(1, 0, 2)).round(3).tolist()
    [0.0, 0.693]
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 3:
        raise LabelwiseError(f"BALD needs samples of shape (n_samples, n, n_classes), got {s.shape}")
    mean_entropy = -(s * np.log(np.clip(s, EPS, 1.0))).sum(2).mean(0)
    return np.maximum(entropy_scores(s.mean(0)) - mean_entropy, 0.0)


SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least_confident": least_confident_scores,
    "margin": margin_scores,
    "entropy": entropy_scores,
}


def uncertainty_scores(probs: np.ndarray, method: str = "margin") -> np.ndarray:
    """Scores of ``method`` (``least_confident``, ``margin`` or ``entropy``) for ``probs``."""
    try:
        return SCORES[method](probs)
    except KeyError:
        raise LabelwiseError(f"unknown uncertainty {method!r}; choose one of {', '.join(SCORES)}") from None


def stream_scores(
    predict: Callable[[np.ndarray], np.ndarray],
    n: int,
    score: Callable[[np.ndarray], np.ndarray],
    *,
    batch_size: int = 4096,
) -> np.ndarray:
    """Score ``n`` rows in batches: ``score(predict(rows))`` for ``rows`` = consecutive
    index ranges of at most ``batch_size``. Only one batch of predictions is in memory.

    >>> p = np.random.default_rng(0).dirichlet(np.ones(3), 10)
    >>> np.array_equal(stream_scores(lambda r: p[r], 10, margin_scores, batch_size=3), margin_scores(p))
    True
    """
    if batch_size < 1:
        raise LabelwiseError(f"batch_size must be at least 1, got {batch_size}")
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        out[rows] = score(predict(rows))
    return out
