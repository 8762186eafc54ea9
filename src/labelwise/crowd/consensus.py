"""``aggregate``: crowd answers in, one label per task, a score per annotator and a report out."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_json, write_table
from .._run import recorded
from ..data.natural import natural_sorted
from ..errors import LabelwiseError
from ..report import Report
from .annotators import (
    annotator_table,
    fleiss_kappa,
    krippendorff_alpha,
    task_agreement,
)
from .importers import Answers, Format, read_answers, read_gold
from .methods import DEFAULT_METHOD, Aggregation, aggregate_labels, get_method

log = logging.getLogger("labelwise")

LABEL_COLUMNS = ("task", "label", "confidence", "n_answers", "agreement", "method")


@dataclass
class Consensus:
    """The outputs of :func:`aggregate_answers`: ``labels`` and ``annotators`` tables, the
    aggregation itself, the imported answers and dataset-level figures."""

    labels: pd.DataFrame
    annotators: pd.DataFrame
    result: Aggregation
    answers: Answers
    figures: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.figures.items() if k != "classes"}


def label_table(answers: pd.DataFrame, result: Aggregation, *, gold: pd.Series | None = None) -> pd.DataFrame:
    """``task, label, confidence, n_answers, agreement, method`` (+ ``gold`` when known).

    ``agreement`` is the share of the task's answers equal to its label.
    """
    per_task = task_agreement(answers, result.labels)
    table = pd.DataFrame(
        {
            "task": result.labels.index.astype(str),
            "label": result.labels.to_numpy(),
            "confidence": result.confidence.to_numpy().round(6),
            "n_answers": per_task["n_answers"].to_numpy(),
            "agreement": per_task["agreement"].to_numpy().round(6),
            "method": result.method,
        }
    )
    if gold is not None and len(gold):
        table["gold"] = table["task"].map(gold).fillna("")
    return table


CONSENSUS_MIN = 3


def consensus_split(labels: pd.DataFrame, *, min_answers: int = CONSENSUS_MIN, share: float = 0.5) -> pd.Series:
    """``test`` for tasks answered by at least ``min_answers`` annotators where the label won
    more than ``share`` of the votes (a clear majority); ``train`` otherwise.

    >>> t = pd.DataFrame({"n_answers": [5, 3, 3, 2], "agreement": [0.6, 1.0, 0.34, 1.0]})
    >>> consensus_split(t).tolist()
    ['test', 'test', 'train', 'train']
    """
    clear = (labels["n_answers"] >= min_answers) & (labels["agreement"] > share)
    return pd.Series(np.where(clear, "test", "train"), index=labels.index, name="split")


def _inputs(arguments: Any) -> tuple[list[Any], list[Any]]:
    answers = arguments["answers"]
    folder = isinstance(answers, (str, os.PathLike)) and Path(answers).is_dir()
    files = [a for a in (None if folder else answers, arguments.get("gold"), arguments.get("classes")) if a is not None]
    return files, [a for a in (answers if folder else None, arguments.get("images")) if a is not None]


@recorded("aggregate", inputs=_inputs)
def aggregate_answers(
    answers: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: Format = "auto",
    method: str = DEFAULT_METHOD,
    gold: str | os.PathLike[str] | None = None,
    classes: str | os.PathLike[str] | None = None,
    from_name: str | None = None,
    images: str | os.PathLike[str] | None = None,
    consensus_test: bool = False,
    consensus_min: int = CONSENSUS_MIN,
    html: bool = True,
    overwrite: bool = False,
) -> Consensus:
    """Read ``answers``, aggregate with ``method`` and write into ``out``: ``labels.csv``,
    ``annotators.csv``, ``answers.csv`` (the cleaned long table), ``unlabeled.csv`` and
    ``unmatched.csv`` when there are such, ``dataset.csv`` + ``classes.json`` when every
    labeled task matched an image file, ``agreement.json`` and ``report.md``/``.html``.

    Tasks are keyed by the dataset's ``sample_id`` where the export carries it (labelwise's own
    task files do), so the ``gold.csv`` that ``labelwise tasks`` writes is used as it is.
    ``consensus_test``: tasks with at least ``consensus_min`` answers and a clear majority
    become the ``test`` split of ``dataset.csv``."""
    get_method(method)
    if consensus_min < 1:
        raise LabelwiseError(f"consensus_min must be at least 1, got {consensus_min}")
    out = Path(out)
    gold_tasks = read_gold(gold)["task"].tolist() if gold is not None else []
    data = read_answers(answers, format, from_name=from_name, images=images, classes=classes, gold_tasks=gold_tasks)
    known = _known_answers(data, gold)
    class_list = data.classes if classes is not None else natural_sorted(set(data.classes) | set(known))
    if classes is not None and len(known):
        bad = known[~known.isin(class_list)]
        if len(bad):
            raise LabelwiseError(
                f"gold label {bad.iloc[0]!r} (task {bad.index[0]!r}) is not in the class list ({', '.join(class_list)})"
            )
    result = aggregate_labels(data.table, method, classes=class_list, gold=known)
    n_workers = data.table["worker"].nunique()
    labels = label_table(data.table, result, gold=known)
    if consensus_test:
        labels["split"] = consensus_split(labels, min_answers=consensus_min)
        if not (labels["split"] == "test").any():
            log.warning(
                "no task has %d or more answers with a clear majority (%d annotators, at most %d answers per "
                "task): the consensus test split is empty; lower --consensus-min",
                consensus_min,
                n_workers,
                int(labels["n_answers"].max()),
            )
    paths = data.images.set_index("task")["path"]
    if (paths != "").any():
        labels["path"] = labels["task"].map(paths).fillna("")
    annotators = annotator_table(data.table, result, gold=known, classes=class_list).round(6)
    figures = {
        **data.summary(),
        "method": method,
        "krippendorff_alpha": round(krippendorff_alpha(data.table), 4),
        "fleiss_kappa": round(fleiss_kappa(data.table), 4),
        "mean_confidence": round(float(labels["confidence"].mean()), 4),
        "gold_tasks": int(labels["task"].isin(known.index).sum()),
        "test_tasks": int((labels.get("split", pd.Series(dtype=str)) == "test").sum()),
        "consensus_min": consensus_min,
    }
    write_table(out / "labels.csv", labels)
    write_table(out / "annotators.csv", annotators)
    write_table(out / "answers.csv", data.table)
    if data.unlabeled:
        write_table(out / "unlabeled.csv", data.images[data.images["task"].isin(data.unlabeled)])
    if len(data.unmatched):
        write_table(out / "unmatched.csv", data.unmatched)
    if "path" in labels and (labels["path"] != "").all():
        _write_dataset(out, labels, class_list)
    write_json(out / "agreement.json", figures)
    _report(out, labels, annotators, data, figures, html=html)
    return Consensus(labels, annotators, result, data, figures)


def _known_answers(data: Answers, gold: str | os.PathLike[str] | None) -> pd.Series:
    """Gold answers from ``--gold`` and from the file itself (Toloka GOLDEN); they must agree."""
    known = data.gold.astype(str)
    if gold is None:
        return known
    extra = read_gold(gold).set_index("task")["label"]
    both = extra.index.intersection(known.index)
    differ = [t for t in both if extra[t] != known[t]]
    if differ:
        raise LabelwiseError(
            f"{gold}: gold label {extra[differ[0]]!r} for task {differ[0]!r} differs from the answers "
            f"file's own ({known[differ[0]]!r})"
        )
    missing = ~extra.index.isin(data.table["task"])
    if missing.any():
        log.warning(
            "%s: %d of %d gold task(s) have no answers (e.g. %r); they are not used",
            gold,
            int(missing.sum()),
            len(extra),
            extra.index[missing][0],
        )
    return pd.concat([known, extra[~extra.index.isin(known.index)]]).rename("label")


def _write_dataset(out: Path, labels: pd.DataFrame, classes: list[str]) -> None:
    """The consensus labels as a labelwise table (``sample_id, path, label, split, label_source``)."""
    split = labels["split"] if "split" in labels else "train"
    table = pd.DataFrame(
        {
            "sample_id": labels["task"],
            "path": labels["path"],
            "label": labels["label"],
            "split": split,
            "label_source": "crowd",
            "confidence": labels["confidence"],
        }
    )
    write_json(out / "classes.json", classes)
    write_table(out / "dataset.csv", table)


def _report(
    out: Path, labels: pd.DataFrame, annotators: pd.DataFrame, data: Answers, figures: dict[str, Any], *, html: bool
) -> None:
    rep = Report("Crowd labels")
    rep.paragraph(
        f"{figures['answers']:,} answers from {figures['workers']} annotators on {figures['tasks']:,} tasks, "
        f"{len(figures['classes'])} classes; method **{figures['method']}**."
    )
    if data.dropped:
        rep.bullets(f"left out: {n:,} {reason}" for reason, n in data.dropped.items())
    for note in data.notes:
        rep.warning(note)
    rep.heading("Agreement")
    rep.bullets(
        [
            f"Krippendorff's alpha (nominal): {figures['krippendorff_alpha']}",
            "Fleiss' kappa: "
            + (
                "n/a (defined only when every task has the same number of answers)"
                if np.isnan(figures["fleiss_kappa"])
                else str(figures["fleiss_kappa"])
            ),
            f"mean confidence of the labels: {figures['mean_confidence']}",
            f"tasks whose label won less than half of the votes: {int((labels['agreement'] <= 0.5).sum()):,}",
        ]
    )
    rep.heading("Labels")
    counts = labels["label"].value_counts().rename_axis("label").reset_index(name="tasks")
    rep.table(counts)
    if "split" in labels:
        rep.paragraph(
            f"Consensus test split: {figures['test_tasks']:,} tasks with {figures['consensus_min']}+ answers and a clear "
            "majority."
        )
    rep.heading("Annotators (lowest agreement first)")
    rep.table(annotators, max_rows=20, note_file="annotators.csv")
    rep.heading("Least certain tasks")
    rep.table(labels.sort_values("confidence", kind="stable").head(20), note_file="labels.csv")
    rep.write(out / "report.md", html=html)
