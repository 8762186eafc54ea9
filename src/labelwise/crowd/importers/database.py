"""The answers of a ``labelwise label`` project, read straight from its database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...errors import LabelwiseError, require
from ._collector import _Collector

DB_FILE = "labels.db"
PROJECT_FILE = "project.json"


def database_of(path: Path) -> str | None:
    """The database a path stands for: a project folder (its ``labels.db``, or the URL its
    ``project.json`` names) or a ``.db`` file; ``None`` for anything else."""
    if path.is_dir():
        if (path / PROJECT_FILE).is_file():
            try:
                return str(json.loads((path / PROJECT_FILE).read_text(encoding="utf-8"))["db"])
            except (ValueError, KeyError):
                raise LabelwiseError(f"{path / PROJECT_FILE}: not a labelwise project file") from None
        return str(path / DB_FILE) if (path / DB_FILE).is_file() else None
    return str(path) if path.suffix.lower() in (".db", ".sqlite", ".sqlite3") else None


def _read_database(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    """Label answers of annotators not stopped (training answers left out) and the gold of the
    honeypot and exam tasks."""
    require("sqlalchemy", "label", "reading a labeling project")
    from ...formats.labels_db import read_answers

    url = database_of(path) or os.fspath(path)
    answers, gold = read_answers(url)
    for row in answers.itertuples(index=False):
        col.answer(str(row.task), str(row.worker), str(row.label), str(row.source), str(row.task), "", True)
    for task, label in gold.items():
        col.add_gold(str(task), str(label), f"{path}: gold of task {task}")
