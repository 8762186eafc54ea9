"""Exact duplicate images, found by content hash."""

from __future__ import annotations

import pandas as pd

DUPLICATE_COLUMNS = ("group", "content_hash", "sample_id", "path", "label", "conflicting_labels")


def find_duplicates(table: pd.DataFrame) -> pd.DataFrame:
    """List images whose bytes are identical, one row per image, grouped.

    ``table`` needs ``content_hash`` (a checked table). ``conflicting_labels`` is true
    for every member of a group whose members carry different labels.

    Returns
    -------
    DataFrame with columns ``group, content_hash, sample_id, path, label, conflicting_labels``.
    """
    if "content_hash" not in table.columns or table.empty:
        return pd.DataFrame(columns=list(DUPLICATE_COLUMNS))
    dup = table[table["content_hash"].duplicated(keep=False)]
    if dup.empty:
        return pd.DataFrame(columns=list(DUPLICATE_COLUMNS))
    dup = dup[["content_hash", "sample_id", "path", "label"]].copy()
    n_labels = dup.groupby("content_hash")["label"].transform(lambda s: s.dropna().nunique())
    dup["conflicting_labels"] = n_labels > 1
    order = {h: i for i, h in enumerate(dict.fromkeys(dup["content_hash"]))}
    dup["group"] = dup["content_hash"].map(order).astype("int64")
    return dup.sort_values(["group", "sample_id"], kind="stable")[list(DUPLICATE_COLUMNS)].reset_index(drop=True)
