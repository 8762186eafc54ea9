"""Atomic file output, and the guard that keeps a run's outputs away from its inputs.

Every output is written to a temporary file in the same folder, then renamed: a crash or
Ctrl-C never leaves a half-written output, and never destroys the previous version of a file
that was already there.

While a command runs (:func:`labelwise._run.command_run` opens a :class:`RunScope`), readers
declare what they read (:func:`note_input`, :func:`note_images`). A declared input that the
run's output would cover is refused at once, with one line naming both paths; and every
write is checked again, so that no command ever writes over a file it read or into a folder
it reads images from. Files written inside the run's folder are recorded with their content
hash, which is how a later command tells that a folder's files belong to one run.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from .errors import LabelwiseError

_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass
class RunScope:
    """What one running command reads and writes.

    Attributes
    ----------
    folder : the run's output folder (resolved).
    file : the run's one output file, for commands that write a single table.
    inputs : files read (resolved); never written over.
    image_trees : folders whose every sub-folder is read as images; nothing is written inside.
    image_dirs : folders that directly hold images read; nothing is written into them.
    written : path relative to ``folder`` → content hash of the files written there (by this
        run and the runs nested in it).
    made : folders the run filled by other means (the demo's images), relative to ``folder``.
    """

    folder: Path
    file: Path | None = None
    inputs: set[Path] = field(default_factory=set)
    image_trees: set[Path] = field(default_factory=set)
    image_dirs: set[Path] = field(default_factory=set)
    written: dict[str, str] = field(default_factory=dict)
    made: set[str] = field(default_factory=set)

    def child(self, folder: Path, file: Path | None = None) -> RunScope:
        """A nested run's scope: it protects everything its parent protects."""
        return RunScope(folder, file, set(self.inputs), set(self.image_trees), set(self.image_dirs))

    def adopt(self, child: RunScope) -> None:
        """Count a finished nested run's files as this run's own products."""
        if not _inside(child.folder, self.folder):
            return
        prefix = child.folder.relative_to(self.folder).as_posix()
        for rel, digest in child.written.items():
            self.written[rel if prefix == "." else f"{prefix}/{rel}"] = digest
        self.made |= {m if prefix == "." else f"{prefix}/{m}" for m in child.made}

    def _own(self, path: Path) -> bool:
        """Whether ``path`` is something this run (or a run nested in it) produced."""
        if not _inside(path, self.folder):
            return False
        rel = path.relative_to(self.folder).as_posix()
        return rel in self.written or any(rel == m or rel.startswith(f"{m}/") for m in self.made)

    def conflict(self, path: Path, kind: str) -> str | None:
        """Why reading ``path`` (``file``, ``tree`` or ``dir``) clashes with this run's output, if it does."""
        out = self.file or self.folder
        where = "--out " + str(out)
        if self._own(path):
            return None
        if kind == "file":
            if path == self.file:
                return f"{where} is the input {path}"
            if self.file is None and _inside(path, self.folder):
                return f"{where} holds the input {path}"
            return None
        if _inside(self.folder, path) and (kind == "tree" or self.folder == path):
            return f"{where} is inside {path}, a folder images are read from"
        if self.file is None and _inside(path, self.folder) and path != self.folder:
            return f"{where} holds {path}, a folder images are read from"
        return None

    def refuses(self, path: Path) -> str | None:
        """Why writing ``path`` would damage an input, if it would."""
        if path in self.inputs:
            return "it is an input of this run"
        if path.parent in self.image_dirs or any(_inside(path, tree) for tree in self.image_trees):
            return "it is inside a folder images are read from"
        return None


_SCOPE: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar("labelwise_run_scope", default=None)


def current_scope() -> RunScope | None:
    return _SCOPE.get()


@contextlib.contextmanager
def scoped(scope: RunScope) -> Iterator[RunScope]:
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def resolved(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def note_input(path: str | os.PathLike[str]) -> None:
    """Declare a file the running command reads; a one-line error if its output would cover it."""
    _note(path, "file")


def note_images(folder: str | os.PathLike[str], *, recursive: bool) -> None:
    """Declare a folder the running command reads images from (``recursive``: every sub-folder too)."""
    _note(folder, "tree" if recursive else "dir")


def _note(path: str | os.PathLike[str], kind: str) -> None:
    scope = _SCOPE.get()
    if scope is None:
        return
    where = resolved(path)
    why = scope.conflict(where, kind)
    if why is not None:
        raise LabelwiseError(f"{why}; labelwise never writes over or into what it reads: choose another --out")
    {"file": scope.inputs, "tree": scope.image_trees, "dir": scope.image_dirs}[kind].add(where)


def file_digest(path: str | os.PathLike[str]) -> str:
    """blake2b of a file's bytes (hex, 32 characters)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_written(path: str | os.PathLike[str]) -> None:
    """Note in the running command's record a file it wrote by other means than this module."""
    scope = _SCOPE.get()
    if scope is None:
        return
    where = resolved(path)
    if _inside(where, scope.folder) and where.is_file() and where not in scope.inputs:
        scope.written[where.relative_to(scope.folder).as_posix()] = file_digest(where)


def record_made(folder: str | os.PathLike[str]) -> None:
    """Note a folder the running command filled itself (not through this module)."""
    scope = _SCOPE.get()
    where = resolved(folder)
    if scope is not None and _inside(where, scope.folder) and where != scope.folder:
        scope.made.add(where.relative_to(scope.folder).as_posix())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    scope = _SCOPE.get()
    if scope is not None:
        why = scope.refuses(resolved(path))
        if why is not None:
            raise LabelwiseError(f"refusing to write {path}: {why}; choose another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
        if scope is not None:
            record_written(path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """JSON as the standard defines it: NaN and infinities become ``null``."""
    with atomic_open(path) as fh:
        json.dump(_finite(obj), fh, indent=2, default=_json_default, allow_nan=False)
        fh.write("\n")
    return Path(path)


def write_table(path: str | os.PathLike[str], df: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV, TSV or Parquet, chosen by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix in {".tsv", ".tab"}:
            df.to_csv(tmp, sep="\t", index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        np.save(tmp, array)
    return Path(path)


def save_figure(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    plt.close(fig)
    return path


def _finite(obj: Any) -> Any:
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
