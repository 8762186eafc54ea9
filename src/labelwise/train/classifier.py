"""``NeuralClassifier``: a scikit-learn style estimator around one registered model.

``fit(X, y)`` takes uint8 images ``(n, h, w[, c])`` for image models or float vectors
``(n, d)`` for heads on embeddings; ``predict_proba`` returns ``(n, n_classes)``.
Training is reproducible for a ``random_state`` on CPU: every epoch's shuffling,
augmentation and dropout are seeded from ``(random_state, epoch)``, which is also what
makes a resumed run continue exactly where the interrupted one stopped.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from .._io import atomic_path
from .._torch import resolve_device
from ..errors import LabelwiseError
from ..networks.optim import make_optimizer
from .augment import Augment, tta_views
from .checkpoint import CHECKPOINT_VERSION, Checkpoint, TrainState
from .loop import DEFAULT_LR, MONITORS, Fitting, train_epoch, validate
from .models import ModelSpec, check_size, get_model_spec

log = logging.getLogger("labelwise")

BALANCE = ("none", "weights", "sampler")


class NeuralClassifier(ClassifierMixin, BaseEstimator):
    """Train one network from the model registry.

    Parameters
    ----------
    model : registry name (:func:`labelwise.train.list_models`).
    n_classes : number of output columns (default ``max(y) + 1``); set it when a class may be
        missing from ``y``, so probabilities always line up with ``classes.json``.
    epochs, batch_size : training length and batch size.
    lr : peak learning rate (default 2e-3 for AdamW, 0.05 for SGD).
    optimizer : ``adamw`` or ``sgd``; ``weight_decay`` applies to weights, not biases or norms.
    schedule : ``onecycle``, ``warmup-cosine``, ``cosine``, ``step`` (``step_size`` epochs,
        ``gamma``) or ``constant``.
    augment : ``none``, ``light`` or ``strong`` (image models); ``flip`` allows mirror images.
    balance : ``none``, ``weights`` (class-weighted loss) or ``sampler`` (each class drawn
        equally often, with replacement).
    label_smoothing : cross-entropy label smoothing.
    patience : stop after this many epochs without improvement of ``monitor`` on the
        validation data (needs ``X_valid``); the best weights are restored (ties go to the
        lower validation loss). None: train all epochs and keep the last weights.
    monitor : ``balanced_accuracy``, ``accuracy``, ``macro_f1`` or ``valid_loss``.
    freeze : torchvision models: train only the new head.
    weights : torchvision models: a state_dict file, or ``"hub"`` for the cached official file.
    width, dropout, hidden : architecture options (``cnn`` width; heads' hidden size).
    device : ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; ``amp``: mixed precision on CUDA.
    random_state : seed for initialisation, shuffling, augmentation and dropout.

    Attributes
    ----------
    module_ : the trained ``torch.nn.Module`` (best epoch when validating).
    classes_ : ``arange(n_classes)``.
    history_ : DataFrame, one row per epoch.
    best_epoch_ : epoch whose weights were kept; ``stopped_early_``: whether patience ran out.
    mean_, std_ : input normalisation.
    """

    def __init__(
        self,
        model: str = "cnn",
        *,
        n_classes: int | None = None,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float | None = None,
        optimizer: str = "adamw",
        weight_decay: float = 5e-4,
        schedule: str = "onecycle",
        step_size: int = 10,
        gamma: float = 0.1,
        warmup_epochs: float = 1.0,
        augment: str = "light",
        flip: bool = True,
        balance: str = "none",
        label_smoothing: float = 0.0,
        patience: int | None = None,
        monitor: str = "balanced_accuracy",
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
        width: int = 16,
        dropout: float = 0.2,
        hidden: int = 256,
        device: str = "auto",
        amp: bool = True,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.n_classes = n_classes
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.step_size = step_size
        self.gamma = gamma
        self.warmup_epochs = warmup_epochs
        self.augment = augment
        self.flip = flip
        self.balance = balance
        self.label_smoothing = label_smoothing
        self.patience = patience
        self.monitor = monitor
        self.freeze = freeze
        self.weights = weights
        self.width = width
        self.dropout = dropout
        self.hidden = hidden
        self.device = device
        self.amp = amp
        self.random_state = random_state

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_valid: np.ndarray | None = None,
        y_valid: np.ndarray | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = False,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        track_train_probs: bool = False,
        sample_weight: np.ndarray | None = None,
    ) -> NeuralClassifier:
        """Train on ``X, y``; validate each epoch on ``X_valid, y_valid`` when given.

        ``checkpoint``: file rewritten atomically after every epoch; with ``resume=True`` an
        existing one is continued. ``on_epoch`` receives each history row as it is made.
        ``track_train_probs``: keep each training sample's softmax from its training passes,
        per epoch, in ``train_probs_`` ``(epochs, n, n_classes)`` float16 (NaN where a sample
        was not drawn that epoch): the training dynamics that expose wrong labels, which a
        network fits late.
        ``sample_weight``: non-negative weight of each sample's loss (e.g. the confidence of a
        pseudo label); each batch's loss is the weighted mean.
        """
        self._validate_params()
        y = _labels(y, "y")
        self.n_classes_ = int(self.n_classes or y.max() + 1)
        if y.max() >= self.n_classes_:
            raise LabelwiseError(f"y holds class {int(y.max())} but n_classes is {self.n_classes_}")
        self.classes_ = np.arange(self.n_classes_)
        self.device_ = resolve_device(self.device)
        x = self._as_input(X, fitting=True)
        has_valid = X_valid is not None and y_valid is not None and len(y_valid) > 0
        xv = self._as_input(cast(np.ndarray, X_valid)) if has_valid else None
        yv = _labels(y_valid, "y_valid") if has_valid else None
        if self.patience is not None and not has_valid:
            log.warning("patience=%s ignored: early stopping needs validation data", self.patience)
        self.module_ = self._build()
        fitting = Fitting.start(self, y, sample_weight)
        y_t = torch.from_numpy(y)
        state = TrainState()
        ckpt = Checkpoint(checkpoint, self._fingerprint(len(y), has_valid)) if checkpoint is not None else None
        if resume and ckpt is not None and ckpt.exists():
            state = ckpt.load(self.module_, fitting.opt, fitting.sched, fitting.scaler, device=self.device_)
            log.info("resuming %s at epoch %d", ckpt.path, state.epoch + 1)

        early = self.patience is not None and has_valid
        dynamics: list[np.ndarray] = []
        for epoch in range(state.epoch + 1, self.epochs + 1):
            if early and state.bad_epochs >= cast(int, self.patience):
                break
            t0 = time.perf_counter()
            train_loss, probs = train_epoch(self, fitting, x, y_t, epoch, track_probs=track_train_probs)
            if probs is not None:
                dynamics.append(probs)
            row: dict[str, Any] = {"epoch": epoch, "lr": fitting.opt.param_groups[0]["lr"], "train_loss": train_loss}
            if has_valid:
                assert xv is not None and yv is not None  # has_valid made them
                validate(self, xv, yv, row, state)
            else:
                state.best_epoch = epoch
            row["seconds"] = round(time.perf_counter() - t0, 3)
            state.history.append(row)
            state.epoch = epoch
            log.info(
                "epoch %d/%d  %s", epoch, self.epochs, "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch")
            )
            if on_epoch is not None:
                on_epoch(row)
            if ckpt is not None:
                ckpt.save(self.module_, state, fitting.opt, fitting.sched, fitting.scaler)
        self.stopped_early_ = bool(early and state.bad_epochs >= cast(int, self.patience))
        if self.patience is not None and state.best_state is not None:
            self.module_.load_state_dict(state.best_state)
        else:  # no early stopping: the model is the last epoch's
            state.best_epoch = state.epoch
        self.best_epoch_ = int(state.best_epoch)
        self.history_ = pd.DataFrame(state.history)
        if track_train_probs:
            self.train_probs_ = (
                np.stack(dynamics) if dynamics else np.full((0, len(y), self.n_classes_), np.nan, np.float16)
            )
        self.module_.eval()
        return self

    def overfit_batch(self, X: np.ndarray, y: np.ndarray, *, steps: int = 200, tol: float = 0.05) -> pd.DataFrame:
        """Sanity check: train a copy of this model on one small batch without augmentation.

        Returns the loss per step; a working pipeline drives it below ``tol`` (then the
        attribute ``passed`` of the returned frame's ``attrs`` is True).
        """
        probe = clone(self).set_params(
            augment="none", schedule="constant", weight_decay=0.0, balance="none", patience=None
        )
        probe._validate_params()
        y = _labels(y, "y")
        probe.n_classes_ = int(probe.n_classes or y.max() + 1)
        probe.classes_ = np.arange(probe.n_classes_)
        probe.device_ = resolve_device(probe.device)
        x = probe._prepare(probe._as_input(X, fitting=True), None, None)
        probe.module_ = probe._build()
        probe.module_.train()
        lr = probe.lr if probe.lr is not None else DEFAULT_LR[probe.optimizer]
        opt = make_optimizer(
            [p for p in probe.module_.parameters() if p.requires_grad], probe.optimizer, lr=lr, weight_decay=0.0
        )
        yt = torch.from_numpy(y).to(probe.device_)
        torch.manual_seed(probe.random_state)
        losses = []
        for step in range(1, steps + 1):
            loss = F.cross_entropy(probe.module_(x), yt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.item()
            losses.append({"step": step, "loss": value})
            if value < tol / 5:
                break
        frame = pd.DataFrame(losses)
        frame.attrs["passed"] = bool(frame["loss"].iloc[-5:].mean() < tol)
        return frame

    # ------------------------------------------------------------------ predict

    def predict_proba(self, X: np.ndarray, *, tta: bool = False, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``; ``tta`` averages over test-time views."""
        self._check_fitted()
        return self._predict_tensor(self._as_input(X), tta=tta, batch_size=batch_size).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class index per row."""
        return self.predict_proba(X).argmax(1)

    def transform(self, X: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """The network's own embedding of ``X``: the input of its last linear layer ``(n, d)``."""
        self._check_fitted()
        last = [m for m in self.module_.modules() if isinstance(m, torch.nn.Linear)][-1]
        parts: list[torch.Tensor] = []
        hook = last.register_forward_hook(lambda module, inputs, output: parts.append(inputs[0].detach().float().cpu()))
        try:
            self._predict_tensor(self._as_input(X), batch_size=batch_size)
        finally:
            hook.remove()
        return torch.cat(parts).numpy() if parts else np.zeros((0, last.in_features), np.float32)

    def _predict_tensor(self, x: torch.Tensor, *, tta: bool = False, batch_size: int | None = None) -> torch.Tensor:
        self.module_.eval()
        size = batch_size or max(256, self.batch_size)
        _, amp_dtype = self._amp()
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), size):
                xb = self._prepare(x[start : start + size], None, None)
                views = tta_views(xb, flip=self.flip) if tta and self.spec_.input == "pixels" else [xb]
                p: torch.Tensor | int = 0
                for v in views:
                    with torch.autocast(self.device_.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        logits = self.module_(v)
                    p = p + torch.softmax(logits.float(), 1)
                out.append(cast(torch.Tensor, p / len(views)).cpu())
        if not out:
            return torch.zeros((0, self.n_classes_))
        return torch.cat(out)

    # ------------------------------------------------------------------ saving

    def to_state(self) -> dict[str, Any]:
        """Everything needed to predict again: parameters, normalisation and weights."""
        self._check_fitted()
        return {
            "format": "labelwise.NeuralClassifier",
            "version": CHECKPOINT_VERSION,
            "params": {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in self.get_params().items()},
            "n_classes": self.n_classes_,
            "input_shape": list(self.input_shape_),
            "mean": self.mean_.tolist(),
            "std": self.std_.tolist(),
            "best_epoch": self.best_epoch_,
            "module": {k: v.cpu() for k, v in self.module_.state_dict().items()},
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_state` atomically (a killed run never leaves a corrupt file)."""
        with atomic_path(path) as tmp:
            torch.save(self.to_state(), tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "auto") -> NeuralClassifier:
        """A fitted classifier from :meth:`save`'s file, ready to ``predict_proba``."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError) as exc:
            raise LabelwiseError(f"{path}: cannot read the model ({str(exc).splitlines()[0][:100]})") from None
        if not isinstance(state, dict) or state.get("format") != "labelwise.NeuralClassifier":
            raise LabelwiseError(f"{path}: not a labelwise model file")
        params = dict(state["params"])
        params.update(device=device, weights=None)
        clf = cls(**params)
        clf.n_classes_ = int(state["n_classes"])
        clf.classes_ = np.arange(clf.n_classes_)
        clf.input_shape_ = tuple(state["input_shape"])
        clf.mean_ = np.asarray(state["mean"], dtype=np.float32)
        clf.std_ = np.asarray(state["std"], dtype=np.float32)
        clf.best_epoch_ = state.get("best_epoch", 0)
        clf.device_ = resolve_device(device)
        clf.module_ = clf._build()
        clf.module_.load_state_dict(state["module"])
        clf.module_.eval()
        return clf

    # ------------------------------------------------------------------ internals

    @property
    def spec_(self) -> ModelSpec:
        return get_model_spec(self.model)

    def _validate_params(self) -> None:
        for name, value, allowed in (
            ("balance", self.balance, BALANCE),
            ("monitor", self.monitor, tuple(MONITORS)),
            ("optimizer", self.optimizer, tuple(DEFAULT_LR)),
        ):
            if value not in allowed:
                raise LabelwiseError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise LabelwiseError("epochs and batch_size must be at least 1")

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise LabelwiseError("this NeuralClassifier is not fitted yet; call fit first")

    def _as_input(self, X: np.ndarray, *, fitting: bool = False) -> torch.Tensor:
        """Images → uint8 NCHW tensor (kept on CPU, moved per batch); vectors → float32."""
        spec = self.spec_
        X = np.asarray(X)
        if spec.input == "embedding":
            if X.ndim != 2:
                raise LabelwiseError(f"model {self.model} takes vectors (n, d); got an array of shape {X.shape}")
            t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            if fitting:
                self.input_shape_: tuple[int, ...] = (X.shape[1],)
                self.mean_ = X.mean(0).astype(np.float32)
                self.std_ = np.maximum(X.std(0), 1e-6).astype(np.float32)
            elif X.shape[1:] != tuple(self.input_shape_):
                raise LabelwiseError(f"model expects vectors of length {self.input_shape_[0]}, got {X.shape[1]}")
            return t
        if X.dtype != np.uint8 or X.ndim not in (3, 4):
            raise LabelwiseError(
                f"model {self.model} takes uint8 images (n, h, w) or (n, h, w, c); got {X.dtype} {X.shape}"
            )
        if X.ndim == 3:
            X = X[..., None]
        if X.shape[1] != X.shape[2]:
            raise LabelwiseError(f"images must be square; got {X.shape[1]}×{X.shape[2]}")
        check_size(spec, X.shape[1])
        t = torch.from_numpy(np.ascontiguousarray(X)).permute(0, 3, 1, 2)  # NHWC memory = channels_last
        if fitting:
            self.input_shape_ = (X.shape[3], X.shape[1], X.shape[2])
            if spec.channels is not None and X.shape[3] != spec.channels:
                raise LabelwiseError(f"model {self.model} takes {spec.channels}-channel images, got {X.shape[3]}")
            if spec.mean is not None:
                self.mean_ = np.asarray(spec.mean, np.float32)
                self.std_ = np.asarray(spec.std, np.float32)
            else:
                flat = X.reshape(-1, X.shape[3])[:: max(1, X.size // X.shape[3] // 2_000_000)].astype(np.float32) / 255
                self.mean_ = flat.mean(0).astype(np.float32)
                self.std_ = np.maximum(flat.std(0), 1e-3).astype(np.float32)
        elif tuple(t.shape[1:]) != tuple(self.input_shape_):
            c, h, w = self.input_shape_
            raise LabelwiseError(
                f"model expects {c}-channel {h}×{w} images, got {t.shape[1]}-channel {X.shape[1]}×{X.shape[2]}"
            )
        return t

    def _prepare(self, xb: torch.Tensor, augment: Augment | None, gen: torch.Generator | None) -> torch.Tensor:
        """A batch on the device, augmented (when training) and normalised."""
        xb = xb.to(self.device_, non_blocking=True)
        mean = torch.as_tensor(self.mean_, device=self.device_)
        std = torch.as_tensor(self.std_, device=self.device_)
        if self.spec_.input == "embedding":
            return (xb - mean) / std
        xb = augment(xb, gen) if augment is not None and gen is not None else xb.float().div_(255)
        xb = (xb - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        return xb.contiguous(memory_format=torch.channels_last)

    def _build(self) -> torch.nn.Module:
        spec = self.spec_
        n_inputs = self.input_shape_[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            module = spec.build(
                self.n_classes_,
                n_inputs,
                width=self.width,
                dropout=self.dropout,
                hidden=self.hidden,
                freeze=self.freeze,
                weights=self.weights,
                random_state=self.random_state,
            )
        module = module.to(self.device_)
        if spec.input == "pixels":
            module = module.to(memory_format=torch.channels_last)
        return module

    def _amp(self) -> tuple[Any, torch.dtype | None]:
        if not (self.amp and self.device_.type == "cuda"):
            return None, None
        if torch.cuda.is_bf16_supported():
            return None, torch.bfloat16
        return torch.amp.GradScaler("cuda"), torch.float16

    def _fingerprint(self, n: int, has_valid: bool) -> dict[str, Any]:
        params = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in self.get_params().items()}
        params.pop("device", None)
        return {"params": params, "n_train": n, "has_valid": has_valid, "n_classes": self.n_classes_}


def overfit_batch(
    clf: NeuralClassifier, X: np.ndarray, y: np.ndarray, *, steps: int = 200, tol: float = 0.05
) -> pd.DataFrame:
    """:meth:`NeuralClassifier.overfit_batch` (``clf`` itself is not changed)."""
    return clf.overfit_batch(X, y, steps=steps, tol=tol)


def _labels(y: Any, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise LabelwiseError(f"{name} must be a 1-d array of class indices, got {y.dtype} {y.shape}")
    if len(y) and y.min() < 0:
        raise LabelwiseError(f"{name} holds negative class indices (unlabeled rows must be left out)")
    return y.astype(np.int64)
