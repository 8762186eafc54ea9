"""One fit's epochs: what a fit sets up once (:class:`Fitting`), one training pass over the data
(:func:`train_epoch`) and the validation that decides which epoch's weights are kept
(:func:`validate`).

Every epoch's order, augmentation and dropout are drawn from generators seeded with
``(random_state, epoch)``, which is what makes a resumed run continue exactly where the
interrupted one stopped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from .._progress import track
from ..errors import LabelwiseError
from ..networks.optim import make_optimizer, make_schedule
from .augment import Augment
from .checkpoint import TrainState

if TYPE_CHECKING:
    from .classifier import NeuralClassifier

log = logging.getLogger("labelwise")

MONITORS = {"valid_loss": -1, "accuracy": 1, "balanced_accuracy": 1, "macro_f1": 1}
DEFAULT_LR = {"adamw": 2e-3, "sgd": 0.05}
MIN_STEPS = 10


@dataclass
class Fitting:
    """What one fit sets up once: optimiser, schedule, batches, loss weights and mixed precision."""

    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    amp_dtype: torch.dtype | None
    lr: float
    batch_size: int
    steps: int
    class_weight: torch.Tensor | None
    sample_p: torch.Tensor | None
    sample_weight: torch.Tensor | None
    augment: Augment | None

    @classmethod
    def start(cls, clf: NeuralClassifier, y: np.ndarray, sample_weight: np.ndarray | None) -> Fitting:
        n = len(y)
        params = [p for p in clf.module_.parameters() if p.requires_grad]
        lr = clf.lr if clf.lr is not None else DEFAULT_LR[clf.optimizer]
        opt = make_optimizer(params, clf.optimizer, lr=lr, weight_decay=clf.weight_decay)
        # Small datasets: at least MIN_STEPS optimiser steps per epoch, or BatchNorm's running
        # statistics lag far behind the weights and evaluation-mode outputs stay near uniform.
        batch_size = min(clf.batch_size, max(8, math.ceil(n / MIN_STEPS)))
        if batch_size < clf.batch_size:
            log.info(
                "batch size %d → %d for %d training images (at least %d steps per epoch)",
                clf.batch_size,
                batch_size,
                n,
                MIN_STEPS,
            )
        steps = max(1, n // batch_size) if n >= 2 else 1
        sched = make_schedule(
            opt,
            clf.schedule,
            epochs=clf.epochs,
            steps_per_epoch=steps,
            lr=lr,
            step_size=clf.step_size,
            gamma=clf.gamma,
            warmup_epochs=clf.warmup_epochs,
        )
        counts = np.bincount(y, minlength=clf.n_classes_).astype(np.float64)
        class_weight = None
        if clf.balance == "weights":
            w = np.where(counts > 0, n / (max(1, (counts > 0).sum()) * np.maximum(counts, 1)), 0.0)
            class_weight = torch.tensor(w, dtype=torch.float32, device=clf.device_)
        sample_p = torch.from_numpy(1.0 / counts[y]) if clf.balance == "sampler" else None
        augment = Augment(clf.augment, flip=clf.flip) if clf.spec_.input == "pixels" else None
        scaler, amp_dtype = clf._amp()
        weights = None if sample_weight is None else torch.from_numpy(_sample_weights(sample_weight, n))
        return cls(opt, sched, scaler, amp_dtype, lr, batch_size, steps, class_weight, sample_p, weights, augment)


def epoch_seed(random_state: int, epoch: int) -> int:
    return (random_state * 1_000_003 + epoch * 7919) % (2**63 - 1)


def train_epoch(
    clf: NeuralClassifier, fit: Fitting, x: torch.Tensor, y: torch.Tensor, epoch: int, *, track_probs: bool = False
) -> tuple[float, np.ndarray | None]:
    """One pass over the training data; the mean loss, and with ``track_probs`` each sample's
    mean softmax over its draws this epoch ``(n, n_classes)`` float16 (NaN where not drawn)."""
    n = len(y)
    gen = torch.Generator().manual_seed(epoch_seed(clf.random_state, epoch))
    torch.manual_seed(epoch_seed(clf.random_state, epoch) + 1)  # dropout
    if fit.sample_p is not None:
        order = torch.multinomial(fit.sample_p, n, replacement=True, generator=gen)
    else:
        order = torch.randperm(n, generator=gen)
    clf.module_.train()
    total: Any = 0.0
    seen = 0
    if track_probs:
        prob_sum = torch.zeros(n, clf.n_classes_, device=clf.device_)
        draws = torch.zeros(n, device=clf.device_)
    for b in track(range(fit.steps), total=fit.steps, description=f"epoch {epoch}/{clf.epochs}"):
        idx = order[b * fit.batch_size : (b + 1) * fit.batch_size] if n >= 2 else order
        xb = clf._prepare(x[idx], fit.augment, gen)
        yb = y[idx].to(clf.device_, non_blocking=True)
        with torch.autocast(clf.device_.type, dtype=fit.amp_dtype, enabled=fit.amp_dtype is not None):
            logits = clf.module_(xb)
            if fit.sample_weight is None:
                loss = F.cross_entropy(logits, yb, weight=fit.class_weight, label_smoothing=clf.label_smoothing)
            else:
                loss = _weighted_loss(
                    logits, yb, fit.sample_weight[idx].to(clf.device_), fit.class_weight, clf.label_smoothing
                )
        if track_probs:
            where = idx.to(clf.device_)
            prob_sum.index_add_(0, where, logits.detach().float().softmax(1))
            draws.index_add_(0, where, torch.ones(len(where), device=clf.device_))
        fit.opt.zero_grad(set_to_none=True)
        if fit.scaler is not None:
            fit.scaler.scale(loss).backward()
            fit.scaler.step(fit.opt)
            fit.scaler.update()
        else:
            loss.backward()
            fit.opt.step()
        fit.sched.step()
        total = total + loss.detach().float() * len(idx)  # stays on the device: no sync per step
        seen += len(idx)
    train_loss = float(total) / max(seen, 1)
    if not math.isfinite(train_loss):
        raise LabelwiseError(f"training diverged at epoch {epoch} (loss is not finite); lower --lr (now {fit.lr:g})")
    probs = (prob_sum / draws[:, None]).half().cpu().numpy() if track_probs else None  # 0/0: NaN, not drawn
    return train_loss, probs


def validate(clf: NeuralClassifier, x: torch.Tensor, y: np.ndarray, row: dict[str, Any], state: TrainState) -> None:
    """Add the validation metrics to ``row`` and keep the epoch's weights in ``state`` when it is the best."""
    probs = clf._predict_tensor(x)
    row.update(valid_metrics(y, probs))
    key = clf.monitor if clf.monitor == "valid_loss" else f"valid_{clf.monitor}"
    # Ties (accuracy often plateaus at 1.0 on easy folds) go to the lower loss, or the first
    # epoch to reach the plateau would be kept, barely trained.
    score = MONITORS[clf.monitor] * row[key] - 1e-6 * row["valid_loss"]
    if score > state.best_score + 1e-12:
        state.best_score, state.best_epoch, state.bad_epochs = score, int(row["epoch"]), 0
        state.best_state = {k: v.detach().clone() for k, v in clf.module_.state_dict().items()}
    else:
        state.bad_epochs += 1


def valid_metrics(y: np.ndarray, probs: torch.Tensor) -> dict[str, float]:
    pred = probs.argmax(1).numpy()
    p = probs.numpy().clip(1e-12, 1)
    return {
        "valid_loss": float(-np.log(p[np.arange(len(y)), y]).mean()),
        "valid_accuracy": float(accuracy_score(y, pred)),
        "valid_balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "valid_macro_f1": float(f1_score(y, pred, average="macro", labels=np.unique(y), zero_division=0)),
    }


def _sample_weights(sample_weight: Any, n: int) -> np.ndarray:
    w = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
    if len(w) != n:
        raise LabelwiseError(f"sample_weight has {len(w)} values for {n} samples")
    if not np.isfinite(w).all() or (w < 0).any():
        raise LabelwiseError("sample_weight must be finite and non-negative")
    if not w.any():
        raise LabelwiseError("sample_weight is zero for every sample")
    return w


def _weighted_loss(
    logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor, class_weight: torch.Tensor | None, smoothing: float
) -> torch.Tensor:
    """Cross-entropy averaged with per-sample weights (times class weights when given),
    the way ``F.cross_entropy`` averages with class weights alone."""
    losses = F.cross_entropy(logits, y, weight=class_weight, label_smoothing=smoothing, reduction="none")
    norm = w if class_weight is None else w * class_weight[y]
    return (losses * w).sum() / norm.sum().clamp_min(1e-12)
