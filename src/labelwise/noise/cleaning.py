"""``clean``: apply found label issues to a dataset as a new labels table (never in place)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import note_input, write_json, write_table
from .._run import recorded
from ..data import Dataset
from ..data.audit_table import GROUP_ISSUES, read_audit
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
    issues: str | os.PathLike[str] | pd.DataFrame | None,
    out: str | os.PathLike[str],
    *,
    policy: str = "relabel",
    drop: str | os.PathLike[str] | pd.DataFrame | None = None,
    drop_issues: list[str] | None = None,
    ls_root: str | os.PathLike[str] | None = None,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Read ``data`` and ``issues`` (``label_issues.csv``), write the cleaned table to ``out``
    (``.csv``/``.parquet``, with ``classes.json`` beside it); ``review`` also writes
    ``<stem>.review.csv`` and ``<stem>.label_studio.json``. ``out`` is never an input.

    ``drop`` (an ``audit.csv`` of :func:`labelwise.audit`) removes the rows with findings of
    the types in ``drop_issues`` (default every type found); of a near-duplicate or leak group
    one member stays, the first labeled one in table order. ``issues`` may then be ``None``.
    """
    out = Path(out)
    if out.suffix.lower() not in {".csv", ".parquet"}:
        raise LabelwiseError(f"{out}: --out must end in .csv or .parquet")
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, n_jobs=n_jobs)
    if issues is None:
        if drop is None:
            raise LabelwiseError("clean needs label issues (--issues) or an audit to drop from (--drop)")
        table = drop_findings(ds.table, read_audit(drop), drop_issues)
        cleaned = Dataset(table.reset_index(drop=True), ds.classes, ds.problems, ds.source)
        cleaned.save(out.parent, name=out.name)
        return cleaned
    where = "issues"
    if isinstance(issues, pd.DataFrame):
        found = issues
    else:
        path = Path(issues)
        if path.is_dir():
            path = path / "label_issues.csv"
        if not path.is_file():
            raise LabelwiseError(f"{path}: issues file not found; run `labelwise issues` first")
        note_input(path)
        where = str(path)
        try:
            found = pd.read_csv(path, dtype={"sample_id": str, "given_label": str, "suggested_label": str})
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise LabelwiseError(f"{path}: cannot read as a table ({str(exc).strip().splitlines()[-1]})") from None
    if "is_issue" in found and "suggested_label" in found:
        flagged = found["is_issue"].astype(str).str.lower().isin({"true", "1"})
        bad = sorted(set(found.loc[flagged, "suggested_label"].astype(str)) - set(ds.classes))
        if bad:
            raise LabelwiseError(
                f"{where}: suggested label {bad[0]!r} is not in the class list ({', '.join(ds.classes[:10])})"
            )
        found = found.assign(is_issue=flagged)
    table = clean_labels(ds.table, found, policy, where=where)
    if drop is not None:
        table = drop_findings(table, read_audit(drop), drop_issues).reset_index(drop=True)
    cleaned = Dataset(table, ds.classes, ds.problems, ds.source)
    cleaned.save(out.parent, name=out.name)
    if policy == "review":
        flagged = found[found["is_issue"].astype(bool)].copy()
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


# The types labelwise.audit writes (read as a plain table: noise never imports the audit).
AUDIT_ISSUES = (
    "near_duplicate",
    "leak",
    "conflict",
    "outlier",
    "class_outlier",
    "dark",
    "light",
    "blurry",
    "low_information",
    "grayscale",
    "odd_aspect_ratio",
    "odd_size",
)


def drop_findings(table: pd.DataFrame, audit: pd.DataFrame, issues: list[str] | None = None) -> pd.DataFrame:
    """``table`` without the rows the audit found with ``issues`` (default every type in it); one
    member of each near-duplicate / leak group stays (the first labeled one in table order)."""
    chosen = sorted(audit["issue"].unique()) if issues is None else list(issues)
    unknown = [i for i in chosen if i not in AUDIT_ISSUES]
    if unknown:
        raise LabelwiseError(
            f"unknown audit issue(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(AUDIT_ISSUES)}"
        )
    found = audit[audit["issue"].isin(chosen)]
    dropped = set(found.loc[~found["issue"].isin(GROUP_ISSUES), "sample_id"])
    grouped = found[found["issue"].isin(GROUP_ISSUES)].drop_duplicates("sample_id")
    if len(grouped):
        members = table[["sample_id", "label"]].reset_index(drop=True)
        members = members.assign(order=np.arange(len(members)))
        members = members.merge(grouped[["sample_id", "group"]], on="sample_id")
        keep = members.assign(unlabeled=members["label"].isna()).sort_values(["group", "unlabeled", "order"])
        kept = set(keep.drop_duplicates("group")["sample_id"])
        dropped |= set(members["sample_id"]) - kept
    n = int(table["sample_id"].isin(dropped).sum())
    log.info("clean: %d row(s) dropped for %s", n, ", ".join(chosen))
    return table[~table["sample_id"].isin(dropped)]
