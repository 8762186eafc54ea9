"""How accurate are the pseudo labels? Estimated by hiding labeled rows and pseudo-labeling
them like the pool, or, when there are too few labeled rows for that, from the confidences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .methods import get_method

COVERAGES = (0.5, 0.8, 0.9, 1.0)
NOT_PROBLEMATIC = "not problematic"


@dataclass
class HeldOutSeeds:
    """Labeled rows that were hidden and pseudo-labeled: their true label was ``correct``
    or not, at ``confidence``; ``problematic`` as the method judged them."""

    confidence: np.ndarray
    correct: np.ndarray
    problematic: np.ndarray
    folds: int


def cross_validate_seeds(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    method: str,
    n_classes: int,
    folds: int = 5,
    random_state: int = 0,
    options: dict[str, Any] | None = None,
) -> HeldOutSeeds | None:
    """Hide each of ``folds`` stratified folds of the labeled rows in turn and pseudo-label
    them with ``method`` along with the pool. Only classes with at least 2 labeled rows take
    part (hiding a class's only seed would remove the class); ``None`` when no class has 2.

    The method then sees fewer labeled rows than the real run, so the estimate leans
    pessimistic.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, np.int64)
    seeds = np.flatnonzero(y >= 0)
    counts = np.bincount(y[seeds], minlength=n_classes)
    eligible = seeds[counts[y[seeds]] >= 2]
    if not len(eligible):
        return None
    n_folds = int(max(2, min(folds, counts[counts >= 2].min())))
    conf, correct, problem = [], [], []
    splitter = StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
    for _, hide in splitter.split(eligible, y[eligible]):
        hidden = eligible[hide]
        masked = y.copy()
        masked[hidden] = -1
        estimator = get_method(method, **(options or {}))
        params = estimator.get_params()
        estimator.set_params(
            n_classes=n_classes, **({"random_state": random_state} if "random_state" in params else {})
        )
        estimator.fit(embeddings, masked)
        conf.append(estimator.confidence_[hidden])
        correct.append(estimator.transduction_[hidden] == y[hidden])
        problem.append(estimator.problematic_[hidden])
    return HeldOutSeeds(np.concatenate(conf), np.concatenate(correct), np.concatenate(problem), n_folds)


def coverage_table(
    pool_confidence: np.ndarray,
    vouched: np.ndarray,
    held: HeldOutSeeds | None,
    *,
    coverages: Sequence[float] = COVERAGES,
) -> pd.DataFrame:
    """Coverage of the unlabeled pool vs estimated accuracy.

    One row per ``coverages`` level (the most confident share of the pool) plus one for the
    pseudo labels the method vouches for (``vouched``: bool per pool row, named
    ``NOT_PROBLEMATIC``). ``estimated_accuracy`` is the
    accuracy of the held-out labeled rows at least as confident as the level's cut-off
    (``held``), else the mean confidence of the covered rows (``estimate`` says which);
    ``held_out_n`` is how many held-out rows that figure rests on.
    """
    conf = np.sort(np.asarray(pool_confidence, float))[::-1]
    rows = []
    levels = [(f"top {c:.0%}", c, int(round(c * len(conf)))) for c in coverages]
    levels.append((NOT_PROBLEMATIC, len(np.flatnonzero(vouched)) / max(len(conf), 1), int(np.sum(vouched))))
    for name, share, n in levels:
        if name == NOT_PROBLEMATIC:
            covered = np.asarray(pool_confidence, float)[np.asarray(vouched, bool)]
            mask = None if held is None else ~held.problematic
        else:
            covered = conf[:n]
            # the whole pool: every held-out row counts, also one less confident than any pool row
            cut = -np.inf if n >= len(conf) else covered[-1] if n else np.inf
            mask = None if held is None else held.confidence >= cut
        row = {
            "coverage": name,
            "share_of_pool": round(float(share), 4),
            "n_images": int(n),
            "mean_confidence": round(float(covered.mean()), 4) if len(covered) else None,
        }
        if held is not None and mask is not None and mask.any():
            row.update(
                estimated_accuracy=round(float(held.correct[mask].mean()), 4),
                held_out_n=int(mask.sum()),
                estimate="held-out labeled images",
            )
        else:
            row.update(estimated_accuracy=row["mean_confidence"], held_out_n=0, estimate="mean confidence")
        rows.append(row)
    return pd.DataFrame(rows)
