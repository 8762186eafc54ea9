"""Delimited text tables as users write them: encodings (UTF-8, UTF-16 with a BOM), separators,
columns found by name or position, file names made safe (Windows separators, rows outside the
image root), repeated rows — every problem one line naming the file and row."""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import note_input, resolved
from ..errors import LabelwiseError
from .table import normalise_split

log = logging.getLogger("labelwise")


def _native(root: Path, name: str) -> str:
    """A CSV's file name in this system's form: ``sub\\a.png`` means ``sub/a.png`` unless a file
    of that literal name exists."""
    if "\\" in name and not (root / name).exists():
        return name.replace("\\", "/")
    return name


def _inside_root(table: pd.DataFrame, root: Path) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Rows whose file lies below ``root``, and the others as problems."""
    base = resolved(root)
    where = [resolved(p) for p in table["path"]]
    inside = np.array([w == base or base in w.parents for w in where], dtype=bool)
    problems = [
        (
            path,
            f"outside the image root {root} (the CSV names {sid!r}); left out (allow_outside_root / "
            "--allow-outside-root keeps it)",
        )
        for path, sid, ok in zip(table["path"], table["sample_id"], inside)
        if not ok
    ]
    if problems:
        log.warning(
            "%d row(s) name a file outside the image root %s (first: %s); they are left out",
            len(problems),
            root,
            problems[0][0],
        )
    return table[inside].reset_index(drop=True), problems


def _drop_duplicate_ids(table: pd.DataFrame, where: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    dup = table["sample_id"].duplicated(keep="first")
    if not dup.any():
        return table, []
    first_row = {sid: i for i, sid in reversed(list(enumerate(table["sample_id"])))}
    labels = table["label"].tolist()
    problems = []
    conflicts = 0
    for i, (sid, path) in enumerate(zip(table["sample_id"], table["path"])):
        if not dup.iloc[i]:
            continue
        j = first_row[sid]
        a, b = _label_text(labels[j]), _label_text(labels[i])
        if a != b:
            conflicts += 1
            problems.append(
                (
                    path,
                    f"listed again in {where} with label {b!r} (row {_row(i)}; row {_row(j)} says "
                    f"{a!r}); the first is kept, the later entry ignored",
                )
            )
        else:
            problems.append(
                (path, f"listed again in {where} (row {_row(i)} repeats row {_row(j)}); later entry ignored")
            )
    if conflicts:
        log.warning(
            "%s: %d file(s) are listed twice with different labels (first: %s); the first label is kept",
            where,
            conflicts,
            problems[[k for k, (_, r) in enumerate(problems) if "with label" in r][0]][0],
        )
    return table[~dup].reset_index(drop=True), problems


def _label_text(value: object) -> str:
    text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip()
    return text


def _read_text(path: Path, *, size: int | None = None) -> str:
    """A text file as UTF-8 (with or without BOM) or UTF-16 with a BOM; one line otherwise."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read() if size is None else fh.read(size)
    except OSError as exc:
        raise LabelwiseError(f"{path}: cannot read ({exc.strerror or exc})") from None
    encoding = _encoding(raw)
    try:
        return raw.decode(encoding) if size is None else codecs.getincrementaldecoder(encoding)().decode(raw)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LabelwiseError(
            f"{path}: not UTF-8 text (line {line} holds byte {raw[exc.start]:#04x}); "
            "save it as UTF-8 (or UTF-16 with a byte-order mark)"
        ) from None


def _encoding(raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def _read_delimited(path: Path, nrows: int | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise LabelwiseError(f"{path}: file not found")
    note_input(path)
    text = _read_text(path)
    head = text[:8192]
    if not head.strip():
        raise LabelwiseError(f"{path}: file is empty; expected a header row and one row per image")
    if path.suffix.lower() in {".tsv", ".tab"}:
        sep = "\t"
    else:
        try:
            sep = csv.Sniffer().sniff(head.splitlines()[0], delimiters=",\t;|").delimiter
        except csv.Error:
            sep = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            nrows=nrows,
            skipinitialspace=True,
            index_col=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise LabelwiseError(
            f"{path}: cannot parse as a delimited table ({str(exc).strip().splitlines()[-1]})"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _resolve_column(
    frame: pd.DataFrame,
    spec: str | int | None,
    candidates: Sequence[str],
    default_pos: int | None,
    what: str,
    where: Path,
) -> str:
    columns = list(frame.columns)
    if spec is None:
        lowered = {c.lower(): c for c in columns}
        for name in candidates:
            if name in lowered:
                return lowered[name]
        if default_pos is not None and default_pos < len(columns):
            option = "--filename-col" if what == "file name" else "--label-col"
            log.warning(
                "%s: no column named %s; taking column %d (%r) as the %s (set %s to choose)",
                where,
                "/".join(candidates[:4]) + "/…",
                default_pos,
                columns[default_pos],
                what,
                option,
            )
            return columns[default_pos]
        raise LabelwiseError(f"{where}: no {what} column found; columns are: {', '.join(columns)}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit() and spec not in columns):
        pos = int(spec)
        if not 0 <= pos < len(columns):
            raise LabelwiseError(
                f"{where}: {what} column position {pos} is out of range; the file has {len(columns)} columns "
                f"({', '.join(columns)})"
            )
        return columns[pos]
    if spec not in columns:
        raise LabelwiseError(f"{where}: no column {spec!r} for the {what}; columns are: {', '.join(columns)}")
    return spec


def _parse_split(value: object, column: str, where: Path, i: int) -> str | None:
    text = str(value).strip()
    if column.lower() == "is_valid":
        low = text.lower()
        if low in {"true", "1", "yes", "y", "t"}:
            return "valid"
        if low in {"false", "0", "no", "n", "f", ""}:
            return "train"
        raise LabelwiseError(f"{where}: row {_row(i)}: is_valid must be True/False/1/0, got {text!r}")
    return normalise_split(text, f"{where}: row {_row(i)}")


def _row(i: int) -> int:
    """File line number of data row ``i`` (1-based, after the header)."""
    return int(i) + 2
