"""Writes for a project that grows in rounds (``labelwise loop``): add tasks or ask a task again,
and record answers that came from outside the page (an import, recorded answers standing in for
people). Each call is one serialized, durable write transaction, like the page's own."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import LabelwiseError
from ..formats.labels_db import annotators, answers, tasks
from . import writes
from .models import Settings, task_rows


class StoreRounds:
    """The round-by-round writes of :class:`~.store.Store` (mixed in)."""

    settings: Settings
    _totals: dict[str, int]
    _write: Callable[..., AbstractContextManager[tuple[Connection, float]]]

    def ask(self, table: pd.DataFrame) -> tuple[int, int]:
        """Make ``table``'s rows (a queue, :data:`~.models.TASK_COLUMNS`, plus ``wanted``: the answers the
        image should have in all) open tasks: new images are added after the existing tasks, a task that is
        there already wants ``wanted`` answers. Idempotent: asking the same again changes nothing.
        Returns ``(added, raised)``."""
        if not len(table):
            return 0, 0
        with self._write() as (conn, now):
            known = {
                r.sample_id: r
                for r in conn.execute(sa.select(tasks.c.id, tasks.c.sample_id, tasks.c.role, tasks.c.target))
            }
            ids = table["sample_id"].astype(str)
            wanted = dict(zip(ids, table["wanted"].astype(int)))
            fresh = table[~ids.isin(list(known))]
            again = [known[s] for s in ids if s in known]
            not_real = [r.sample_id for r in again if r.role != "task"]
            if not_real:
                raise LabelwiseError(f"tasks: {not_real[0]!r} is a {known[not_real[0]].role} task, not one to ask")
            added = 0
            if len(fresh):
                start = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(tasks.c.position), -1))).scalar_one())
                rows = task_rows(fresh, self.settings)
                for row in rows:
                    row["position"] += start + 1
                    row["target"] = wanted[row["sample_id"]]
                conn.execute(sa.insert(tasks), rows)
                added = len(rows)
            raised = [r for r in again if wanted[r.sample_id] > r.target]
            for task in raised:
                conn.execute(sa.update(tasks).where(tasks.c.id == task.id).values(target=wanted[task.sample_id]))
            if added or raised:
                writes.event(conn, now, "tasks_asked", added=added, raised=len(raised))
        self._totals["task"] = self._totals.get("task", 0) + added
        return added, len(raised)

    def record(self, rows: pd.DataFrame, *, source: str) -> dict[str, int]:
        """Store answers given outside the page (``sample_id, worker, label``; ``kind`` optional, default
        ``label``), creating unknown workers as annotators without a usable link. An answer for an image that
        is not a task, or a second one by the same worker, is not stored and counted. Returns the counts
        ``recorded``, ``unknown_image``, ``duplicate``."""
        counts = {"recorded": 0, "unknown_image": 0, "duplicate": 0}
        if not len(rows):
            return counts
        bad = sorted(set(rows["label"].astype(str)) - set(self.settings.classes))
        if bad:
            raise LabelwiseError(
                f"{source}: label {bad[0]!r} is not one of the classes ({', '.join(self.settings.classes)})"
            )
        with self._write() as (conn, now):
            task_ids = {
                r.sample_id: (r.id, r.role)
                for r in conn.execute(sa.select(tasks.c.id, tasks.c.sample_id, tasks.c.role))
            }
            workers = {r.name: r.id for r in conn.execute(sa.select(annotators.c.id, annotators.c.name))}
            seen = {
                (r.task_id, r.annotator_id) for r in conn.execute(sa.select(answers.c.task_id, answers.c.annotator_id))
            }
            inserts: list[dict[str, Any]] = []
            counted: dict[int, int] = {}
            for rec in _records(rows):
                found = task_ids.get(rec["sample_id"])
                if found is None:
                    counts["unknown_image"] += 1
                    continue
                worker = rec["worker"]
                if worker not in workers:
                    workers[worker] = conn.execute(
                        sa.insert(annotators)
                        .values(
                            name=worker,
                            token_hash=writes.token_hash(secrets.token_urlsafe(24)),  # nobody holds this token
                            is_admin=False,
                            status="active",
                            created_at=now,
                        )
                        .returning(annotators.c.id)
                    ).scalar_one()
                key = (found[0], workers[worker])
                if key in seen:
                    counts["duplicate"] += 1
                    continue
                seen.add(key)
                inserts.append(
                    {
                        "task_id": key[0],
                        "annotator_id": key[1],
                        "kind": rec["kind"],
                        "label": rec["label"],
                        "seconds": None,
                        "created_at": now,
                        "updated_at": now,
                        "revision": 1,
                    }
                )
                if found[1] == "task" and rec["kind"] == "label":
                    counted[key[0]] = counted.get(key[0], 0) + 1
            if inserts:
                conn.execute(sa.insert(answers), inserts)
            for task_id, n in counted.items():
                conn.execute(sa.update(tasks).where(tasks.c.id == task_id).values(counted=tasks.c.counted + n))
            counts["recorded"] = len(inserts)
            writes.event(conn, now, "answers_recorded", source=source, **counts)
        return counts

    def open_tasks(self, sample_ids: list[str]) -> int:
        """How many of ``sample_ids``'s tasks still want answers."""
        with self._write(durable=False) as (conn, _):
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(tasks)
                    .where(tasks.c.sample_id.in_(sample_ids), tasks.c.counted < tasks.c.target)
                ).scalar_one()
            )


def _records(rows: pd.DataFrame) -> Iterator[dict[str, Any]]:
    kinds = rows["kind"] if "kind" in rows.columns else pd.Series("label", index=rows.index)
    for sample, worker, label, kind in zip(rows["sample_id"], rows["worker"], rows["label"], kinds):
        yield {"sample_id": str(sample), "worker": str(worker), "label": str(label), "kind": str(kind)}
