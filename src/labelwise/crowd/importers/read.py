"""Crowd answers from Label Studio, Toloka and plain CSV files, as one long table.

Every reader ends in :class:`Answers`: ``table`` holds one row per (task, worker) with
columns ``task, worker, label, source`` (``source`` names the file and record, so errors can
point at them); ``images`` maps each task to the image it shows. A task is our
``sample_id`` when the export carries one, else the image: the path of a local-files URL,
the file name of an upload without Label Studio's ``<8 hex>-`` prefix, or the URL itself.
With ``images=ROOT`` each image is matched to one real file below ``ROOT`` (in a folder of
per-annotator exports, below ``ROOT/<annotator>/`` when that folder exists) and the task
becomes its path relative to ``ROOT``; names that match no file or several files are
reported in ``unmatched``, never guessed.

Nothing is dropped silently: cancelled Label Studio annotations, rejected Toloka
assignments, answers without a label, unmatched images and repeated (task, worker) pairs
(the first in file order is kept) are counted in ``dropped``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ..._io import note_images
from ...data.table import read_classes
from ...errors import LabelwiseError
from ._collector import (
    ANSWER_COLUMNS,
    FORMATS,
    TASK_ALIASES,
    Answers,
    Format,
    _Collector,
    _finish,
    _read_csv,
)
from .database import _read_database, database_of
from .labelstudio import (
    _load_json,
    _read_labelstudio,
    _read_labelstudio_csv,
    _read_labelstudio_min,
    image_key,
)
from .long_csv import _read_long_csv
from .matching import _ImageIndex
from .toloka import _read_toloka

log = logging.getLogger("labelwise")

__all__ = ["ANSWER_COLUMNS", "FORMATS", "Answers", "Format", "image_key", "read_answers", "read_gold"]


_READERS = {
    "labelstudio": _read_labelstudio,
    "labelstudio-min": _read_labelstudio_min,
    "labelstudio-csv": _read_labelstudio_csv,
    "toloka": _read_toloka,
    "csv": _read_long_csv,
    "labelwise-db": _read_database,
}


def _read_folder(folder: Path, format: str, from_name: str | None, col: _Collector) -> None:
    """Per-annotator exports: ``folder/<annotator>/*.json|csv`` or ``folder/<annotator>.json``."""
    note_images(folder, recursive=True)  # every file below it is read: nothing may be written there
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in {".json", ".csv", ".tsv"}
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise LabelwiseError(f"{folder}: no .json/.csv exports found")
    per_annotator: Counter[str] = Counter()
    for file in files:
        rel = file.relative_to(folder)
        annotator = rel.parts[0] if len(rel.parts) > 1 else file.stem
        fmt = _detect(file) if format == "auto" else format
        before = len(col.rows)
        _READERS[_check_format(fmt)](file, col, from_name=from_name, worker=annotator)
        per_annotator[annotator] += len(col.rows) - before
    for annotator, n in sorted(per_annotator.items()):
        if n == 0 and not any(w == annotator or w.startswith(f"{annotator}/") for w in col.seen_workers):
            col.notes.append(f"annotator {annotator!r} ({folder / annotator}) has no answers")


# ---------------------------------------------------------------- matching and checks


def read_answers(
    path: str | os.PathLike[str],
    format: Format = "auto",
    *,
    from_name: str | None = None,
    images: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | str | os.PathLike[str] | None = None,
    gold_tasks: Iterable[str] = (),
) -> Answers:
    """Read crowd answers from ``path``: a file, or a folder of per-annotator exports.

    Parameters
    ----------
    path : a Label Studio JSON / JSON-MIN / CSV export, a Toloka results TSV, a long CSV
        (``task, worker, label``), a ``labelwise label`` project folder (or its ``labels.db``:
        the answers and the gold straight from the database), or a folder whose sub-folders (or
        files) are named after annotators and hold their Label Studio exports.
    format : one of :data:`FORMATS`, or ``"auto"`` (by suffix and content).
    from_name : the Label Studio Choices tag (or Toloka ``OUTPUT:`` field) holding the label,
        needed when there are several.
    images : root folder of the real image files; matches every image to one file, and makes
        byte-identical files (per-annotator copies) one task.
    classes : the class list (or a ``classes.json``); any other label is an error naming its record.
    gold_tasks : ``sample_id`` of gold tasks: kept with ``images`` even when their image lies elsewhere.

    Examples
    --------
    >>> import tempfile, json, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "export.json"
    >>> _ = f.write_text(json.dumps([{"id": 1, "data": {"image": "/data/upload/3/1a2b3c4d-cat1.jpg"},
    ...     "annotations": [{"completed_by": 2, "result": [{"from_name": "choice", "type": "choices",
    ...                      "value": {"choices": ["cat"]}}]},
    ...                     {"completed_by": {"id": 5, "email": "bo@x.org"}, "was_cancelled": True, "result": []}]}]))
    >>> a = read_answers(f)
    >>> a.table[["task", "worker", "label"]].values.tolist(), a.dropped
    ([['cat1.jpg', '2', 'cat']], {'cancelled': 1})
    """
    path = Path(path)
    if not path.exists():
        raise LabelwiseError(f"{path}: no such file or folder")
    index = _ImageIndex(Path(images)) if images is not None else None
    col = _Collector()
    if format in ("auto", "labelwise-db") and database_of(path) is not None:
        _read_database(path, col, from_name=from_name, worker=None)
    elif path.is_dir():
        _read_folder(path, format, from_name, col)
    else:
        fmt = _detect(path) if format == "auto" else format
        _READERS[_check_format(fmt)](path, col, from_name=from_name, worker=None)
    class_list = _class_list(classes)
    return _finish(col, index, class_list, str(path), set(map(str, gold_tasks)))


def _check_format(fmt: str) -> str:
    if fmt not in _READERS:
        raise LabelwiseError(f"unknown answers format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _class_list(classes: Sequence[str] | str | os.PathLike[str] | None) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        return read_classes(classes)
    return [str(c) for c in classes]


def _detect(path: Path) -> str:
    """The format of one file, from its suffix and first record or header."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        records = _load_json(path)
        first = next((r for r in records if isinstance(r, dict)), {})
        return "labelstudio" if {"data", "annotations", "completions"} & set(first) else "labelstudio-min"
    header = _header(path, "\t" if suffix in {".tsv", ".tab"} else ",")
    if any(h.startswith(("ASSIGNMENT:", "OUTPUT:", "INPUT:")) for h in header):
        return "toloka"
    if {"annotator", "annotation_id"} <= set(header):
        return "labelstudio-csv"
    return "csv"


def _header(path: Path, sep: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh, delimiter=sep), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelwiseError(f"{path}: cannot read the header line ({exc})") from None


# ---------------------------------------------------------------- Label Studio


def read_gold(path: str | os.PathLike[str], *, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Known answers: a CSV/TSV with a task column (``task``, ``sample_id``, ``image``, ``path``…),
    ``label`` and optionally ``hint``. Returns ``task, label, hint`` (one row per task)."""
    path = Path(path)
    if not path.is_file():
        raise LabelwiseError(f"{path}: gold file not found")
    frame = _read_csv(path, "\t" if path.suffix.lower() in {".tsv", ".tab"} else ",")
    lower = {str(c).strip().lower(): c for c in frame.columns}
    task = next((lower[a] for a in (*TASK_ALIASES, "fname", "filename", "file") if a in lower), None)
    label = next((lower[a] for a in ("label", "golden", "gold", "answer", "class") if a in lower), None)
    if task is None or label is None:
        raise LabelwiseError(
            f"{path}: expected a task (or sample_id/image) column and a label column; "
            f"columns are {', '.join(map(str, frame.columns))}"
        )
    out = pd.DataFrame(
        {
            "task": frame[task].str.strip(),
            "label": frame[label].str.strip(),
            "hint": frame[lower["hint"]].fillna("") if "hint" in lower else "",
        }
    )
    out["line"] = range(2, len(out) + 2)
    empty = out[(out["task"] == "") | (out["label"] == "")]
    if len(empty):
        raise LabelwiseError(f"{path}, line {empty['line'].iloc[0]}: empty task or label")
    dup = out[out.duplicated("task", keep=False)]
    if len(dup) and dup.groupby("task")["label"].nunique().max() > 1:
        t = dup.groupby("task")["label"].nunique().idxmax()
        raise LabelwiseError(f"{path}: task {t!r} has different gold labels")
    if classes is not None:
        bad = out[~out["label"].isin(classes)]
        if len(bad):
            raise LabelwiseError(
                f"{path}, line {bad['line'].iloc[0]}: gold label {bad['label'].iloc[0]!r} is not in "
                f"the class list ({', '.join(classes)})"
            )
    return out.drop_duplicates("task").drop(columns="line").reset_index(drop=True)
