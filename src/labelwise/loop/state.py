"""The loop's state, in the project's labels database beside the labeling app's tables: its
configuration (``meta`` key ``loop``), one row per round, the images each round asked, and the
history of every label change. A round is written in two transactions: asked (the queue, before
any answer is sought) and decided (the history and the figures), so a loop stopped anywhere
continues from the last committed step."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..formats import labels_db as db
from ..formats.labels_db import loop_asked, loop_history, loop_rounds, meta

CONFIG_KEY = "loop"
LABELING, DECIDED = "labeling", "decided"


@dataclass(frozen=True)
class Round:
    number: int
    stage: str
    asked: int
    answers: int
    metrics: dict[str, Any]


def read_config(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == CONFIG_KEY)).scalar()
    return None if value is None else dict(json.loads(value))


def write_config(engine: Engine, config: dict[str, Any]) -> None:
    with db.write_transaction(engine) as conn:
        conn.execute(sa.delete(meta).where(meta.c.key == CONFIG_KEY))
        conn.execute(sa.insert(meta).values(key=CONFIG_KEY, value=json.dumps(config, sort_keys=True)))


def rounds(engine: Engine) -> list[Round]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(loop_rounds).order_by(loop_rounds.c.round)).mappings().all()
    return [
        Round(int(r["round"]), str(r["stage"]), int(r["asked"]), int(r["answers"]), json.loads(r["metrics"] or "{}"))
        for r in rows
    ]


def start_round(engine: Engine, number: int, queue: pd.DataFrame) -> None:
    """Record round ``number``'s queue (``sample_id, reason, score, label_before, guess`` in order)."""
    with db.write_transaction(engine) as conn:
        conn.execute(
            sa.insert(loop_rounds).values(round=number, stage=LABELING, asked=len(queue), started_at=time.time())
        )
        if len(queue):
            conn.execute(
                sa.insert(loop_asked),
                [
                    {
                        "round": number,
                        "sample_id": str(r.sample_id),
                        "position": i,
                        "reason": str(r.reason),
                        "score": float(r.score),
                        "label_before": None if pd.isna(r.label_before) else str(r.label_before),
                        "guess": None if pd.isna(r.guess) else str(r.guess),
                    }
                    for i, r in enumerate(queue.itertuples())
                ],
            )


def asked(engine: Engine, number: int | None = None) -> pd.DataFrame:
    """The asked images (every round, or round ``number``), in round and queue order."""
    query = sa.select(loop_asked).order_by(loop_asked.c.round, loop_asked.c.position)
    if number is not None:
        query = query.where(loop_asked.c.round == number)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in loop_asked.columns])


def finish_round(engine: Engine, number: int, changes: pd.DataFrame, answers: int, metrics: dict[str, Any]) -> None:
    """Round ``number`` decided: its label changes (``sample_id, old_label, new_label, source,
    confidence, evidence``) and figures, in one transaction."""
    with db.write_transaction(engine) as conn:
        if len(changes):
            conn.execute(
                sa.insert(loop_history),
                [
                    {
                        "round": number,
                        "sample_id": str(r.sample_id),
                        "old_label": _text(r.old_label),
                        "new_label": _text(r.new_label),
                        "source": str(r.source),
                        "confidence": None if pd.isna(r.confidence) else float(r.confidence),
                        "evidence": str(r.evidence),
                    }
                    for r in changes.itertuples()
                ],
            )
        conn.execute(
            sa.update(loop_rounds)
            .where(loop_rounds.c.round == number)
            .values(stage=DECIDED, answers=answers, finished_at=time.time(), metrics=json.dumps(metrics, default=float))
        )


def history(engine: Engine) -> pd.DataFrame:
    query = sa.select(loop_history).order_by(loop_history.c.id)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in loop_history.columns])
    return frame.drop(columns="id")


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)
