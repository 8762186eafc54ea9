"""``clean``: apply found label issues to a dataset as a new labels table (never in place)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from .._io import note_input, write_json, write_table
from .._run import recorded
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError
from ..formats.labeling import label_studio_tasks

log = logging.getLogger("labelwise")

POLICIES = ("relabel", "prune", "review")


def clean_labels(
    table: pd.DataFrame, issues: pd.DataFrame, policy: str = "relabel", *, where: str = "issues"
) -> pd.DataFrame:
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
        raise LabelwiseError(
            f"{where}: lacks column(s) {', '.join(missing)}; use the label_issues.csv of `labelwise issues`"
        )
    out = table.copy()
    if "given_label" not in out:
        out["given_label"] = out["label"]
    flagged = issues.loc[issues["is_issue"].astype(bool), ["sample_id", "suggested_label"]]
    suggested = flagged.set_index(flagged["sample_id"].astype(str))["suggested_label"]
    unknown = sorted(set(suggested.index) - set(out["sample_id"].astype(str)))
    if unknown:
        raise LabelwiseError(
            f"{where}: sample_id {unknown[0]!r} is not in the dataset ({len(unknown)} such); is it the "
            "issues file of another dataset?"
        )
    hit = out["sample_id"].astype(str).isin(suggested.index) & out["label"].notna()
    if policy == "relabel":
        out.loc[hit, "label"] = out.loc[hit, "sample_id"].astype(str).map(suggested).astype(str)
        out.loc[hit, "label_source"] = "corrected"
    elif policy == "prune":
        out.loc[hit, "label"] = None
        out.loc[hit, "label_source"] = "removed"
        out.loc[hit, "split"] = "unlabeled"
    return out


@recorded("clean", inputs=dataset_inputs(files=("issues", "ls_root")), single_file=True)
def clean(
    data: Dataset | str | os.PathLike[str],
    issues: str | os.PathLike[str] | pd.DataFrame,
    out: str | os.PathLike[str],
    *,
    policy: str = "relabel",
    ls_root: str | os.PathLike[str] | None = None,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Read ``data`` and ``issues`` (``label_issues.csv``), write the cleaned table to ``out``
    (``.csv``/``.parquet``, with ``classes.json`` beside it); ``review`` also writes
    ``<stem>.review.csv`` and ``<stem>.label_studio.json``. ``out`` is never an input."""
    out = Path(out)
    if out.suffix.lower() not in {".csv", ".parquet"}:
        raise LabelwiseError(f"{out}: --out must end in .csv or .parquet")
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, n_jobs=n_jobs)
    where = "issues"
    if not isinstance(issues, pd.DataFrame):
        path = Path(issues)
        if path.is_dir():
            path = path / "label_issues.csv"
        if not path.is_file():
            raise LabelwiseError(f"{path}: issues file not found; run `labelwise issues` first")
        note_input(path)
        where = str(path)
        try:
            issues = pd.read_csv(path, dtype={"sample_id": str, "given_label": str, "suggested_label": str})
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise LabelwiseError(f"{path}: cannot read as a table ({str(exc).strip().splitlines()[-1]})") from None
    if "is_issue" in issues and "suggested_label" in issues:
        flagged = issues["is_issue"].astype(str).str.lower().isin({"true", "1"})
        bad = sorted(set(issues.loc[flagged, "suggested_label"].astype(str)) - set(ds.classes))
        if bad:
            raise LabelwiseError(
                f"{where}: suggested label {bad[0]!r} is not in the class list ({', '.join(ds.classes[:10])})"
            )
        issues = issues.assign(is_issue=flagged)
    table = clean_labels(ds.table, issues, policy, where=where)
    cleaned = Dataset(table, ds.classes, ds.problems, ds.source)
    cleaned.save(out.parent, name=out.name)
    if policy == "review":
        flagged = issues[issues["is_issue"].astype(bool)].copy()
        flagged["decision"] = ""
        write_table(out.with_name(out.stem + ".review.csv"), flagged)
        tasks = label_studio_tasks(
            flagged,
            root=ls_root,
            prediction_col="suggested_label",
            score_col="label_quality",
            data_cols=("given_label", "label_quality"),
            model_version="labelwise-issues",
        )
        write_json(out.with_name(out.stem + ".label_studio.json"), tasks)
        log.warning(
            "Label Studio serves local images only with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT set to the folder the image URLs are relative to"
        )
    return cleaned
