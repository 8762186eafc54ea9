"""What one more answer is worth, and the rules that choose a round's queue by it.

Every image of the pool has a belief ``pi`` over its true class: for a labeled image the verdict's
posterior (model evidence and given label together), for an unlabeled one the model's calibrated
probabilities, for an image already asked the decision's posterior (people included). Its label is
right with probability ``max(pi)``. An annotator right with probability ``a`` (else any other class)
answers ``r``; deciding after that answer, the label is right with probability
``sum_r max_c pi_c P(r | c)``. The difference from the chance that the label it has now is right (a
given label: ``1 - doubt``; a pseudo label or a decision: ``max(pi)``) is the expected number of
labels an answer corrects:
one quantity that ranks a suspicious given label, an image no method will vouch for and an
informative unlabeled image on the same scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._registry import Registry, kind


def answer_value(belief: np.ndarray, skill: float, right_now: np.ndarray | None = None) -> np.ndarray:
    """``(n,)``: the expected gain in the chance that each image's label is right from one answer by an
    annotator right with probability ``skill`` (wrong answers spread evenly over the other classes).
    ``right_now``: the chance that the label the image has now is right (default: the belief's top
    class, as if the label were already the most probable one)."""
    belief = np.asarray(belief, float)
    n, k = belief.shape
    if k < 2:
        return np.zeros(n)
    wrong = (1 - skill) / (k - 1)
    order = np.argsort(-belief, axis=1)
    rows = np.arange(n)
    top, second = belief[rows, order[:, 0]], belief[rows, order[:, 1]]
    # for answer r the best other class is the top one, or the second when r is the top
    best_other = np.where(np.arange(k)[None, :] == order[:, :1], second[:, None], top[:, None])
    after = np.maximum(skill * belief, wrong * best_other).sum(1)
    return np.clip(after - (top if right_now is None else right_now), 0.0, None)


@dataclass(frozen=True)
class Candidates:
    """What a choice rule sees: the pool's beliefs, which images are labeled, the given labels'
    doubt and the model's uncertainty (1 - its top calibrated probability)."""

    belief: np.ndarray  # (n, K)
    labeled: np.ndarray  # (n,) bool
    doubt: np.ndarray  # (n,) chance that the current label is wrong (pseudo labels: 1 - top belief)
    uncertainty: np.ndarray  # (n,) 1 - the model's top probability
    skill: float  # the annotators' expected accuracy


ChoiceRule = Callable[[Candidates, np.random.Generator], np.ndarray]

#: How a round's queue is chosen (``labelwise list choices``); higher scores are asked first.
CHOICES: Registry[ChoiceRule] = kind("choices", Registry("choice rule"))


@CHOICES.register(name="value")
def by_value(c: Candidates, rng: np.random.Generator) -> np.ndarray:
    """the expected number of labels one answer corrects (default; see labelwise.loop.value)"""
    return answer_value(c.belief, c.skill)


@CHOICES.register(name="doubt")
def by_doubt(c: Candidates, rng: np.random.Generator) -> np.ndarray:
    """the labels most likely wrong first (unlabeled images count as wrong where the model is unsure)"""
    return c.doubt.astype(float)


@CHOICES.register(name="uncertainty")
def by_uncertainty(c: Candidates, rng: np.random.Generator) -> np.ndarray:
    """the images the model is least sure of, ignoring the given labels (classic active learning)"""
    return c.uncertainty.astype(float)


@CHOICES.register(name="random")
def by_random(c: Candidates, rng: np.random.Generator) -> np.ndarray:
    """random images (the baseline every rule must beat)"""
    return rng.random(len(c.belief))


def reason(labeled: bool, doubt: float, confidence: float, asked_before: bool, threshold: float) -> str:
    """Why an image is asked, for the queue and the history: ``disputed`` (asked before and still
    unsure), ``suspicious_label``, ``confirm_label`` (a labeled image the rule still found worth an
    answer), ``problematic`` (unlabeled, below the confidence no method vouches under) or ``informative``."""
    if asked_before:
        return "disputed"
    if labeled:
        return "suspicious_label" if doubt >= 0.5 else "confirm_label"
    return "problematic" if confidence < threshold else "informative"
