"""``audit.csv`` (the findings of ``labelwise audit``) read as a plain table, for the commands that
use it downstream (split, clean, query, pseudolabel) without importing the audit."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import note_input
from ..errors import LabelwiseError

AUDIT_COLUMNS = ("sample_id", "issue", "group")
#: Issues whose ``group`` column names a near-duplicate group.
GROUP_ISSUES = ("near_duplicate", "leak")


def read_audit(audit: str | os.PathLike[str] | pd.DataFrame) -> pd.DataFrame:
    """The findings of an ``audit.csv`` (or of the folder holding one); a one-line error naming the
    file when it is missing, not a table, or lacks ``sample_id``, ``issue`` or a whole-number ``group``."""
    where = "the audit table"
    if isinstance(audit, pd.DataFrame):
        table = audit
    else:
        path = Path(audit)
        if path.is_dir():
            path = path / "audit.csv"
        where = str(path)
        if not path.is_file():
            raise LabelwiseError(f"{path}: audit file not found; run `labelwise audit` first")
        note_input(path)
        try:
            table = pd.read_csv(path, dtype={"sample_id": str, "related_sample_id": str, "issue": str})
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise LabelwiseError(f"{path}: cannot read as a table ({str(exc).strip().splitlines()[-1]})") from None
    missing = [c for c in AUDIT_COLUMNS if c not in table.columns]
    if missing:
        raise LabelwiseError(f"{where}: not an audit table, no column {', '.join(missing)} (see `labelwise audit`)")
    group = pd.to_numeric(table["group"], errors="coerce")
    bad = table["issue"].isin(GROUP_ISSUES) & (group.isna() | (group != group.round()))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LabelwiseError(
            f"{where}: row {row + 2} ({table['sample_id'].iloc[row]}): group {table['group'].iloc[row]!r} "
            "is not a whole number"
        )
    return table.assign(group=group.fillna(-1).astype("int64"))


def audit_groups(table: pd.DataFrame, audit: str | os.PathLike[str] | pd.DataFrame) -> pd.Series:
    """Each row's near-duplicate group (-1: none) as ``audit`` records it, by ``sample_id``."""
    from .near_duplicates import groups_from_audit

    return groups_from_audit(table, read_audit(audit))
