"""Label Studio exports: JSON (tasks with annotations, or legacy completions), JSON-MIN and CSV."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from ..._io import note_input
from ...data.images import is_image_file
from ...data.natural import natural_sorted
from ...errors import LabelwiseError
from ._collector import _LS_META, _UPLOAD, _Collector, _read_csv

log = logging.getLogger("labelwise")


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
        raise LabelwiseError(
            f"{path}: expected a JSON list of tasks (a Label Studio export), got {type(data).__name__}"
        )
    if not data:
        raise LabelwiseError(
            f"{path}: the export holds no tasks (an empty list); export the project again with its tasks"
        )
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
        if (
            key != "sample_id"
            and isinstance(value, str)
            and (value.startswith(("/data/", "http", "s3://", "gs://")) or is_image_file(value))
        ):
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
        raise LabelwiseError(
            f"{source}: {len(choices)} choices {choices[:3]}; labelwise aggregates single-choice labels"
        )
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
            names |= {
                str(r.get("from_name", ""))
                for r in _choice_regions(ann.get("result", []), f"{path}, task {task.get('id', i + 1)}")
            }
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
            regions = [
                r
                for r in _choice_regions(ann.get("result", []), source)
                if name is None or r.get("from_name", name) == name
            ]
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


def _read_min_records(
    records: list[Any], path: Path, col: _Collector, *, from_name: str | None, worker: str | None, line: bool
) -> None:
    """JSON-MIN / CSV rows: one record per annotation, the label under the Choices tag's name:
    ``from_name``, else ``choice`` (Label Studio's default name), else the only column that is
    neither Label Studio's own nor an image reference."""
    keys = {k for r in records if isinstance(r, dict) for k in r}
    candidates = sorted(
        k for k in keys - _LS_META if k not in {"image", "sample_id"} and not _looks_like_data(records, k)
    )
    if from_name is not None and from_name not in keys:
        raise LabelwiseError(f"{path}: no column {from_name!r}; columns are {', '.join(sorted(keys))}")
    name = from_name or ("choice" if "choice" in keys else candidates[0] if len(candidates) == 1 else None)
    if name is None:
        raise LabelwiseError(
            f"{path}: cannot tell which column holds the label ({', '.join(candidates) or 'none'}); "
            "pick one with --from-name"
        )
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
    return bool(values) and all(
        isinstance(v, str) and (v.startswith(("/data/", "http", "s3://")) or is_image_file(v)) for v in values
    )


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
