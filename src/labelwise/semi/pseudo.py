"""Array-level pseudo-labeling: one method's labels, every method's vote, and the
problematic set capped by a labeling budget."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import LabelwiseError
from .ensemble import DEFAULT_METHOD
from .methods import check_inputs, get_method, list_methods

log = logging.getLogger("labelwise")

OVER_BUDGET = "uncertain, beyond the labeling budget"


@dataclass
class PseudoLabels:
    """Result of :func:`pseudo_label`, one entry per row.

    Attributes
    ----------
    labels : int (n,): the given label, else the method's pseudo label (every row has one).
    confidence : float (n,): in [0, 1]; 1 for labeled rows.
    source : object (n,): ``given`` or ``pseudo``.
    vouched : bool (n,): pseudo labels the method vouches for (not problematic to it, budget aside).
    problematic : bool (n,): rows worth a human's time (at most ``budget``).
    why : object (n,): why a row is problematic (or uncertain beyond the budget), else ``""``.
    votes : ``{method: (n,) int}`` every method's label.
    method : the method that decided.
    """

    labels: np.ndarray
    confidence: np.ndarray
    source: np.ndarray
    vouched: np.ndarray
    problematic: np.ndarray
    why: np.ndarray
    method: str
    votes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_pseudo(self) -> int:
        return int((self.source == "pseudo").sum())


def pseudo_label(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    method: str = DEFAULT_METHOD,
    n_classes: int | None = None,
    budget: int | None = None,
    votes: bool = True,
    random_state: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
) -> PseudoLabels:
    """Pseudo-label the rows with ``labels == -1`` by ``method``.

    Every unlabeled row gets the method's best guess and its confidence. Rows the method
    does not vouch for are problematic; with ``budget`` only the ``budget`` least confident
    of them stay problematic (the labeling tasks). Given labels are never changed, and a
    class without a labeled row is never predicted.

    Parameters
    ----------
    embeddings : (n, d) array.
    labels : int (n,) class codes, ``-1`` = unlabeled.
    method : one of :func:`list_methods` (default ``ensemble``).
    budget : most problematic rows to return (``None``: all).
    votes : also run every other method for the ``vote_<method>`` columns.
    options : ``{method: {parameter: value}}`` for the methods' estimators.

    Examples
    --------
    >>> X = np.array([[0, 1.0], [0.1, 1], [1, 0], [1, 0.1], [0.05, 1], [1, 0.05]])
    >>> found = pseudo_label(X, np.array([0, -1, 1, -1, -1, -1]), method="spreading", votes=False,
    ...                      options={"spreading": {"n_neighbors": 3, "threshold": 0.5}})
    >>> found.labels.tolist(), found.source.tolist()
    ([0, 0, 1, 1, 0, 1], ['given', 'pseudo', 'given', 'pseudo', 'pseudo', 'pseudo'])
    """
    X, y, k = check_inputs(embeddings, labels, n_classes)
    if budget is not None and (isinstance(budget, bool) or int(budget) != budget or budget < 0):
        raise LabelwiseError(f"budget must be a whole number >= 0, got {budget!r}")
    options = options or {}
    get_method(method)  # an unknown name: a clear error before any work
    unlabeled = y < 0
    if not unlabeled.any():
        log.warning("no unlabeled images: nothing to pseudo-label")
    elif budget is not None and budget > unlabeled.sum():
        log.warning("the budget (%d) is larger than the pool of %d unlabeled image(s)", budget, int(unlabeled.sum()))
    names = [method] + ([m for m in list_methods() if m != method] if votes else [])
    fitted: dict[str, Any] = {}
    for name in names:
        estimator = get_method(name, **options.get(name, {}))
        params = estimator.get_params()
        estimator.set_params(n_classes=k, **({"random_state": random_state} if "random_state" in params else {}))
        fitted[name] = estimator.fit(X, y) if unlabeled.any() else None
    chosen = fitted[method]
    if chosen is None:
        empty = np.zeros(len(y), bool)
        return PseudoLabels(
            y.copy(),
            np.ones(len(y)),
            np.full(len(y), "given", dtype=object),
            empty,
            empty.copy(),
            np.full(len(y), "", dtype=object),
            method,
            {n: y.copy() for n in names},
        )
    doubtful = np.asarray(chosen.problematic_, bool) & unlabeled
    why = np.where(unlabeled, chosen.why_, "").astype(object)
    problematic, why = apply_budget(doubtful, chosen.confidence_, why, budget)
    return PseudoLabels(
        labels=np.where(unlabeled, chosen.transduction_, y).astype(np.int64),
        confidence=np.where(unlabeled, chosen.confidence_, 1.0),
        source=np.where(unlabeled, "pseudo", "given").astype(object),
        vouched=unlabeled & ~doubtful,
        problematic=problematic,
        why=why,
        method=method,
        votes={name: np.asarray(est.transduction_, np.int64) for name, est in fitted.items()},
    )


def apply_budget(
    problematic: np.ndarray, confidence: np.ndarray, why: np.ndarray, budget: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``budget`` least confident problematic rows (ties: lower row first); the
    others lose the flag and say why.

    >>> p, w = apply_budget(np.array([True, True, False, True]), np.array([.5, .2, .9, .4]),
    ...                     np.array(["a", "b", "", "c"], dtype=object), 2)
    >>> p.tolist(), w.tolist()
    ([False, True, False, True], ['a; uncertain, beyond the labeling budget', 'b', '', 'c'])
    """
    problematic = np.asarray(problematic, bool).copy()
    why = np.asarray(why, dtype=object).copy()
    flagged = np.flatnonzero(problematic)
    if budget is None:
        return problematic, why
    if budget > len(flagged):
        log.info("the budget (%d) covers all %d problematic image(s)", budget, len(flagged))
        return problematic, why
    order = flagged[np.argsort(np.asarray(confidence)[flagged], kind="stable")]
    dropped = order[int(budget) :]
    problematic[dropped] = False
    why[dropped] = [f"{w}; {OVER_BUDGET}" if w else OVER_BUDGET for w in why[dropped]]
    return problematic, why
