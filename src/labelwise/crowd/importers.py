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
import json
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import pandas as pd

from .._io import note_input, note_images
from ..data.images import is_image_file
from ..data.natural import natural_sorted
from ..data.table import read_classes
from ..errors import LabelwiseError

log = logging.getLogger("labelwise")

Format = Literal["auto", "labelstudio", "labelstudio-min", "labelstudio-csv", "toloka", "csv"]
FORMATS: tuple[str, ...] = ("labelstudio", "labelstudio-min", "labelstudio-csv", "toloka", "csv")
ANSWER_COLUMNS = ("task", "worker", "label", "source")
TASK_ALIASES = ("task", "sample_id", "task_id", "item", "image", "path")
WORKER_ALIASES = ("worker", "annotator", "worker_id", "user", "rater")
LABEL_ALIASES = ("label", "answer", "class", "choice", "response")
#: JSON-MIN / CSV keys that are Label Studio's own, never a data field or a label.
_LS_META = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement", "drafts",
            "predictions", "annotations", "total_annotations", "cancelled_annotations", "total_predictions"}
_UPLOAD = re.compile(r"/data/upload/[^/]+/(?:[0-9a-fA-F]{8}-)?(?P<name>[^/]+)$")


@dataclass
class Answers:
    """Crowd answers in the long shape crowd-kit uses.

    Attributes
    ----------
    table : DataFrame ``task, worker, label, source``, one row per (task, worker).
    images : DataFrame ``task, image, path``: the image reference as exported and the
        matched file (``""`` when not matched), one row per task (unlabeled ones too).
    gold : Series task → known answer found in the file itself (Toloka ``GOLDEN:*``).
    unlabeled : tasks listed in the file without any answer (the unlabeled pool).
    dropped : reason → number of answers left out.
    unmatched : DataFrame ``worker, image, reason, source`` of answers whose image matched no file.
    notes : messages for the log and report (annotators without answers, ...).
    classes : the class list (given, or the labels found in natural order).
    """

    table: pd.DataFrame
    images: pd.DataFrame
    gold: pd.Series
    unlabeled: list[str]
    dropped: dict[str, int]
    unmatched: pd.DataFrame
    notes: list[str]
    classes: list[str]

    def summary(self) -> dict[str, Any]:
        return {"answers": len(self.table), "tasks": int(self.table["task"].nunique()),
                "workers": int(self.table["worker"].nunique()), "classes": self.classes,
                "unlabeled_tasks": len(self.unlabeled), "dropped": dict(self.dropped), "gold_in_file": len(self.gold)}


@dataclass
class _Collector:
    """Rows and counts gathered while reading; :func:`_finish` turns them into :class:`Answers`."""

    rows: list[dict[str, str]] = field(default_factory=list)
    gold: dict[str, tuple[str, str]] = field(default_factory=dict)
    unlabeled: dict[tuple[str, str], str] = field(default_factory=dict)  # (task, scope) → image
    dropped: Counter[str] = field(default_factory=Counter)
    seen_workers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    notes: list[str] = field(default_factory=list)

    def answer(self, task: str, worker: str, label: str | None, source: str, image: str = "", scope: str = "",
               explicit: bool = False) -> None:
        task, worker = task.strip(), worker.strip()
        self.seen_workers[worker]["seen"] += 1
        if not task:
            raise LabelwiseError(f"{source}: the task has no id or image")
        if not worker:
            raise LabelwiseError(f"{source}: the answer has no worker/annotator")
        label = (label or "").strip()
        if not label:
            self.drop("no label", worker)
            self.unlabeled.setdefault((task, scope), image)
            return
        self.rows.append({"task": task, "worker": worker, "label": label, "source": source, "image": image, "scope": scope,
                          "explicit": explicit})

    def drop(self, reason: str, worker: str | None = None) -> None:
        self.dropped[reason] += 1
        if worker is not None:
            self.seen_workers[worker.strip()][reason] += 1

    def add_gold(self, task: str, label: str, source: str) -> None:
        if task in self.gold and self.gold[task][0] != label:
            raise LabelwiseError(f"{source}: golden answer {label!r} for task {task!r} differs from "
                                 f"{self.gold[task][0]!r} given at {self.gold[task][1]}")
        self.gold[task] = (label, source)


# ---------------------------------------------------------------- entry point


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
        (``task, worker, label``), or a folder whose sub-folders (or files) are named after
        annotators and hold their Label Studio exports.
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
    if path.is_dir():
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


def _load_json(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise LabelwiseError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise LabelwiseError(f"{path}: not UTF-8 text; is it a JSON export?") from None
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list):
        raise LabelwiseError(f"{path}: expected a JSON list of tasks (a Label Studio export), got {type(data).__name__}")
    if not data:
        raise LabelwiseError(f"{path}: the export holds no tasks (an empty list); export the project again with its tasks")
    note_input(path)
    return data


def image_key(ref: str) -> str:
    """The task key an image reference stands for.

    >>> image_key("/data/local-files/?d=imgs/a%20b.jpg"), image_key("/data/upload/3/1a2b3c4d-IMG_001.jpg")
    ('imgs/a b.jpg', 'IMG_001.jpg')
    >>> image_key("https://host/x/1.jpg")
    'https://host/x/1.jpg'
    """
    parsed = urlparse(ref)
    if parsed.path.rstrip("/").endswith("/data/local-files") or parsed.path.endswith("/data/local-files/"):
        for part in parsed.query.split("&"):
            if part.startswith("d="):
                return unquote(part[2:])
    match = _UPLOAD.search(parsed.path)
    if match and not parsed.scheme.startswith("s3"):
        return unquote(match["name"])
    return ref


def _image_ref(data: dict[str, Any]) -> str:
    if isinstance(data.get("image"), str):
        return str(data["image"])
    for key, value in data.items():
        if key != "sample_id" and isinstance(value, str) and (value.startswith(("/data/", "http", "s3://", "gs://")) or is_image_file(value)):
            return value
    return ""


def _task_key(data: dict[str, Any], ref: str, fallback: str) -> tuple[str, bool]:
    """The task a record is about, and whether it came as our own ``sample_id``."""
    if data.get("sample_id") not in (None, ""):
        return str(data["sample_id"]), True
    return (image_key(ref) if ref else fallback), False


def _worker_id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("email") or value.get("id") or "")
    return "" if value is None else str(value)


def _choice_regions(result: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(result, list):
        raise LabelwiseError(f"{source}: 'result' must be a list, got {type(result).__name__}")
    return [r for r in result if isinstance(r, dict) and isinstance(r.get("value"), dict) and "choices" in r["value"]]


def _one_choice(choices: Any, source: str) -> str | None:
    if isinstance(choices, str):
        return choices
    if not isinstance(choices, list):
        raise LabelwiseError(f"{source}: 'choices' must be a list, got {type(choices).__name__}")
    if len(choices) > 1:
        raise LabelwiseError(f"{source}: {len(choices)} choices {choices[:3]}; labelwise aggregates single-choice labels")
    return str(choices[0]) if choices else None


def _pick_name(names: Iterable[str], from_name: str | None, where: str) -> str | None:
    names = natural_sorted(set(names))
    if from_name is not None:
        if names and from_name not in names:
            raise LabelwiseError(f"{where}: no Choices named {from_name!r}; found {', '.join(names)}")
        return from_name
    if len(names) > 1:
        raise LabelwiseError(f"{where}: several Choices tags ({', '.join(names)}); pick one with --from-name")
    return names[0] if names else None


def _read_labelstudio(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    """A Label Studio JSON export: tasks with ``annotations`` (or legacy ``completions``)."""
    tasks = _load_json(path)
    names: set[str] = set()
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise LabelwiseError(f"{path}, record {i + 1}: expected a task object, got {type(task).__name__}")
        for ann in _annotations(task, f"{path}, task {task.get('id', i + 1)}"):
            names |= {str(r.get("from_name", "")) for r in _choice_regions(ann.get("result", []), f"{path}, task {task.get('id', i + 1)}")}
    name = _pick_name(names, from_name, str(path))
    completers = {_worker_id(a.get("completed_by")) for t in tasks for a in _annotations(t, "")}
    for i, task in enumerate(tasks):
        where = f"{path}, task {task.get('id', i + 1)}"
        data = task.get("data", {})
        if not isinstance(data, dict):
            raise LabelwiseError(f"{where}: 'data' must be an object, got {type(data).__name__}")
        ref = _image_ref(data)
        task_id, explicit = _task_key(data, ref, f"task-{task.get('id', i + 1)}")
        anns = _annotations(task, where)
        if not anns:
            col.unlabeled.setdefault((task_id, worker or ""), ref)
        for ann in anns:
            source = f"{where}, annotation {ann.get('id', '?')}"
            who = _worker_id(ann.get("completed_by"))
            if worker is not None:  # a per-annotator export: the folder names the annotator
                who = worker if len(completers) <= 1 else f"{worker}/{who}"
            elif not who:
                raise LabelwiseError(f"{source}: no completed_by; which annotator is it?")
            if ann.get("was_cancelled") or ann.get("skipped"):
                col.drop("cancelled", who)
                col.unlabeled.setdefault((task_id, worker or ""), ref)
                continue
            regions = [r for r in _choice_regions(ann.get("result", []), source) if name is None or r.get("from_name", name) == name]
            if len(regions) > 1:
                raise LabelwiseError(f"{source}: {len(regions)} results for Choices {name!r}; expected one")
            label = _one_choice(regions[0]["value"]["choices"], source) if regions else None
            col.answer(task_id, who, label, source, ref, worker or "", explicit)


def _annotations(task: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(task, dict):
        return []
    anns = task.get("annotations", task.get("completions")) or []
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        raise LabelwiseError(f"{where}: 'annotations' must be a list of objects")
    return anns


def _read_min_records(records: list[Any], path: Path, col: _Collector, *, from_name: str | None,
                      worker: str | None, line: bool) -> None:
    """JSON-MIN / CSV rows: one record per annotation, the label under the Choices tag's name:
    ``from_name``, else ``choice`` (Label Studio's default name), else the only column that is
    neither Label Studio's own nor an image reference."""
    keys = {k for r in records if isinstance(r, dict) for k in r}
    candidates = sorted(k for k in keys - _LS_META if k not in {"image", "sample_id"} and not _looks_like_data(records, k))
    if from_name is not None and from_name not in keys:
        raise LabelwiseError(f"{path}: no column {from_name!r}; columns are {', '.join(sorted(keys))}")
    name = from_name or ("choice" if "choice" in keys else candidates[0] if len(candidates) == 1 else None)
    if name is None:
        raise LabelwiseError(f"{path}: cannot tell which column holds the label ({', '.join(candidates) or 'none'}); "
                             "pick one with --from-name")
    annotators = {_worker_id(r.get("annotator")) for r in records if isinstance(r, dict)} - {""}
    for i, rec in enumerate(records):
        where = f"{path}, line {i + 2}" if line else f"{path}, record {i + 1}"
        if not isinstance(rec, dict):
            raise LabelwiseError(f"{where}: expected an object, got {type(rec).__name__}")
        ref = _image_ref(rec)
        task_id, explicit = _task_key(rec, ref, f"task-{rec.get('id', i + 1)}")
        who = _worker_id(rec.get("annotator"))
        value = _min_label(rec.get(name), where)
        if not who and value is None:
            col.unlabeled.setdefault((task_id, worker or ""), ref)
            continue
        if worker is not None:
            who = worker if len(annotators) <= 1 else f"{worker}/{who}"
        col.answer(task_id, who, value, where, ref, worker or "", explicit)


def _looks_like_data(records: list[Any], key: str) -> bool:
    values = [r.get(key) for r in records[:50] if isinstance(r, dict) and r.get(key) not in (None, "")]
    return bool(values) and all(isinstance(v, str) and (v.startswith(("/data/", "http", "s3://")) or is_image_file(v)) for v in values)


def _min_label(value: Any, where: str) -> str | None:
    """A JSON-MIN / CSV label: a plain string, or (multi-choice) a list of ``{"choices": [...]}``."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        choices = [c for v in value for c in (v.get("choices", []) if isinstance(v, dict) else [v])]
        return _one_choice(choices, where)
    return str(value)


def _read_labelstudio_min(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    _read_min_records(_load_json(path), path, col, from_name=from_name, worker=worker, line=False)


def _read_labelstudio_csv(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    frame = _read_csv(path, ",")
    records = [{k: (v if v != "" else None) for k, v in row.items()} for row in frame.to_dict("records")]
    _read_min_records(records, path, col, from_name=from_name, worker=worker, line=True)


# ---------------------------------------------------------------- Toloka and long CSV


def _read_toloka(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    """Toloka results: ``INPUT:*``, ``OUTPUT:*``, ``GOLDEN:*``, ``ASSIGNMENT:worker_id``, ``ASSIGNMENT:status``."""
    rows = _tsv_rows(path)
    header = rows[0][1] if rows else []
    if "ASSIGNMENT:worker_id" not in header:
        raise LabelwiseError(f"{path}: no ASSIGNMENT:worker_id column; is this a Toloka results file? "
                             f"Columns: {', '.join(header[:8])}")
    outputs = [h[len("OUTPUT:"):] for h in header if h.startswith("OUTPUT:")]
    inputs = [h[len("INPUT:"):] for h in header if h.startswith("INPUT:")]
    field_ = from_name or ("result" if "result" in outputs else outputs[0] if len(outputs) == 1 else None)
    if field_ is None or field_ not in outputs:
        raise LabelwiseError(f"{path}: cannot tell the answer column among OUTPUT:{', OUTPUT:'.join(outputs) or ' (none)'}; "
                             "pick one with --from-name")
    key = next((k for k in ("sample_id", "image") if k in inputs), inputs[0] if len(inputs) == 1 else None)
    if key is None:
        raise LabelwiseError(f"{path}: several INPUT columns ({', '.join(inputs)}) and none is sample_id or image")
    pos = {h: i for i, h in enumerate(header)}
    for line_no, row in rows[1:]:
        where = f"{path}, line {line_no}"
        get = lambda name: row[pos[name]].strip() if name in pos else ""  # noqa: E731
        who, status = get("ASSIGNMENT:worker_id"), get("ASSIGNMENT:status").upper()
        task_id, image = get(f"INPUT:{key}"), get("INPUT:image")
        if get(f"GOLDEN:{field_}"):
            col.add_gold(task_id, get(f"GOLDEN:{field_}"), where)
        if not who and not get(f"OUTPUT:{field_}"):  # a task row without an assignment
            col.unlabeled.setdefault((task_id, ""), image)
            continue
        if status == "REJECTED":
            col.drop("rejected", who)
            continue
        col.answer(task_id, who, get(f"OUTPUT:{field_}"), where, image, "", key == "sample_id")


def _tsv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of a TSV with Toloka's quoting; a row of the wrong width is an error."""
    out: list[tuple[int, list[str]]] = []
    note_input(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter="\t", quotechar='"', doublequote=True, strict=True)
        try:
            for row in reader:
                if not out:
                    out.append((reader.line_num, [h.strip() for h in row]))
                elif any(v.strip() for v in row):
                    if len(row) != len(out[0][1]):
                        raise LabelwiseError(f"{path}, line {reader.line_num}: {len(row)} fields, the header has "
                                             f"{len(out[0][1])} (a tab or quote inside a value?)")
                    out.append((reader.line_num, row))
        except csv.Error as exc:
            raise LabelwiseError(f"{path}, line {reader.line_num}: malformed TSV ({exc})") from None
        except UnicodeDecodeError:
            raise LabelwiseError(f"{path}: not UTF-8 text") from None
    if not out:
        raise LabelwiseError(f"{path}: empty file")
    return out


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    note_input(path)
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise LabelwiseError(f"{path}: cannot read as a table ({str(exc).strip().splitlines()[-1]})") from None


def _read_long_csv(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    """A long table ``task, worker, label`` (aliases such as ``sample_id``, ``annotator`` accepted)."""
    frame = _read_csv(path, "\t" if path.suffix.lower() in {".tsv", ".tab"} else ",")
    lower = {str(c).strip().lower(): c for c in frame.columns}

    def column(aliases: Sequence[str], what: str) -> Any:
        found = next((lower[a] for a in aliases if a in lower), None)
        if found is None:
            raise LabelwiseError(f"{path}: no {what} column (one of {', '.join(aliases)}); "
                                 f"columns are {', '.join(map(str, frame.columns))}")
        return found

    t = column(TASK_ALIASES, "task")
    w = column(WORKER_ALIASES, "worker") if worker is None else None
    lab = column((from_name,) if from_name else LABEL_ALIASES, "label")
    img = lower.get("image") if lower.get("image") != t else None
    for i, (task_id, who, label, image) in enumerate(zip(frame[t], frame[w] if w is not None else [worker] * len(frame),
                                                          frame[lab], frame[img] if img is not None else [""] * len(frame))):
        col.answer(str(task_id), str(who), str(label), f"{path}, line {i + 2}", str(image), worker or "",
                   t.strip().lower() == "sample_id")


_READERS = {
    "labelstudio": _read_labelstudio,
    "labelstudio-min": _read_labelstudio_min,
    "labelstudio-csv": _read_labelstudio_csv,
    "toloka": _read_toloka,
    "csv": _read_long_csv,
}


def _read_folder(folder: Path, format: str, from_name: str | None, col: _Collector) -> None:
    """Per-annotator exports: ``folder/<annotator>/*.json|csv`` or ``folder/<annotator>.json``."""
    note_images(folder, recursive=True)  # every file below it is read: nothing may be written there
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in {".json", ".csv", ".tsv"}
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
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


class _ImageIndex:
    """The image files below ``root``, looked up by relative path or by file name."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise LabelwiseError(f"{root}: --images must be a folder of image files")
        note_images(root, recursive=True)
        self.root = root
        self.by_name: dict[str, list[str]] = defaultdict(list)
        self.paths: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if is_image_file(name):
                    rel = Path(dirpath, name).relative_to(root).as_posix()
                    self.by_name[name].append(rel)
                    self.paths.add(rel)

    def match(self, key: str, scope: str) -> tuple[str | None, str]:
        """``(relative path, "")`` for the one file ``key`` names, else ``(None, reason)``."""
        if key in self.paths:
            return key, ""
        name = key.rsplit("/", 1)[-1]
        found = self.by_name.get(name, [])
        where = self.root
        if scope and (self.root / scope).is_dir():
            found = [p for p in found if p.startswith(f"{scope}/")]
            where = self.root / scope
        if len(found) == 1:
            return found[0], ""
        if not found:
            return None, f"no file named {name!r} under {where}"
        return None, f"{len(found)} files named {name!r} under {where} ({', '.join(found[:3])}); not guessing"


def _match(col: _Collector, table: pd.DataFrame, index: _ImageIndex,
           keep: set[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Replace each task by the one file its image names; return (matched rows, unmatched rows, task → path).

    A task given as our own ``sample_id`` keeps it when that is a file below the root, and
    also when it is one of ``keep`` (gold tasks, scored against their known answer even when
    their image lies elsewhere)."""
    found = {}
    for task, scope, explicit in set(zip(table["task"], table["scope"], table["explicit"])):
        if explicit and task in keep and task not in index.paths:
            found[(task, scope, explicit)] = (task, "")
        else:
            found[(task, scope, explicit)] = index.match(task, scope)
    hits = [found[key] for key in zip(table["task"], table["scope"], table["explicit"])]
    ok = pd.Series([rel is not None for rel, _ in hits], index=table.index, dtype=bool)
    unmatched = table.loc[~ok, ["worker", "image", "source"]].assign(reason=[why for rel, why in hits if rel is None])
    for worker in unmatched["worker"]:
        col.drop("unmatched image", worker)
    unlabeled: dict[tuple[str, str], str] = {}
    for (task, scope), image in col.unlabeled.items():
        rel = index.match(task, scope)[0]
        unlabeled.setdefault((rel or task, ""), image)
    col.unlabeled = unlabeled
    table = table.assign(task=[rel or task for (rel, _), task in zip(hits, table["task"])])[ok]
    tasks = {*table["task"], *(t for t, _ in unlabeled)}
    paths = {rel: str(index.root / rel) for rel in tasks if rel in index.paths}
    return table, unmatched[["worker", "image", "reason", "source"]].reset_index(drop=True), paths


def _same_images(col: _Collector, table: pd.DataFrame, paths: dict[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """One task per distinct image: matched files with identical bytes (per-annotator folders holding
    copies of the same pictures) become the task of the first in natural order."""
    from ..data.images import content_hash

    digests: dict[str, str] = {}
    for task, path in paths.items():
        try:
            with open(path, "rb") as fh:
                digests[task] = content_hash(fh.read())
        except OSError:
            continue
    first: dict[str, str] = {}
    for task in natural_sorted(digests):
        first.setdefault(digests[task], task)
    rename = {task: first[digest] for task, digest in digests.items() if first[digest] != task}
    if rename:
        example = next(iter(rename.items()))
        col.notes.append(f"{len(rename)} image file(s) are byte-identical copies of another (e.g. {example[0]!r} = "
                         f"{example[1]!r}); each picture is one task")
        table = table.assign(task=table["task"].map(lambda t: rename.get(t, t)))
        col.unlabeled = {(rename.get(t, t), s): image for (t, s), image in col.unlabeled.items()}
        paths = {t: p for t, p in paths.items() if t not in rename}
    return table, paths


def _finish(col: _Collector, index: _ImageIndex | None, classes: list[str] | None, where: str,
            keep: set[str] = frozenset()) -> Answers:  # type: ignore[assignment]
    table = pd.DataFrame(col.rows, columns=["task", "worker", "label", "source", "image", "scope", "explicit"])
    unmatched = pd.DataFrame(columns=["worker", "image", "reason", "source"])
    paths: dict[str, str] = {}
    if index is not None:
        table, unmatched, paths = _match(col, table, index, set(keep) | set(col.gold))
        if len(unmatched):
            col.notes.append(f"{len(unmatched)} answer(s) name an image that matches no single file "
                             f"(e.g. {unmatched['reason'].iloc[0]}); they are left out and listed in unmatched.csv")
        table, paths = _same_images(col, table, paths)
    dup = table.duplicated(["task", "worker"], keep="first")
    if dup.any():
        firsts = table[~dup].set_index(["task", "worker"])["label"]
        repeats = table[dup].set_index(["task", "worker"])["label"]
        differ = int((repeats != firsts.reindex(repeats.index)).sum())
        col.dropped["repeated (task, worker)"] += int(dup.sum())
        col.notes.append(f"{int(dup.sum())} answer(s) repeat a (task, worker) pair ({differ} with a different label); "
                         f"the first is kept (e.g. {table.loc[dup, 'source'].iloc[0]})")
        table = table[~dup]
    if not len(table):
        reasons = ", ".join(f"{n} {r}" for r, n in col.dropped.items()) or "the file holds none"
        raise LabelwiseError(f"{where}: no usable answers ({reasons})")
    if classes is not None:
        bad = table[~table["label"].isin(classes)]
        if len(bad):
            raise LabelwiseError(f"{bad['source'].iloc[0]}: label {bad['label'].iloc[0]!r} is not in the class list "
                                 f"({', '.join(classes)}); {len(bad)} such answer(s)")
    kept = set(table["worker"])
    for worker, counts in col.seen_workers.items():
        if worker not in kept:
            why = ", ".join(f"{n} {r}" for r, n in counts.items() if r != "seen")
            col.notes.append(f"annotator {worker!r} has no answers ({why})")
    if len(kept) > 1 and table["task"].value_counts().max() < 2:
        col.notes.append(f"no task has answers from two annotators ({len(kept)} annotators, {table['task'].nunique()} "
                         "tasks): nothing overlaps, so agreement and annotator skill cannot be measured"
                         + ("" if index is not None else "; if the annotators labeled copies of the same images, pass "
                            "--images so that identical files become one task"))
    labeled = set(table["task"])
    pool = {t: image for (t, _), image in col.unlabeled.items()}
    unlabeled = natural_sorted(t for t in pool if t not in labeled)
    if unlabeled:
        col.notes.append(f"{len(unlabeled)} task(s) have no answers (e.g. {unlabeled[0]!r}); listed as unlabeled")
    images = {**pool, **dict(zip(table["task"], table["image"]))}
    image_rows = pd.DataFrame({"task": list(images), "image": list(images.values())})
    image_rows["path"] = [paths.get(t, "") for t in image_rows["task"]]
    gold = pd.Series({t: g for t, (g, _) in col.gold.items()}, dtype=object, name="label").rename_axis("task")
    for note in col.notes:
        log.warning("%s", note)
    return Answers(
        table=table[list(ANSWER_COLUMNS)].reset_index(drop=True),
        images=image_rows.sort_values("task", kind="stable").reset_index(drop=True),
        gold=gold,
        unlabeled=unlabeled,
        dropped={k: int(v) for k, v in col.dropped.items() if v},
        unmatched=unmatched,
        notes=list(col.notes),
        classes=list(classes) if classes is not None else natural_sorted(set(table["label"])),
    )


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
        raise LabelwiseError(f"{path}: expected a task (or sample_id/image) column and a label column; "
                             f"columns are {', '.join(map(str, frame.columns))}")
    out = pd.DataFrame({"task": frame[task].str.strip(), "label": frame[label].str.strip(),
                        "hint": frame[lower["hint"]].fillna("") if "hint" in lower else ""})
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
            raise LabelwiseError(f"{path}, line {bad['line'].iloc[0]}: gold label {bad['label'].iloc[0]!r} is not in "
                                 f"the class list ({', '.join(classes)})")
    return out.drop_duplicates("task").drop(columns="line").reset_index(drop=True)
