"""The labeling queue: any task list labelwise writes, read into one row per task.

``QUEUE`` may be ``pseudolabel``'s ``problematic.csv``, ``query``'s ``query.csv``,
``issues``' ``label_issues.csv`` (review mode: only the flagged labels, least trusted first, with
the given label and the suggestion), a labelwise table, a folder of images, or any CSV with a
``sample_id`` or ``path`` column (paths relative to ``images``). Gold images become training,
exam and honeypot tasks, split as ``labelwise tasks`` splits them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..crowd.tasks import gold_rows, no_gold, split_gold
from ..data.delimited import _read_delimited
from ..data.natural import natural_sorted
from ..data.table import CLASSES_FILE, clean_label, read_classes
from ..errors import LabelwiseError
from .models import TASK_COLUMNS

#: Columns that carry the model's guess, and its score, in the files labelwise writes.
SUGGESTION_COLUMNS = ("suggested_label", "predicted_label", "prediction", "pseudo_label")
SCORE_COLUMNS = ("confidence", "probability", "score", "label_quality")


@dataclass
class Queue:
    """Tasks to serve (columns :data:`TASK_COLUMNS`, in serving order), their classes, the
    folder every image lies in, and what kind of list it was."""

    tasks: pd.DataFrame
    classes: list[str]
    images_root: Path
    kind: str

    def counts(self) -> dict[str, int]:
        return {role: int((self.tasks["role"] == role).sum()) for role in ("task", "training", "exam", "honeypot")}


def read_queue(
    queue: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    gold: str | os.PathLike[str] | None = None,
    classes: list[str] | None = None,
    training_pct: float = 30,
    exam_pct: float = 20,
    all_rows: bool = False,
    seed: int = 0,
) -> Queue:
    """Read ``queue`` (see the module) into tasks; ``all_rows`` keeps every row of a
    ``label_issues.csv``, not only the flagged ones."""
    source = Path(queue)
    root = Path(images) if images is not None else None
    if source.is_dir():
        rows, kind = _folder_rows(source), "folder"
        root = root or source
    else:
        rows, kind = _file_rows(source, root, all_rows=all_rows)
    if root is None and len(rows):  # gold images named like the queue's are looked for beside them
        root = Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in rows["path"]]))
    known = gold_rows(gold, rows[["sample_id", "path"]], root) if gold is not None else no_gold()
    rows = rows[~rows["sample_id"].isin(known["sample_id"])]
    graded = known.assign(
        role=split_gold(known["label"], training_pct=training_pct, exam_pct=exam_pct, seed=seed).to_numpy()
        if len(known)
        else [],
        gold_label=known["label"],
    ).drop(columns="label")
    tasks = pd.concat([graded, rows.assign(role="task")], ignore_index=True)
    tasks = tasks.reindex(columns=list(TASK_COLUMNS)).astype(object).where(lambda t: t.notna(), None)
    if tasks.empty or not (tasks["role"] == "task").any():
        raise LabelwiseError(f"{queue}: no tasks to label")
    tasks["path"] = [os.path.abspath(p) for p in tasks["path"]]
    missing = [p for p in tasks["path"] if not os.path.isfile(p)]
    if missing:
        raise LabelwiseError(
            f"{queue}: {len(missing)} image(s) not found, e.g. {missing[0]}"
            + ("" if images else "; pass --images ROOT if the paths are relative to another folder")
        )
    root = Path(os.path.abspath(root or os.path.commonpath([os.path.dirname(p) for p in tasks["path"]])))
    if images is None:  # the common folder of every task, gold ones included
        root = Path(os.path.commonpath([os.path.dirname(p) for p in tasks["path"]]))
    outside = [p for p in tasks["path"] if not _inside(p, root)]
    if outside:
        raise LabelwiseError(f"{outside[0]}: outside the images folder {root}; pass --images with a folder holding it")
    found = _classes(classes, source, tasks)
    if kind == "issues":
        _decoy_labels(tasks, found, seed)
    for column in ("gold_label", "given_label", "suggestion"):
        bad = [v for v in tasks[column] if v is not None and v not in found]
        if bad:
            raise LabelwiseError(f"{queue}: {column} {bad[0]!r} is not one of the classes ({', '.join(found)})")
    return Queue(tasks, found, root, kind)


def _decoy_labels(tasks: pd.DataFrame, classes: list[str], seed: int) -> None:
    """Review mode shows every real task with its dataset label; a honeypot without one would stand
    out. Each gets one: its gold label or, as often, another class, so that confirming without looking
    costs honeypot accuracy."""
    rng = np.random.default_rng(seed)
    for i in tasks.index[tasks["role"] == "honeypot"]:
        gold = tasks.at[i, "gold_label"]
        others = [c for c in classes if c != gold]
        tasks.at[i, "given_label"] = gold if not others or rng.random() < 0.5 else others[rng.integers(len(others))]


def _inside(path: str, root: Path) -> bool:
    return os.path.commonpath([path, str(root)]) == str(root)


def _folder_rows(folder: Path) -> pd.DataFrame:
    from ..data import read_image_files

    table = read_image_files(folder, check=False).table
    return pd.DataFrame({"sample_id": table["sample_id"].astype(str), "path": table["path"].astype(str)})


def _file_rows(path: Path, root: Path | None, *, all_rows: bool) -> tuple[pd.DataFrame, str]:
    frame = _read_delimited(path)
    lower = {c.lower(): c for c in frame.columns}
    if "path" not in lower and "sample_id" not in lower:
        raise LabelwiseError(f"{path}: needs a sample_id or path column; columns are: {', '.join(frame.columns)}")
    kind = (
        "issues"
        if "given_label" in lower
        else "problematic"
        if "why" in lower
        else "query"
        if "predicted_label" in lower
        else "table"
        if "label" in lower
        else "list"
    )
    out = pd.DataFrame(index=frame.index)
    ids = frame[lower["sample_id"]] if "sample_id" in lower else None
    paths = frame[lower["path"]] if "path" in lower else ids
    base = root or path.parent
    out["path"] = [str(p) if os.path.isabs(str(p)) else str(base / str(p)) for p in paths]  # type: ignore[union-attr]
    out["sample_id"] = (
        ids.astype(str).to_numpy()
        if ids is not None
        else [Path(os.path.relpath(p, base)).as_posix() for p in out["path"]]
    )
    blank = out.index[(out["sample_id"].str.strip() == "") | (out["path"].str.strip() == "")]
    if len(blank):
        raise LabelwiseError(f"{path}: row {int(blank[0]) + 2} has no sample_id/path")
    duplicated = out["sample_id"][out["sample_id"].duplicated()]
    if len(duplicated):
        raise LabelwiseError(f"{path}: sample_id {duplicated.iloc[0]!r} appears twice")
    suggestion = next((lower[c] for c in SUGGESTION_COLUMNS if c in lower), None)
    score = next((lower[c] for c in SCORE_COLUMNS if c in lower), None)
    out["suggestion"] = [clean_label(v) for v in frame[suggestion]] if suggestion else None
    out["suggestion_score"] = pd.to_numeric(frame[score], errors="coerce") if score else np.nan
    given = lower.get("given_label") or (lower.get("label") if kind == "table" else None)
    out["given_label"] = [clean_label(v) for v in frame[given]] if given else None
    out["reason"] = _reasons(frame, lower, kind)
    if kind == "issues":
        flagged = frame[lower["is_issue"]].astype(str).str.lower().isin({"true", "1"}) if "is_issue" in lower else None
        if flagged is not None and not all_rows:
            out = out[flagged.to_numpy()]
        if "label_quality" in lower:  # least trusted first
            order = pd.to_numeric(frame.loc[out.index, lower["label_quality"]], errors="coerce")
            out = out.loc[order.sort_values(kind="stable").index]
    elif kind == "table":  # the unlabeled images; a fully labeled table is reviewed
        unlabeled = out["given_label"].isna()
        out = out[unlabeled] if unlabeled.any() else out
    return out.reset_index(drop=True), kind


def _reasons(frame: pd.DataFrame, lower: dict[str, str], kind: str) -> list[str | None]:
    if kind == "problematic":
        return [f"problematic: {w}" if w else "problematic" for w in frame[lower["why"]]]
    if kind == "query" and "rank" in lower:
        return [f"query rank {r}" for r in frame[lower["rank"]]]
    if kind == "issues" and "doubt" in lower:
        return [
            f"suspicious label (doubt {float(d):.2f})" if d != "" else "suspicious label" for d in frame[lower["doubt"]]
        ]
    return [None] * len(frame)


def _classes(given: list[str] | None, source: Path, tasks: pd.DataFrame) -> list[str]:
    if given:
        return list(given)
    for folder in (source.parent, source.parent.parent):
        if (folder / CLASSES_FILE).is_file():
            return read_classes(folder / CLASSES_FILE)
    seen = {v for c in ("gold_label", "given_label", "suggestion") for v in tasks[c] if v is not None}
    if len(seen) < 2:
        raise LabelwiseError(f"{source}: cannot tell the classes from it; pass --classes a,b,c or a classes.json")
    return natural_sorted(seen)
