"""The probability table: how labelwise writes and reads out-of-fold, test and predicted
probabilities: ``sample_id`` plus one ``prob_<class>`` column per class, in ``classes.json`` order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import note_input
from ..errors import LabelwiseError

PROB_PREFIX = "prob_"


def prob_columns(classes: Sequence[str]) -> list[str]:
    """Column names of a probability table: ``prob_<class>`` in class order."""
    return [f"{PROB_PREFIX}{c}" for c in classes]


def probability_table(sample_ids: Sequence[str] | np.ndarray, probs: object, classes: Sequence[str]) -> pd.DataFrame:
    """``sample_id`` plus one ``prob_<class>`` column per class: how labelwise writes
    out-of-fold, test and predicted probabilities."""
    frame = pd.DataFrame(probs, columns=prob_columns(classes))
    frame.insert(0, "sample_id", list(sample_ids))
    return frame


def read_probability_table(predictions: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """A table with ``sample_id`` and ``prob_<class>`` columns, from a DataFrame or a
    CSV/TSV/Parquet file; other columns are kept and ignored."""
    if isinstance(predictions, pd.DataFrame):
        frame = predictions
        where = "predictions"
    else:
        path = Path(predictions)
        where = str(path)
        if not path.is_file():
            raise LabelwiseError(f"{path}: file not found")
        note_input(path)
        try:
            suffix = path.suffix.lower()
            if suffix == ".parquet":
                frame = pd.read_parquet(path)
            elif suffix in {".csv", ".tsv", ".tab"}:
                frame = pd.read_csv(path, sep="," if suffix == ".csv" else "\t", dtype={"sample_id": str})
            else:  # sniff the separator
                frame = pd.read_csv(path, sep=None, engine="python", dtype={"sample_id": str})
        except (ValueError, OSError, ImportError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise LabelwiseError(f"{path}: cannot read as a table ({str(exc).splitlines()[0]})") from None
    if "sample_id" not in frame:
        raise LabelwiseError(f"{where}: no sample_id column; columns are {', '.join(map(str, frame.columns[:8]))}")
    if not any(str(c).startswith(PROB_PREFIX) for c in frame.columns):
        raise LabelwiseError(f"{where}: no prob_<class> columns")
    return frame


def checked_probabilities(frame: pd.DataFrame, classes: Sequence[str], source: str) -> tuple[pd.Series, np.ndarray]:
    """``(sample_ids, probs)`` from a probability table, in ``classes`` order; a one-line error
    names the column or sample_id when a class column is missing or unknown, an id repeats,
    or a row is not a distribution (values in [0, 1] summing to 1 ± 1e-3)."""
    classes = list(classes)
    columns = prob_columns(classes)
    missing = [c for c in columns if c not in frame]
    if missing:
        raise LabelwiseError(
            f"{source}: no column {missing[0]!r}; expected one prob_<class> column per class of {classes}"
        )
    extra = [str(c) for c in frame.columns if str(c).startswith(PROB_PREFIX) and str(c) not in columns]
    if extra:
        raise LabelwiseError(f"{source}: column {extra[0]!r} is not one of the classes {classes}")
    if len(frame) == 0:
        raise LabelwiseError(f"{source}: no prediction rows")
    ids = frame["sample_id"].astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise LabelwiseError(f"{source}: sample_id {dup.iloc[0]!r} appears more than once")
    try:
        probs = frame[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise LabelwiseError(f"{source}: the prob_<class> columns must hold numbers") from None
    sums = probs.sum(1)
    off = ~np.isfinite(sums) | (np.abs(sums - 1) > 1e-3)
    bad = np.flatnonzero(off | (probs < -1e-6).any(1) | (probs > 1 + 1e-6).any(1))
    if len(bad):
        what = f"sum to {sums[bad[0]]:.4f}, not 1" if off[bad[0]] else "are not all in [0, 1]"
        raise LabelwiseError(f"{source}: probabilities of sample_id {ids.iloc[bad[0]]!r} {what}")
    return ids, probs
