"""The state of a training run between epochs, and the checkpoint file that keeps it.

A checkpoint is rewritten atomically after every epoch; it holds the module, optimiser,
schedule and scaler states and the :class:`TrainState`, and the fingerprint of the settings
and data it was made with, so that ``resume`` continues only the run it belongs to.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_path
from .._run import config_differences
from ..errors import LabelwiseError

CHECKPOINT_VERSION = 1


@dataclass
class TrainState:
    """Where a fit stands after ``epoch`` epochs.

    Attributes
    ----------
    epoch : epochs finished.
    best_score : the best monitored validation score so far (higher is better).
    best_epoch : the epoch that reached it (the last epoch when there is no validation).
    best_state : that epoch's weights (with early stopping only).
    bad_epochs : epochs since the score last improved.
    history : one row per epoch (``epoch, lr, train_loss``, validation metrics, ``seconds``).
    """

    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class Checkpoint:
    """The checkpoint file of one fit: ``save`` after every epoch, ``load`` to resume."""

    def __init__(self, path: str | os.PathLike[str], fingerprint: dict[str, Any]) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, module: torch.nn.Module, state: TrainState, opt: Any, sched: Any, scaler: Any) -> None:
        payload = {
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.fingerprint,
            "module": module.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            **asdict(state),
        }
        with atomic_path(self.path) as tmp:
            torch.save(payload, tmp)

    def load(self, module: torch.nn.Module, opt: Any, sched: Any, scaler: Any, *, device: torch.device) -> TrainState:
        """Restore ``module``, ``opt``, ``sched`` and ``scaler``; a one-line error when the file
        is unreadable or was written with other settings or data."""
        try:
            payload = torch.load(self.path, map_location=device, weights_only=False)
        except (OSError, RuntimeError, EOFError, ValueError) as exc:
            raise LabelwiseError(
                f"{self.path}: cannot read the checkpoint ({str(exc).splitlines()[0][:100]}); delete it to start over"
            ) from None
        old = payload.get("fingerprint", {})
        if old != self.fingerprint:
            raise LabelwiseError(
                f"{self.path}: checkpoint was written with different settings ({config_differences(old, self.fingerprint)}); "
                "use the same settings to resume, or drop --resume to start over"
            )
        module.load_state_dict(payload["module"])
        opt.load_state_dict(payload["optimizer"])
        sched.load_state_dict(payload["scheduler"])
        if scaler is not None and payload.get("scaler"):
            scaler.load_state_dict(payload["scaler"])
        return TrainState(
            **{k: payload[k] for k in ("epoch", "best_score", "best_epoch", "best_state", "bad_epochs", "history")}
        )
