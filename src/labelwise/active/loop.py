"""One simulated active-learning run on arrays: an oracle answers every query with the
true label, the model in the loop is refitted after each round and scored on a test set."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from ..errors import LabelwiseError
from .models import DEFAULT_MODEL, LoopModel, make_model
from .selection import typiclust
from .strategies import DEFAULT_STRATEGY, select

log = logging.getLogger("labelwise")

STARTS = ("random", "typiclust")


@dataclass
class LoopResult:
    """``rounds``: one row per round (``round, n_labels, accuracy, balanced_accuracy,
    seconds``); ``picks``: every labeled pool row (``round, row``), the start set as round 0."""

    rounds: pd.DataFrame
    picks: pd.DataFrame


def start_rows(
    embeddings: np.ndarray,
    y: np.ndarray,
    n_start: int,
    *,
    start: str = "random",
    per_class: bool = False,
    n_classes: int | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """The first labeled rows: ``n_start`` in all, or ``n_start`` per class (``per_class``:
    drawn by class from the oracle's labels for ``random``; ``n_start × n_classes`` rows for
    ``typiclust``, which looks at no label)."""
    if start not in STARTS:
        raise LabelwiseError(f"unknown start {start!r}; choose one of {', '.join(STARTS)}")
    k = int(n_classes if n_classes is not None else y.max() + 1)
    total = n_start * k if per_class else n_start
    if n_start < 1 or total > len(y):
        raise LabelwiseError(f"n_start must be between 1 and the {len(y)} pool images, got {total}")
    if start == "typiclust":
        return typiclust(embeddings, np.zeros(0, np.int64), np.arange(len(y)), total, rng=rng)[0]
    if not per_class:
        return rng.choice(len(y), total, replace=False)
    rows = []
    for c in range(k):
        members = np.flatnonzero(y == c)
        if len(members) < n_start:
            raise LabelwiseError(f"class {c} has {len(members)} pool images, fewer than n_start={n_start} per class")
        rows.append(rng.choice(members, n_start, replace=False))
    return rng.permutation(np.concatenate(rows))


def run_loop(
    embeddings: np.ndarray,
    y: np.ndarray,
    test_embeddings: np.ndarray,
    y_test: np.ndarray,
    *,
    strategy: str = DEFAULT_STRATEGY,
    model: str = DEFAULT_MODEL,
    semi: bool = False,
    n_start: int = 20,
    start: str = "random",
    per_class: bool = False,
    n_new: int = 40,
    rounds: int = 10,
    patience: int | None = None,
    n_classes: int | None = None,
    inputs: np.ndarray | None = None,
    test_inputs: np.ndarray | None = None,
    model_options: dict[str, Any] | None = None,
    batch_size: int = 4096,
    random_state: int = 0,
) -> LoopResult:
    """Simulate pool-based active learning with an oracle.

    Round 0 labels the start set (:func:`start_rows`); each next round asks ``strategy``
    for ``n_new`` more pool rows, reveals their labels ``y``, refits ``model`` and scores it
    on the test rows. Stops after ``rounds`` rounds, when the pool is used up, or after
    ``patience`` rounds without a better test accuracy.

    Parameters
    ----------
    embeddings, y : (n, d) pool embeddings and their true labels (the oracle).
    test_embeddings, y_test : the test set.
    inputs, test_inputs : the model's inputs when they are not the embeddings (``cnn``: pixels).
    model_options : passed to :func:`~labelwise.active.models.make_model` (epochs, augment…).
    """
    y = np.asarray(y, dtype=np.int64)
    k = int(n_classes if n_classes is not None else max(y.max(), np.max(y_test)) + 1)
    rng = np.random.default_rng(random_state)
    x_fit = embeddings if inputs is None else inputs
    x_test = test_embeddings if test_inputs is None else test_inputs
    labels = np.full(len(y), -1, dtype=np.int64)
    first = start_rows(embeddings, y, n_start, start=start, per_class=per_class, n_classes=k, rng=rng)
    labels[first] = y[first]
    picks = [pd.DataFrame({"round": 0, "row": first})]
    rows, best, stale = [], -1.0, 0
    fitted: LoopModel | None = None  # the model of the round before
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        if r > 0:
            chosen = select(
                embeddings,
                labels,
                min(n_new, int((labels < 0).sum())),
                strategy=strategy,
                model=fitted,
                inputs=inputs,
                n_classes=k,
                batch_size=batch_size,
                random_state=int(rng.integers(2**31 - 1)),
            )
            labels[chosen.rows] = y[chosen.rows]
            picks.append(pd.DataFrame({"round": r, "row": chosen.rows}))
        options = dict(model_options or {})
        fitted = make_model(model, k, semi=semi, embeddings=embeddings, random_state=random_state + r, **options)
        fitted.fit(x_fit, labels)
        pred = fitted.predict_proba(x_test).argmax(1)
        acc = float(accuracy_score(y_test, pred))
        rows.append(
            {
                "round": r,
                "n_labels": int((labels >= 0).sum()),
                "accuracy": acc,
                "balanced_accuracy": float(balanced_accuracy_score(y_test, pred)),
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        log.info(
            "%s/%s seed %d round %d: %d labels, accuracy %.4f",
            strategy,
            model,
            random_state,
            r,
            rows[-1]["n_labels"],
            acc,
        )
        if acc > best + 1e-12:
            best, stale = acc, 0
        else:
            stale += 1
        if (labels < 0).sum() == 0 or (patience is not None and stale >= patience):
            break
    return LoopResult(pd.DataFrame(rows), pd.concat(picks, ignore_index=True))
