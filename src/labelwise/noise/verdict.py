"""How sure a label verdict is: calibrated evidence, each label's chance of being wrong, and
when the evidence is too weak to judge.

A model that is wrong on 30% of correct labels disagrees with 30% of them; counting its
disagreements as label errors cries wolf. Here every probability source is first calibrated
(one temperature, fitted to the given labels), the sources are averaged, and a two-part
model of the given labels is fitted: a label is the true class with probability ``1 - rho``,
else wrong (any other class, or one the evidence finds plausible for the image, in a fitted
mix), and the true class follows the calibrated evidence. The model's own
error is then explained by the evidence's spread, and only what it cannot explain raises the
noise rate ``rho``. Each label's ``doubt`` is the chance, under that fit, that it is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LabelwiseError
from .calibration import calibrate, log_probs, softmax
from .detectors import DEFAULT_FILTER, detect_cleanlab, get_detector, list_detectors

#: The evidence judges labels only where its estimated accuracy (the mean calibrated
#: probability of its best class) reaches this; below it only labels whose doubt reaches
#: :data:`SURE_DOUBT` are flagged, with a warning.
MIN_ACCURACY = 0.5
#: A candidate label is flagged when its doubt reaches this: the evidence must make a label's
#: error a real possibility, not merely rank it low.
MIN_DOUBT = 0.02
#: The doubt a label needs when the evidence is too weak to judge labels in general.
SURE_DOUBT = 0.5
#: The noise rates the fit tries; no dataset is assumed cleaner than :data:`MIN_NOISE`.
NOISE_GRID = np.r_[0.0, 0.0025, 0.005, np.arange(0.01, 0.2, 0.01), np.arange(0.2, 0.61, 0.025)]
MIN_NOISE = 0.005


@dataclass(frozen=True)
class Evidence:
    """The calibrated class probabilities and what the noise-aware fit says about the labels."""

    probs: np.ndarray  # (n, K) calibrated probabilities of the true class
    doubt: np.ndarray  # (n,) probability that each given label is wrong
    noise_rate: float  # the fitted share of wrong labels
    accuracy: float  # the evidence's estimated accuracy on the true classes
    temperatures: tuple[float, ...]  # one per source, then the combination's
    weights: tuple[float, ...] = ()  # each source's share of the combination
    uniform_share: float = 1.0  # the fitted share of wrong labels spread evenly (the rest: confusions)

    @property
    def judgeable(self) -> bool:
        """Whether the evidence is good enough to judge labels in general."""
        return self.accuracy >= MIN_ACCURACY

    @property
    def expected_errors(self) -> float:
        """How many given labels the fit expects to be wrong (the sum of the doubts)."""
        return float(self.doubt.sum())


#: How wrong labels may fall: a share of them (each value tried) uniformly on the other classes,
#: the rest on the classes the evidence finds plausible for the image (see :func:`_wrong_share`).
UNIFORM_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _wrong_share(probs: np.ndarray, labels: np.ndarray, uniform: float) -> np.ndarray:
    """The probability of each given label if it is wrong: with weight ``uniform`` any other class
    alike, else a class that the evidence finds plausible, as a person (or a systematic flip a
    network has learned) would confuse it: given true class ``i`` the wrong label is ``j`` in
    proportion to ``p_j / (1 - p_i)``."""
    rows = np.arange(len(labels))
    k = probs.shape[1]
    q = probs[rows, labels]
    odds = probs / np.clip(1 - probs, 1e-6, None)
    confused = q * (odds.sum(1) - odds[rows, labels])
    return uniform * (1 - q) / (k - 1) + (1 - uniform) * confused


def _fit_noise(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """``(T, rho, uniform)`` maximising the likelihood of the given labels when each is the true
    class (distributed as ``softmax(log(probs) / T)``) with probability ``1 - rho``, else wrong as
    :func:`_wrong_share` says; ``rho`` on the grid :data:`NOISE_GRID` (never below
    :data:`MIN_NOISE`), ``uniform`` on :data:`UNIFORM_SHARES`."""
    from scipy.optimize import minimize_scalar

    logp = log_probs(probs)
    rows = np.arange(len(labels))

    def nll(log_t: float, rho: float, uniform: float) -> float:
        p = softmax(logp / np.exp(log_t))
        likely = (1 - rho) * p[rows, labels] + rho * _wrong_share(p, labels, uniform)
        return float(-np.log(likely + 1e-300).mean())

    best: dict[float, tuple[float, float, float]] = {}
    for uniform in UNIFORM_SHARES:
        fits = []
        for rho in NOISE_GRID:
            found = minimize_scalar(
                nll, bounds=(-3.0, 3.0), method="bounded", args=(rho, uniform), options={"xatol": 1e-3}
            )
            fits.append((float(found.fun), float(np.exp(found.x)), float(rho)))
        best[uniform] = min(fits)
    # Wrong labels spread evenly unless the labels say otherwise: another shape must explain them
    # better by more than its one extra parameter is worth (AIC), else the floor noise would be
    # read as confusions and every confident disagreement doubted.
    shape = min(best, key=lambda u: best[u][0])
    if (best[1.0][0] - best[shape][0]) * len(labels) <= 1.0:
        shape = 1.0
    _, t, rho = best[shape]
    return t, max(rho, MIN_NOISE), shape


#: How sharply the weights favour the sources that agree more with the others: a source whose
#: agreement is half another's gets a sixteenth of its say.
SHARPNESS = 4


def source_weights(calibrated: Sequence[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """The weights of the calibrated sources in their average: each source's agreement with the
    others (its mean probability of the class the other sources, averaged, pick), raised to
    :data:`SHARPNESS`. Agreement with the *given* labels would reward a source for having learned
    them, wrong ones included (a network's training dynamics do); agreement with the other
    sources about the true class does not, and still gives a source much weaker than the others,
    such as a network trained from scratch on a few thousand photos, little say. ``labels`` is
    unused: the weights never look at them."""
    del labels
    stack = np.stack(calibrated)
    if len(stack) == 1:
        return np.ones(1)
    rows = np.arange(stack.shape[1])
    others = (stack.sum(0, keepdims=True) - stack) / (len(stack) - 1)
    agreement = np.array([stack[s][rows, others[s].argmax(1)].mean() for s in range(len(stack))])
    weights = np.maximum(agreement, 1e-12) ** SHARPNESS
    return weights / weights.sum()


def weigh_evidence(sources: Sequence[np.ndarray], labels: np.ndarray) -> Evidence:
    """Calibrate each probability source on ``labels``, average them with the weights of
    :func:`source_weights`, and fit the noise-aware model of the labels to the average (see the
    module's docstring)."""
    labels = np.asarray(labels)
    if not sources:
        raise ValueError("no probability sources")
    calibrated, temps = [], []
    for source in sources:
        probs, t = calibrate(np.asarray(source, float), labels)
        calibrated.append(probs)
        temps.append(t)
    weights = source_weights(calibrated, labels)
    mean = np.tensordot(weights, np.stack(calibrated), axes=1)
    t, rho, uniform = _fit_noise(mean, labels)
    probs = softmax(log_probs(mean) / t)
    q = probs[np.arange(len(labels)), labels]
    wrong = rho * _wrong_share(probs, labels, uniform)
    doubt = wrong / np.maximum((1 - rho) * q + wrong, 1e-300)
    return Evidence(
        probs, doubt, rho, float(probs.max(1).mean()), (*temps, t), tuple(float(w) for w in weights), uniform
    )


def posterior(evidence: Evidence, labels: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
    """``(n, K)``: each image's true class given its evidence *and* its given label, under the fitted
    noise model (the given class keeps ``1 - doubt``; the rest is shared as the wrong-label mix says).
    ``probs``: calibrated evidence of other images, judged by the same fit (default ``evidence.probs``)."""
    probs = evidence.probs if probs is None else np.asarray(probs)
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    k = probs.shape[1]
    given = probs[rows, labels]
    # P(given label g | true class c != g): uniformly any other class, or g in proportion to p_g / (1 - p_c)
    u = evidence.uniform_share
    likely = evidence.noise_rate * (u / (k - 1) + (1 - u) * given[:, None] / np.clip(1 - probs, 1e-6, None))
    likely[rows, labels] = 1 - evidence.noise_rate
    joint = probs * likely
    return joint / np.maximum(joint.sum(1, keepdims=True), 1e-300)


def judge(
    labels: np.ndarray, sources: Sequence[np.ndarray], *, filter_by: str, min_doubt: float = MIN_DOUBT
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Evidence]:
    """The verdict on ``labels`` from probability ``sources``: ``(is_issue, quality, suggested,
    evidence)``. Candidates are confident learning's on the calibrated evidence; of those, only
    labels whose doubt reaches ``min_doubt`` are issues, or :data:`SURE_DOUBT` where the
    evidence is too weak to judge labels in general. ``quality`` ranks every label as before."""
    evidence = weigh_evidence(sources, labels)
    found = detect_cleanlab(labels, pred_probs=evidence.probs, filter_by=filter_by)
    threshold = min_doubt if evidence.judgeable else max(min_doubt, SURE_DOUBT)
    return found.is_issue & (evidence.doubt >= threshold), found.quality, found.suggested, evidence


def label_issues(
    labels: np.ndarray,
    *,
    pred_probs: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    method: str = "neighbors",
    k: int | None = None,
    filter_by: str = DEFAULT_FILTER,
    n_classes: int | None = None,
    held_out: np.ndarray | None = None,
    extra_sources: Sequence[np.ndarray] = (),
    min_doubt: float = MIN_DOUBT,
) -> pd.DataFrame:
    """Array-level detection: one row per sample (positionally aligned with ``labels``).

    Columns: ``suggested`` (class index), ``label_quality`` (0–1, low = probably wrong),
    ``doubt`` (the chance that the label is wrong, see :mod:`labelwise.noise.verdict`),
    ``is_issue`` (the ``method``'s verdict, holding back what the evidence cannot support) and
    ``vote_<detector>`` (each detector's plain confident-learning vote) for every detector that
    the given inputs allow (``cleanlab`` needs ``pred_probs``, ``neighbors`` ``embeddings``).
    ``embeddings`` may be several spaces of the same samples, ``held_out`` saying which
    were learned without each sample's label (see :func:`~labelwise.noise.neighbor_probs`);
    ``extra_sources`` are more probability arrays for the ``ensemble``. The verdict's evidence
    is in ``frame.attrs["evidence"]``.

    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, .1, (20, 2)) + [1, 0], rng.normal(0, .1, (20, 2)) + [0, 1]]
    >>> y = np.r_[np.zeros(20, int), np.ones(20, int)]; y[3] = 1
    >>> np.flatnonzero(label_issues(y, embeddings=X, method="neighbors")["is_issue"]).tolist()
    [3]
    """
    labels = np.asarray(labels)
    n_classes = n_classes or (pred_probs.shape[1] if pred_probs is not None else int(labels.max()) + 1)
    options = dict(
        pred_probs=pred_probs, embeddings=embeddings, k=k, n_classes=n_classes, filter_by=filter_by, held_out=held_out
    )
    usable = [name for name in list_detectors() if _usable(name, pred_probs, embeddings)]
    if method not in usable:
        get_detector(method)  # an unknown name: a clear error
        need = "out-of-fold probabilities" if method == "cleanlab" else "embeddings"
        raise LabelwiseError(f"detector {method!r} needs {need}")
    votes = {
        name: get_detector(name)(labels, **options, **({"extra_sources": extra_sources} if name == method else {}))
        for name in usable
    }
    chosen = votes[method]
    sources = chosen.sources or ((chosen.probs,) if chosen.probs is not None else ())
    evidence = None
    if sources:
        is_issue, quality, suggested, evidence = judge(labels, sources, filter_by=filter_by, min_doubt=min_doubt)
        doubt = evidence.doubt
    else:  # a detector without probabilities: its own verdict
        is_issue, quality, suggested = chosen.is_issue, chosen.quality, chosen.suggested
        doubt = np.full(len(labels), np.nan)
    frame = pd.DataFrame({"suggested": suggested, "label_quality": quality, "doubt": doubt, "is_issue": is_issue})
    for name, det in votes.items():
        frame[f"vote_{name}"] = det.is_issue
    frame.attrs["evidence"] = evidence
    return frame


def _usable(name: str, pred_probs: Any, embeddings: Any) -> bool:
    return {"cleanlab": pred_probs is not None, "neighbors": embeddings is not None}.get(
        name, pred_probs is not None or embeddings is not None
    )
