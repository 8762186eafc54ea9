"""Score the pool once per round: the model's calibrated evidence for every image, the verdict on the
labels, and each image's belief about its true class (see :mod:`.value`).

The model is cheap on purpose: a logistic regression's out-of-fold probabilities and neighbour votes
on the cached embeddings (the ``issues`` evidence for pretrained features), so a round costs seconds,
not a network's training. Images an earlier round asked keep the decision's belief instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..noise import Evidence, neighbor_probs, out_of_fold_head_probs, posterior, weigh_evidence
from ..noise.calibration import log_probs, softmax
from ..noise.detectors import auto_neighbors

#: The logistic regression of the evidence (unit-length rows; the ``issues`` head for pretrained features).
HEAD_C = 1.0


@dataclass(frozen=True)
class Scores:
    belief: np.ndarray  # (n, K): the true class of every pool image, given all evidence so far
    model: np.ndarray  # (n, K): the model's calibrated probabilities alone
    doubt: np.ndarray  # (n,): chance that the current label is wrong (unlabeled: 1 - top belief)
    evidence: Evidence  # the verdict's fit on the labeled images


def unit_rows(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def score_pool(features: np.ndarray, codes: np.ndarray, n_classes: int, *, random_state: int = 0) -> Scores:
    """``codes``: the current label of every pool image (class index, ``-1`` unlabeled)."""
    x = unit_rows(features)
    labeled = codes >= 0
    y = codes[labeled]
    folds = 5
    sources = [
        out_of_fold_head_probs(x[labeled], y, n_classes, folds=folds, random_state=random_state, scale="l2", C=HEAD_C),
        neighbor_probs(x[labeled], y, n_classes, k=auto_neighbors(y)),
    ]
    evidence = weigh_evidence(sources, y)
    model = np.zeros((len(codes), n_classes))
    belief = np.zeros_like(model)
    doubt = np.zeros(len(codes))
    model[labeled] = evidence.probs
    belief[labeled] = posterior(evidence, y)
    doubt[labeled] = evidence.doubt
    if (~labeled).any():
        unl = _unlabeled_sources(x[labeled], y, x[~labeled], n_classes, random_state)
        model[~labeled] = _calibrated_like(evidence, unl)
        belief[~labeled] = model[~labeled]
        doubt[~labeled] = 1 - model[~labeled].max(1)
    return Scores(belief, model, doubt, evidence)


def fit_head(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, weights: np.ndarray | None = None, random_state: int = 0
) -> Any:
    """The logistic regression on unit-length rows, fitted on every given row (``predict(x) -> (n, K)``)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300, C=HEAD_C, random_state=random_state)
    model.fit(unit_rows(x), y, sample_weight=weights)

    def predict(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), n_classes))
        out[:, model.classes_] = model.predict_proba(unit_rows(rows))
        return out

    return predict


def _unlabeled_sources(
    x_lab: np.ndarray, y: np.ndarray, x_unl: np.ndarray, n_classes: int, random_state: int
) -> list[np.ndarray]:
    """The same two sources for unlabeled images: the head fitted on every labeled image, and the votes
    of their labeled neighbours."""
    from sklearn.neighbors import NearestNeighbors

    head = fit_head(x_lab, y, n_classes, random_state=random_state)(x_unl)
    k = min(auto_neighbors(y), len(y))
    _, idx = NearestNeighbors(n_neighbors=k).fit(x_lab).kneighbors(x_unl)
    votes = np.zeros((len(x_unl), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(x_unl)), k), y[idx].ravel()), 1.0)
    votes = (votes + 1.0 / n_classes) / (k + 1.0)  # the smoothing neighbor_probs uses
    return [head, votes]


def _calibrated_like(evidence: Evidence, sources: list[np.ndarray]) -> np.ndarray:
    """Apply the labeled images' calibration (each source's temperature, the weights, the final
    temperature) to sources computed the same way for other images."""
    temps, final = evidence.temperatures[:-1], evidence.temperatures[-1]
    weights = evidence.weights or (1.0,) * len(sources)
    mean = sum(w * softmax(log_probs(s) / t) for w, s, t in zip(weights, sources, temps))
    return softmax(log_probs(np.asarray(mean)) / final)
