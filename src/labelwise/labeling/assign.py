"""Who gets which task: the stages, the honeypot rate, breadth-first claims, and what an answer sets off
(training feedback, the exam's verdict, the gold-accuracy stop, dynamic overlap).

The queries here run inside the Store's serialized write transaction, so what they read cannot change
before the Store writes the lease. A real task may be handed out while ``counted + leased < target``
(``counted``: kind=label answers of active annotators; ``leased``: live leases), lowest coverage first
then queue order. Dynamic overlap raises ``target`` by one while the Dawid-Skene posterior of a task's
top class is below ``confident`` (:mod:`.overlap_model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..formats.labels_db import annotators, answers, leases, tasks
from . import queries as q
from . import writes
from .models import Settings
from .overlap_model import Confusions, should_raise


@dataclass(frozen=True)
class RoleCount:
    answered: int = 0
    labeled: int = 0  # kind=label
    correct: int = 0  # kind=label and equal to the gold label


@dataclass(frozen=True)
class Counts:
    """One annotator's answers per task role."""

    by_role: dict[str, RoleCount] = field(default_factory=dict)

    def __getitem__(self, role: str) -> RoleCount:
        return self.by_role.get(role, RoleCount())

    @property
    def answered(self) -> int:
        return sum(c.answered for c in self.by_role.values())


_AID: sa.BindParameter[int] = sa.bindparam("aid", type_=sa.Integer)
_IS_LABEL = answers.c.kind == "label"
_ROLE_COUNTS = (
    sa.select(
        tasks.c.role,
        sa.func.count(),
        sa.func.sum(sa.case((_IS_LABEL, 1), else_=0)),
        sa.func.sum(sa.case((sa.and_(_IS_LABEL, answers.c.label == tasks.c.gold_label), 1), else_=0)),
    )
    .select_from(answers.join(tasks, tasks.c.id == answers.c.task_id))
    .where(answers.c.annotator_id == _AID)
    .group_by(tasks.c.role)
)


def role_counts(conn: Connection, annotator_id: int) -> Counts:
    rows = conn.execute(_ROLE_COUNTS, {"aid": annotator_id})
    return Counts({role: RoleCount(int(n), int(lab or 0), int(ok or 0)) for role, n, lab, ok in rows})


def stage(counts: Counts, totals: dict[str, int]) -> str:
    """training until every training task is answered, then the exam, then real tasks."""
    if counts["training"].answered < totals.get("training", 0):
        return "training"
    if counts["exam"].answered < totals.get("exam", 0):
        return "exam"
    return "task"


def honeypot_due(n_real: int, n_honeypot: int, per_page: int, page_size: int) -> bool:
    """Whether the next task should be a honeypot: ``per_page`` of every ``page_size`` tasks are.

    >>> [honeypot_due(n, 0, 1, 4) for n in range(5)]
    [False, False, False, True, True]
    """
    return (n_real + n_honeypot + 1) * per_page // page_size > n_honeypot


def exam_result(counts: Counts, n_exam: int, exam_pass: float) -> tuple[bool, float]:
    """(passed, accuracy): skips and unsure answers on the exam count as wrong; no exam passes."""
    accuracy = counts["exam"].correct / n_exam if n_exam else 1.0
    return accuracy >= exam_pass, accuracy


def gold_stop_reason(
    counts: Counts, min_gold_accuracy: float | None, min_gold_answers: int
) -> tuple[str | None, float | None]:
    """(reason to stop the annotator or None, honeypot accuracy) from their labels on honeypots."""
    hp = counts["honeypot"]
    if not hp.labeled:
        return None, None
    accuracy = hp.correct / hp.labeled
    if min_gold_accuracy is None or hp.labeled < min_gold_answers or accuracy >= min_gold_accuracy:
        return None, accuracy
    return f"honeypot accuracy {accuracy:.2f} below {min_gold_accuracy:.2f} ({hp.labeled} answered)", accuracy


# Statements are built once: building a SQLAlchemy expression costs several times what running it does.
_NOT_ANSWERED = ~sa.exists().where(answers.c.task_id == tasks.c.id, answers.c.annotator_id == _AID)
_NOT_LEASED = ~sa.exists().where(leases.c.task_id == tasks.c.id, leases.c.annotator_id == _AID)
_COVERAGE = tasks.c.counted + tasks.c.leased
_OPEN = sa.and_(tasks.c.role == "task", _COVERAGE < tasks.c.target, _NOT_ANSWERED, _NOT_LEASED)
_NEXT_GOLD = (
    sa.select(tasks)
    .where(tasks.c.role == sa.bindparam("role"), _NOT_ANSWERED, _NOT_LEASED)
    .order_by(tasks.c.position)
    .limit(1)
)
_OPEN_TASKS = (
    sa.select(tasks).where(_OPEN).order_by(_COVERAGE, tasks.c.position).limit(sa.bindparam("n", type_=sa.Integer))
)
_OPEN_SUGGESTED = (
    sa.select(tasks)
    .where(_OPEN, tasks.c.suggestion == sa.bindparam("suggestion"))
    .order_by(_COVERAGE, tasks.c.position)
    .limit(sa.bindparam("n", type_=sa.Integer))
)
_GRID_LABELS = (
    sa.select(tasks.c.suggestion, sa.func.count())
    .where(_OPEN, tasks.c.suggestion.is_not(None))
    .group_by(tasks.c.suggestion)
)


def next_gold(conn: Connection, annotator_id: int, role: str) -> Row[Any] | None:
    """The first task of ``role`` (training, exam, honeypot) in queue order that the annotator has not answered."""
    return conn.execute(_NEXT_GOLD, {"aid": annotator_id, "role": role}).first()


def next_real(conn: Connection, annotator_id: int) -> Row[Any] | None:
    """The real task furthest from covered that the annotator has neither answered nor leased."""
    return next(iter(open_tasks(conn, annotator_id, limit=1)), None)


def open_tasks(
    conn: Connection, annotator_id: int, *, suggestion: str | None = None, limit: int = 1
) -> Sequence[Row[Any]]:
    """Real tasks with room (counted + leased < target) for this annotator, breadth first, then queue order."""
    if limit < 1:
        return []
    if suggestion is None:
        return conn.execute(_OPEN_TASKS, {"aid": annotator_id, "n": limit}).all()
    return conn.execute(_OPEN_SUGGESTED, {"aid": annotator_id, "n": limit, "suggestion": suggestion}).all()


def best_grid_label(conn: Connection, annotator_id: int, classes: Sequence[str]) -> str | None:
    """The class the model suggests for the most real tasks open to this annotator (ties: class order)."""
    found = {str(label): int(n) for label, n in conn.execute(_GRID_LABELS, {"aid": annotator_id})}
    best = max((found.get(c, 0) for c in classes), default=0)
    return next((c for c in classes if found.get(c, 0) == best), None) if best else None


_CAPPED = sa.case((tasks.c.counted > tasks.c.target, tasks.c.target), else_=tasks.c.counted)
_POOL = sa.select(
    sa.func.count(),
    sa.func.coalesce(sa.func.sum(sa.case((tasks.c.counted >= tasks.c.target, 1), else_=0)), 0),
    sa.func.coalesce(sa.func.sum(_CAPPED), 0),
    sa.func.coalesce(sa.func.sum(tasks.c.target), 0),
).where(tasks.c.role == "task")
_MINE = sa.and_(tasks.c.role == "task", _NOT_ANSWERED)
_REMAINING = sa.select(sa.exists().where(_MINE, tasks.c.counted < tasks.c.target))
_AVAILABLE = sa.select(sa.exists().where(_MINE, sa.or_(_COVERAGE < tasks.c.target, ~_NOT_LEASED)))


def pool_totals(conn: Connection) -> dict[str, int]:
    """The pool's progress: tasks done of total, answers of needed (a pass over every task)."""
    row = conn.execute(_POOL).one()
    return {"tasks_total": int(row[0]), "tasks_done": int(row[1]), "answers": int(row[2]), "needed": int(row[3])}


def pool_state(
    conn: Connection, annotator_id: int | None = None, totals: dict[str, int] | None = None
) -> dict[str, int | bool]:
    """The pool's progress (``totals``, when the caller has them); with ``annotator_id``, whether real
    tasks remain for them (``remaining``) and whether one could be handed out now (``available``: not
    all of those are leased by others)."""
    state: dict[str, int | bool] = dict(totals if totals is not None else pool_totals(conn))
    if annotator_id is not None:
        state["remaining"] = bool(conn.execute(_REMAINING, {"aid": annotator_id}).scalar())
        state["available"] = bool(conn.execute(_AVAILABLE, {"aid": annotator_id}).scalar())
    return state


def recount(conn: Connection) -> int:
    """Recompute ``counted`` (real tasks only) and ``leased`` of every task from the answers and leases;
    returns how many tasks changed."""
    counted = (
        sa.select(sa.func.count())
        .select_from(answers.join(annotators, annotators.c.id == answers.c.annotator_id))
        .where(
            answers.c.task_id == tasks.c.id,
            answers.c.kind == "label",
            annotators.c.status == "active",
            tasks.c.role == "task",  # gold tasks have no overlap to count towards
        )
        .scalar_subquery()
    )
    leased = sa.select(sa.func.count()).where(leases.c.task_id == tasks.c.id).scalar_subquery()
    result = conn.execute(
        sa.update(tasks)
        .where(sa.or_(tasks.c.counted != counted, tasks.c.leased != leased))
        .values(counted=counted, leased=leased)
    )
    return int(result.rowcount or 0)


def after_answer(
    conn: Connection,
    settings: Settings,
    totals: dict[str, int],
    confusions: Confusions,
    me: Row[Any],
    task: Row[Any],
    kind: str,
    label: str | None,
    now: float,
    *,
    edit: bool,
) -> dict[str, Any] | None:
    """What a stored answer sets off, and the feedback for the annotator: the right label and hint on a
    training task; the exam's verdict after its last task (a fail stops them); the gold-accuracy stop after
    a honeypot; one more annotator for a real task whose posterior stays below ``confident``."""
    s = settings
    if task.role == "training":
        return {"correct": kind == "label" and label == task.gold_label, "label": task.gold_label, "hint": task.hint}
    if task.role == "exam" and not edit:
        counts = role_counts(conn, me.id)
        n_exam = totals.get("exam", 0)
        if counts["exam"].answered < n_exam:
            return None
        passed, accuracy = exam_result(counts, n_exam, s.exam_pass)
        writes.event(conn, now, "exam_passed" if passed else "exam_failed", me.id, accuracy=accuracy)
        if not passed:
            writes.stop(conn, me.id, "exam", now, by="exam", accuracy=accuracy)
        return {"exam": {"passed": passed, "accuracy": accuracy}}
    if task.role == "honeypot" and s.min_gold_accuracy is not None:
        reason, _ = gold_stop_reason(role_counts(conn, me.id), s.min_gold_accuracy, s.min_gold_answers)
        if reason is not None:
            writes.stop(conn, me.id, reason, now, by="gold")
            return {"stopped": reason}
    if task.role == "task" and kind == "label" and s.max_overlap is not None:
        now_task = conn.execute(q.TASK, {"tid": task.id}).one()
        votes = [(int(a), str(lab)) for a, lab in conn.execute(q.VOTES, {"tid": task.id})]
        more, top = should_raise(confusions, votes, now_task.counted, now_task.target, s.max_overlap, s.confident)
        if more:
            conn.execute(q.RAISE, {"tid": task.id})
            writes.event(conn, now, "overlap_raised", None, task.id, target=now_task.target + 1, posterior=top)
    return None
