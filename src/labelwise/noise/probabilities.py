"""Where ``issues`` gets its probabilities and feature spaces: a head's out-of-fold
probabilities, a ``train`` folder's files, and the feature spaces of its fold models."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LabelwiseError
from ..formats import TrainRun
from ..formats.probabilities import checked_probabilities, read_probability_table

log = logging.getLogger("labelwise")


def out_of_fold_head_probs(
    embeddings: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    random_state: int = 0,
    scale: str = "standard",
    C: float = 0.1,
) -> np.ndarray:
    """Out-of-fold probabilities of a logistic regression on ``embeddings`` (``scale``:
    ``standard``-ised features, or ``l2``: each row scaled to unit length, as the cosine geometry
    of pretrained features asks): the fast probability source when no ``train`` run is given."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    probs = np.zeros((len(labels), n_classes))
    counts = np.bincount(labels, minlength=n_classes)
    folds = max(2, min(folds, int(counts[counts > 0].min())))
    with warnings.catch_warnings():  # classes smaller than the folds: issues.py warns about them by name
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=random_state).split(embeddings, labels))
    for train_idx, test_idx in splits:
        scaler = Normalizer() if scale == "l2" else StandardScaler()
        model = make_pipeline(scaler, LogisticRegression(max_iter=300, C=C))
        model.fit(embeddings[train_idx], labels[train_idx])
        probs[np.ix_(test_idx, model[-1].classes_)] = model.predict_proba(embeddings[test_idx])
    return probs


def read_probabilities(probs: Any, sample_ids: pd.Series, classes: list[str]) -> np.ndarray:
    """Probabilities aligned with ``sample_ids``, checked against ``classes``; ``probs`` may
    be a ``train`` folder (its out-of-fold and held-out test files), a file or a DataFrame."""
    if isinstance(probs, pd.DataFrame):
        where, frame = "probabilities", probs
    elif Path(probs).is_dir():
        # A train folder: out-of-fold rows plus its held-out split, which no fold model saw either.
        run = TrainRun(probs)
        held = run.held_out or run.path(TrainRun.OOF)
        files = [held] + ([run.test] if run.test else [])
        run.check(*(f.name for f in files))
        where = " + ".join(map(str, files))
        frame = pd.concat([read_probability_table(f) for f in files], ignore_index=True)
    else:
        if TrainRun.holds_models(Path(probs).parent):
            TrainRun(Path(probs).parent).check(Path(probs).name)
        where, frame = str(probs), read_probability_table(probs)
    ids, p = checked_probabilities(frame, classes, where)
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    wanted = sample_ids.astype(str)
    missing = ~wanted.isin(position.index)
    if missing.any():
        raise LabelwiseError(
            f"{where}: no probabilities for sample_id {wanted[missing].iloc[0]!r} ({int(missing.sum())} missing)"
        )
    p = p[position.loc[wanted].to_numpy()]
    return p / p.sum(1, keepdims=True)


def warn_if_in_sample(probs: np.ndarray, y: np.ndarray) -> None:
    accuracy = float((probs.argmax(1) == y).mean())
    confidence = float(probs.max(1).mean())
    if accuracy > 0.995 and confidence > 0.98:
        log.warning(
            "the probabilities agree with %.1f%% of the given labels at %.3f mean confidence: they look "
            "in-sample (the model saw these labels). Use out-of-fold probabilities (train --folds K) "
            "or wrong labels will be missed",
            100 * accuracy,
            confidence,
        )


def model_folder(probs: Any) -> Path | None:
    """The ``train`` folder behind ``probs`` (a folder, or a file in one), if it holds models."""
    if probs is None or isinstance(probs, pd.DataFrame):
        return None
    folder = Path(probs) if Path(probs).is_dir() else Path(probs).parent
    return folder if TrainRun.holds_models(folder) else None


def network_features(folder: Path, labeled: pd.DataFrame, n_jobs: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The embedding each model trained in ``folder`` learned (one per fold model) for the
    labeled images, and which of them each model held out. Neighbour votes in the spaces
    that held a sample out beat votes on pixels: MNIST-5k, 20% uniform noise, F1 0.966 vs
    0.855 (z-scored pixels) alone, 0.967 vs 0.946 in the ensemble (bench/noise.py)."""
    from ..train.prediction import Ensemble

    ensemble = Ensemble.load(folder)
    X = ensemble.inputs(labeled, n_jobs=n_jobs)
    return [member.transform(X) for member in ensemble.members], ~ensemble.trained_on(labeled["sample_id"])
