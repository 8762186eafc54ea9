"""The long table every importer fills (:class:`Answers`), the collector readers add to, and the shared CSV reader."""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..._io import note_input
from ...data.natural import natural_sorted
from ...errors import LabelwiseError
from .matching import _ImageIndex, _match, _same_images

log = logging.getLogger("labelwise")

Format = Literal["auto", "labelstudio", "labelstudio-min", "labelstudio-csv", "toloka", "csv", "labelwise-db"]
FORMATS: tuple[str, ...] = ("labelstudio", "labelstudio-min", "labelstudio-csv", "toloka", "csv", "labelwise-db")
ANSWER_COLUMNS = ("task", "worker", "label", "source")
TASK_ALIASES = ("task", "sample_id", "task_id", "item", "image", "path")
WORKER_ALIASES = ("worker", "annotator", "worker_id", "user", "rater")
LABEL_ALIASES = ("label", "answer", "class", "choice", "response")
#: JSON-MIN / CSV keys that are Label Studio's own, never a data field or a label.
_LS_META = {
    "id",
    "annotator",
    "annotation_id",
    "created_at",
    "updated_at",
    "lead_time",
    "agreement",
    "drafts",
    "predictions",
    "annotations",
    "total_annotations",
    "cancelled_annotations",
    "total_predictions",
}
_UPLOAD = re.compile(r"/data/upload/[^/]+/(?:[0-9a-fA-F]{8}-)?(?P<name>[^/]+)$")


@dataclass
class Answers:
    """Crowd answers in the long shape crowd-kit uses.

    Attributes
    ----------
    table : DataFrame ``task, worker, label, source``, one row per (task, worker).
    images : DataFrame ``task, image, path``: the image reference as exported and the
        matched file (``""`` when not matched), one row per task (unlabeled ones too).
    gold : Series task → known answer found in the file itself (Toloka ``GOLDEN:*``).
    unlabeled : tasks listed in the file without any answer (the unlabeled pool).
    dropped : reason → number of answers left out.
    unmatched : DataFrame ``worker, image, reason, source`` of answers whose image matched no file.
    notes : messages for the log and report (annotators without answers, ...).
    classes : the class list (given, or the labels found in natural order).
    """

    table: pd.DataFrame
    images: pd.DataFrame
    gold: pd.Series
    unlabeled: list[str]
    dropped: dict[str, int]
    unmatched: pd.DataFrame
    notes: list[str]
    classes: list[str]

    def summary(self) -> dict[str, Any]:
        return {
            "answers": len(self.table),
            "tasks": int(self.table["task"].nunique()),
            "workers": int(self.table["worker"].nunique()),
            "classes": self.classes,
            "unlabeled_tasks": len(self.unlabeled),
            "dropped": dict(self.dropped),
            "gold_in_file": len(self.gold),
        }


@dataclass
class _Collector:
    """Rows and counts gathered while reading; :func:`_finish` turns them into :class:`Answers`."""

    rows: list[dict[str, str | bool]] = field(default_factory=list)
    gold: dict[str, tuple[str, str]] = field(default_factory=dict)
    unlabeled: dict[tuple[str, str], str] = field(default_factory=dict)  # (task, scope) → image
    dropped: Counter[str] = field(default_factory=Counter)
    seen_workers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    notes: list[str] = field(default_factory=list)

    def answer(
        self,
        task: str,
        worker: str,
        label: str | None,
        source: str,
        image: str = "",
        scope: str = "",
        explicit: bool = False,
    ) -> None:
        task, worker = task.strip(), worker.strip()
        self.seen_workers[worker]["seen"] += 1
        if not task:
            raise LabelwiseError(f"{source}: the task has no id or image")
        if not worker:
            raise LabelwiseError(f"{source}: the answer has no worker/annotator")
        label = (label or "").strip()
        if not label:
            self.drop("no label", worker)
            self.unlabeled.setdefault((task, scope), image)
            return
        self.rows.append(
            {
                "task": task,
                "worker": worker,
                "label": label,
                "source": source,
                "image": image,
                "scope": scope,
                "explicit": explicit,
            }
        )

    def drop(self, reason: str, worker: str | None = None) -> None:
        self.dropped[reason] += 1
        if worker is not None:
            self.seen_workers[worker.strip()][reason] += 1

    def add_gold(self, task: str, label: str, source: str) -> None:
        if task in self.gold and self.gold[task][0] != label:
            raise LabelwiseError(
                f"{source}: golden answer {label!r} for task {task!r} differs from "
                f"{self.gold[task][0]!r} given at {self.gold[task][1]}"
            )
        self.gold[task] = (label, source)


# ---------------------------------------------------------------- entry point


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    note_input(path)
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise LabelwiseError(f"{path}: cannot read as a table ({str(exc).strip().splitlines()[-1]})") from None


def _finish(
    col: _Collector,
    index: _ImageIndex | None,
    classes: list[str] | None,
    where: str,
    keep: AbstractSet[str] = frozenset(),
) -> Answers:
    table = pd.DataFrame(col.rows, columns=["task", "worker", "label", "source", "image", "scope", "explicit"])
    unmatched = pd.DataFrame(columns=["worker", "image", "reason", "source"])
    paths: dict[str, str] = {}
    if index is not None:
        table, unmatched, paths = _match(col, table, index, set(keep) | set(col.gold))
        if len(unmatched):
            col.notes.append(
                f"{len(unmatched)} answer(s) name an image that matches no single file "
                f"(e.g. {unmatched['reason'].iloc[0]}); they are left out and listed in unmatched.csv"
            )
        table, paths = _same_images(col, table, paths)
    dup = table.duplicated(["task", "worker"], keep="first")
    if dup.any():
        firsts = table[~dup].set_index(["task", "worker"])["label"]
        repeats = table[dup].set_index(["task", "worker"])["label"]
        differ = int((repeats != firsts.reindex(repeats.index)).sum())
        col.dropped["repeated (task, worker)"] += int(dup.sum())
        col.notes.append(
            f"{int(dup.sum())} answer(s) repeat a (task, worker) pair ({differ} with a different label); "
            f"the first is kept (e.g. {table.loc[dup, 'source'].iloc[0]})"
        )
        table = table[~dup]
    if not len(table):
        reasons = ", ".join(f"{n} {r}" for r, n in col.dropped.items()) or "the file holds none"
        raise LabelwiseError(f"{where}: no usable answers ({reasons})")
    if classes is not None:
        bad = table[~table["label"].isin(classes)]
        if len(bad):
            raise LabelwiseError(
                f"{bad['source'].iloc[0]}: label {bad['label'].iloc[0]!r} is not in the class list "
                f"({', '.join(classes)}); {len(bad)} such answer(s)"
            )
    kept = set(table["worker"])
    for worker, counts in col.seen_workers.items():
        if worker not in kept:
            why = ", ".join(f"{n} {r}" for r, n in counts.items() if r != "seen")
            col.notes.append(f"annotator {worker!r} has no answers ({why})")
    if len(kept) > 1 and table["task"].value_counts().max() < 2:
        col.notes.append(
            f"no task has answers from two annotators ({len(kept)} annotators, {table['task'].nunique()} "
            "tasks): nothing overlaps, so agreement and annotator skill cannot be measured"
            + (
                ""
                if index is not None
                else "; if the annotators labeled copies of the same images, pass "
                "--images so that identical files become one task"
            )
        )
    labeled = set(table["task"])
    pool = {t: image for (t, _), image in col.unlabeled.items()}
    unlabeled = natural_sorted(t for t in pool if t not in labeled)
    if unlabeled:
        col.notes.append(f"{len(unlabeled)} task(s) have no answers (e.g. {unlabeled[0]!r}); listed as unlabeled")
    images = {**pool, **dict(zip(table["task"], table["image"]))}
    image_rows = pd.DataFrame({"task": list(images), "image": list(images.values())})
    image_rows["path"] = [paths.get(t, "") for t in image_rows["task"]]
    gold = pd.Series({t: g for t, (g, _) in col.gold.items()}, dtype=object, name="label").rename_axis("task")
    for note in col.notes:
        log.warning("%s", note)
    return Answers(
        table=table[list(ANSWER_COLUMNS)].reset_index(drop=True),
        images=image_rows.sort_values("task", kind="stable").reset_index(drop=True),
        gold=gold,
        unlabeled=unlabeled,
        dropped={k: int(v) for k, v in col.dropped.items() if v},
        unmatched=unmatched,
        notes=list(col.notes),
        classes=list(classes) if classes is not None else natural_sorted(set(table["label"])),
    )
