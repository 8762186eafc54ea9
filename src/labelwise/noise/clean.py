"""``clean``: apply found label issues to a dataset as a new labels table (never in place)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from .._io import write_json, write_table
from ..data import Dataset
from ..errors import LabelwiseError

log = logging.getLogger("labelwise")

POLICIES = ("relabel", "prune", "review")


def clean_labels(table: pd.DataFrame, issues: pd.DataFrame, policy: str = "relabel") -> pd.DataFrame:
    """A copy of ``table`` with the issues applied, keyed by ``sample_id``.

    ``relabel``: an issue's label becomes its ``suggested_label`` (``label_source`` =
    ``corrected``); ``prune``: its label is removed (``label_source`` = ``removed``, split
    ``unlabeled``); ``review``: nothing changes (the issues go to a human). The original
    label is kept in ``given_label``.

    >>> t = pd.DataFrame({"sample_id": ["a", "b"], "path": ["a", "b"], "label": ["cat", "dog"],
    ...                   "split": "train", "label_source": "given"})
    >>> i = pd.DataFrame({"sample_id": ["b"], "suggested_label": ["cat"], "is_issue": [True]})
    >>> clean_labels(t, i)[["label", "label_source"]].values.tolist()
    [['cat', 'given'], ['cat', 'corrected']]
    """
    if policy not in POLICIES:
        raise LabelwiseError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    missing = [c for c in ("sample_id", "suggested_label", "is_issue") if c not in issues]
    if missing:
        raise LabelwiseError(f"issues table lacks column(s) {', '.join(missing)}; use the label_issues.csv of `labelwise issues`")
    out = table.copy()
    if "given_label" not in out:
        out["given_label"] = out["label"]
    flagged = issues.loc[issues["is_issue"].astype(bool), ["sample_id", "suggested_label"]]
    suggested = flagged.set_index(flagged["sample_id"].astype(str))["suggested_label"]
    unknown = sorted(set(suggested.index) - set(out["sample_id"].astype(str)))
    if unknown:
        raise LabelwiseError(f"issue sample_id {unknown[0]!r} is not in the dataset ({len(unknown)} such); wrong issues file?")
    hit = out["sample_id"].astype(str).isin(suggested.index) & out["label"].notna()
    if policy == "relabel":
        out.loc[hit, "label"] = out.loc[hit, "sample_id"].astype(str).map(suggested).astype(str)
        out.loc[hit, "label_source"] = "corrected"
    elif policy == "prune":
        out.loc[hit, "label"] = None
        out.loc[hit, "label_source"] = "removed"
        out.loc[hit, "split"] = "unlabeled"
    return out


def label_studio_tasks(issues: pd.DataFrame, *, root: str | os.PathLike[str] | None = None,
                       from_name: str = "choice", to_name: str = "image", model_version: str = "labelwise-issues") -> list[dict[str, Any]]:
    """Label Studio import tasks for the flagged issues: the image as a local-files URL
    (relative to ``root``, default the images' common folder), our ``sample_id`` in ``data``,
    and the suggested label as a prediction whose ``score`` is the label quality."""
    rows = issues[issues["is_issue"].astype(bool)]
    paths = [os.path.abspath(p) for p in rows["path"]]
    base = os.path.abspath(root) if root is not None else (os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else "")
    tasks = []
    for (_, row), path in zip(rows.iterrows(), paths):
        rel = Path(os.path.relpath(path, base)).as_posix()
        tasks.append({
            "data": {"image": f"/data/local-files/?d={quote(rel)}", "sample_id": str(row["sample_id"]),
                     "given_label": str(row["given_label"]), "label_quality": float(row["label_quality"])},
            "predictions": [{
                "model_version": model_version,
                "score": float(row["label_quality"]),
                "result": [{"id": f"r{len(tasks)}", "from_name": from_name, "to_name": to_name, "type": "choices",
                            "value": {"choices": [str(row["suggested_label"])]}}],
            }],
        })
    return tasks


def clean(
    data: Dataset | str | os.PathLike[str],
    issues: str | os.PathLike[str] | pd.DataFrame,
    out: str | os.PathLike[str],
    *,
    policy: str = "relabel",
    ls_root: str | os.PathLike[str] | None = None,
    n_jobs: int = 2,
    **read_kwargs: Any,
) -> Dataset:
    """Read ``data`` and ``issues`` (``label_issues.csv``), write the cleaned table to ``out``
    (``.csv``/``.parquet``, with ``classes.json`` beside it); ``review`` also writes
    ``<stem>.review.csv`` and ``<stem>.label_studio.json``. ``out`` may not be the input."""
    from .. import load_dataset

    out = Path(out)
    if not isinstance(data, Dataset) and Path(data).exists() and Path(data).resolve() == out.resolve():
        raise LabelwiseError(f"{out}: --out is the input labels file; clean never overwrites its input, choose another path")
    if out.suffix.lower() not in {".csv", ".parquet"}:
        raise LabelwiseError(f"{out}: --out must end in .csv or .parquet")
    ds = data if isinstance(data, Dataset) else load_dataset(data, n_jobs=n_jobs, **read_kwargs)
    if not isinstance(issues, pd.DataFrame):
        path = Path(issues)
        if path.is_dir():
            path = path / "label_issues.csv"
        if not path.is_file():
            raise LabelwiseError(f"{path}: issues file not found; run `labelwise issues` first")
        issues = pd.read_csv(path, dtype={"sample_id": str, "given_label": str, "suggested_label": str})
    bad = sorted(set(issues.loc[issues["is_issue"].astype(bool), "suggested_label"].astype(str)) - set(ds.classes)) if "suggested_label" in issues else []
    if bad:
        raise LabelwiseError(f"suggested label {bad[0]!r} is not in the class list ({', '.join(ds.classes[:10])})")
    table = clean_labels(ds.table, issues, policy)
    cleaned = Dataset(table, ds.classes, ds.problems, ds.source)
    cleaned.save(out.parent, name=out.name)
    if policy == "review":
        flagged = issues[issues["is_issue"].astype(bool)].copy()
        flagged["decision"] = ""
        write_table(out.with_name(out.stem + ".review.csv"), flagged)
        write_json(out.with_name(out.stem + ".label_studio.json"), label_studio_tasks(flagged, root=ls_root))
        log.warning(
            "Label Studio serves local images only with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT set to the folder the image URLs are relative to"
        )
    return cleaned
