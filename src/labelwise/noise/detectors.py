"""Label-issue detectors: which given labels are probably wrong.

Every detector returns a :class:`Detection` over the same ``n`` labeled samples:
``is_issue`` (bool), ``quality`` (0–1, low = probably wrong) and ``suggested`` (class index).
Detectors are registered by name; ``ensemble`` combines the others.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._registry import Registry, kind
from ..errors import LabelwiseError
from .calibration import calibrate

log = logging.getLogger("labelwise")


@dataclass
class Detection:
    """One detector's verdict per sample (arrays of length ``n``)."""

    is_issue: np.ndarray
    quality: np.ndarray
    suggested: np.ndarray
    probs: np.ndarray | None = None  # the class probabilities the verdict came from
    sources: tuple[np.ndarray, ...] = ()  # the probability sources behind ``probs``, if several


Detector = Callable[..., Detection]
# Confident learning counts a sample into class j when its probability of j reaches class j's
# threshold, the mean probability of j over the samples labeled j. On a class a model has
# learned perfectly that mean sits inside a tight cluster near the most the model can say
# (label smoothing 0.1 caps it at 0.93 with 3 classes), so about half of the wrong labels whose
# true class is j fall below it and are missed (toy sets in tests/test_noise.py: flips at
# p = 0.885 and 0.946 against thresholds of 0.94 and 0.953). No threshold is set above this;
# on noisy data the thresholds are far lower (0.2–0.6 on every bench/noise.py cell).
CONFIDENT = 0.8
# One embedding (n, d), or several of the same samples whose neighbour votes are averaged.
Embeddings = np.ndarray | Sequence[np.ndarray]
#: ``fn(labels, *, pred_probs, embeddings, **options) -> Detection`` by name.
DETECTORS: Registry[Detector] = kind("detectors", Registry("detector", sort=True))


def register_detector(fn: Detector) -> Detector:
    """Register ``fn(labels, *, pred_probs, embeddings, **options) -> Detection`` under its name
    without the ``detect_`` prefix."""
    return DETECTORS.register(fn, name=fn.__name__.removeprefix("detect_"))


def list_detectors() -> list[str]:
    return DETECTORS.names()


def get_detector(name: str) -> Detector:
    return DETECTORS.get(name)


FILTERS = (
    "calibrated_margin",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
DEFAULT_FILTER = "calibrated_margin"


@register_detector
def detect_cleanlab(
    labels: np.ndarray,
    *,
    pred_probs: np.ndarray | None = None,
    embeddings: Embeddings | None = None,
    filter_by: str = DEFAULT_FILTER,
    **_: Any,
) -> Detection:
    """Confident learning (cleanlab) on out-of-fold probabilities.

    ``filter_by``: ``calibrated_margin`` (default) flags as many samples as cleanlab's
    calibrated estimate of the joint distribution of given and true labels says are wrong
    (``estimate_joint``), those with the lowest normalized margin (probability of the given
    label minus the highest other) first, but never one whose given label is the most
    probable; or any of cleanlab's ``find_label_issues`` filters
    (``prune_by_noise_rate``, ``prune_by_class``, ``both``, ``confident_learning``,
    ``predicted_neq_given``, ``low_normalized_margin``, ``low_self_confidence``).

    On bench/noise.py cleanlab's own filters under-count where noise is heavy and the
    probabilities come from a model that saw the labels (CIFAR-10N worse_label, 41% noise:
    3,300 flagged of 4,104; F1 0.72 vs 0.76 for ``calibrated_margin``), and the margin ranks
    better than the given label's probability alone. Thresholds are per class, so rare
    classes are judged against their own confidence level, but never above :data:`CONFIDENT`.
    ``quality`` is the normalized margin for ``calibrated_margin``, else the self-confidence.
    """
    if pred_probs is None:
        raise LabelwiseError("the cleanlab detector needs out-of-fold probabilities")
    if filter_by not in FILTERS:
        raise LabelwiseError(f"unknown filter_by {filter_by!r}; choose one of {', '.join(FILTERS)}")
    from cleanlab.count import (
        compute_confident_joint,
        get_confident_thresholds,
        num_label_issues,
    )
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    try:
        with warnings.catch_warnings():  # issues.py warns about tiny classes once, by name
            warnings.filterwarnings("ignore", message=".*too few examples", category=UserWarning)
            thresholds = np.minimum(
                np.nan_to_num(get_confident_thresholds(labels, pred_probs), nan=CONFIDENT), CONFIDENT
            )
            joint = compute_confident_joint(labels, pred_probs, thresholds=thresholds)
            if filter_by == "calibrated_margin":
                quality = get_label_quality_scores(labels, pred_probs, method="normalized_margin")
                n_issues = num_label_issues(
                    labels, pred_probs, confident_joint=joint, estimation_method="off_diagonal_custom"
                )
                mask = np.zeros(len(labels), bool)
                mask[np.argsort(quality, kind="stable")[:n_issues]] = True
                mask &= pred_probs.argmax(1) != labels  # a label that is still the best guess stays
            else:
                quality = get_label_quality_scores(labels, pred_probs, method="self_confidence")
                mask = find_label_issues(
                    labels, pred_probs, filter_by=filter_by, confident_joint=joint, min_examples_per_class=1, n_jobs=1
                )
    except ValueError as exc:
        raise LabelwiseError(f"cleanlab: {str(exc).splitlines()[0]}") from None
    return Detection(np.asarray(mask, bool), np.asarray(quality, float), pred_probs.argmax(1), pred_probs)


MAX_NEIGHBORS = 50


def auto_neighbors(labels: np.ndarray) -> int:
    """How many neighbours vote when none is asked for: a quarter of the smallest class,
    between 5 and :data:`MAX_NEIGHBORS`. More votes average out more of the label noise
    (MNIST-5k, 40% class-conditional noise: F1 0.830 with 20, 0.855 with 50), but a
    correct label of a small class must still be able to win its neighbourhood."""
    counts = np.bincount(np.asarray(labels))
    smallest = int(counts[counts > 0].min()) if counts.any() else 0
    return int(np.clip(smallest // 4, 5, MAX_NEIGHBORS))


def neighbor_probs(
    embeddings: Embeddings, labels: np.ndarray, n_classes: int, *, k: int = 10, held_out: np.ndarray | None = None
) -> np.ndarray:
    """Each sample's share of label votes among its ``k`` nearest neighbours (itself left
    out; cosine distance), lightly smoothed so that no class has probability 0.

    ``embeddings`` may be one array ``(n, d)`` or several of the same samples, e.g. the
    features of each fold model of a k-fold ensemble. ``held_out`` ``(n_spaces, n)`` bool
    then says which spaces were learned without each sample's label: a sample is judged
    in those (votes averaged), or in all spaces where none held it out. A wrong label that
    a network has fitted pulls its own feature towards the wrong class, so only the
    spaces that never saw it judge it fairly.
    """
    if isinstance(embeddings, np.ndarray) and embeddings.ndim == 2:
        return _neighbor_votes(embeddings, labels, n_classes, k)
    spaces = list(embeddings)
    if not spaces:
        raise LabelwiseError("the neighbors detector needs at least one embedding")
    votes = np.stack([_neighbor_votes(np.asarray(e), labels, n_classes, k) for e in spaces])
    if held_out is None:
        return votes.mean(0)
    held_out = np.asarray(held_out, bool)
    if held_out.shape != votes.shape[:2]:
        raise LabelwiseError(f"held_out has shape {held_out.shape}, not (spaces, samples) = {votes.shape[:2]}")
    use = np.where(held_out.any(0), held_out, True)
    return (votes * use[:, :, None]).sum(0) / use.sum(0)[:, None]


def _neighbor_votes(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    if len(embeddings) != len(labels):
        raise LabelwiseError(f"{len(embeddings)} embeddings for {len(labels)} labels")
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    k = min(k, len(x) - 1)
    if k < 1:
        raise LabelwiseError("the neighbors detector needs at least 2 labeled samples")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    # Drop each sample itself (usually column 0, but an exact duplicate may come first).
    own = idx == np.arange(len(x))[:, None]
    drop = np.where(own.any(1), own.argmax(1), k)
    keep = np.ones_like(idx, bool)
    keep[np.arange(len(x)), drop] = False
    neigh = idx[keep].reshape(len(x), k)
    votes = np.zeros((len(x), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(x)), k), labels[neigh].ravel()), 1.0)
    return (votes + 0.1) / (k + 0.1 * n_classes)


@register_detector
def detect_neighbors(
    labels: np.ndarray,
    *,
    pred_probs: np.ndarray | None = None,
    embeddings: Embeddings | None = None,
    k: int | None = None,
    n_classes: int | None = None,
    held_out: np.ndarray | None = None,
    filter_by: str = DEFAULT_FILTER,
    **_: Any,
) -> Detection:
    """Training-free: confident learning on the label votes of the ``k`` nearest
    neighbours in embedding space (per-class thresholds on the vote shares).

    On bench/noise.py this beat flagging every sample that most neighbours outvote: that
    rule found nearly every flip but cost precision wherever the embedding's own kNN error
    is a few percent (MNIST on raw pixels: F1 0.876 vs 0.914 at 20% uniform noise)."""
    if embeddings is None:
        raise LabelwiseError("the neighbors detector needs embeddings")
    n_classes = n_classes or int(labels.max()) + 1
    votes = neighbor_probs(embeddings, labels, n_classes, k=k or auto_neighbors(labels), held_out=held_out)
    return detect_cleanlab(labels, pred_probs=votes, filter_by=filter_by)


@register_detector
def detect_ensemble(
    labels: np.ndarray,
    *,
    pred_probs: np.ndarray | None = None,
    embeddings: Embeddings | None = None,
    k: int | None = None,
    n_classes: int | None = None,
    filter_by: str = DEFAULT_FILTER,
    held_out: np.ndarray | None = None,
    extra_sources: Sequence[np.ndarray] = (),
    **_: Any,
) -> Detection:
    """Confident learning on the mean of every probability source at hand, each calibrated first.

    The sources: the model's out-of-fold probabilities, the neighbour votes and any
    ``extra_sources`` (a pretrained backbone's). They err on different samples, so their mean
    ranks wrong labels better than any one."""
    sources = [] if pred_probs is None else [pred_probs]
    if embeddings is not None:
        n_classes = n_classes or (pred_probs.shape[1] if pred_probs is not None else int(labels.max()) + 1)
        sources.append(neighbor_probs(embeddings, labels, n_classes, k=k or auto_neighbors(labels), held_out=held_out))
    sources.extend(extra_sources)
    if not sources:
        raise LabelwiseError("the ensemble detector needs probabilities, embeddings or both")
    mean = np.mean([calibrate(np.asarray(source, float), labels)[0] for source in sources], axis=0)
    found = detect_cleanlab(labels, pred_probs=mean, filter_by=filter_by)
    return Detection(found.is_issue, found.quality, found.suggested, found.probs, tuple(sources))
