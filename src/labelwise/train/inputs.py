"""What a training run takes in: the rows it may train on, their folds and weights, and the
model inputs (decoded pixels, or cached embeddings)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ..data import Dataset
from ..errors import LabelwiseError

log = logging.getLogger("labelwise")


def check_trainable(labeled: pd.DataFrame, hold_out: str, source: str) -> None:
    """A one-line error, before any training, when the labeled rows cannot train a classifier."""
    rows = labeled[labeled["split"].ne(hold_out)] if "split" in labeled else labeled
    present = rows["label"].value_counts()
    if len(present) < 2:
        only = f"only class {present.index[0]!r} has" if len(present) else "no class has"
        raise LabelwiseError(
            f"{source or 'data'}: {only} labeled images outside the {hold_out!r} split; a classifier "
            "needs at least two classes"
        )


def warn_leaks(pool: pd.DataFrame, held_out: pd.DataFrame, hold_out: str, folds: int, n_jobs: int) -> None:
    """Warn when a near-duplicate group spans the training rows and a held-out split: ``hold_out``
    or, for one model (``folds`` < 2), the given ``valid`` split."""
    from ..data.near_duplicates import near_duplicate_groups

    valid = pool["split"].eq("valid").to_numpy() if folds < 2 and "split" in pool else np.zeros(len(pool), bool)
    parts = np.r_[np.where(valid, "valid", "train"), np.full(len(held_out), hold_out, dtype=object)]
    if (parts == "train").all() or not (parts == "train").any():
        return
    rows = pd.concat([pool[["sample_id", "path"]], held_out[["sample_id", "path"]]], ignore_index=True)
    groups = near_duplicate_groups(rows, n_jobs=n_jobs).to_numpy()
    ids = rows["sample_id"].astype(str).to_numpy()
    leaks, spanned = [], set()
    for group in np.unique(groups[groups >= 0]):
        members = np.flatnonzero(groups == group)
        trained, held = members[parts[members] == "train"], members[parts[members] != "train"]
        if len(trained) and len(held):
            leaks.append((ids[trained[0]], ids[held[0]]))
            spanned.update(parts[held])
    if leaks:
        log.warning(
            "held-out split leaks: %d near-duplicate group(s) span train and %s (e.g. %s ~ %s); accuracy on it is "
            "optimistic — run `labelwise split` to keep groups together (--no-leak-check: skip this check)",
            len(leaks),
            " and ".join(sorted(spanned)),
            *leaks[0],
        )


def load_inputs(
    features: dict[str, Any],
    table: pd.DataFrame,
    classes: list[str],
    *,
    cache_dir: Any = None,
    device: str = "auto",
    n_jobs: int = 2,
) -> np.ndarray:
    """What a model described by ``features`` (``model.json``) takes for ``table``'s images:
    decoded pixels, or embeddings from the same backbone, size, weights and seed (cached)."""
    if features["input"] == "pixels":
        from ..data.pixels import load_pixels

        return load_pixels(table["path"].tolist(), int(features["size"]), int(features["channels"]), n_jobs=n_jobs)
    from ..features import embed

    return embed(
        Dataset(table.reset_index(drop=True), classes),
        backbone=features["backbone"],
        size=features.get("size"),
        weights=features.get("weights"),
        cache_dir=cache_dir,
        device=device,
        random_state=features.get("random_state", 0),
    )


# ---------------------------------------------------------------- helpers


def assign_folds(
    pool: pd.DataFrame, y: np.ndarray, folds: int, valid_pct: float, classes: list[str], seed: int
) -> np.ndarray:
    """Fold per pool row: 0..folds-1 for k-fold; for one model 0 = validation, -1 = training."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    counts = np.bincount(y, minlength=len(classes))
    if folds >= 2:
        small = [(classes[i], int(c)) for i, c in enumerate(counts) if 0 < c < folds]
        if small:
            name, c = min(small, key=lambda item: item[1])
            fix = (
                f"lower --folds to {c} or label more images of it"
                if c >= 2
                else "label at least one more image of it, remove its label, or train one model (--folds 1)"
            )
            raise LabelwiseError(
                f"class {name!r} has {c} labeled image{'s' if c != 1 else ''}, fewer than --folds {folds}: every fold "
                f"needs one; {fix}" + (f" ({len(small) - 1} more such classes)" if len(small) > 1 else "")
            )
        fold = np.full(len(y), -1)
        for k, (_, idx) in enumerate(
            StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
        ):
            fold[idx] = k
        return fold
    split = pool["split"].to_numpy() if "split" in pool else np.full(len(y), None)
    if (split == "valid").any():
        return np.where(split == "valid", 0, -1)
    if valid_pct <= 0:
        return np.full(len(y), -1)
    stratify = y if counts[counts > 0].min() >= 2 else None
    _, valid_idx = train_test_split(np.arange(len(y)), test_size=valid_pct, stratify=stratify, random_state=seed)
    fold = np.full(len(y), -1)
    fold[valid_idx] = 0
    return fold


def fold_training_rows(fold: np.ndarray, k: int, folds: int) -> np.ndarray:
    """Which pool rows model ``k`` trains on, given each row's ``fold``: every row outside
    fold ``k`` with ``folds ≥ 2``; with one model fold 0 is its validation split and -1 its
    training rows."""
    return fold != k if folds >= 2 else fold == -1


def row_weights(pool: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """The ``column`` values of the training rows as loss weights (missing: 1)."""
    where = source or "data"
    if column not in pool.columns:
        raise LabelwiseError(
            f"{where}: no column {column!r} for the sample weights; columns are: {', '.join(map(str, pool.columns))}"
        )
    w = pd.to_numeric(pool[column], errors="coerce")
    bad = pool[column].notna() & pool[column].astype(str).str.strip().ne("") & w.isna()
    if bad.any():
        row = bad.to_numpy().argmax()
        raise LabelwiseError(
            f"{where}: {column} of {pool['sample_id'].iloc[row]} is {pool[column].iloc[row]!r}, not a number"
        )
    w = w.fillna(1.0).to_numpy(np.float32)
    if (w < 0).any() or not np.isfinite(w).all():
        row = int(np.flatnonzero((w < 0) | ~np.isfinite(w))[0])
        raise LabelwiseError(
            f"{where}: {column} of {pool['sample_id'].iloc[row]} is {w[row]}; weights must be finite and non-negative"
        )
    return w


def network_weights(model: str, kind: str, weights: Any) -> str | None:
    """What the network itself starts from: ``weights`` for a torchvision model (the cached
    official file when None), nothing for ``cnn`` and for heads (their ``weights`` are the
    embedding backbone's)."""
    if kind != "pixels" or model == "cnn":
        return None
    return str(weights) if weights is not None else "hub"
