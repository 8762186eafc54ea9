"""Models in the active-learning loop, registered by name.

Each is a scikit-learn style estimator whose ``fit(X, y)`` takes every pool row, with
``y == -1`` for the unlabeled ones: supervised models use only the labeled rows,
semi-supervised ones (``spreading``, ``spreading_logreg``, or any model with ``semi=True``)
use the others too. Probabilities always have ``n_classes`` columns, also while a class has
no label yet.

- ``spreading_logreg`` (default): the mean of ``spreading`` and of a logistic regression
  trained on the labels plus the spread label of every other pool row, weighted by its
  confidence. Spreading carries the first rounds (0.88 test accuracy from 20 MNIST labels
  on simclr features), the regression the later ones (0.97 at 500, where spreading alone
  stays at 0.96; bench/active.py).
- ``spreading``: label spreading (Zhou et al., 2004) over a cosine k-nearest-neighbour
  graph of the pool's embeddings, with scikit-learn's ``LabelSpreading``.
- ``logreg``: logistic regression on standardised embeddings.
- ``linear``, ``mlp``: labelwise's torch heads (:class:`~labelwise.train.NeuralClassifier`);
  ``mlp`` has dropout, so BALD samples it with Monte Carlo dropout.
- ``cnn``: labelwise's small CNN on the pixels (slow on CPU; for studies).
- ``resnet18`` … (every torchvision architecture of :mod:`labelwise.features`): fine-tuned on
  the pixels, from the official weights when ``pretrained`` (slow on CPU; for studies).

``semi=True`` adds pseudo-labels to a supervised model (:class:`PseudoLabeled`): every
unlabeled pool row joins its training set with the label that spreading gives it, weighted
by that label's probability.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._registry import Registry, kind
from ..errors import LabelwiseError
from ..features.neighbors import (
    SPREAD_ALPHA,
    SPREAD_NEIGHBORS,
    SPREAD_POWER,
    fit_spreading,
    normalise_rows,
)
from ..features.neighbors import CosineKNNKernel as CosineKNNKernel  # re-exported
from ..train.models import MODELS as _TRAIN_MODELS

log = logging.getLogger("labelwise")

# The pretrained networks of `train` (every fixed-name model on pixels but the cnn): fine-tuned in the loop.
PRETRAINED = tuple(
    n for n in _TRAIN_MODELS.names() if "<" not in n and n != "cnn" and _TRAIN_MODELS.get(n).input == "pixels"
)
SEMI_SUPERVISED = ("spreading_logreg", "spreading")  # models that use the unlabeled rows themselves
NEURAL = ("linear", "mlp", "cnn", *PRETRAINED)

DEFAULT_MODEL = "spreading_logreg"
# Label spreading (SPREAD_NEIGHBORS, SPREAD_ALPHA, SPREAD_POWER, CosineKNNKernel): one
# implementation with pseudo-labeling, labelwise.semi.spreading, where the defaults are measured.
# Pseudo-labels below this spread probability are left out; the others are weighted by it.
# Measured on MNIST-5k with logreg: all rows, weighted (0) beat the confident ones at 0.9
# unweighted by 0.6 points of area under the curve.
PSEUDO_THRESHOLD = 0.0


# ---------------------------------------------------------------- models


class LoopModel:
    """Base of the models in the loop.

    Subclasses implement ``_fit(X, y, sample_weight)`` and ``_proba(X)``; the base stores the fitted
    rows (``X_``, for :meth:`proba_rows`) and widens probabilities to ``n_classes`` columns.
    """

    has_dropout = False

    def __init__(self, n_classes: int, *, random_state: int = 0) -> None:
        self.n_classes = n_classes
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LoopModel:
        """Fit on every pool row ``X`` (n, ...) with labels ``y`` (n,), ``-1`` = unlabeled;
        ``sample_weight`` (n,) weighs the labeled rows' loss (supervised models)."""
        y = np.asarray(y, dtype=np.int64)
        if len(X) != len(y):
            raise LabelwiseError(f"X has {len(X)} rows but y has {len(y)}")
        if not (y >= 0).any():
            raise LabelwiseError("the model in the loop needs at least one labeled row")
        self.X_ = X
        self._fit(X, y, sample_weight)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities ``(len(X), n_classes)`` for new rows."""
        return self._proba(X)

    def proba_rows(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities of fitted rows ``rows`` (transductive for graph models)."""
        return self.predict_proba(self.X_[rows])

    def features(self, X: np.ndarray) -> np.ndarray:
        """The input of the model's last linear layer (BADGE): the embeddings themselves
        unless the model learns a representation."""
        return np.asarray(X, dtype=np.float32)

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        raise NotImplementedError

    def _proba(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _widen(self, probs: np.ndarray, classes: np.ndarray) -> np.ndarray:
        out = np.zeros((len(probs), self.n_classes))
        out[:, classes] = probs
        return out


class SpreadingModel(LoopModel):
    """Label spreading over a cosine kNN graph, class-balanced
    (:func:`labelwise.semi.spreading.fit_spreading`, shared with pseudo-labeling). New rows
    get the similarity-weighted distribution of their ``k`` nearest fitted rows."""

    def __init__(
        self,
        n_classes: int,
        *,
        k: int = SPREAD_NEIGHBORS,
        alpha: float = SPREAD_ALPHA,
        power: float = SPREAD_POWER,
        random_state: int = 0,
    ) -> None:
        super().__init__(n_classes, random_state=random_state)
        self.k, self.alpha, self.power = k, alpha, power

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        self.model_, _ = fit_spreading(X, y, self.n_classes, n_neighbors=self.k, alpha=self.alpha, power=self.power)
        self.distributions_ = self._widen(self.model_.label_distributions_, self.model_.classes_)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            p = self.model_.predict_proba(np.asarray(X, dtype=np.float32))
        return self._widen(normalise_rows(np.nan_to_num(p, nan=0.0)), self.model_.classes_)

    def proba_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.distributions_[rows]


class LogRegModel(LoopModel):
    """Logistic regression on standardised embeddings (scikit-learn)."""

    def __init__(self, n_classes: int, *, C: float = 1.0, random_state: int = 0) -> None:
        super().__init__(n_classes, random_state=random_state)
        self.C = C

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        keep = y >= 0
        self.classes_ = np.unique(y[keep])
        if len(self.classes_) == 1:  # one class so far: nothing to separate
            self.model_ = None
            return
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=1000))
        weight = None if sample_weight is None else sample_weight[keep]
        self.model_.fit(np.asarray(X[keep], dtype=np.float32), y[keep], logisticregression__sample_weight=weight)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            return self._widen(np.ones((len(X), 1)), self.classes_)
        return self._widen(self.model_.predict_proba(np.asarray(X, dtype=np.float32)), self.classes_)


class NeuralModel(LoopModel):
    """A labelwise torch model (:class:`~labelwise.train.NeuralClassifier`): ``linear``
    or ``mlp`` on embeddings, ``cnn`` on uint8 images."""

    def __init__(
        self,
        n_classes: int,
        *,
        model: str = "mlp",
        epochs: int = 30,
        augment: str = "none",
        flip: bool = False,
        weights: Any = None,
        device: str = "cpu",
        random_state: int = 0,
    ) -> None:
        super().__init__(n_classes, random_state=random_state)
        self.model, self.epochs, self.augment, self.flip = model, epochs, augment, flip
        self.weights, self.device = weights, device

    @property
    def has_dropout(self) -> bool:  # type: ignore[override]
        return self.model != "linear"

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        from ..train import NeuralClassifier

        keep = y >= 0
        self.clf_ = NeuralClassifier(
            self.model,
            n_classes=self.n_classes,
            epochs=self.epochs,
            augment=self.augment,
            flip=self.flip,
            weights=self.weights,
            device=self.device,
            random_state=self.random_state,
        )
        self.clf_.fit(X[keep], y[keep], sample_weight=None if sample_weight is None else sample_weight[keep])

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return self.clf_.predict_proba(X)

    def features(self, X: np.ndarray) -> np.ndarray:
        return self.clf_.transform(X)

    def mc_samples(self, X: np.ndarray, *, n_samples: int = 20, random_state: int = 0) -> np.ndarray:
        return mc_dropout_proba(self.clf_, X, n_samples=n_samples, random_state=random_state)


class PseudoLabeled(LoopModel):
    """A supervised model trained on the labeled rows plus pseudo-labels: label spreading
    labels every unlabeled pool row, and the row joins the training set with that label,
    weighted by its probability (rows below ``threshold`` are left out). Semi-supervised
    learning in the loop.

    Spreading runs on ``embeddings`` (rows aligned with the fitted ``X``) when given, e.g.
    for a ``cnn`` that itself takes pixels; else on ``X``. With ``blend`` (only for a
    ``base`` on the embeddings) the probabilities are the mean of the base model's and the
    spreading's.

    Attributes
    ----------
    spread_ : the fitted :class:`SpreadingModel`.
    n_pseudo_ : unlabeled rows trained on.
    """

    def __init__(
        self,
        base: LoopModel,
        *,
        threshold: float = PSEUDO_THRESHOLD,
        embeddings: np.ndarray | None = None,
        blend: bool = False,
    ) -> None:
        super().__init__(base.n_classes, random_state=base.random_state)
        if blend and embeddings is not None:
            raise LabelwiseError("blend needs a base model on the embeddings that the spreading uses")
        self.base, self.threshold, self.embeddings, self.blend = base, threshold, embeddings, blend

    @property
    def has_dropout(self) -> bool:  # type: ignore[override]
        return self.base.has_dropout

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        self.spread_ = SpreadingModel(self.n_classes, random_state=self.random_state)
        self.spread_.fit(X if self.embeddings is None else self.embeddings, y)
        dist = self.spread_.distributions_
        confidence = dist.max(1)
        use = (y < 0) & (confidence >= self.threshold)
        pseudo = np.where(use, dist.argmax(1), y)
        weight = np.where(y >= 0, 1.0 if sample_weight is None else sample_weight, confidence)
        self.n_pseudo_ = int(use.sum())
        self.base.fit(X, pseudo, sample_weight=weight)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        p = self.base.predict_proba(X)
        return (p + self.spread_.predict_proba(X)) / 2 if self.blend else p

    def proba_rows(self, rows: np.ndarray) -> np.ndarray:
        p = self.base.proba_rows(rows)
        return (p + self.spread_.proba_rows(rows)) / 2 if self.blend else p

    def features(self, X: np.ndarray) -> np.ndarray:
        return self.base.features(X)

    def mc_samples(self, X: np.ndarray, *, n_samples: int = 20, random_state: int = 0) -> np.ndarray:
        return self.base.mc_samples(X, n_samples=n_samples, random_state=random_state)  # type: ignore[attr-defined]


def mc_dropout_proba(
    clf: Any, X: np.ndarray, *, n_samples: int = 20, random_state: int = 0, batch_size: int | None = None
) -> np.ndarray:
    """Monte Carlo dropout: ``(n_samples, len(X), n_classes)`` probabilities of a fitted
    :class:`~labelwise.train.NeuralClassifier` with its dropout layers kept on.

    Sample ``t`` is one thinned network: its dropout masks are drawn once from
    ``(random_state, t, layer)`` and shared by every row, so a row's samples do not depend on
    which other rows are predicted with it (streamed scores equal in-memory ones).
    """
    import torch

    drops = [m for m in clf.module_.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
    if not drops:
        raise LabelwiseError(f"Monte Carlo dropout needs a model with dropout; {clf.model!r} has none")
    samples = []
    for t in range(n_samples):
        masks: dict[int, torch.Tensor] = {}

        def keep_on(
            module: torch.nn.Module,
            inputs: tuple[torch.Tensor, ...],
            output: torch.Tensor,
            _t: int = t,
            masks: dict[int, torch.Tensor] = masks,
        ) -> torch.Tensor:
            layer = drops.index(module)  # type: ignore[arg-type]
            if layer not in masks:
                gen = torch.Generator().manual_seed((random_state * 1_000_003 + _t * 7919 + layer) % (2**63 - 1))
                p = float(module.p)  # type: ignore[arg-type]
                keep = (torch.rand(tuple(inputs[0].shape[1:]), generator=gen) >= p).float() / (1.0 - p)
                masks[layer] = keep.to(inputs[0].device, inputs[0].dtype)
            return inputs[0] * masks[layer]

        handles = [m.register_forward_hook(keep_on) for m in drops]
        try:
            samples.append(clf.predict_proba(X, batch_size=batch_size))
        finally:
            for h in handles:
                h.remove()
    return np.stack(samples)


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class ModelInfo:
    """A registered loop model: ``input`` is ``embedding`` or ``pixels``."""

    name: str
    input: str
    build: Callable[..., LoopModel]
    description: str


#: Models in the active-learning loop, by name.
LOOP_MODELS: Registry[ModelInfo] = kind("loop-models", Registry("model"))


def register_loop_model(name: str, input: str, build: Callable[..., LoopModel], description: str) -> ModelInfo:
    """Register ``build(n_classes, **options) -> LoopModel`` taking ``input`` (``embedding`` or ``pixels``)."""
    return LOOP_MODELS.register(ModelInfo(name, input, build, description), name=name, description=description)


_register = register_loop_model


_register(
    "spreading_logreg",
    "embedding",
    lambda n, **kw: PseudoLabeled(LogRegModel(n, random_state=kw["random_state"]), blend=True),
    "mean of label spreading and a logistic regression on the labels and the spread pseudo-labels "
    "(semi-supervised; default)",
)
_register(
    "spreading",
    "embedding",
    lambda n, **kw: SpreadingModel(n, random_state=kw["random_state"]),
    "label spreading over a cosine kNN graph of the pool (semi-supervised)",
)
_register(
    "logreg",
    "embedding",
    lambda n, **kw: LogRegModel(n, random_state=kw["random_state"]),
    "logistic regression on standardised embeddings",
)
for _name, _input, _text in (
    ("linear", "embedding", "labelwise linear head on embeddings (torch)"),
    ("mlp", "embedding", "labelwise one-hidden-layer head with dropout on embeddings (torch; MC dropout)"),
    ("cnn", "pixels", "labelwise small CNN on the pixels (torch; slow on CPU)"),
):
    _register(_name, _input, lambda n, _m=_name, **kw: NeuralModel(n, model=_m, **kw), _text)
for _name in PRETRAINED:
    _register(
        _name,
        "pixels",
        lambda n, _m=_name, **kw: NeuralModel(n, model=_m, **kw),
        f"{_name} fine-tuned on the pixels, from its pretrained weights with --pretrained (torch; slow on CPU)",
    )


def list_loop_models() -> list[str]:
    """Names that :func:`make_model` (and ``--model`` of ``query`` / ``simulate``) accept."""
    return LOOP_MODELS.names()


def get_loop_model(name: str) -> ModelInfo:
    return LOOP_MODELS.get(name)


def make_model(
    name: str,
    n_classes: int,
    *,
    semi: bool = False,
    epochs: int = 30,
    augment: str = "none",
    pretrained: bool = True,
    device: str = "cpu",
    embeddings: np.ndarray | None = None,
    random_state: int = 0,
) -> LoopModel:
    """A fresh loop model ``name`` (see :func:`list_loop_models`).

    ``semi`` wraps a supervised model in :class:`PseudoLabeled` (``spreading`` and
    ``spreading_logreg`` are semi-supervised already); a model on pixels then needs the pool's ``embeddings`` for
    the spreading. ``epochs``, ``augment`` (models on pixels) and ``device`` concern the
    torch models; ``pretrained`` starts a torchvision model from the official weights in the
    torch hub cache (random initialisation, with a warning, when they are not there).
    """
    info = get_loop_model(name)
    kwargs: dict[str, Any] = {"random_state": random_state}
    if name in NEURAL:
        kwargs.update(
            epochs=epochs,
            augment=augment if info.input == "pixels" else "none",
            device=device,
            weights="hub" if pretrained and name in PRETRAINED else None,
        )
    model = info.build(n_classes, **kwargs)
    if semi and name not in SEMI_SUPERVISED:
        if info.input != "embedding" and embeddings is None:
            raise LabelwiseError(f"semi-supervised {name!r} needs the pool's embeddings for label spreading")
        model = PseudoLabeled(model, embeddings=None if info.input == "embedding" else embeddings)
    return model
