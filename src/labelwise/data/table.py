"""The dataset table: one row per image, keyed by a stable ``sample_id``.

Columns
-------
sample_id     stable id (the path relative to the dataset root, or ``file.npz::i``)
path          where the image is read from
label         class name, missing (``<NA>``) when unlabeled
split         ``train`` / ``valid`` / ``test`` / ``unlabeled``
label_source  where the label came from (``given`` for labels read from the input;
              later steps add ``pseudo``, ``corrected``, ...); missing when unlabeled

Checked tables also carry ``content_hash, n_bytes, width, height, mode, format``;
``split`` may add a ``fold`` column. ``classes.json`` (a JSON list) fixes class order.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .._io import note_input, record_written, write_json, write_table
from ..errors import LabelwiseError
from .images import iter_image_info
from .natural import natural_sorted

log = logging.getLogger("labelwise")

TABLE_COLUMNS = ("sample_id", "path", "label", "split", "label_source")
INFO_COLUMNS = ("content_hash", "n_bytes", "width", "height", "mode", "format")
SPLITS = ("train", "valid", "test", "unlabeled")
_SPLIT_ALIASES = {"val": "valid", "validation": "valid", "dev": "valid", "training": "train", "testing": "test"}
PROBLEM_COLUMNS = ("path", "reason")
TABLE_FILE = "dataset.csv"
CLASSES_FILE = "classes.json"


@dataclass
class Dataset:
    """A checked dataset: the table, its class order and what was excluded.

    Attributes
    ----------
    table : DataFrame, one row per usable image (columns in the module docstring).
    classes : list of class names; position = class index everywhere downstream.
    problems : DataFrame ``path, reason`` of inputs that were excluded.
    source : what was read (for reports).
    """

    table: pd.DataFrame
    classes: list[str]
    problems: pd.DataFrame = field(default_factory=lambda: empty_problems())
    source: str = ""

    @property
    def labeled(self) -> pd.DataFrame:
        return self.table[self.table["label"].notna()]

    def label_indices(self) -> pd.Series:
        """Class index per row (``-1`` when unlabeled), indexed like ``table``."""
        lookup = {name: i for i, name in enumerate(self.classes)}
        return self.table["label"].map(lambda v: lookup.get(v, -1) if isinstance(v, str) else -1).astype("int64")

    def summary(self) -> dict[str, object]:
        """Counts for a run record: images, classes, per split and label source, problems."""
        t = self.table
        return {
            "n_images": len(t),
            "n_classes": len(self.classes),
            "n_problems": len(self.problems),
            "split": {str(k): int(v) for k, v in t["split"].value_counts().items()},
            "label_source": {str(k): int(v) for k, v in t["label_source"].fillna("unlabeled").value_counts().items()},
        }

    def save(self, folder: str | os.PathLike[str], *, name: str = TABLE_FILE) -> Path:
        """Write the table and ``classes.json`` into ``folder``; returns the table's path."""
        folder = Path(folder)
        if _read_json_list(folder / CLASSES_FILE) != self.classes:
            write_json(folder / CLASSES_FILE, self.classes)
        else:  # an identical class list is left as it is (it may be the input's own)
            record_written(folder / CLASSES_FILE)
        return write_table(folder / name, self.table)


def empty_problems() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in PROBLEM_COLUMNS})


def clean_label(value: object) -> str | None:
    """Strip a label; blank, NaN and None mean *unlabeled*."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    if text == "" or text.lower() in {"nan", "none", "null", "<na>"}:
        return None
    return text


def normalise_split(value: object, where: str) -> str | None:
    """Map a user's split name to one of :data:`SPLITS`; ``None`` when blank."""
    text = clean_label(value)
    if text is None:
        return None
    name = _SPLIT_ALIASES.get(text.lower(), text.lower())
    if name not in SPLITS:
        raise LabelwiseError(f"{where}: unknown split {text!r}; expected one of {', '.join(SPLITS)}")
    return name


def _read_json_list(path: Path) -> list[str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [str(c) for c in data] if isinstance(data, list) else None


def read_classes(path: str | os.PathLike[str]) -> list[str]:
    """Read a ``classes.json``: a JSON list of names (or ``{"classes": [...]}``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise LabelwiseError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LabelwiseError(f"{path}: is a folder; expected a classes.json file") from None
    except UnicodeDecodeError:
        raise LabelwiseError(f"{path}: not UTF-8 text; expected a JSON list of class names") from None
    except json.JSONDecodeError as exc:
        raise LabelwiseError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    note_input(path)
    if isinstance(data, dict):
        data = data.get("classes")
    if not isinstance(data, list) or not data or not all(isinstance(c, (str, int)) for c in data):
        raise LabelwiseError(f"{path}: expected a non-empty JSON list of class names")
    classes = [str(c).strip() for c in data]
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise LabelwiseError(f"{path}: class names repeat: {', '.join(dupes)}")
    return classes


def build_dataset(
    rows: pd.DataFrame,
    *,
    source: str,
    classes: Sequence[str] | None = None,
    problems: Iterable[tuple[str, str]] = (),
    check: bool = True,
    n_jobs: int = 2,
) -> Dataset:
    """Finish a reader's rows into a :class:`Dataset`.

    ``rows`` needs ``sample_id, path, label`` and may have ``split``. Labels are
    stripped, splits normalised, and (with ``check``) every image is decoded once:
    unusable ones move to ``problems``.
    """
    table = rows.copy()
    table["label"] = pd.Series([clean_label(v) for v in table["label"]], index=table.index, dtype="object")
    if "split" not in table.columns:
        table["split"] = None
    has_label = table["label"].notna()
    table["split"] = [
        "unlabeled" if not labeled else (split if split not in (None, "unlabeled") else "train")
        for split, labeled in zip(table["split"].where(table["split"].notna(), None), has_label)
    ]
    if "label_source" not in table.columns:
        table["label_source"] = "given"
    table["label_source"] = pd.Series(
        [clean_label(src) if labeled else None for src, labeled in zip(table["label_source"], has_label)],
        index=table.index,
        dtype="object",
    )
    table["sample_id"] = table["sample_id"].astype(str)
    table["path"] = table["path"].astype(str)

    found = natural_sorted(set(table["label"].dropna()))
    _warn_case_variants(found, source)
    if classes is None:
        classes = found
    else:
        classes = list(classes)
        unknown = [c for c in found if c not in classes]
        if unknown:
            first = table.index[table["label"] == unknown[0]][0]
            raise LabelwiseError(
                f"{source}: label {unknown[0]!r} (sample {table.at[first, 'sample_id']!r}) is not in the "
                f"class list ({', '.join(classes)})"
            )
    problem_rows = list(problems)
    if check and len(table):
        table, bad = _check_images(table, n_jobs=n_jobs)
        problem_rows += bad
    columns = list(TABLE_COLUMNS) + [c for c in table.columns if c not in TABLE_COLUMNS]
    table = table[columns].reset_index(drop=True)
    problem_df = pd.DataFrame(problem_rows, columns=list(PROBLEM_COLUMNS)) if problem_rows else empty_problems()
    if problem_rows:
        log.warning("%d input(s) excluded as problems (first: %s: %s)", len(problem_rows), *problem_rows[0])
    return Dataset(table=table, classes=list(classes), problems=problem_df, source=source)


def _warn_case_variants(labels: Sequence[str], source: str) -> None:
    by_lower: dict[str, list[str]] = {}
    for label in labels:
        by_lower.setdefault(label.casefold(), []).append(label)
    clashes = [names for names in by_lower.values() if len(names) > 1]
    if clashes:
        shown = "; ".join(" and ".join(repr(n) for n in names) for names in clashes[:3])
        log.warning(
            "%s: labels %s differ only in case, so they are different classes; fix the labels if they name one class",
            source or "data",
            shown,
        )


def _check_images(table: pd.DataFrame, *, n_jobs: int) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    infos = list(iter_image_info(table["path"].tolist(), n_jobs=n_jobs))
    ok = [info.problem is None for info in infos]
    for col in INFO_COLUMNS:
        table[col] = [getattr(info, col) for info in infos]
    bad = [(info.path, info.problem) for info in infos if info.problem is not None]
    table = table[ok].copy()
    for col in ("n_bytes", "width", "height"):
        table[col] = table[col].astype("int64")
    return table, bad


def check_table(table: pd.DataFrame, where: str) -> None:
    """Raise a one-line error if ``table`` lacks the core columns or repeats a ``sample_id``."""
    missing = [c for c in ("sample_id", "path", "label") if c not in table.columns]
    if missing:
        raise LabelwiseError(
            f"{where}: missing column(s) {', '.join(missing)}; columns are: {', '.join(map(str, table.columns))}"
        )
    dup = table["sample_id"].duplicated(keep="first")
    if dup.any():
        first = table.loc[dup, "sample_id"].iloc[0]
        raise LabelwiseError(f"{where}: sample_id {first!r} appears more than once")
