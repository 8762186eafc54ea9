"""One fold of ``train``: fit (or reload) its model, predict its held-out rows and the test rows.

:func:`fit_fold` is the whole of a fold's work and takes only plain data, so the local engine
calls it in a loop and the Ray engine runs it as one task per fold, on any worker that reaches
the output folder; both give the same answers for a seed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._engine import Engine, run_tasks
from .._io import record_written, write_json, write_table
from .inputs import fold_training_rows

log = logging.getLogger("labelwise")

WORKER_FILE = "worker.json"


@dataclass(frozen=True)
class FoldJob:
    """What fold ``k`` of ``folds`` trains with, besides the arrays."""

    k: int
    folds: int
    params: dict[str, Any]
    folder: Path
    resume: bool
    dynamics: bool
    tta: bool
    device: str


@dataclass
class FoldOutcome:
    """A finished fold: its history, best epoch, and probabilities of its held-out and test rows."""

    k: int
    history: pd.DataFrame
    best_epoch: int
    n_train: int
    n_valid: int
    held: np.ndarray | None  # (n_valid, n_classes)
    test: np.ndarray | None  # (n_test, n_classes)
    dynamics_rows: np.ndarray | None = None  # pool rows the dynamics cover
    dynamics: np.ndarray | None = None  # their mean softmax over the later epochs

    def summary(self) -> dict[str, Any]:
        best = self.history[self.history["epoch"] == self.best_epoch]
        return {
            "fold": self.k,
            "n_train": self.n_train,
            "n_valid": self.n_valid,
            "best_epoch": self.best_epoch,
            "epochs_run": int(self.history["epoch"].max()),
            **{c: float(best[c].iloc[0]) for c in best if c.startswith("valid_")},
        }


def fit_fold(
    job: FoldJob,
    *,
    X_pool: np.ndarray,
    y_pool: np.ndarray,
    pool_fold: np.ndarray,
    X_test: np.ndarray,
    w_pool: np.ndarray | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_worker: bool = False,
) -> FoldOutcome:
    """Train fold ``job.k`` into ``job.folder`` (``model.pt``, ``metrics.csv``), or reload it when
    ``job.resume`` finds it finished, and predict its held-out rows and ``X_test``.

    On a worker (``on_worker``) the fold notes where it runs in ``worker.json`` and continues
    from its checkpoint when one is there: a rerun after the worker died resumes, not restarts.
    """
    from .classifier import NeuralClassifier

    k, folder = job.k, job.folder
    valid_mask = pool_fold == k
    train_mask = fold_training_rows(pool_fold, k, job.folds)
    model_path = folder / "model.pt"
    checkpoint = folder / "checkpoint.pt"
    dynamics_rows = dynamics = None
    if on_worker:
        where = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        write_json(folder / WORKER_FILE, {**where, "resumes_checkpoint": checkpoint.exists()})
    if job.resume and model_path.exists():
        log.info("fold %d: already trained, loading %s", k, model_path)
        clf = NeuralClassifier.load(model_path, device=job.device)
        history = pd.read_csv(folder / "metrics.csv")
    else:
        log.info("fold %d/%d: %d training, %d validation images", k + 1, job.folds, train_mask.sum(), valid_mask.sum())
        clf = NeuralClassifier(**job.params)
        clf.fit(
            X_pool[train_mask],
            y_pool[train_mask],
            X_valid=X_pool[valid_mask],
            y_valid=y_pool[valid_mask],
            checkpoint=checkpoint,
            resume=job.resume or (on_worker and checkpoint.exists()),
            on_epoch=on_epoch,
            track_train_probs=job.dynamics,
            sample_weight=None if w_pool is None else w_pool[train_mask],
        )
        if job.dynamics and len(clf.train_probs_):
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(clf.train_probs_[dynamics_epochs(clf.train_probs_)].astype(np.float32), axis=0)
            seen = ~np.isnan(mean).any(1)
            dynamics_rows, dynamics = np.flatnonzero(train_mask)[seen], mean[seen]
        history = clf.history_.assign(fold=k)
        write_table(folder / "metrics.csv", history)
        clf.save(model_path)
        checkpoint.unlink(missing_ok=True)
    held = clf.predict_proba(X_pool[valid_mask], tta=job.tta) if valid_mask.any() else None
    test = clf.predict_proba(X_test, tta=job.tta) if len(X_test) else None
    return FoldOutcome(
        k,
        history,
        int(clf.best_epoch_),
        int(train_mask.sum()),
        int(valid_mask.sum()),
        held,
        test,
        dynamics_rows,
        dynamics,
    )


def dynamics_epochs(train_probs: np.ndarray) -> slice:
    """The epochs whose softmax the dynamics average: all but the first third, where the
    network has not yet learned the classes and says little about any one sample
    (CIFAR-10N first 10k, 30 epochs: F1 0.656 → 0.666 on random_label1 and 0.753 → 0.761 on
    worse_label, bench/noise.py)."""
    return slice(len(train_probs) // 3, None)


def run_folds(
    engine: Engine,
    jobs: list[FoldJob],
    arrays: dict[str, Any],
    on_epoch: Callable[[int], Callable[[dict[str, Any]], None] | None],
) -> list[FoldOutcome]:
    """Every fold, in order: one after another here, or one Ray task each.

    On Ray the epoch callbacks (TensorBoard, MLflow) see each fold's rows when it finishes.
    """
    if not engine.is_ray:
        return [fit_fold(job, **arrays, on_epoch=on_epoch(job.k)) for job in jobs]

    def replay(i: int, outcome: FoldOutcome) -> None:
        for path in sorted(jobs[i].folder.iterdir()):  # the worker's files, into this run's record
            if path.is_file() and not path.name.startswith("."):
                record_written(path)
        callback = on_epoch(jobs[i].k)
        log.info("fold %d/%d finished on ray (best epoch %d)", jobs[i].k + 1, jobs[i].folds, outcome.best_epoch)
        if callback is not None:
            for row in outcome.history.drop(columns="fold").to_dict("records"):
                callback(row)

    return run_tasks(engine, _fit_on_worker, jobs, shared=arrays, on_done=replay)


def _fit_on_worker(job: FoldJob, **arrays: Any) -> FoldOutcome:
    logging.getLogger("labelwise").setLevel(logging.INFO)
    return fit_fold(job, **arrays, on_worker=True)


def read_worker(folder: Path) -> dict[str, Any]:
    """``worker.json`` of a fold trained on Ray: host, pid and start time of its (last) worker."""
    return dict(json.loads((folder / WORKER_FILE).read_text(encoding="utf-8")))
