"""What the Store shows: the annotator's view of a task or an answer (the one place that decides what an
annotator may see) and the read-only reports (history, progress, the admin's stats, the answer and task
tables). Reads take no lock: each runs on its own connection.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from ..formats import labels_db as db
from ..formats.labels_db import annotators, events, leases, tasks
from . import assign
from . import queries as q
from .models import AnswerView, Settings, TaskView
from .queries import EDITABLE
from .writes import stopped_by

#: Seconds the pool's totals in an annotator's progress may lag behind.
POOL_FRESHNESS = 1.0


def visible(task: Row[Any]) -> dict[str, Any]:
    """The stage, suggestion and dataset label an annotator may see of a task (or an answer joined to its
    task). A honeypot reads as stage ``task``; gold tasks never show the model's guess (it would anchor the
    answer being measured), and only a honeypot shows a dataset label: the decoy that review-mode queues
    give it, so that it looks like the real tasks around it."""
    real = task.role == "task"
    return {
        "stage": "task" if task.role == "honeypot" else task.role,
        "suggestion": task.suggestion if real else None,
        "given_label": task.given_label if real or task.role == "honeypot" else None,
    }


def task_view(task: Row[Any], expires: float, answer: AnswerView | None = None) -> TaskView:
    hint = task.hint if task.role == "training" else None
    return TaskView(task_id=task.id, hint=hint, lease_expires=expires, answer=answer, **visible(task))


def answer_view(row: Row[Any]) -> AnswerView:
    """An answer joined to its task (:data:`~.queries.ANSWERS_WITH_ROLE`)."""
    return AnswerView(row.task_id, row.kind, row.label, row.updated_at, revision=row.revision, **visible(row))


class StoreViews:
    """The Store's reads (a base of :class:`~.store.Store`)."""

    _engine: Engine
    _clock: Callable[[], float]
    _totals: dict[str, int]
    settings: Settings

    def reopen(self, annotator_id: int, task_id: int) -> TaskView | None:
        """One of the annotator's last answers, to edit (no lease needed); None when it is not among them."""
        with self._engine.connect() as conn:
            row = conn.execute(q.RECENT, {"aid": annotator_id, "tid": task_id}).first()
            task = conn.execute(q.TASK, {"tid": task_id}).first()
        if row is None or task is None:
            return None
        return task_view(task, self._clock() + self.settings.lease_seconds, answer_view(row))

    def history(self, annotator_id: int, limit: int = EDITABLE) -> list[AnswerView]:
        """The annotator's last answers, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(q.HISTORY, {"aid": annotator_id, "n": int(limit)}).all()
        return [answer_view(r) for r in rows]

    def image_path(self, annotator_id: int, task_id: int) -> str | None:
        """The stored image path of a task this annotator holds a live lease on or answered (admins: any task)."""
        with self._engine.connect() as conn:
            me = conn.execute(q.ME, {"aid": annotator_id}).first()
            if me is None:
                return None
            query = q.PATH if me.is_admin else q.PATH_SEEN
            return conn.execute(query, {"tid": int(task_id), "aid": annotator_id, "now": self._clock()}).scalar()

    def progress(self, annotator_id: int) -> dict[str, Any]:
        """``answered`` by me; my ``stage``; my ``state``: training, exam, task, ``waiting`` (what is left for me
        is leased by others), ``done`` or ``stopped``; training and exam done of total; the pool's tasks
        done of total and answers of needed."""
        with self._engine.connect() as conn:
            me = q.annotator_row(conn, annotator_id)
            counts = assign.role_counts(conn, annotator_id)
            pool = assign.pool_state(conn, annotator_id, self._pool_totals(conn))
        stage = assign.stage(counts, self._totals)
        if me.status != "active":
            state = "stopped"
        elif stage != "task":
            state = stage
        else:
            state = "task" if pool["available"] else "waiting" if pool["remaining"] else "done"
        return {
            "answered": counts.answered,
            "stage": stage,
            "state": state,
            "status": me.status,
            "status_reason": me.status_reason,
            "training": {"done": counts["training"].answered, "total": self._totals.get("training", 0)},
            "exam": {"done": counts["exam"].answered, "total": self._totals.get("exam", 0)},
            "pool": {k: pool[k] for k in ("tasks_done", "tasks_total", "answers", "needed")},
        }

    def _pool_totals(self, conn: Connection) -> dict[str, int]:
        """The pool's totals, at most :data:`POOL_FRESHNESS` seconds old: every answer returns the
        annotator's progress, and the pool's part is a pass over every task."""
        now = time.monotonic()
        cached = getattr(self, "_pool_cache", None)
        if cached is None or now - cached[0] > POOL_FRESHNESS:
            cached = (now, assign.pool_totals(conn))
            self._pool_cache = cached
        return cached[1]

    def stats(self) -> dict[str, Any]:
        """The admin page: per annotator their counts, honeypot and exam accuracy, mean seconds, agreement
        with the others, status and who stopped them (``stopped_by``: admin, exam or gold); the pool's
        progress, live leases, and how often overlap was raised."""
        with self._engine.connect() as conn:
            people = conn.execute(sa.select(annotators).order_by(annotators.c.id)).all()
            rows = db.answer_rows(conn, include_excluded=True)
            pool = assign.pool_state(conn)
            live = conn.execute(sa.select(sa.func.count()).select_from(leases)).scalar()
            raised = conn.execute(sa.select(sa.func.count()).where(events.c.kind == "overlap_raised")).scalar()
            stops = {int(a): detail for a, detail in conn.execute(q.STOPS)}  # the last one of each wins
        agreement = agreement_by_worker(rows)
        return {
            "annotators": [
                {
                    "name": p.name,
                    "is_admin": bool(p.is_admin),
                    "status": p.status,
                    "status_reason": p.status_reason,
                    "stopped_by": None if p.status == "active" else stopped_by(stops.get(p.id)),
                }
                | annotator_figures(p.name, rows, agreement)
                for p in people
            ],
            "pool": pool,
            "leases_live": int(live or 0),
            "overlap_raised": int(raised or 0),
        }

    def answers(self, *, include_excluded: bool = False) -> pd.DataFrame:
        """The long table: sample_id, worker, label, kind, seconds, created_at, updated_at, role, excluded."""
        with self._engine.connect() as conn:
            rows = db.answer_rows(conn, include_excluded=include_excluded)
        cols = ["sample_id", "worker", "label", "kind", "seconds", "created_at", "updated_at", "role", "excluded"]
        return rows[cols].reset_index(drop=True)

    def task_table(self) -> pd.DataFrame:
        """The tasks in queue order, with their overlap ``target`` and ``counted`` answers."""
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(tasks).order_by(tasks.c.position))
            return pd.DataFrame(found.mappings().all(), columns=[c.name for c in tasks.columns])


# ---------------------------------------------------------------- the admin's figures


def annotator_figures(name: str, rows: pd.DataFrame, agreement: dict[str, float]) -> dict[str, Any]:
    """One annotator's line on the admin page, from the answer table (:func:`labels_db.answer_rows`)."""
    mine = rows[rows["worker"] == name]
    real = mine[mine["role"] == "task"]
    hp = mine[(mine["role"] == "honeypot") & (mine["kind"] == "label")]
    exam = mine[mine["role"] == "exam"]
    return {
        "answers": len(real),
        "labels": int((real["kind"] == "label").sum()),
        "skipped": int(real["kind"].isin(["skip", "unsure"]).sum()),
        "honeypots": len(hp),
        "honeypot_accuracy": _mean(hp["label"] == hp["gold_label"]),
        "exam_accuracy": _mean(exam["label"] == exam["gold_label"]),
        "mean_seconds": _mean(mine["seconds"].dropna()),
        "agreement": agreement.get(name),
        "last_answer_at": float(mine["updated_at"].max()) if len(mine) else None,
    }


def _mean(values: pd.Series) -> float | None:
    return float(values.astype(float).mean()) if len(values) else None


def agreement_by_worker(rows: pd.DataFrame) -> dict[str, float]:
    """Per worker: the share of their labels on real tasks that equal the other active annotators' majority
    (ties count as agreeing), over the tasks where others answered."""
    labels = rows[(rows["kind"] == "label") & (rows["role"] == "task")]
    votes: dict[str, Counter[str]] = {}
    for sample, label, excluded in zip(labels["sample_id"], labels["label"], labels["excluded"]):
        if not excluded:
            votes.setdefault(sample, Counter())[label] += 1
    hits: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for sample, worker, label, excluded in zip(
        labels["sample_id"], labels["worker"], labels["label"], labels["excluded"]
    ):
        others = Counter(votes.get(sample, {}))
        if not excluded:
            others[label] -= 1
        best = max(others.values(), default=0)
        if best > 0:
            seen[worker] += 1
            hits[worker] += int(others[label] == best)
    return {w: hits[w] / seen[w] for w in seen}
