"""Where a round's answers come from besides the labeling page: an answers file (Label Studio
export, Toloka TSV, answers CSV), or recorded answers standing in for people (``--simulate-answers``:
each asked image gets the next recorded answer of a worker who has not answered it yet)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from ..errors import LabelwiseError

log = logging.getLogger("labelwise")


def read_recorded(path: str | os.PathLike[str] | pd.DataFrame, classes: list[str], pool: set[str]) -> pd.DataFrame:
    """``sample_id, worker, label`` rows (several per image, in the order they are handed out). Unknown
    classes are an error naming the row; rows of images outside the pool are dropped and counted."""
    where = "recorded answers" if isinstance(path, pd.DataFrame) else str(path)
    if isinstance(path, pd.DataFrame):
        table = path
    else:
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise LabelwiseError(f"{where}: cannot read recorded answers: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("sample_id", "worker", "label") if c not in table.columns]
    if missing:
        raise LabelwiseError(f"{where}: missing column(s) {', '.join(missing)}; expected sample_id, worker, label")
    table = table[["sample_id", "worker", "label"]].astype(str)
    bad = ~table["label"].isin(classes)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise LabelwiseError(
            f"{where}, row {row + 2}: label {table['label'].iloc[row]!r} is not one of the classes ({', '.join(classes)})"
        )
    outside = ~table["sample_id"].isin(pool)
    if outside.any():
        log.warning("%s: %d answer(s) for images outside the pool are left out", where, int(outside.sum()))
    table = table[~outside]
    repeated = table.duplicated(["sample_id", "worker"])
    if repeated.any():
        log.warning("%s: %d repeated (image, worker) answer(s): the first of each is used", where, int(repeated.sum()))
    return table[~repeated].reset_index(drop=True)


def next_recorded(recorded: pd.DataFrame, asked: pd.Series, answered: pd.DataFrame) -> pd.DataFrame:
    """For each image in ``asked`` (one entry per answer wanted), the next recorded answer by a worker
    who has not answered that image (``answered``: ``sample_id, worker``)."""
    done = set(zip(answered["sample_id"].astype(str), answered["worker"].astype(str)))
    by_image = {s: g for s, g in recorded.groupby("sample_id", sort=False)}
    out = []
    for sample in asked.astype(str):
        rows = by_image.get(sample)
        if rows is None:
            continue
        for worker, label in zip(rows["worker"], rows["label"]):
            if (sample, worker) not in done:
                done.add((sample, worker))
                out.append((sample, worker, label))
                break
    return pd.DataFrame(out, columns=["sample_id", "worker", "label"])


def capacity(recorded: pd.DataFrame, answered: pd.DataFrame) -> pd.Series:
    """Recorded answers not handed out yet, per image."""
    total = recorded.groupby("sample_id").size()
    used = answered.groupby("sample_id").size().reindex(total.index, fill_value=0)
    return total - used


def read_answer_file(path: str | os.PathLike[str], classes: list[str], pool: dict[str, str]) -> pd.DataFrame:
    """A round's answers from an export (any format ``aggregate`` reads) as ``sample_id, worker,
    label``. Tasks are matched by sample_id, else by the image's file name (``pool``: sample_id →
    path); answers for images that are not in the pool are left out with a counted warning."""
    from ..crowd import read_answers

    found = read_answers(path, classes=classes)
    table = found.table
    by_name: dict[str, list[str]] = {}
    for sample, image in pool.items():
        by_name.setdefault(Path(image).name, []).append(sample)
    ids = []
    for task in table["task"].astype(str):
        if task in pool:
            ids.append(task)
        else:
            names = by_name.get(Path(task).name, [])
            ids.append(names[0] if len(names) == 1 else None)
    frame = pd.DataFrame({"sample_id": ids, "worker": table["worker"].astype(str), "label": table["label"].astype(str)})
    unknown = frame["sample_id"].isna()
    if unknown.any():
        log.warning("%s: %d answer(s) name images that are not in the pool; left out", path, int(unknown.sum()))
    return frame[~unknown].reset_index(drop=True)
