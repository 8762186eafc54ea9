"""Stratified train/valid split and stratified k-fold assignment."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._run import recorded
from ..errors import LabelwiseError
from .options import ReadOptions, as_read_options, dataset_inputs

if TYPE_CHECKING:
    from .table import Dataset

log = logging.getLogger("labelwise")


def split_table(
    table: pd.DataFrame,
    *,
    valid_pct: float = 0.2,
    folds: int = 5,
    random_state: int = 0,
    keep_existing: bool = False,
    groups: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """Return a copy of ``table`` with a stratified ``split`` and a ``fold`` column.

    With ``groups`` (one id per row in table order, -1 for a row alone: near-duplicate groups), the
    members of a group stay in one split and one fold: each group counts as one image, labeled as
    its first member, in the same stratified split and folds (so the shares hold per group, not per
    image; without a group of two the result is the same as without ``groups``).

    Labeled rows outside ``test`` are split into ``train`` / ``valid`` (``valid_pct``
    of each class, at least one per class when possible); ``test`` and unlabeled rows
    keep their split. ``fold`` (0..folds-1) is a stratified k-fold over the ``train``
    rows; other rows get ``-1``. With ``keep_existing`` an existing ``valid`` split is
    kept and only folds are assigned. The same ``random_state`` gives the same result.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sample_id": [f"s{i}" for i in range(20)], "label": ["a", "b"] * 10,
    ...                   "split": ["train"] * 20})
    >>> out = split_table(t, valid_pct=0.2, folds=2, random_state=0)
    >>> out["split"].value_counts().to_dict()
    {'train': 16, 'valid': 4}
    """
    if not 0.0 <= valid_pct < 1.0:
        raise LabelwiseError(f"valid_pct must be in [0, 1), got {valid_pct}")
    if folds < 0 or folds == 1:
        raise LabelwiseError(f"folds must be 0 (none) or at least 2, got {folds}")
    out = table.copy()
    group_ids = None
    if groups is not None:
        group_ids = np.asarray(groups)
        if group_ids.shape != (len(out),):
            raise LabelwiseError(f"groups must hold one id per row ({len(out)}), got shape {group_ids.shape}")
        group_ids = _group_ids(group_ids)
    labeled = out["label"].notna()
    if "split" not in out.columns:
        out["split"] = np.where(labeled, "train", "unlabeled")
    split = out["split"].where(labeled, "unlabeled").astype(object)
    pool = labeled & (split != "test")
    if not keep_existing:
        split[pool] = "train"
        if valid_pct > 0 and pool.sum() > 1:
            idx = out.index[pool]
            first, unit = _units(out.index.get_indexer(idx), group_ids)
            stratify = _stratify_labels(out["label"].iloc[first], need=2, what="the train/valid split")
            n_valid = max(int(round(valid_pct * len(first))), stratify.nunique())
            if n_valid >= len(first):
                raise LabelwiseError(
                    f"valid_pct={valid_pct} leaves no training images ({len(first)} labeled images"
                    f"{' or near-duplicate groups' if len(first) < len(idx) else ''}, {stratify.nunique()} classes)"
                )
            from sklearn.model_selection import train_test_split  # scikit-learn takes a second to import

            _, chosen = train_test_split(
                np.arange(len(first)), test_size=n_valid, stratify=stratify, random_state=random_state
            )
            split[idx[np.isin(unit, chosen)]] = "valid"
    out["split"] = split
    out["fold"] = -1
    if folds:
        train_idx = out.index[out["split"] == "train"]
        first, unit = _units(out.index.get_indexer(train_idx), group_ids)
        if len(first) < folds:
            raise LabelwiseError(
                f"{folds} folds need at least {folds} training images"
                f"{' (a near-duplicate group counts once)' if len(first) < len(train_idx) else ''}, found {len(first)}"
            )
        stratify = _stratify_labels(out["label"].iloc[first], need=folds, what=f"{folds}-fold assignment")
        fold = np.full(len(first), -1)
        from sklearn.model_selection import StratifiedKFold

        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
        for k, (_, test) in enumerate(skf.split(np.zeros(len(first)), stratify)):
            fold[test] = k
        out.loc[train_idx, "fold"] = fold[unit]
    out["fold"] = out["fold"].astype("int64")
    return out


def _group_ids(groups: np.ndarray) -> np.ndarray:
    """Group ids with every row alone (-1) given a group of its own."""
    ids = groups.astype(np.int64).copy()
    alone = ids < 0
    ids[alone] = ids.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    return ids


def _units(rows: np.ndarray, group_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each group among ``rows`` (positions, groups in the order of their first
    row) and each row's group as a position in that list; every row its own without groups."""
    if group_ids is None:
        return rows, np.arange(len(rows))
    _, first, inverse = np.unique(group_ids[rows], return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rows[first[order]], rank[inverse.ravel()]


def leaking_groups(table: pd.DataFrame, groups: pd.Series | np.ndarray) -> list[tuple[str, str]]:
    """One ``(sample_id, sample_id)`` example per group whose members lie in more than one of
    train / valid / test."""
    parts = table["split"].where(table["split"].isin(["train", "valid", "test"]))
    frame = pd.DataFrame({"id": table["sample_id"].to_numpy(), "part": parts.to_numpy(), "group": np.asarray(groups)})
    frame = frame[(frame["group"] >= 0) & frame["part"].notna()]
    examples = []
    for _, members in frame.groupby("group", sort=True):
        if members["part"].nunique() > 1:
            first = members.iloc[0]
            other = members[members["part"] != first["part"]].iloc[0]
            examples.append((str(first["id"]), str(other["id"])))
    return examples


def _stratify_labels(labels: pd.Series, *, need: int, what: str) -> pd.Series:
    """Labels to stratify on; classes with fewer than ``need`` images are pooled, with a warning."""
    counts = labels.value_counts()
    rare = counts[counts < need]
    if rare.empty:
        return labels
    log.warning(
        "%s: class(es) %s have fewer than %d images and cannot be stratified; they are pooled",
        what,
        ", ".join(f"{c!r} ({n})" for c, n in rare.items()),
        need,
    )
    pooled = labels.where(~labels.isin(rare.index), "__rare__")
    if (pooled == "__rare__").sum() < need:
        # Too few even when pooled: attach them to the largest class for stratification only.
        pooled = pooled.replace("__rare__", counts.index[0])
    return pooled


@recorded("split", inputs=dataset_inputs(files=("audit",)), single_file=True)
def split(
    data: str | os.PathLike[str] | Dataset,
    out: str | os.PathLike[str] | None = None,
    *,
    valid_pct: float = 0.2,
    folds: int = 5,
    keep_existing: bool = False,
    near_duplicates: bool = True,
    audit: str | os.PathLike[str] | pd.DataFrame | None = None,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Read ``data``, add a stratified split and folds, and write the table to ``out``.

    ``out`` is a ``.csv`` or ``.parquet`` path; ``classes.json`` (and ``<stem>.problems.csv``
    when inputs were excluded) are written beside it, with the run's record
    (``<stem>.run.json``, ``<stem>.config.yaml``). ``read`` says how to read ``data``. With
    ``near_duplicates`` (the default), near-duplicate images are found first
    (:func:`~labelwise.data.near_duplicates.near_duplicate_groups`) and each group kept in one
    split and fold (``audit``: the groups of an ``audit.csv`` instead, nothing measured); a group
    that the given splits already divide (e.g. train and a given test split) is warned about.
    Returns a new :class:`Dataset` (a given one is not changed).

    Examples
    --------
    >>> import tempfile, labelwise
    >>> from labelwise._demo import make_demo_images
    >>> tmp = tempfile.mkdtemp()
    >>> _ = make_demo_images(tmp + "/images")
    >>> ds = labelwise.split(tmp + "/images", tmp + "/data/dataset.csv", folds=5, random_state=0)
    >>> ds.table["split"].value_counts().to_dict()
    {'train': 1150, 'unlabeled': 359, 'valid': 288}
    """
    from .._io import write_table
    from .table import Dataset

    if out is not None and Path(out).suffix.lower() not in {".csv", ".parquet"}:
        raise LabelwiseError(f"{out}: the split table must end in .csv or .parquet")
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, n_jobs=n_jobs)
    groups = None
    if audit is not None:
        from .audit_table import audit_groups

        groups = audit_groups(ds.table, audit)
    elif near_duplicates and len(ds.table) > 1:
        from .near_duplicates import near_duplicate_groups

        groups = near_duplicate_groups(ds.table, n_jobs=n_jobs)
    if groups is not None:
        n_groups = int(groups[groups >= 0].nunique())
        log.info("split: %d near-duplicate group(s) (%d images) kept together", n_groups, int((groups >= 0).sum()))
    table = split_table(
        ds.table,
        valid_pct=valid_pct,
        folds=folds,
        random_state=random_state,
        keep_existing=keep_existing,
        groups=groups,
    )
    if groups is not None:
        leaks = leaking_groups(table, groups.to_numpy())
        if leaks:
            log.warning(
                "split leaks: %d near-duplicate group(s) span the given splits (e.g. %s ~ %s); "
                "an evaluation on them is optimistic",
                len(leaks),
                *leaks[0],
            )
    result = Dataset(table, list(ds.classes), ds.problems, ds.source)
    if out is not None:
        out = Path(out)
        result.save(out.parent, name=out.name)
        if len(result.problems):
            write_table(out.parent / f"{out.stem}.problems.csv", result.problems)
    return result
