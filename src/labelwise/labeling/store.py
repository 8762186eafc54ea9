"""The labeling app's state: every read and write goes through :class:`Store`.

Claims and answers run in one serialized write transaction each (a process-wide lock, then SQLite's
``BEGIN IMMEDIATE`` or PostgreSQL's advisory lock, so several server processes stay correct too); an
answer is committed (and on SQLite synced to disk) before the method returns. Expired leases are swept
at the start of every write, by the injected ``clock``. The steps of those transactions are in
:mod:`.writes`, the policy they follow in :mod:`.assign`, the reads (which take no lock) in :mod:`.views`, the round-by-round writes in :mod:`.rounds`,
dynamic overlap's model in :mod:`.overlap_model`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from ..errors import LabelwiseError
from ..formats import labels_db as db
from ..formats.labels_db import annotators, answers, meta, tasks
from . import assign, writes
from . import queries as q
from .models import Annotator, AnswerView, Settings, SubmitResult, TaskView, checked_seconds, task_rows
from .overlap_model import OverlapModel
from .queries import EDITABLE
from .rounds import StoreRounds
from .views import StoreViews, task_view

log = logging.getLogger("labelwise")

__all__ = ["Annotator", "AnswerView", "Settings", "Store", "SubmitResult", "TaskView"]

COVERED = "lease expired and the task is covered"


class Store(StoreViews, StoreRounds):
    """A labeling project in a database; thread-safe. Make one with :meth:`create` or :meth:`open`."""

    #: refit the confusions (dynamic overlap) after this many new answers, or this many seconds with any;
    #: refit_mode "background", "sync" (tests: deterministic) or "off" (keep the prior)
    refit_every = 25
    refit_seconds = 10.0

    def __init__(self, engine: Engine, settings: Settings, clock: Callable[[], float]) -> None:
        self._engine = engine
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        with engine.connect() as conn:
            roles = conn.execute(sa.select(tasks.c.role, sa.func.count()).group_by(tasks.c.role))
            self._totals = {str(r): int(n) for r, n in roles}
        self._working: set[int] = set()  # annotators past the exam (a stage never goes back)
        self._overlap = OverlapModel(engine, settings.classes, clock)
        self.refit_mode = "background"

    @classmethod
    def create(
        cls,
        url_or_path: str | os.PathLike[str],
        settings: Settings,
        tasks_table: pd.DataFrame,
        *,
        clock: Callable[[], float] = time.time,
        grows: bool = False,
    ) -> Store:
        """A new project from ``tasks_table`` (rows in queue order; :data:`~.models.TASK_COLUMNS`, the optional
        ones may be missing). Refused when the database already holds a project. ``grows``: the project gets
        its tasks later (:meth:`ask`), so it may start without any."""
        rows = task_rows(tasks_table, settings) if len(tasks_table) or not grows else []
        engine = db.connect(url_or_path)
        try:
            db.migrate(engine)
            with db.write_transaction(engine) as conn:
                if db.read_config(conn) is not None:
                    raise LabelwiseError(f"{db.where(engine)}: already holds a labeling project; open it instead")
                conn.execute(sa.insert(meta).values(key="config", value=json.dumps(settings.to_dict())))
                if rows:
                    conn.execute(sa.insert(tasks), rows)
                writes.event(conn, clock(), "project_created", tasks=len(rows))
                db.analyze(conn)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, settings, clock)

    @classmethod
    def open(cls, url_or_path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> Store:
        """An existing project (an older schema is migrated first)."""
        text = os.fspath(url_or_path)
        if "://" not in text and not Path(text).is_file():
            raise LabelwiseError(f"{text}: no such labels database")
        engine = db.connect(url_or_path)
        try:
            db.migrate(engine)
            with db.write_transaction(engine) as conn:
                config = db.read_config(conn)
                if config is None:
                    raise LabelwiseError(f"{db.where(engine)}: no labeling project in this database")
                if assign.recount(conn):
                    log.warning("%s: task coverage counters were out of date and have been recounted", db.where(engine))
                db.analyze(conn)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, Settings.from_dict(config), clock)

    def close(self) -> None:
        self._overlap.close()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """The database, for messages (no password)."""
        return db.where(self._engine)

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[tuple[Connection, float]]:
        with self._lock, db.write_transaction(self._engine, durable=durable) as conn:
            now = self._clock()
            writes.sweep(conn, now)
            yield conn, now

    # ------------------------------------------------------------ annotators

    def add_annotator(self, name: str, *, admin: bool = False) -> str:
        """Add an annotator (or an admin); returns their token, of which only the sha256 is stored."""
        name = str(name).strip()
        if not name or len(name) > 100 or any(ch in name for ch in ",\n\r\t"):
            raise LabelwiseError(f"annotator name {name!r}: give 1-100 characters without commas or line breaks")
        token = secrets.token_urlsafe(24)
        with self._write() as (conn, now):
            if conn.execute(q.NAMED, {"name": name}).first():
                raise LabelwiseError(f"annotator {name!r} exists already (reset their token for a new link)")
            aid = conn.execute(
                sa.insert(annotators)
                .values(name=name, token_hash=writes.token_hash(token), is_admin=admin, status="active", created_at=now)
                .returning(annotators.c.id)
            ).scalar_one()
            writes.event(conn, now, "annotator_added", aid, name=name, admin=admin)
        return token

    def reset_token(self, name: str) -> str:
        """A new token for ``name``; the old one stops working."""
        token = secrets.token_urlsafe(24)
        with self._write() as (conn, now):
            aid = q.annotator_id(conn, name)
            conn.execute(
                sa.update(annotators).where(annotators.c.id == aid).values(token_hash=writes.token_hash(token))
            )
            writes.event(conn, now, "token_reset", aid)
        return token

    def has_annotator(self, name: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(q.NAMED, {"name": name}).first() is not None

    def authenticate(self, token: str) -> Annotator | None:
        if not isinstance(token, str) or not token:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(q.TOKEN, {"hash": writes.token_hash(token)}).first()
        return None if row is None else Annotator(row.id, row.name, bool(row.is_admin), row.status)

    def annotators(self) -> list[Annotator]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(annotators).order_by(annotators.c.id)).all()
        return [Annotator(r.id, r.name, bool(r.is_admin), r.status) for r in rows]

    def stop(self, name: str, reason: str = "stopped by the admin") -> None:
        """Stop an annotator: no more tasks, their answers stop counting (their tasks reopen) but stay stored."""
        with self._write() as (conn, now):
            writes.stop(conn, q.annotator_id(conn, name), reason, now, by="admin")

    def resume(self, name: str) -> None:
        """Undo the admin's :meth:`stop`: ``name`` gets tasks again and their answers count again. Refused for
        one the exam or the gold-accuracy gate stopped: those are the project's settings, not the admin's call
        (and the gate would stop them again at their next honeypot)."""
        with self._write() as (conn, now):
            me = q.annotator_row(conn, q.annotator_id(conn, name))
            if me.status == "active":
                return
            by = writes.stopped_by(conn.execute(q.LAST_STOP, {"aid": me.id}).scalar())
            if by != "admin":
                gate = "failed the exam" if by == "exam" else f"was stopped by the gold check ({me.status_reason})"
                raise LabelwiseError(f"{name} {gate}; only an annotator the admin stopped can be resumed")
            writes.resume(conn, me.id, now)

    # ------------------------------------------------------------ claiming

    def next_task(self, annotator_id: int) -> TaskView | None:
        """The annotator's next task, leased to them; None when nothing is left for them now (``progress``
        says whether the rest is leased by others: ``waiting``, or ``done``)."""
        with self._write(durable=False) as (conn, now):  # a lease lost to a power cut is only a lease
            if q.annotator_row(conn, annotator_id).status != "active":
                return None
            held = conn.execute(q.HELD_FIRST, {"aid": annotator_id}).first()
            if held is not None:  # a reload, or a grid page left behind: the same task again
                return task_view(held, self._renew(conn, annotator_id, [held.id], now))
            counts = assign.role_counts(conn, annotator_id)
            stage = assign.stage(counts, self._totals)
            if stage != "task":
                task = assign.next_gold(conn, annotator_id, stage)
            else:
                task = assign.next_real(conn, annotator_id)
                s = self.settings
                if task is not None and assign.honeypot_due(
                    counts["task"].answered, counts["honeypot"].answered, s.per_page, s.page_size
                ):
                    task = assign.next_gold(conn, annotator_id, "honeypot") or task
            if task is None:
                return None
            return task_view(task, self._lease(conn, annotator_id, [task.id], now))

    def next_grid(self, annotator_id: int, label: str | None = None) -> tuple[str, list[TaskView]] | None:
        """Up to ``grid_size`` real tasks the model puts in ``label`` (default: the class with the most open
        tasks), leased together; None when there are none, or the annotator is not past the exam."""
        if label is not None:
            self._check_label(label)
        with self._write(durable=False) as (conn, now):
            if q.annotator_row(conn, annotator_id).status != "active" or not self._past_exam(conn, annotator_id):
                return None
            held = [t for t in conn.execute(q.HELD, {"aid": annotator_id}) if t.role == "task" and t.suggestion]
            if label is None:
                label = (
                    held[0].suggestion if held else assign.best_grid_label(conn, annotator_id, self.settings.classes)
                )
                if label is None:
                    return None
            kept = [t for t in held if t.suggestion == label][: self.settings.grid_size]
            fresh = assign.open_tasks(conn, annotator_id, suggestion=label, limit=self.settings.grid_size - len(kept))
            if not kept and not fresh:
                return None
            if kept:
                expires = self._renew(conn, annotator_id, [t.id for t in kept], now)
            if fresh:
                expires = self._lease(conn, annotator_id, [t.id for t in fresh], now)
            return label, [task_view(t, expires) for t in [*kept, *fresh]]

    # ------------------------------------------------------------ answering

    def submit(
        self, annotator_id: int, task_id: int, kind: str, label: str | None = None, seconds: float | None = None
    ) -> SubmitResult:
        """Store an answer, or edit one of the last 10; committed when this returns."""
        label = self._check_answer(kind, label)
        spent = checked_seconds(seconds)
        with self._write() as (conn, now):
            me = q.annotator_row(conn, annotator_id)
            result = self._submit_one(conn, me, q.task_row(conn, task_id), kind, label, spent, now)
        self._answered(int(result.accepted))
        return result

    def submit_grid(
        self, annotator_id: int, label: str, task_ids: list[int], rejected: list[int], seconds: float | None = None
    ) -> SubmitResult:
        """A grid page: ``task_ids`` shown as ``label``, of which ``rejected`` are not (kind ``not``); ``seconds``
        is the page's, shared among its tasks. Accepted when any answer was stored; ``feedback`` lists
        ``accepted_ids`` and ``refused_ids`` (covered by others after the lease expired)."""
        self._check_label(label)
        ids = [int(t) for t in task_ids]
        no = {int(t) for t in rejected}
        if not ids or len(set(ids)) != len(ids) or not no <= set(ids):
            raise LabelwiseError("grid: give distinct task ids, with the rejected ones among them")
        spent = checked_seconds(seconds)
        each = None if spent is None else spent / len(ids)
        done: list[int] = []
        refused: list[int] = []
        reason = None
        with self._write() as (conn, now):
            me = q.annotator_row(conn, annotator_id)
            for task_id in ids:
                task = q.task_row(conn, task_id)
                if task.role != "task":
                    raise LabelwiseError(f"grid: task {task_id} is not a real task")
                kind = "not" if task_id in no else "label"
                result = self._submit_one(conn, me, task, kind, label, each, now)
                (done if result.accepted else refused).append(task_id)
                reason = reason or result.reason
        self._answered(len(done))
        if refused:
            reason = f"{len(refused)} of {len(ids)} not stored: {reason}"
        return SubmitResult(bool(done), reason, {"accepted_ids": done, "refused_ids": refused})

    def _submit_one(
        self,
        conn: Connection,
        me: Row[Any],
        task: Row[Any],
        kind: str,
        label: str | None,
        seconds: float | None,
        now: float,
    ) -> SubmitResult:
        if me.status != "active":
            return SubmitResult(False, f"stopped: {me.status_reason}")
        real = task.role == "task"
        key = {"tid": task.id, "aid": me.id}
        previous = conn.execute(q.ANSWER_ON, key).first()
        if previous is not None:
            if conn.execute(q.RECENT, key).first() is None:
                return SubmitResult(False, f"only the last {EDITABLE} answers can be changed")
            delta = int(kind == "label") - int(previous.kind == "label") if real else 0
            if delta > 0 and task.counted + task.leased >= task.target:
                return SubmitResult(False, "the task is covered by other answers now")
            edit = {"answer_id": previous.id, "new_kind": kind, "new_label": label, "new_seconds": seconds, "now": now}
            conn.execute(q.EDIT, edit)
            if delta:
                conn.execute(q.COUNT, {"tid": task.id, "dc": delta, "dl": 0})
            writes.event(
                conn, now, "answer_edited", me.id, task.id, kind=kind, label=label, revision=previous.revision + 1
            )
        else:
            if task.role in ("task", "honeypot") and not self._past_exam(conn, me.id):
                return SubmitResult(False, "finish the training and the exam first")
            lease = conn.execute(q.LEASE_ON, key).scalar()
            if real and lease is None and task.counted + task.leased >= task.target:
                return SubmitResult(False, COVERED)
            if lease is not None:
                conn.execute(q.DROP_LEASES, {"ids": [lease]})
            conn.execute(
                sa.insert(answers),
                {
                    "task_id": task.id,
                    "annotator_id": me.id,
                    "kind": kind,
                    "label": label,
                    "seconds": seconds,
                    "created_at": now,
                    "updated_at": now,
                    "revision": 1,
                },
            )
            dc, dl = int(real and kind == "label"), int(lease is not None)
            if dc or dl:
                conn.execute(q.COUNT, {"tid": task.id, "dc": dc, "dl": dl})
            writes.event(conn, now, "answer", me.id, task.id, kind=kind, label=label, seconds=seconds)
        model, edited = self._overlap.confusions, previous is not None
        feedback = assign.after_answer(
            conn, self.settings, self._totals, model, me, task, kind, label, now, edit=edited
        )
        return SubmitResult(True, None, feedback)

    # ------------------------------------------------------------ dynamic overlap's model

    def refit(self) -> None:
        """Refit the per-annotator confusions that dynamic overlap uses (done in the background as answers come)."""
        self._overlap.refit()

    def _answered(self, n: int) -> None:
        if self.settings.max_overlap is not None:
            self._overlap.answered(n, every=self.refit_every, seconds=self.refit_seconds, mode=self.refit_mode)

    # ------------------------------------------------------------ helpers

    def _lease(self, conn: Connection, annotator_id: int, task_ids: list[int], now: float) -> float:
        return writes.lease(conn, annotator_id, task_ids, now, self.settings.lease_seconds)

    def _renew(self, conn: Connection, annotator_id: int, task_ids: list[int], now: float) -> float:
        return writes.renew(conn, annotator_id, task_ids, now, self.settings.lease_seconds)

    def _past_exam(self, conn: Connection, annotator_id: int) -> bool:
        if annotator_id in self._working:
            return True
        if assign.stage(assign.role_counts(conn, annotator_id), self._totals) != "task":
            return False
        self._working.add(annotator_id)
        return True

    def _check_label(self, label: str | None) -> None:
        if label not in self.settings.classes:
            raise LabelwiseError(f"label {label!r} is not one of the classes ({', '.join(self.settings.classes)})")

    def _check_answer(self, kind: str, label: str | None) -> str | None:
        if kind not in db.KINDS:
            raise LabelwiseError(f"answer kind {kind!r}: expected one of {', '.join(db.KINDS)}")
        if kind in ("label", "not"):
            self._check_label(label)
            return label
        return None
