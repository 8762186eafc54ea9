"""Dynamic overlap's model: per-annotator Dawid-Skene confusion matrices, refitted from the database as
answers come, and the decision to ask one more annotator.

A submit only multiplies a few matrix rows of the last fit (:meth:`Confusions.posterior`); the fit itself
(:func:`fit_confusions`) runs every so many answers or seconds, by default in a background thread, so a
submit stays fast.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from ..crowd.methods import dawid_skene, encode
from . import queries as q

log = logging.getLogger("labelwise")

#: a new annotator's assumed accuracy, and how many pseudo-answers per true class that assumption weighs
PRIOR_ACCURACY = 0.8
PRIOR_STRENGTH = 2.0


@dataclass(frozen=True)
class Confusions:
    """Per-annotator confusion matrices ``errors[true, given]`` and the class prior from the last fit."""

    classes: list[str]
    prior: np.ndarray
    by_worker: dict[int, np.ndarray]
    default: np.ndarray
    answers: int = 0  # answers the fit saw
    fitted_at: float = 0.0

    def posterior(self, votes: Sequence[tuple[int, str]]) -> np.ndarray:
        """The class posterior of one task from its ``(annotator_id, label)`` answers."""
        index = {c: i for i, c in enumerate(self.classes)}
        log_p = np.log(self.prior).copy()
        for worker, label in votes:
            if label in index:
                log_p += np.log(self.by_worker.get(worker, self.default)[:, index[label]])
        p = np.exp(log_p - log_p.max())
        return np.asarray(p / p.sum())


def prior_confusion(n_classes: int) -> np.ndarray:
    if n_classes == 1:
        return np.ones((1, 1))
    off = (1 - PRIOR_ACCURACY) / (n_classes - 1)
    return np.full((n_classes, n_classes), off) + np.eye(n_classes) * (PRIOR_ACCURACY - off)


def prior_confusions(classes: Sequence[str], fitted_at: float = 0.0) -> Confusions:
    K = len(classes)
    return Confusions(list(classes), np.full(K, 1.0 / K), {}, prior_confusion(K), 0, fitted_at)


def fit_confusions(rows: pd.DataFrame, classes: Sequence[str], fitted_at: float = 0.0) -> Confusions:
    """Dawid-Skene over ``rows`` (``task, worker, label, gold``: gold None where unknown).

    Only tasks with a gold label or at least two answers inform the confusions (a lone answer always
    agrees with itself and would make everyone look perfect); each worker's matrix adds
    :data:`PRIOR_STRENGTH` pseudo-answers per true class at :data:`PRIOR_ACCURACY`, so a new annotator
    is trusted moderately, not fully. The class prior is smoothed by one pseudo-task per class.
    """
    classes = list(classes)
    K = len(classes)
    base = prior_confusions(classes, fitted_at)
    if not len(rows):
        return base
    rows = rows[rows["label"].isin(classes)]
    per_task = rows.groupby("task")["worker"].transform("size")
    rows = rows[(per_task >= 2) | rows["gold"].notna()]
    if not len(rows) or K < 2:
        return Confusions(classes, base.prior, {}, base.default, len(rows), fitted_at)
    enc = encode(rows.assign(task=rows["task"].astype(str), worker=rows["worker"].astype(str)), classes)
    lookup = {c: i for i, c in enumerate(classes)}
    gold_by_task = rows.assign(task=rows["task"].astype(str)).groupby("task")["gold"].first()
    gold = np.array([lookup.get(g, -1) if isinstance(g, str) else -1 for g in gold_by_task.reindex(enc.tasks)])
    probas, _, _, _ = dawid_skene(enc, gold)
    W = len(enc.workers)
    soft = np.stack(
        [
            np.bincount(enc.worker * K + enc.label, weights=probas[enc.task, k], minlength=W * K).reshape(W, K)
            for k in range(K)
        ],
        1,
    ).astype(np.float64)  # (W, true, given)
    soft += PRIOR_STRENGTH * base.default[None]
    matrices = soft / soft.sum(2, keepdims=True)
    prior = (probas.sum(0) + 1.0) / (len(probas) + K)
    workers = {int(w): matrices[i] for i, w in enumerate(enc.workers)}
    return Confusions(classes, prior, workers, base.default, len(rows), fitted_at)


def should_raise(
    confusions: Confusions,
    votes: Sequence[tuple[int, str]],
    counted: int,
    target: int,
    max_overlap: int | None,
    confident: float,
) -> tuple[bool, float]:
    """(ask one more annotator, the top posterior) for a task whose counted answers reached its target."""
    if max_overlap is None or counted < target or target >= max_overlap or not votes:
        return False, 1.0
    top = float(confusions.posterior(votes).max())
    return top < confident, top


class OverlapModel:
    """The confusions in use (:attr:`confusions`), refitted over the counted answers once ``every`` new ones
    came or ``seconds`` passed since the last fit. ``mode``: ``background`` (a thread; the last fit serves
    meanwhile), ``sync`` (in the caller: deterministic, for tests) or ``off`` (the prior stays)."""

    def __init__(self, engine: Engine, classes: Sequence[str], clock: Callable[[], float]) -> None:
        self._engine = engine
        self._classes = list(classes)
        self._clock = clock
        self.confusions = prior_confusions(self._classes, clock())
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._since_fit: int | None = None  # None: fit once the first answer comes

    def answered(self, n: int, *, every: int, seconds: float, mode: str) -> None:
        """``n`` answers were stored: refit when due."""
        if mode == "off" or not n:
            return
        with self._lock:
            first = self._since_fit is None
            self._since_fit = (self._since_fit or 0) + n
            due = first or self._since_fit >= every or self._clock() - self.confusions.fitted_at >= seconds
            if not due or (self._thread is not None and self._thread.is_alive()):
                return
            self._since_fit = 0
            if mode != "sync":
                self._thread = threading.Thread(target=self._refit_quietly, name="labelwise-refit", daemon=True)
                self._thread.start()
                return
        self.refit()

    def refit(self) -> None:
        """Fit the confusions over every counted label (with the gold labels of gold tasks) now."""
        with self._engine.connect() as conn:
            found = conn.execute(q.MODEL_ROWS).all()
        frame = pd.DataFrame(
            {
                "task": [r.task_id for r in found],
                "worker": [r.annotator_id for r in found],
                "label": [r.label for r in found],
                "gold": [r.gold_label if r.role != "task" else None for r in found],
            }
        )
        self.confusions = fit_confusions(frame, self._classes, self._clock())

    def _refit_quietly(self) -> None:
        try:
            self.refit()
        except Exception:  # the last fit stays in use; a later answer tries again
            log.exception("refitting the annotators' confusion matrices failed")

    def close(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
