"""``labelwise loop``: from a messy dataset to a trustworthy label set and model, with people in between.

Each round scores the pool (:mod:`.scoring`), asks the images where one answer is expected to correct
the most labels (:mod:`.value`), gets the answers (the labeling page, an answers file or recorded
answers), decides each asked image's label from people and model together (:mod:`.deciding`), merges
the labels with a history and evaluates a model retrained on them (:mod:`.merging`). The state lives in
the project's labels database (:mod:`.state`), so a stopped loop continues where it stopped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import Dataset
from ..data.options import ReadOptions, as_read_options
from . import state
from .context import LoopContext, collect_answers, open_context
from .merging import decide_round, merge_round
from .report import write_outputs
from .scoring import Scores
from .value import CHOICES, Candidates, reason

log = logging.getLogger("labelwise")


@dataclass
class LoopResult:
    folder: Path
    rounds: pd.DataFrame  # one row per decided round: answers spent, estimated label accuracy, test accuracy
    dataset: pd.DataFrame  # the label set: sample_id, path, label, label_source, confidence, given_label
    history: pd.DataFrame  # every label change: round, sample_id, old_label, new_label, source, confidence, evidence
    finished: bool  # the budget is spent (or nothing is left worth asking)

    @property
    def spent(self) -> int:
        return int(self.rounds["answers"].sum()) if len(self.rounds) else 0

    def summary(self) -> dict[str, Any]:
        last = self.rounds.iloc[-1].to_dict() if len(self.rounds) else {}
        return {
            "rounds": len(self.rounds),
            "answers_spent": self.spent,
            "finished": self.finished,
            "estimated_label_accuracy": last.get("estimated_label_accuracy"),
            "test_accuracy": last.get("test_accuracy"),
        }


def loop(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    budget: int | None = None,
    per_round: int | None = None,
    answers: str | os.PathLike[str] | None = None,
    simulate_answers: str | os.PathLike[str] | pd.DataFrame | None = None,
    choose: str = "value",
    annotators: list[str] | str | int | None = None,
    backbone: str | None = None,
    size: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    hold_out: str = "test",
    skill: float = 0.8,
    max_answers: int = 3,
    duplicate_similarity: float = 0.97,
    threshold: float = 0.9,
    final_model: str | None = "linear",
    rounds: int | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    on_ready: Any = None,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
) -> LoopResult:
    """Run the loop on ``data`` into project folder ``out``, or continue the project ``data`` (a folder
    made by an earlier call) when ``out`` is not given.

    ``budget`` answers in all, ``per_round`` a round. Answers come from ``simulate_answers``
    (``sample_id, worker, label``: recorded answers handed out in order, for experiments), from
    ``answers`` (an export for the current round: Label Studio JSON, Toloka TSV or answers CSV), or by
    default from people in the labeling page (``annotators``: names or a count; links are printed,
    and the round waits until its answers are in; stopping is safe, the next call continues).
    ``choose``: the rule that orders the queue (``labelwise list choices``; default ``value``, the
    expected number of labels one answer corrects). Near-duplicates (cosine similarity of the
    embeddings at least ``duplicate_similarity``) of an image already asked are not asked; an image is
    asked at most ``max_answers`` times. ``rounds`` stops after that many rounds in this call.
    Rows of the ``hold_out`` split are never asked: they measure the retrained model.
    ``final_model`` (a ``labelwise models`` name, or None) is trained on the final label set in ``out/model``.
    """
    options = {k: v for k, v in locals().items() if k not in ("data", "out", "rounds", "read")}
    ctx = open_context(data, out, read=as_read_options(read), **options)
    try:
        finished = _run(ctx, rounds)
        return write_outputs(ctx, finished=finished)
    finally:
        ctx.close()


def loop_status(project: str | os.PathLike[str]) -> pd.DataFrame:
    """The decided rounds of a loop project (what ``labelwise loop PROJECT --status`` prints)."""
    from .context import open_engine

    engine = open_engine(Path(project))
    try:
        return rounds_table(state.rounds(engine))
    finally:
        engine.dispose()


def rounds_table(found: list[state.Round]) -> pd.DataFrame:
    rows = [{"round": r.number, "stage": r.stage, "asked": r.asked, "answers": r.answers, **r.metrics} for r in found]
    return pd.DataFrame(rows, columns=["round", "stage", "asked", "answers"] if not rows else None)


def _run(ctx: LoopContext, max_rounds: int | None) -> bool:
    done_here = 0
    while True:
        found = state.rounds(ctx.engine)
        spent = sum(r.answers for r in found if r.stage == state.DECIDED)
        if found and found[-1].stage == state.LABELING:
            number = found[-1].number
            scores = ctx.score()
            queue = state.asked(ctx.engine, number)
            log.info("round %d: continuing (%d image(s) asked)", number, len(queue))
        else:
            if max_rounds is not None and done_here >= max_rounds:
                return False
            left = ctx.budget - spent
            if left <= 0:
                return True
            number = len(found) + 1
            scores = ctx.score()
            queue = choose_queue(ctx, scores, min(ctx.per_round, left), number)
            if not len(queue):
                log.warning("round %d: nothing left worth asking (%d of %d answers spent)", number, spent, ctx.budget)
                return True
            state.start_round(ctx.engine, number, queue)
            ctx.write_queue(number, queue)
            log.info("round %d: asking %d image(s) (%s)", number, len(queue), _reasons(queue))
        ctx.ask(queue)
        if not collect_answers(ctx, number, queue):
            return False  # people are still answering: the next call continues this round
        decision = decide_round(ctx, scores)
        changes, metrics = merge_round(ctx, scores, decision, number)
        answered = ctx.answers_spent() - spent
        state.finish_round(ctx.engine, number, changes, answered, metrics)
        ctx.write_round(number, queue, changes)
        log.info(
            "round %d: %d answer(s), %d label change(s); estimated label accuracy %.3f, test accuracy %s",
            number,
            answered,
            len(changes),
            metrics["estimated_label_accuracy"],
            "n/a" if metrics.get("test_accuracy") is None else f"{metrics['test_accuracy']:.3f}",
        )
        done_here += 1


def choose_queue(ctx: LoopContext, scores: Scores, n: int, number: int) -> pd.DataFrame:
    """Round ``number``'s queue of up to ``n`` images, best first, with why each was chosen."""
    times = ctx.times_asked()
    eligible = (times < ctx.max_answers) & ctx.has_capacity()
    # a near-duplicate of an image already asked is never asked (its group's first asked image may be again)
    asked_groups = set(ctx.groups[times > 0])
    eligible &= ~np.isin(ctx.groups, list(asked_groups)) | (times > 0)
    codes = ctx.codes()
    belief, doubt = scores.belief.copy(), scores.doubt.copy()
    if (times > 0).any():  # asked before: what people and model decided, not the label taken as given
        decision, rows, _ = decide_round(ctx, scores)
        belief[rows] = decision.posterior
        doubt[rows] = 1 - decision.posterior[np.arange(len(rows)), codes[rows]]
    candidates = Candidates(
        belief=belief,
        labeled=codes >= 0,
        doubt=doubt,
        uncertainty=1 - scores.model.max(1),
        skill=ctx.skill_estimate(),
    )
    rng = np.random.default_rng([ctx.random_state, number])
    value = np.asarray(CHOICES.get(ctx.choose)(candidates, rng), float)
    order = np.lexsort((np.arange(len(value)), -value))
    picked: list[int] = []
    groups: set[int] = set()
    for i in order:
        if len(picked) >= n:
            break
        if not eligible[i] or value[i] <= 0 and ctx.choose == "value" or ctx.groups[i] in groups:
            continue
        picked.append(int(i))
        groups.add(int(ctx.groups[i]))
    rows = np.asarray(picked, int)
    classes = np.asarray(ctx.classes, dtype=object)
    guess = belief[rows].argmax(1) if len(rows) else np.zeros(0, int)
    return pd.DataFrame(
        {
            "sample_id": ctx.pool["sample_id"].to_numpy()[rows],
            "row": rows,
            "reason": [
                reason(codes[i] >= 0, doubt[i], scores.model[i].max(), times[i] > 0, ctx.threshold) for i in rows
            ],
            "score": value[rows] if len(rows) else np.zeros(0),
            "label_before": [ctx.classes[codes[i]] if codes[i] >= 0 else None for i in rows],
            "guess": classes[guess] if len(rows) else np.zeros(0, object),
        }
    )


def _reasons(queue: pd.DataFrame) -> str:
    return ", ".join(f"{n} {r}" for r, n in queue["reason"].value_counts().items())


__all__ = ["LoopResult", "loop", "loop_status"]
