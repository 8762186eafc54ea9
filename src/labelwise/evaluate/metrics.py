"""Classification metrics from labels and probabilities, as plain JSON-able data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..errors import LabelwiseError


def hter(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> tuple[float, float, float]:
    """``(FAR, FRR, HTER)`` for a two-class decision.

    FAR (false acceptance rate) is the share of negatives predicted ``positive``; FRR
    (false rejection rate) the share of positives predicted negative; HTER = (FAR + FRR) / 2.

    >>> hter(np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]), np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0]))
    (0.16666666666666666, 0.25, 0.20833333333333331)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    pos, neg = y_true == positive, y_true != positive
    far = float((y_pred[neg] == positive).mean()) if neg.any() else 0.0
    frr = float((y_pred[pos] != positive).mean()) if pos.any() else 0.0
    return far, frr, (far + frr) / 2


def reliability_table(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Top-label confidence in ``n_bins`` equal-width bins: ``bin_lower, bin_upper, count,
    confidence`` (mean) and ``accuracy`` per bin (NaN for empty bins)."""
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

    >>> expected_calibration_error(np.array([0, 0, 1, 1]), np.array([[.9, .1], [.9, .1], [.9, .1], [.2, .8]]), 10)
    0.225
    """
    table = reliability_table(np.asarray(y_true), np.asarray(probs), n_bins)
    used = table[table["count"] > 0]
    n = used["count"].sum()
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
    (``positive`` is a class name or index; default the second class). Macro-F1 and balanced
    accuracy average over the classes present in ``y_true``.

    >>> m = classification_metrics(np.array([0, 1, 1]), np.array([[.8, .2], [.3, .7], [.6, .4]]), ["a", "b"])
    >>> round(m["accuracy"], 3), m["hter"], m["confusion"]
    (0.667, 0.25, [[1, 0], [1, 1]])
    """
    classes = list(classes)
    k = len(classes)
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise LabelwiseError(f"probabilities must have shape (n, {k}) for {k} classes, got {probs.shape}")
    if len(y_true) != len(probs):
        raise LabelwiseError(f"{len(y_true)} labels but {len(probs)} probability rows")
    if len(y_true) == 0:
        raise LabelwiseError("nothing to evaluate: no labeled rows")
    if y_true.min() < 0 or y_true.max() >= k:
        raise LabelwiseError(f"labels must be class indices 0..{k - 1}, found {int(y_true.min())}..{int(y_true.max())}")
    pred = probs.argmax(1)
    present = np.unique(y_true)
    labels = np.arange(k)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, pred)),
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
        far, frr, half = hter(y_true, pred, pos)
        out.update(positive=classes[pos], far=far, frr=frr, hter=half)
        out["roc_auc"] = float(skm.roc_auc_score(y_true == pos, probs[:, pos])) if len(present) == 2 else None
    return out


def _renormalised(probs: np.ndarray) -> np.ndarray:
    """float32 rows sum to 1 only within ~1e-7; sklearn warns about that, so renormalise."""
    p = np.clip(probs, 1e-15, 1)
    return p / p.sum(1, keepdims=True)


def _positive_index(positive: int | str | None, classes: list[str]) -> int:
    if positive is None:
        return 1
    if isinstance(positive, str) and positive in classes:
        return classes.index(positive)
    if isinstance(positive, int) and 0 <= positive < len(classes):
        return positive
    raise LabelwiseError(f"positive class {positive!r} is not one of {classes}")
