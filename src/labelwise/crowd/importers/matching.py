"""Matching exported image references to the real files below a folder; identical files become one task."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..._io import note_images
from ...data.images import is_image_file
from ...data.natural import natural_sorted
from ...errors import LabelwiseError

if TYPE_CHECKING:
    from ._collector import _Collector

log = logging.getLogger("labelwise")


class _ImageIndex:
    """The image files below ``root``, looked up by relative path or by file name."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise LabelwiseError(f"{root}: --images must be a folder of image files")
        note_images(root, recursive=True)
        self.root = root
        self.by_name: dict[str, list[str]] = defaultdict(list)
        self.paths: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if is_image_file(name):
                    rel = Path(dirpath, name).relative_to(root).as_posix()
                    self.by_name[name].append(rel)
                    self.paths.add(rel)

    def match(self, key: str, scope: str) -> tuple[str | None, str]:
        """``(relative path, "")`` for the one file ``key`` names, else ``(None, reason)``."""
        if key in self.paths:
            return key, ""
        name = key.rsplit("/", 1)[-1]
        found = self.by_name.get(name, [])
        where = self.root
        if scope and (self.root / scope).is_dir():
            found = [p for p in found if p.startswith(f"{scope}/")]
            where = self.root / scope
        if len(found) == 1:
            return found[0], ""
        if not found:
            return None, f"no file named {name!r} under {where}"
        return None, f"{len(found)} files named {name!r} under {where} ({', '.join(found[:3])}); not guessing"


def _match(
    col: _Collector, table: pd.DataFrame, index: _ImageIndex, keep: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Replace each task by the one file its image names; return (matched rows, unmatched rows, task → path).

    A task given as our own ``sample_id`` keeps it when that is a file below the root, and
    also when it is one of ``keep`` (gold tasks, scored against their known answer even when
    their image lies elsewhere)."""
    found = {}
    for task, scope, explicit in set(zip(table["task"], table["scope"], table["explicit"])):
        if explicit and task in keep and task not in index.paths:
            found[(task, scope, explicit)] = (task, "")
        else:
            found[(task, scope, explicit)] = index.match(task, scope)
    hits = [found[key] for key in zip(table["task"], table["scope"], table["explicit"])]
    ok = pd.Series([rel is not None for rel, _ in hits], index=table.index, dtype=bool)
    unmatched = table.loc[~ok, ["worker", "image", "source"]].assign(reason=[why for rel, why in hits if rel is None])
    for worker in unmatched["worker"]:
        col.drop("unmatched image", worker)
    unlabeled: dict[tuple[str, str], str] = {}
    for (task, scope), image in col.unlabeled.items():
        rel = index.match(task, scope)[0]
        unlabeled.setdefault((rel or task, ""), image)
    col.unlabeled = unlabeled
    table = table.assign(task=[rel or task for (rel, _), task in zip(hits, table["task"])])[ok]
    tasks = {*table["task"], *(t for t, _ in unlabeled)}
    paths = {rel: str(index.root / rel) for rel in tasks if rel in index.paths}
    return table, unmatched[["worker", "image", "reason", "source"]].reset_index(drop=True), paths


def _same_images(col: _Collector, table: pd.DataFrame, paths: dict[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """One task per distinct image: matched files with identical bytes (per-annotator folders holding
    copies of the same pictures) become the task of the first in natural order."""
    from ...data.images import content_hash

    digests: dict[str, str] = {}
    for task, path in paths.items():
        try:
            with open(path, "rb") as fh:
                digests[task] = content_hash(fh.read())
        except OSError:
            continue
    first: dict[str, str] = {}
    for task in natural_sorted(digests):
        first.setdefault(digests[task], task)
    rename = {task: first[digest] for task, digest in digests.items() if first[digest] != task}
    if rename:
        example = next(iter(rename.items()))
        col.notes.append(
            f"{len(rename)} image file(s) are byte-identical copies of another (e.g. {example[0]!r} = "
            f"{example[1]!r}); each picture is one task"
        )
        table = table.assign(task=table["task"].map(lambda t: rename.get(t, t)))
        col.unlabeled = {(rename.get(t, t), s): image for (t, s), image in col.unlabeled.items()}
        paths = {t: p for t, p in paths.items() if t not in rename}
    return table, paths
