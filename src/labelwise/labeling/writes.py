"""The steps of the Store's write transactions besides storing an answer: leases granted, renewed, released
and swept; an annotator stopped or resumed; an event logged. Each runs on the caller's connection, inside
the transaction that holds the write lock.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..formats.labels_db import events, leases
from . import queries as q

#: who stopped an annotator (the ``by`` of a ``stopped`` event); only the admin's stops can be undone
STOPPED_BY = ("admin", "exam", "gold")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def event(
    conn: Connection,
    at: float,
    what: str,
    annotator_id: int | None = None,
    task_id: int | None = None,
    /,
    **detail: Any,
) -> None:
    row = {"at": at, "annotator_id": annotator_id, "task_id": task_id, "kind": what}
    conn.execute(sa.insert(events), {**row, "detail": json.dumps(detail) if detail else None})


def sweep(conn: Connection, now: float) -> None:
    """Delete the leases expired by ``now`` (event ``lease_expired`` each)."""
    expired = conn.execute(q.EXPIRED, {"now": now}).all()
    if expired:
        release(conn, expired)
        conn.execute(
            sa.insert(events),
            [
                {"at": now, "annotator_id": a, "task_id": t, "kind": "lease_expired", "detail": None}
                for _, t, a in expired
            ],
        )


def lease(conn: Connection, annotator_id: int, task_ids: list[int], now: float, seconds: float) -> float:
    """Lease ``task_ids`` to the annotator for ``seconds``; returns when the leases expire."""
    expires = now + seconds
    conn.execute(
        sa.insert(leases),
        [{"task_id": t, "annotator_id": annotator_id, "created_at": now, "expires_at": expires} for t in task_ids],
    )
    conn.execute(q.LEASE_UP, {"tids": task_ids})
    conn.execute(
        sa.insert(events),
        [{"at": now, "annotator_id": annotator_id, "task_id": t, "kind": "lease", "detail": None} for t in task_ids],
    )
    return expires


def renew(conn: Connection, annotator_id: int, task_ids: list[int], now: float, seconds: float) -> float:
    expires = now + seconds
    conn.execute(q.RENEW, {"aid": annotator_id, "tids": task_ids, "expires": expires})
    return expires


def release(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Delete leases ``(id, task_id, annotator_id)`` and take them off their tasks' ``leased``."""
    if not rows:
        return
    conn.execute(q.DROP_LEASES, {"ids": [r[0] for r in rows]})
    conn.execute(q.UNLEASE, [{"tid": t, "n": n} for t, n in Counter(r[1] for r in rows).items()])


def stop(conn: Connection, annotator_id: int, reason: str, now: float, *, by: str, **detail: Any) -> None:
    """Stop an active annotator: their leases go, their answers stop counting (the tasks reopen)."""
    if not conn.execute(q.STOP, {"aid": annotator_id, "reason": reason}).rowcount:
        return  # stopped already
    release(conn, conn.execute(q.LEASES_OF, {"aid": annotator_id}).all())
    conn.execute(q.COUNT_MINE, {"aid": annotator_id, "dc": -1})
    event(conn, now, "stopped", annotator_id, reason=reason, by=by, **detail)


def resume(conn: Connection, annotator_id: int, now: float) -> None:
    """Make a stopped annotator active again; their answers count again."""
    if not conn.execute(q.RESUME, {"aid": annotator_id}).rowcount:
        return  # active already
    conn.execute(q.COUNT_MINE, {"aid": annotator_id, "dc": 1})
    event(conn, now, "resumed", annotator_id, by="admin")


def stopped_by(detail: str | None) -> str:
    """Who stopped an annotator, from their last ``stopped`` event's detail (one without ``by``: the admin)."""
    found = json.loads(detail).get("by") if detail else None
    return found if found in STOPPED_BY else "admin"
