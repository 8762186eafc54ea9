"""Toloka results TSV: INPUT, OUTPUT, GOLDEN and ASSIGNMENT columns."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from ..._io import note_input
from ...errors import LabelwiseError
from ._collector import _Collector

log = logging.getLogger("labelwise")


def _read_toloka(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    """Toloka results: ``INPUT:*``, ``OUTPUT:*``, ``GOLDEN:*``, ``ASSIGNMENT:worker_id``, ``ASSIGNMENT:status``."""
    rows = _tsv_rows(path)
    header = rows[0][1] if rows else []
    if "ASSIGNMENT:worker_id" not in header:
        raise LabelwiseError(
            f"{path}: no ASSIGNMENT:worker_id column; is this a Toloka results file? Columns: {', '.join(header[:8])}"
        )
    outputs = [h[len("OUTPUT:") :] for h in header if h.startswith("OUTPUT:")]
    inputs = [h[len("INPUT:") :] for h in header if h.startswith("INPUT:")]
    field_ = from_name or ("result" if "result" in outputs else outputs[0] if len(outputs) == 1 else None)
    if field_ is None or field_ not in outputs:
        raise LabelwiseError(
            f"{path}: cannot tell the answer column among OUTPUT:{', OUTPUT:'.join(outputs) or ' (none)'}; "
            "pick one with --from-name"
        )
    key = next((k for k in ("sample_id", "image") if k in inputs), inputs[0] if len(inputs) == 1 else None)
    if key is None:
        raise LabelwiseError(f"{path}: several INPUT columns ({', '.join(inputs)}) and none is sample_id or image")
    pos = {h: i for i, h in enumerate(header)}
    for line_no, row in rows[1:]:
        where = f"{path}, line {line_no}"
        get = lambda name, row=row: row[pos[name]].strip() if name in pos else ""  # noqa: E731
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
                        raise LabelwiseError(
                            f"{path}, line {reader.line_num}: {len(row)} fields, the header has "
                            f"{len(out[0][1])} (a tab or quote inside a value?)"
                        )
                    out.append((reader.line_num, row))
        except csv.Error as exc:
            raise LabelwiseError(f"{path}, line {reader.line_num}: malformed TSV ({exc})") from None
        except UnicodeDecodeError:
            raise LabelwiseError(f"{path}: not UTF-8 text") from None
    if not out:
        raise LabelwiseError(f"{path}: empty file")
    return out
