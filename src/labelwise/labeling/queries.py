"""The SQL statements the labeling Store runs, built once: building a SQLAlchemy expression costs several
times what running it does. Parameters are bound by name at execution. Also the lookups of one row that
refuse an unknown id."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..errors import LabelwiseError
from ..formats.labels_db import annotators, answers, events, leases, tasks

EDITABLE = 10  # an annotator may change any of their last EDITABLE answers

_P = sa.bindparam
ME = sa.select(annotators).where(annotators.c.id == _P("aid"))
NAMED = sa.select(annotators.c.id).where(annotators.c.name == _P("name"))
TOKEN = sa.select(annotators).where(annotators.c.token_hash == _P("hash"))
TASK = sa.select(tasks).where(tasks.c.id == _P("tid"))
HELD = (
    sa.select(tasks)
    .select_from(leases.join(tasks, tasks.c.id == leases.c.task_id))
    .where(leases.c.annotator_id == _P("aid"))
    .order_by(leases.c.created_at, leases.c.id)
)
HELD_FIRST = HELD.limit(1)
EXPIRED = sa.select(leases.c.id, leases.c.task_id, leases.c.annotator_id).where(leases.c.expires_at <= _P("now"))
LEASES_OF = sa.select(leases.c.id, leases.c.task_id, leases.c.annotator_id).where(leases.c.annotator_id == _P("aid"))
LEASE_ON = sa.select(leases.c.id).where(leases.c.task_id == _P("tid"), leases.c.annotator_id == _P("aid"))
DROP_LEASES = sa.delete(leases).where(leases.c.id.in_(_P("ids", expanding=True)))
UNLEASE = sa.update(tasks).where(tasks.c.id == _P("tid")).values(leased=tasks.c.leased - _P("n"))
LEASE_UP = sa.update(tasks).where(tasks.c.id.in_(_P("tids", expanding=True))).values(leased=tasks.c.leased + 1)
RENEW = (
    sa.update(leases)
    .where(leases.c.annotator_id == _P("aid"), leases.c.task_id.in_(_P("tids", expanding=True)))
    .values(expires_at=_P("expires"))
)
ANSWER_ON = sa.select(answers).where(answers.c.task_id == _P("tid"), answers.c.annotator_id == _P("aid"))
EDIT = (
    sa.update(answers)
    .where(answers.c.id == _P("answer_id"))
    .values(
        kind=_P("new_kind"),
        label=_P("new_label"),
        # an edit sent without a time keeps the stored one
        seconds=sa.func.coalesce(_P("new_seconds", type_=answers.c.seconds.type), answers.c.seconds),
        updated_at=_P("now"),
        revision=answers.c.revision + 1,
    )
)
COUNT = (
    sa.update(tasks)
    .where(tasks.c.id == _P("tid"))
    .values(counted=tasks.c.counted + _P("dc"), leased=tasks.c.leased - _P("dl"))
)
LAST = sa.select(answers.c.id).where(answers.c.annotator_id == _P("aid")).order_by(answers.c.id.desc()).limit(EDITABLE)
ANSWERS_WITH_ROLE = sa.select(answers, tasks.c.role, tasks.c.given_label, tasks.c.suggestion).select_from(
    answers.join(tasks, tasks.c.id == answers.c.task_id)
)
RECENT = ANSWERS_WITH_ROLE.where(
    answers.c.annotator_id == _P("aid"), answers.c.task_id == _P("tid"), answers.c.id.in_(LAST.scalar_subquery())
)
HISTORY = ANSWERS_WITH_ROLE.where(answers.c.annotator_id == _P("aid")).order_by(answers.c.id.desc()).limit(_P("n"))
VOTES = (
    sa.select(answers.c.annotator_id, answers.c.label)
    .select_from(answers.join(annotators, annotators.c.id == answers.c.annotator_id))
    .where(answers.c.task_id == _P("tid"), answers.c.kind == "label", annotators.c.status == "active")
)
RAISE = sa.update(tasks).where(tasks.c.id == _P("tid")).values(target=tasks.c.target + 1)
STOP = (
    sa.update(annotators)
    .where(annotators.c.id == _P("aid"), annotators.c.status == "active")
    .values(status="stopped", status_reason=_P("reason"))
)
RESUME = (
    sa.update(annotators)
    .where(annotators.c.id == _P("aid"), annotators.c.status != "active")
    .values(status="active", status_reason=None)
)
COUNT_MINE = (  # dc -1 when an annotator is stopped, +1 when resumed
    sa.update(tasks)
    .where(
        tasks.c.role == "task",
        tasks.c.id.in_(
            sa.select(answers.c.task_id).where(answers.c.annotator_id == _P("aid"), answers.c.kind == "label")
        ),
    )
    .values(counted=tasks.c.counted + _P("dc"))
)
STOPS = sa.select(events.c.annotator_id, events.c.detail).where(events.c.kind == "stopped").order_by(events.c.id)
LAST_STOP = (
    sa.select(events.c.detail)
    .where(events.c.kind == "stopped", events.c.annotator_id == _P("aid"))
    .order_by(events.c.id.desc())
    .limit(1)
)
SEES = sa.or_(
    sa.exists().where(
        leases.c.task_id == tasks.c.id, leases.c.annotator_id == _P("aid"), leases.c.expires_at > _P("now")
    ),
    sa.exists().where(answers.c.task_id == tasks.c.id, answers.c.annotator_id == _P("aid")),
)
PATH = sa.select(tasks.c.path).where(tasks.c.id == _P("tid"))
PATH_SEEN = PATH.where(SEES)
MODEL_ROWS = (
    sa.select(answers.c.task_id, answers.c.annotator_id, answers.c.label, tasks.c.gold_label, tasks.c.role)
    .select_from(answers.join(tasks, tasks.c.id == answers.c.task_id))
    .join(annotators, annotators.c.id == answers.c.annotator_id)
    .where(answers.c.kind == "label", tasks.c.role.in_(("task", "honeypot", "exam")), annotators.c.status == "active")
)


def annotator_row(conn: Connection, annotator_id: int) -> Row[Any]:
    row = conn.execute(ME, {"aid": annotator_id}).first()
    if row is None:
        raise LabelwiseError(f"unknown annotator id {annotator_id}")
    return row


def annotator_id(conn: Connection, name: str) -> int:
    found = conn.execute(NAMED, {"name": name}).scalar()
    if found is None:
        raise LabelwiseError(f"no annotator named {name!r}")
    return int(found)


def task_row(conn: Connection, task_id: int) -> Row[Any]:
    row = conn.execute(TASK, {"tid": int(task_id)}).first()
    if row is None:
        raise LabelwiseError(f"unknown task {task_id}")
    return row
