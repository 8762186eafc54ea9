"""Pairwise findings from near-duplicate groups: near_duplicate, leak (a group that spans
splits: train / valid / test, or the labeled and the unlabeled pool) and conflict (a group whose
labels disagree)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.near_duplicates import NearDuplicates

FINDING_COLUMNS = ("sample_id", "path", "issue", "score", "threshold", "related_sample_id", "group")


def split_keys(table: pd.DataFrame) -> np.ndarray:
    """Which part of the data each row is in: its split, with unlabeled rows a part of their own."""
    split = table["split"].astype(object) if "split" in table else pd.Series("train", index=table.index)
    labeled = table["label"].notna()
    return np.where(labeled, split.fillna("train").astype(str), "unlabeled")


def duplicate_findings(table: pd.DataFrame, found: NearDuplicates) -> pd.DataFrame:
    """One row per image and pairwise issue (the best-scoring partner as ``related_sample_id``)."""
    pairs = found.matched()
    if pairs.empty:
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    ids = table["sample_id"].to_numpy(dtype=object)
    paths = table["path"].to_numpy(dtype=object)
    parts = split_keys(table)
    labels = table["label"].to_numpy(dtype=object)
    i, j, score = pairs["i"].to_numpy(), pairs["j"].to_numpy(), pairs["score"].to_numpy()
    both = pd.DataFrame({"row": np.r_[i, j], "other": np.r_[j, i], "score": np.r_[score, score]})
    both["group"] = found.group[both["row"]]
    both["leak"] = parts[both["row"]] != parts[both["other"]]
    label_row, label_other = labels[both["row"]], labels[both["other"]]
    both["conflict"] = pd.notna(label_row) & pd.notna(label_other) & (label_row != label_other)
    rows = []
    for issue, mask in (("leak", both["leak"]), ("conflict", both["conflict"]), ("near_duplicate", None)):
        chosen = both if mask is None else both[mask]
        best = chosen.sort_values(["row", "score"], ascending=[True, False]).drop_duplicates("row")
        rows.append(
            pd.DataFrame(
                {
                    "sample_id": ids[best["row"]],
                    "path": paths[best["row"]],
                    "issue": issue,
                    "score": best["score"].round(4).to_numpy(),
                    "threshold": found.threshold,
                    "related_sample_id": ids[best["other"]],
                    "group": best["group"].to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)
