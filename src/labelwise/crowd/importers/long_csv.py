"""A long table ``task, worker, label`` (crowd-kit's shape), with common aliases."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import LabelwiseError
from ._collector import (
    LABEL_ALIASES,
    TASK_ALIASES,
    WORKER_ALIASES,
    _Collector,
    _read_csv,
)

log = logging.getLogger("labelwise")


def _read_long_csv(path: Path, col: _Collector, *, from_name: str | None, worker: str | None) -> None:
    """A long table ``task, worker, label`` (aliases such as ``sample_id``, ``annotator`` accepted)."""
    frame = _read_csv(path, "\t" if path.suffix.lower() in {".tsv", ".tab"} else ",")
    lower = {str(c).strip().lower(): c for c in frame.columns}

    def column(aliases: Sequence[str], what: str) -> Any:
        found = next((lower[a] for a in aliases if a in lower), None)
        if found is None:
            raise LabelwiseError(
                f"{path}: no {what} column (one of {', '.join(aliases)}); "
                f"columns are {', '.join(map(str, frame.columns))}"
            )
        return found

    t = column(TASK_ALIASES, "task")
    w = column(WORKER_ALIASES, "worker") if worker is None else None
    lab = column((from_name,) if from_name else LABEL_ALIASES, "label")
    img = lower.get("image") if lower.get("image") != t else None
    for i, (task_id, who, label, image) in enumerate(
        zip(
            frame[t],
            frame[w] if w is not None else [worker] * len(frame),
            frame[lab],
            frame[img] if img is not None else [""] * len(frame),
        )
    ):
        col.answer(
            str(task_id),
            str(who),
            str(label),
            f"{path}, line {i + 2}",
            str(image),
            worker or "",
            t.strip().lower() == "sample_id",
        )
