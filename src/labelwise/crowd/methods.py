"""One label per task from several workers' answers: a registry of aggregation methods.

Every method takes the long table ``task, worker, label`` (crowd-kit's shape) and returns an
:class:`Aggregation`. Methods:

- ``ds`` (default): Dawid-Skene, labelwise's numpy EM: a confusion matrix per worker, known
  answers (``gold``) clamped during EM. It gives crowd-kit's ``DawidSkene`` labels, about 9×
  faster, and measured best on ``bench/crowd.py`` (seven real datasets): no variant tried
  (Dirichlet priors, shrinkage towards the pooled confusion matrix, other stopping rules)
  beat it beyond sampling noise.
- ``mv``: majority vote. **Tie rule**: a tie goes to the tied class whose voters agree more
  often with the majority on the tasks that are not tied (the sum of their agreement rates);
  if that ties too, to the first in class order. Deterministic, never random.
- ``gold-mv``: vote weighted by each worker's accuracy on the gold (honeypot) tasks,
  smoothed as (correct + 1) / (answered + 2), so a worker without gold answers weighs 0.5
  and one with none right is never zeroed out. Needs gold.

Any other tie (equal probabilities) goes to the first class in class order.
- crowd-kit's ``crowdkit-ds``, ``one-coin-ds``, ``glad``, ``mace`` and ``wawa`` (through
  :mod:`labelwise.crowd._compat`); ``crowdkit-ds`` uses gold, the others ignore it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._registry import Registry, kind
from ..data.natural import natural_sorted
from ..errors import LabelwiseError
from ._compat import crowdkit_class, quiet

DEFAULT_METHOD = "ds"


@dataclass
class Aggregation:
    """What a method found.

    Attributes
    ----------
    labels : Series task → label.
    probas : DataFrame task × class (columns in class order); rows sum to 1.
    skills : Series worker → the method's own skill estimate in [0, 1] (NaN where it has none).
    method : the method's name.
    """

    labels: pd.Series
    probas: pd.DataFrame
    skills: pd.Series
    method: str

    @property
    def confidence(self) -> pd.Series:
        """Probability of the chosen label, per task."""
        cols = pd.Index(self.probas.columns).get_indexer(self.labels.to_numpy())
        return pd.Series(self.probas.to_numpy()[np.arange(len(cols)), cols], index=self.labels.index, name="confidence")


@dataclass(frozen=True)
class Encoded:
    """Answers as integer codes: ``task[i], worker[i], label[i]`` index ``tasks, workers, classes``."""

    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    tasks: pd.Index
    workers: pd.Index
    classes: list[str]

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.tasks), len(self.workers), len(self.classes)

    def counts(self, weights: np.ndarray | None = None) -> np.ndarray:
        """(n_tasks, n_classes) vote counts (or sums of ``weights``)."""
        T, _, K = self.shape
        w = np.ones(len(self.task)) if weights is None else weights
        return np.bincount(self.task * K + self.label, weights=w, minlength=T * K).reshape(T, K)

    def frame(self, probas: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(probas, index=self.tasks.rename("task"), columns=pd.Index(self.classes, name="label"))


def encode(answers: pd.DataFrame, classes: Sequence[str] | None = None) -> Encoded:
    """Integer codes of a ``task, worker, label`` table; labels outside ``classes`` are an error."""
    missing = [c for c in ("task", "worker", "label") if c not in answers.columns]
    if missing:
        raise LabelwiseError(f"answers lack column(s) {', '.join(missing)}; expected task, worker, label")
    if not len(answers):
        raise LabelwiseError("no answers to aggregate")
    labels = answers["label"].astype(str)
    classes = list(classes) if classes is not None else natural_sorted(set(labels))
    lookup = {c: i for i, c in enumerate(classes)}
    codes = labels.map(lookup)
    if codes.isna().any():
        bad = labels[codes.isna()].iloc[0]
        raise LabelwiseError(f"label {bad!r} is not in the class list ({', '.join(classes)})")
    t, tasks = pd.factorize(answers["task"].astype(str))
    w, workers = pd.factorize(answers["worker"].astype(str))
    return Encoded(t, w, codes.to_numpy(np.int64), pd.Index(tasks), pd.Index(workers), classes)


def argmax_first(scores: np.ndarray) -> np.ndarray:
    """Column of each row's maximum; (near-)equal maxima go to the first column (class order).

    >>> argmax_first(np.array([[1.0, 1.0 + 1e-12, 0.5], [0.0, 1.0, 3.0]])).tolist()
    [0, 2]
    """
    best = scores.max(1, keepdims=True)
    return (scores >= best - 1e-9 * np.maximum(1.0, np.abs(best))).argmax(1)


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class Method:
    name: str
    fit: Callable[..., tuple[np.ndarray, ...]]
    description: str
    needs_gold: bool = False
    uses_gold: bool = False


#: Aggregation methods by name.
AGGREGATORS: Registry[Method] = kind("aggregators", Registry("aggregation method"))


def register_method(
    name: str, description: str, *, needs_gold: bool = False, uses_gold: bool = False
) -> Callable[[Callable[..., tuple[np.ndarray, ...]]], Callable[..., tuple[np.ndarray, ...]]]:
    """Register ``fit(enc, gold_codes, **options) -> (probas (T, K), skills (W,)[, labels (T,)])``.

    ``gold_codes`` is an int array (n_tasks,) of known class codes, ``-1`` where unknown.
    Without ``labels`` (class codes) each task takes its most probable class.
    """

    def wrap(fn: Callable[..., tuple[np.ndarray, ...]]) -> Callable[..., tuple[np.ndarray, ...]]:
        AGGREGATORS.register(
            Method(name, fn, description, needs_gold, uses_gold or needs_gold), name=name, description=description
        )
        return fn

    return wrap


def list_methods() -> list[str]:
    return AGGREGATORS.names()


def get_method(name: str) -> Method:
    return AGGREGATORS.get(name)


def aggregate_labels(
    answers: pd.DataFrame,
    method: str = DEFAULT_METHOD,
    *,
    classes: Sequence[str] | None = None,
    gold: pd.Series | None = None,
    **options: Any,
) -> Aggregation:
    """Aggregate ``answers`` (columns ``task, worker, label``) with ``method``.

    Parameters
    ----------
    answers : the long table; other columns are ignored. Repeated (task, worker) rows count
        as separate answers here (the importers keep only the first).
    method : a name from :func:`list_methods`.
    classes : the class order (default: the labels found, in natural order).
    gold : Series task → known label; used by the methods that take it.
    options : passed to the method (e.g. ``smoothing`` for ``ds``).

    Examples
    --------
    >>> df = pd.DataFrame({"task": list("aaabbb"), "worker": list("xyzxyz"), "label": list("ccdddc")})
    >>> aggregate_labels(df, "mv").labels.tolist()
    ['c', 'd']
    """
    spec = get_method(method)
    enc = encode(answers, classes)
    gold_codes = np.full(len(enc.tasks), -1, np.int64)
    if gold is not None and len(gold):
        lookup = {c: i for i, c in enumerate(enc.classes)}
        g = gold.astype(str).map(lookup)
        if g.isna().any():
            raise LabelwiseError(
                f"gold label {gold[g.isna()].iloc[0]!r} (task {g[g.isna()].index[0]!r}) is not in the "
                f"class list ({', '.join(enc.classes)})"
            )
        pos = enc.tasks.get_indexer(g.index.astype(str))
        gold_codes[pos[pos >= 0]] = g.to_numpy(np.int64)[pos >= 0]
    if spec.needs_gold and not (gold_codes >= 0).any():
        raise LabelwiseError(f"method {method!r} needs known answers for some tasks (--gold FILE, or GOLDEN columns)")
    probas, skills, *codes = spec.fit(enc, gold_codes, **options)
    probas = np.asarray(probas, np.float64)
    probas = probas / probas.sum(1, keepdims=True)
    labels = pd.Series(
        np.asarray(enc.classes, dtype=object)[codes[0] if codes else argmax_first(probas)],
        index=enc.tasks.rename("task"),
        name="label",
    )
    return Aggregation(
        labels, enc.frame(probas), pd.Series(skills, index=enc.workers.rename("worker"), name="skill"), method
    )


# ---------------------------------------------------------------- votes


@register_method(
    "mv",
    "majority vote; a tie goes to the class whose voters agree more often with the majority "
    "elsewhere, then to class order",
)
def _majority(enc: Encoded, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = enc.counts()
    return counts, *majority_vote(enc)


def majority_vote(enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """``(agreement per worker, label code per task)`` of the majority vote with its tie rule."""
    counts = enc.counts()
    tied = (counts == counts.max(1, keepdims=True)).sum(1) > 1
    untied = ~tied[enc.task]
    labels = counts.argmax(1)
    hits = np.bincount(
        enc.worker[untied], weights=(enc.label == labels[enc.task])[untied].astype(float), minlength=len(enc.workers)
    )
    seen = np.bincount(enc.worker[untied], minlength=len(enc.workers))
    rate = np.where(seen > 0, hits / np.maximum(seen, 1), hits.sum() / max(seen.sum(), 1))
    support = enc.counts(rate[enc.worker])  # summed agreement rates of each class's voters
    scores = counts + support / (support.max() + 1.0)  # breaks ties only: support/(max+1) < 1 vote
    labels = argmax_first(scores)
    return _agreement(enc, labels), labels


@register_method("gold-mv", "vote weighted by smoothed accuracy on gold tasks, (correct+1)/(n+2)", needs_gold=True)
def _gold_vote(enc: Encoded, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    weights = gold_accuracy(enc, gold)
    return enc.counts(weights[enc.worker]), weights


def gold_accuracy(enc: Encoded, gold: np.ndarray) -> np.ndarray:
    """Each worker's smoothed accuracy on gold tasks, (correct + 1) / (answered + 2)."""
    W = len(enc.workers)
    known = gold[enc.task] >= 0
    correct = np.bincount(
        enc.worker[known], weights=(enc.label[known] == gold[enc.task][known]).astype(float), minlength=W
    )
    answered = np.bincount(enc.worker[known], minlength=W)
    return (correct + 1) / (answered + 2)


def _agreement(enc: Encoded, labels: np.ndarray) -> np.ndarray:
    hits = np.bincount(enc.worker, weights=(enc.label == labels[enc.task]).astype(float), minlength=len(enc.workers))
    return hits / np.maximum(np.bincount(enc.worker, minlength=len(enc.workers)), 1)


# ---------------------------------------------------------------- Dawid-Skene


@register_method(
    "ds", "Dawid-Skene (labelwise, numpy): confusion matrix per worker, gold clamped; default", uses_gold=True
)
def _ds(enc: Encoded, gold: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    probas, prior, errors, _ = dawid_skene(enc, gold, **options)
    return probas, (errors.diagonal(axis1=1, axis2=2) * prior).sum(1)


def dawid_skene(
    enc: Encoded,
    gold: np.ndarray | None = None,
    *,
    smoothing: float = 0.0,
    n_iter: int = 100,
    tol: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """EM for the Dawid-Skene model, vectorised over answers.

    Starts from the vote shares; each M-step estimates the class prior and every worker's
    confusion matrix ``errors[w, true, given]`` from the task posteriors (plus ``smoothing``
    pseudo-answers in every cell; probabilities are floored at 1e-10); each E-step recomputes
    the posteriors. Tasks with a known answer (``gold[t] >= 0``) keep it. Stops when the
    objective crowd-kit's ``DawidSkene`` monitors (expected log-likelihood per answer plus
    posterior entropy) gains less than ``tol``, so with ``smoothing=0`` the labels are crowd-kit's.

    Returns
    -------
    probas (n_tasks, n_classes), prior (n_classes,), errors (n_workers, n_classes, n_classes),
    and the number of EM iterations run.
    """
    T, W, K = enc.shape
    t, w, lab = enc.task, enc.worker, enc.label
    known = np.flatnonzero(gold >= 0) if gold is not None else np.array([], np.int64)

    def clamp(p: np.ndarray) -> np.ndarray:
        if len(known):
            p[known] = np.eye(K)[gold[known]]  # type: ignore[index]
        return p

    def m_step(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prior = np.clip(p.mean(0), 1e-10, None)
        counts: np.ndarray = np.stack(
            [np.bincount(w * K + lab, weights=p[t, k], minlength=W * K).reshape(W, K) for k in range(K)], 1
        )
        counts += smoothing
        errors = np.clip(counts, 1e-10, None)
        return prior, errors / errors.sum(2, keepdims=True)

    probas = clamp(enc.counts() / enc.counts().sum(1, keepdims=True))
    prior, errors = m_step(probas)
    loss, it = -math.inf, 0
    for it in range(1, n_iter + 1):  # noqa: B007  (returned: how many iterations ran)
        log_err = np.log(errors)[w, :, lab]  # (n_answers, K): log P(given | true = k)
        ll = np.log(prior)[None, :] + np.stack(
            [np.bincount(t, weights=log_err[:, k], minlength=T) for k in range(K)], 1
        )
        probas = np.exp(ll - ll.max(1, keepdims=True))
        probas = clamp(probas / probas.sum(1, keepdims=True))
        prior, errors = m_step(probas)
        safe = np.clip(probas, 1e-10, None)
        objective = (
            (probas[t] * (np.log(errors)[w, :, lab] + np.log(prior))).sum() - (safe * np.log(safe)).sum()
        ) / len(t)
        if objective - loss < tol:
            break
        loss = objective
    return probas, prior, errors, it


# ---------------------------------------------------------------- crowd-kit


def _long(enc: Encoded) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": enc.tasks[enc.task],
            "worker": enc.workers[enc.worker],
            "label": np.asarray(enc.classes, dtype=object)[enc.label],
        }
    )


def _crowdkit_probas(enc: Encoded, probas: pd.DataFrame) -> np.ndarray:
    out = probas.reindex(index=enc.tasks, columns=enc.classes).fillna(0.0).to_numpy(np.float64, copy=True)
    empty = out.sum(1) == 0
    out[empty] = enc.counts()[empty]  # a method that returns no row for a task: its votes
    return out


def _skills(enc: Encoded, values: pd.Series | None) -> np.ndarray:
    if values is None:
        return np.full(len(enc.workers), np.nan)
    return values.reindex(enc.workers).to_numpy(np.float64)


def _run_crowdkit(enc: Encoded, name: str, options: dict[str, Any], *fit_args: Any) -> tuple[Any, np.ndarray]:
    """Fit crowd-kit's ``name`` on the answers; returns the model and (n_tasks, K) probabilities."""
    with quiet():
        model = crowdkit_class(name)(**options)
        probas = model.fit_predict_proba(_long(enc), *fit_args)
    return model, _crowdkit_probas(enc, probas)


@register_method("crowdkit-ds", "crowd-kit DawidSkene (uses gold)", uses_gold=True)
def _ck_ds(enc: Encoded, gold: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    known = gold >= 0
    true = (
        pd.Series(np.asarray(enc.classes, dtype=object)[gold[known]], index=enc.tasks[known]) if known.any() else None
    )
    _, probas = _run_crowdkit(enc, "DawidSkene", options, true)
    return probas, _agreement(enc, argmax_first(probas))


@register_method("one-coin-ds", "crowd-kit OneCoinDawidSkene (one accuracy per worker)")
def _ck_one_coin(enc: Encoded, gold: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    model, probas = _run_crowdkit(enc, "OneCoinDawidSkene", options)
    return probas, _skills(enc, model.skills_)


@register_method("glad", "crowd-kit GLAD (worker expertise and task difficulty); slow on large sets")
def _ck_glad(enc: Encoded, gold: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    model, probas = _run_crowdkit(enc, "GLAD", options)
    return probas, 1 / (1 + np.exp(-_skills(enc, model.alphas_)))  # P(right) on a task of unit difficulty


@register_method("mace", "crowd-kit MACE (workers who know or spam); slow on large sets")
def _ck_mace(enc: Encoded, gold: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    model, probas = _run_crowdkit(enc, "MACE", options)
    knowing = pd.Series(model.spamming_[:, 1], index=pd.factorize(_long(enc)["worker"])[1])
    return probas, _skills(enc, knowing)


@register_method("wawa", "crowd-kit Wawa (vote weighted by agreement with the majority)")
def _ck_wawa(enc: Encoded, gold: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    model, probas = _run_crowdkit(enc, "Wawa", options)
    return probas, _skills(enc, model.skills_)
