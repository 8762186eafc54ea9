"""Query strategies, registered by name: which unlabeled images to label next.

A strategy is a function ``(pool, n, rng) -> Selection`` over a :class:`Pool` (the
embeddings of every pool row, the labels so far with ``-1`` for unlabeled, and the fitted
model in the loop). :func:`select` is the entry point: it validates the request, fits the
default model when a strategy needs one and none is given, and returns the picks.

Model probabilities are computed in batches of ``Pool.batch_size`` candidates
(:func:`~labelwise.active.scores.stream_scores`), so scoring a 100k-image pool holds one
batch of predictions at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .._registry import Registry, kind
from ..errors import LabelwiseError
from .models import DEFAULT_MODEL, LoopModel, make_model
from .scores import (
    bald_scores,
    entropy_scores,
    least_confident_scores,
    margin_scores,
    stream_scores,
)
from .selection import (
    badge_seeding,
    check_budget,
    cluster_top,
    k_center_greedy,
    top_distinct,
    typiclust,
)

log = logging.getLogger("labelwise")

DEFAULT_STRATEGY = "auto"
# auto: TypiClust while the labeled set holds fewer than this many labels per class (and
# always on a cold start), then margin with diversity. Measured on MNIST-5k, 20 → 500 labels,
# spreading_logreg on simclr features (bench/active.py): area under the curve 0.962 against
# diverse_margin 0.961, margin 0.960, badge 0.959, coreset 0.955, typiclust 0.952, random 0.951.
AUTO_TYPICLUST_PER_CLASS = 5
MC_SAMPLES = 20


@dataclass
class Pool:
    """What a strategy sees.

    Attributes
    ----------
    embeddings : (n, d) array, every pool row (labeled and not); diversity is measured here.
    labels : (n,) int array, class index or ``-1`` for the unlabeled rows (the candidates).
    n_classes : number of classes.
    model : the model in the loop, fitted on ``inputs`` and ``labels`` (or None).
    inputs : what ``model`` takes for each row (default: ``embeddings``).
    batch_size : candidates scored per batch.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    n_classes: int
    model: LoopModel | None = None
    inputs: np.ndarray | None = None
    batch_size: int = 4096
    random_state: int = 0

    @property
    def labeled(self) -> np.ndarray:
        return np.flatnonzero(self.labels >= 0)

    @property
    def candidates(self) -> np.ndarray:
        return np.flatnonzero(self.labels < 0)

    @property
    def model_inputs(self) -> np.ndarray:
        return self.embeddings if self.inputs is None else self.inputs

    def fitted_model(self) -> LoopModel:
        """The model in the loop; the default one, fitted on the labels, when none was given."""
        if self.model is None:
            if not len(self.labeled):
                raise LabelwiseError(
                    "this strategy needs labeled images to fit a model; start with 'typiclust' or 'random'"
                )
            self.model = make_model(DEFAULT_MODEL, self.n_classes, random_state=self.random_state)
            self.model.fit(self.model_inputs, self.labels)
        return self.model

    def candidate_scores(self, score: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``score(probabilities)`` of every candidate, streamed in batches."""
        model, cand = self.fitted_model(), self.candidates
        return stream_scores(lambda r: model.proba_rows(cand[r]), len(cand), score, batch_size=self.batch_size)


@dataclass
class Selection:
    """Rows picked (pool row indices, in pick order) and the strategy's score of each
    (higher = more useful to label; its meaning depends on the strategy)."""

    rows: np.ndarray
    scores: np.ndarray
    strategy: str


StrategyFn = Callable[[Pool, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
F = TypeVar("F", bound=StrategyFn)


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    fn: StrategyFn
    needs_model: bool
    description: str


#: Query strategies by name.
STRATEGIES: Registry[StrategyInfo] = kind("strategies", Registry("strategy"))


def register_strategy(name: str, *, needs_model: bool, description: str) -> Callable[[F], F]:
    """Decorator: register ``fn(pool, n, rng) -> (rows, scores)`` as strategy ``name``."""

    def wrap(fn: F) -> F:
        STRATEGIES.register(StrategyInfo(name, fn, needs_model, description), name=name, description=description)
        return fn

    return wrap


def list_strategies() -> list[str]:
    """Names that :func:`select` (and ``--strategy``) accept."""
    return STRATEGIES.names()


def get_strategy(name: str) -> StrategyInfo:
    return STRATEGIES.get(name)


def select(
    embeddings: np.ndarray,
    labels: np.ndarray,
    n: int,
    *,
    strategy: str = DEFAULT_STRATEGY,
    model: LoopModel | None = None,
    inputs: np.ndarray | None = None,
    n_classes: int | None = None,
    batch_size: int = 4096,
    random_state: int = 0,
) -> Selection:
    """Pick ``n`` of the unlabeled rows (``labels == -1``) to label next.

    Parameters
    ----------
    embeddings : (n_rows, d) array of every pool row.
    labels : (n_rows,) class indices, ``-1`` for unlabeled rows.
    n : how many to pick (at most the number of unlabeled rows).
    strategy : a name of :func:`list_strategies`.
    model : a model in the loop already fitted on ``inputs``/``embeddings`` and ``labels``;
        default: the default loop model (``spreading_logreg``), fitted here when the strategy needs one.
    inputs : the model's input per row when it is not ``embeddings`` (e.g. pixels).
    n_classes : default the model's, else ``labels.max() + 1``.
    batch_size : candidates scored at a time.
    random_state : seed of every random choice (ties, k-means, sampling).

    Returns
    -------
    Selection
        ``rows`` (pool row indices, best first, never a labeled row, never twice) and ``scores``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (30, 2)), rng.normal(6, 1, (30, 2))]
    >>> y = np.full(60, -1); y[0], y[30] = 0, 1
    >>> picked = select(X, y, 5, strategy="margin", random_state=0)
    >>> len(set(picked.rows.tolist()) - {0, 30})
    5
    """
    info = get_strategy(strategy)
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels, dtype=np.int64)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise LabelwiseError(
            f"embeddings must be (n, d) with one row per label; got {embeddings.shape} for {len(labels)} labels"
        )
    if n_classes is None:
        n_classes = model.n_classes if model is not None else max(int(labels.max()) + 1, 1)
    pool = Pool(
        embeddings, labels, int(n_classes), model=model, inputs=inputs, batch_size=batch_size, random_state=random_state
    )
    check_budget(n, len(pool.candidates))
    if info.needs_model and not len(pool.labeled):
        raise LabelwiseError(
            f"strategy {strategy!r} needs labeled images to fit a model; start with 'typiclust' or 'random'"
        )
    rows, scores = info.fn(pool, n, np.random.default_rng(random_state))
    rows = np.asarray(rows, dtype=np.int64)
    if len(np.unique(rows)) != len(rows) or (labels[rows] >= 0).any():
        raise AssertionError(f"strategy {strategy} picked a row twice or a labeled row")  # a bug, not a user error
    return Selection(rows, np.asarray(scores, dtype=np.float64), strategy)


# ---------------------------------------------------------------- the strategies


@register_strategy("random", needs_model=False, description="uniformly at random (the baseline)")
def _random(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cand = pool.candidates
    keys = rng.random(len(cand))
    order = np.argsort(-keys, kind="stable")[:n]
    return cand[order], keys[order]


def _uncertainty(score: Callable[[np.ndarray], np.ndarray]) -> StrategyFn:
    def pick(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return top_distinct(pool.candidate_scores(score), pool.embeddings, pool.candidates, n, rng=rng)

    return pick


for _name, _score, _text in (
    ("least_confident", least_confident_scores, "lowest top probability"),
    ("margin", margin_scores, "smallest gap between the two likeliest classes"),
    ("entropy", entropy_scores, "highest entropy of the predicted distribution"),
):
    register_strategy(_name, needs_model=True, description=f"{_text}; near-duplicates skipped")(_uncertainty(_score))


@register_strategy(
    "diverse_margin",
    needs_model=True,
    description="margin with diversity: the 10×n most uncertain, clustered into n groups, best of each",
)
def _diverse_margin(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return cluster_top(pool.candidate_scores(margin_scores), pool.embeddings, pool.candidates, n, rng=rng)


@register_strategy(
    "bald",
    needs_model=True,
    description="BALD: mutual information of Monte Carlo dropout samples (an mlp head when the model has no dropout)",
)
def _bald(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    model = pool.fitted_model()
    inputs = pool.model_inputs
    if not model.has_dropout:  # sample an mlp head on the embeddings instead
        model = make_model("mlp", pool.n_classes, random_state=int(rng.integers(2**31 - 1))).fit(
            pool.embeddings, pool.labels
        )
        inputs = pool.embeddings
    seed = int(rng.integers(2**31 - 1))
    cand = pool.candidates
    sampler = model.mc_samples  # type: ignore[attr-defined]
    scores = stream_scores(
        lambda r: sampler(inputs[cand[r]], n_samples=MC_SAMPLES, random_state=seed),
        len(cand),
        bald_scores,
        batch_size=pool.batch_size,
    )
    return top_distinct(scores, pool.embeddings, cand, n, rng=rng)


@register_strategy("coreset", needs_model=False, description="k-center greedy on the embeddings (core-set)")
def _coreset(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return k_center_greedy(pool.embeddings, pool.labeled, pool.candidates, n, rng=rng)


@register_strategy(
    "badge", needs_model=True, description="BADGE: k-means++ seeding on gradient embeddings (uncertain and diverse)"
)
def _badge(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    model, cand, inputs = pool.fitted_model(), pool.candidates, pool.model_inputs
    residuals = np.empty((len(cand), pool.n_classes))
    parts = []
    for start in range(0, len(cand), pool.batch_size):
        rows = cand[start : start + pool.batch_size]
        p = model.proba_rows(rows)
        p[np.arange(len(p)), p.argmax(1)] -= 1.0  # p - onehot(prediction)
        residuals[start : start + len(rows)] = p
        parts.append(model.features(inputs[rows]))
    features = np.concatenate(parts) if parts else np.zeros((0, pool.embeddings.shape[1]))
    return badge_seeding(residuals, features, cand, n, rng=rng)


@register_strategy(
    "typiclust",
    needs_model=False,
    description="TypiClust (cold start): the most typical image of the largest clusters without labels",
)
def _typiclust(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return typiclust(pool.embeddings, pool.labeled, pool.candidates, n, rng=rng)


@register_strategy(
    "auto",
    needs_model=False,
    description=f"default: typiclust below {AUTO_TYPICLUST_PER_CLASS} labels per class, then diverse_margin",
)
def _auto(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if len(pool.labeled) < AUTO_TYPICLUST_PER_CLASS * max(pool.n_classes, 1):
        return _typiclust(pool, n, rng)
    return _diverse_margin(pool, n, rng)
