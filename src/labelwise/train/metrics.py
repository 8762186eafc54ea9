"""Classification metrics from labels and probabilities, as plain JSON-able data."""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..errors import LabelwiseError

log = logging.getLogger("labelwise")


def hter(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> tuple[float, float, float]:
    """``(FAR, FRR, HTER)`` for a two-class decision.

    ``positive`` is the class index of the positive (genuine, accepted) class; every other
    value is negative. FAR (false acceptance rate) is the share of negatives predicted
    ``positive``; FRR (false rejection rate) the share of positives predicted negative;
    HTER = (FAR + FRR) / 2. A rate without samples to measure it on (no negatives, or no
    positives) is NaN, and so is the HTER then.

    >>> far, frr, half = hter([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    >>> round(far, 4), frr, round(half, 4)  # 1 of 6 negatives accepted, 1 of 4 positives rejected
    (0.1667, 0.25, 0.2083)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise LabelwiseError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    pos, neg = y_true == positive, y_true != positive
    far = float((y_pred[neg] == positive).mean()) if neg.any() else math.nan
    frr = float((y_pred[pos] != positive).mean()) if pos.any() else math.nan
    return far, frr, (far + frr) / 2


def reliability_table(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Top-label confidence in ``n_bins`` equal-width bins over [0, 1].

    One row per bin: ``bin_lower, bin_upper, count, confidence`` (mean top-label
    probability) and ``accuracy`` (share whose argmax is right); NaN for empty bins.
    Bins are ``(lower, upper]``, the first one also holds 0.

    >>> reliability_table([0, 1, 1], [[.9, .1], [.4, .6], [.7, .3]], n_bins=2)[["count", "confidence", "accuracy"]]
       count  confidence  accuracy
    0      0         NaN       NaN
    1      3    0.733333  0.666667
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if n_bins < 1:
        raise LabelwiseError(f"n_bins must be at least 1, got {n_bins}")
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = which == b
        rows.append(
            {
                "bin_lower": edges[b],
                "bin_upper": edges[b + 1],
                "count": int(sel.sum()),
                "confidence": float(conf[sel].mean()) if sel.any() else np.nan,
                "accuracy": float(correct[sel].mean()) if sel.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Σ over bins of (share of samples) × |accuracy − mean confidence| (top label, equal-width bins).

    0 means calibrated; see :func:`reliability_table` for the bins. Here 3 samples at
    confidence 0.9 are 2/3 right and one at 0.8 is right: 3/4·|2/3 − 0.9| + 1/4·|1 − 0.8| = 0.225.

    >>> expected_calibration_error(np.array([0, 0, 1, 1]), np.array([[.9, .1], [.9, .1], [.9, .1], [.2, .8]]), 10)
    0.225
    """
    table = reliability_table(y_true, probs, n_bins)
    used = table[table["count"] > 0]
    n = used["count"].sum()
    if n == 0:
        raise LabelwiseError("nothing to evaluate: no samples")
    return round(float((used["count"] / n * (used["accuracy"] - used["confidence"]).abs()).sum()), 12)


def classification_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    *,
    positive: int | str | None = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Metrics of argmax predictions from ``probs`` ``(n, k)`` against ``y_true`` (0..k-1).

    Returns ``n, accuracy, balanced_accuracy, macro_f1, log_loss, ece, per_class`` (list of
    ``class, precision, recall, f1, support``) and ``confusion`` (rows true, columns predicted,
    every class present); with two classes also ``positive, far, frr, hter, roc_auc``
    (``positive`` is a class name or index; default index 1, the second class of
    ``classes.json``). Macro-F1 and balanced accuracy average over the classes present in
    ``y_true``. When ``y_true`` holds only one of the two classes, ``roc_auc`` is None, and so
    are the rate without samples (FAR without negatives, FRR without positives) and ``hter``.
    Raises :class:`LabelwiseError` on mismatched shapes, labels outside 0..k-1 or non-finite
    probabilities.

    >>> m = classification_metrics(np.array([0, 1, 1]), np.array([[.8, .2], [.3, .7], [.6, .4]]), ["a", "b"])
    >>> round(m["accuracy"], 3), m["hter"], m["confusion"]
    (0.667, 0.25, [[1, 0], [1, 1]])
    """
    classes = [str(c) for c in classes]
    k = len(classes)
    if k < 2:
        raise LabelwiseError(f"need at least 2 classes to evaluate, got {classes}")
    y_true = _class_indices(y_true, k)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise LabelwiseError(f"probabilities must have shape (n, {k}) for {k} classes, got {probs.shape}")
    if len(y_true) != len(probs):
        raise LabelwiseError(f"{len(y_true)} labels but {len(probs)} probability rows")
    if len(y_true) == 0:
        raise LabelwiseError("nothing to evaluate: no labeled rows")
    if not np.isfinite(probs).all():
        raise LabelwiseError(f"probability row {int(np.flatnonzero(~np.isfinite(probs).all(1))[0])} is not finite")
    pred = probs.argmax(1)
    present = np.unique(y_true)
    labels = np.arange(k)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": expected, and documented above
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(skm.balanced_accuracy_score(y_true, pred))
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "balanced_accuracy": balanced,
        "macro_f1": float(skm.f1_score(y_true, pred, labels=present, average="macro", zero_division=0)),
        "log_loss": float(skm.log_loss(y_true, _renormalised(probs), labels=labels)),
        "ece": expected_calibration_error(y_true, probs, n_bins),
        "per_class": [
            {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        ],
        "confusion": skm.confusion_matrix(y_true, pred, labels=labels).tolist(),
    }
    if k == 2:
        pos = _positive_index(positive, classes)
        far, frr, half = (None if math.isnan(v) else v for v in hter(y_true, pred, pos))
        out.update(positive=classes[pos], far=far, frr=frr, hter=half)
        out["roc_auc"] = float(skm.roc_auc_score(y_true == pos, probs[:, pos])) if len(present) == 2 else None
    elif positive is not None:
        log.warning("positive class %r ignored: FAR/FRR/HTER need exactly 2 classes, not %d", positive, k)
    return out


def _class_indices(y_true: Any, k: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise LabelwiseError(f"labels must be a 1-D array of class indices, got shape {y.shape}")
    if y.dtype.kind == "f" and len(y) and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if len(y) and y.dtype.kind not in "iub":
        raise LabelwiseError(f"labels must be integer class indices 0..{k - 1}, got {y.dtype} values such as {y[0]!r}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= k):
        bad = y[(y < 0) | (y >= k)][0]
        raise LabelwiseError(f"labels must be class indices 0..{k - 1} for {k} classes, found {int(bad)}")
    return y


def _renormalised(probs: np.ndarray) -> np.ndarray:
    """float32 rows sum to 1 only within ~1e-7; sklearn warns about that, so renormalise."""
    p = np.clip(probs, 1e-15, 1)
    return p / p.sum(1, keepdims=True)


def _positive_index(positive: int | str | None, classes: list[str]) -> int:
    """Index of ``positive``: a class name first, else an index (an int, or digits from the command line)."""
    if positive is None:
        return 1
    if isinstance(positive, str):
        name = positive.strip()
        if name in classes:
            return classes.index(name)
        if name.isdigit() and int(name) < len(classes):
            return int(name)
    elif isinstance(positive, numbers.Integral) and not isinstance(positive, bool) and 0 <= positive < len(classes):
        return int(positive)
    raise LabelwiseError(f"positive class {positive!r} is not one of {classes} (nor an index 0..{len(classes) - 1})")
