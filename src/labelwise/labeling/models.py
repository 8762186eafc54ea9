"""The values the labeling Store takes and returns: the project's settings and what an annotator sees."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import LabelwiseError

STAGES = ("training", "exam", "task")


@dataclass(frozen=True)
class Settings:
    """A labeling project's configuration (stored in the database's ``meta.config``).

    ``overlap`` answers per real task (``--overlap``), raised one at a time up to ``max_overlap`` while
    the Dawid-Skene posterior of the task's top class stays below ``confident``; ``per_page`` honeypots
    among every ``page_size`` tasks (as ``labelwise tasks``); an annotator whose accuracy on at least
    ``min_gold_answers`` honeypots is below ``min_gold_accuracy`` is stopped; the exam is passed at
    ``exam_pass`` accuracy. ``images_root`` and ``mode`` (``label`` or ``review``) are the app's.
    """

    classes: list[str]
    overlap: int = 1
    max_overlap: int | None = None
    confident: float = 0.9
    lease_seconds: float = 120
    exam_pass: float = 0.8
    min_gold_accuracy: float | None = None
    min_gold_answers: int = 5
    page_size: int = 50
    per_page: int = 1
    grid_size: int = 36
    images_root: str | None = None
    mode: str = "label"

    def __post_init__(self) -> None:
        classes = [str(c) for c in self.classes]
        object.__setattr__(self, "classes", classes)
        if not classes or any(not c for c in classes):
            raise LabelwiseError("classes: give at least one non-empty class name")
        if len(set(classes)) != len(classes):
            raise LabelwiseError(f"classes: names repeat ({', '.join(classes)})")
        if self.overlap < 1:
            raise LabelwiseError(f"overlap must be at least 1, got {self.overlap}")
        if self.max_overlap is not None and self.max_overlap < self.overlap:
            raise LabelwiseError(f"max_overlap ({self.max_overlap}) must be at least overlap ({self.overlap})")
        if not 0 < self.confident <= 1:
            raise LabelwiseError(f"confident must lie in (0, 1], got {self.confident}")
        if not self.lease_seconds > 0:
            raise LabelwiseError(f"lease must be a positive number of seconds, got {self.lease_seconds}")
        if not 0 <= self.exam_pass <= 1:
            raise LabelwiseError(f"exam_pass must lie in [0, 1], got {self.exam_pass}")
        if self.min_gold_accuracy is not None and not 0 <= self.min_gold_accuracy <= 1:
            raise LabelwiseError(f"min_gold_accuracy must lie in [0, 1], got {self.min_gold_accuracy}")
        if self.min_gold_answers < 1:
            raise LabelwiseError(f"min_gold_answers must be at least 1, got {self.min_gold_answers}")
        if self.page_size < 1 or not 0 <= self.per_page < self.page_size:
            raise LabelwiseError(
                f"honeypots: per_page ({self.per_page}) must lie in [0, page_size) with page_size ({self.page_size}) >= 1"
            )
        if self.grid_size < 1:
            raise LabelwiseError(f"grid_size must be at least 1, got {self.grid_size}")
        if self.mode not in ("label", "review"):
            raise LabelwiseError(f"mode must be label or review, got {self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings:
        """Settings from stored JSON; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class Annotator:
    id: int
    name: str
    is_admin: bool
    status: str  # active | stopped


@dataclass(frozen=True)
class AnswerView:
    """One of an annotator's answers (newest first in ``Store.history``); ``at`` is its last change;
    ``suggestion`` and ``given_label`` as the task's :class:`TaskView` shows them (None on gold tasks)."""

    task_id: int
    kind: str
    label: str | None
    at: float
    stage: str = "task"
    revision: int = 1
    suggestion: str | None = None
    given_label: str | None = None


@dataclass(frozen=True)
class TaskView:
    """What an annotator may see of a task: never its gold label, nor that a honeypot is one."""

    task_id: int
    stage: str  # training | exam | task (honeypots look like tasks)
    suggestion: str | None  # the model's guess: None on training, exam and honeypot tasks
    given_label: str | None  # review mode: the dataset's label; None on gold tasks
    hint: str | None  # training tasks only
    lease_expires: float
    answer: AnswerView | None = None


@dataclass(frozen=True)
class SubmitResult:
    """``accepted`` False with a ``reason`` when the answer was not stored; ``feedback`` for training tasks
    (``correct``, ``label``, ``hint``), the exam's result (``exam``), or ``stopped`` when this answer stopped
    the annotator; grid pages list ``accepted_ids`` / ``refused_ids``."""

    accepted: bool
    reason: str | None = None
    feedback: dict[str, Any] | None = None


TASK_COLUMNS = (
    "sample_id",
    "path",
    "role",
    "gold_label",
    "hint",
    "given_label",
    "suggestion",
    "suggestion_score",
    "reason",
)
ROLES = ("task", "training", "exam", "honeypot")  # as labels_db.ROLES: this module loads without sqlalchemy


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) or str(value) == "" else str(value)


def task_rows(table: pd.DataFrame, settings: Settings) -> list[dict[str, Any]]:
    """The ``tasks`` rows of a queue table (:data:`TASK_COLUMNS`, missing optional ones NULL), in its order."""
    missing = [c for c in ("sample_id", "path") if c not in table.columns]
    if missing:
        raise LabelwiseError(f"tasks: missing column(s) {', '.join(missing)}")
    if not len(table):
        raise LabelwiseError("tasks: no tasks to label")
    ids = table["sample_id"].astype(str)
    if ids.duplicated().any():
        raise LabelwiseError(f"tasks: sample_id {ids[ids.duplicated()].iloc[0]!r} appears twice")
    classes = set(settings.classes)
    rows = []
    for position, rec in enumerate(table.to_dict("records")):
        row: dict[str, Any] = {c: _text(rec.get(c)) for c in TASK_COLUMNS if c != "suggestion_score"}
        sample, role = row["sample_id"], row["role"] or "task"
        if role not in ROLES:
            raise LabelwiseError(f"tasks: {sample!r} has role {role!r}; expected {', '.join(ROLES)}")
        if role != "task" and row["gold_label"] not in classes:
            raise LabelwiseError(
                f"tasks: {role} task {sample!r} needs a gold label among the classes, got {row['gold_label']!r}"
            )
        if row["suggestion"] is not None and row["suggestion"] not in classes:
            raise LabelwiseError(f"tasks: {sample!r} suggests {row['suggestion']!r}, not one of the classes")
        if row["path"] is None:
            raise LabelwiseError(f"tasks: {sample!r} has no path")
        score = rec.get("suggestion_score")
        try:
            row["suggestion_score"] = None if _text(score) is None else float(score)
        except (TypeError, ValueError):
            raise LabelwiseError(f"tasks: {sample!r} has suggestion_score {score!r}, not a number") from None
        row.update(role=role, position=position, target=settings.overlap, counted=0, leased=0)
        rows.append(row)
    return rows


def checked_seconds(seconds: Any) -> float | None:
    """Time spent on an answer: None, or a non-negative number of seconds."""
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise LabelwiseError(f"seconds must be a number, got {seconds!r}") from None
    if not 0 <= value < 1e7:
        raise LabelwiseError(f"seconds must be a non-negative number, got {seconds!r}")
    return value
