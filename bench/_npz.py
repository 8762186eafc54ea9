"""Bench helper: a labelwise Dataset over rows of the shared .npz files (no copies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from labelwise import load_dataset
from labelwise.data import Dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def npz_rows(path: Path, rows: np.ndarray, split: str, *, labels_key: str | None = None) -> Dataset:
    """Rows ``rows`` of ``path`` as a dataset whose ``split`` column is ``split``."""
    ds = load_dataset(path, labels_key=labels_key, check=False)
    table = ds.table.iloc[rows].copy()
    table["split"] = split
    return Dataset(table.reset_index(drop=True), ds.classes, source=f"{path}[{len(rows)} rows]")


def concat(*parts: Dataset) -> Dataset:
    classes = parts[0].classes
    assert all(p.classes == classes for p in parts)
    return Dataset(
        pd.concat([p.table for p in parts], ignore_index=True), classes, source=" + ".join(p.source for p in parts)
    )
