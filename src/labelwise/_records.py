"""The record a run leaves in its folder (``run.json``), what a later run does with an earlier
one's results (refuse, continue, or set them aside and put them back on failure), and the check
that a folder's files all come from the one finished run its record names."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._io import file_digest
from ._lock import LOCK_FILE, is_locked
from .errors import LabelwiseError

log = logging.getLogger("labelwise")
LOG_FILE = "labelwise.log"
RECORD_FILE = "run.json"
CONFIG_FILE = "config.yaml"


@dataclass
class Run:
    """A running command's handle: ``result`` holds the figures ``run.json`` records."""

    folder: Path | None
    command: str
    stem: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        assert self.folder is not None
        return self.folder / (f"{self.stem}.{name}" if self.stem else name)


def read_record(
    folder: str | os.PathLike[str], stem: str = "", *, holder_alive: bool | None = None
) -> dict[str, Any] | None:
    """The ``run.json`` of a folder (``<stem>.run.json`` for a single-table command), or None.

    A record that says ``running`` while no live process holds the folder's lock says
    ``killed`` here (``holder_alive`` overrides the check: False when the caller holds the lock).
    """
    path = Path(folder) / (f"{stem}.{RECORD_FILE}" if stem else RECORD_FILE)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {"status": "unreadable"}
    if not isinstance(record, dict):
        return {"status": "unreadable"}
    alive = is_locked(folder) if holder_alive is None else holder_alive
    if record.get("status") == "running" and not alive:
        record["status"] = "killed"
    return record


@dataclass
class _Aside:
    """An earlier run's results moved out of the way by ``--overwrite``: deleted as a whole when the
    new run succeeds, put back when it fails, so that a failed run never destroys an earlier one."""

    folder: Path
    backup: Path
    names: list[str]

    def drop(self) -> None:
        shutil.rmtree(self.backup, ignore_errors=True)

    def restore(self, written: Iterable[str], records: Iterable[Path]) -> None:
        for rel in written:
            path = self.folder / rel
            if path.is_file():
                path.unlink()
        for path in records:
            path.unlink(missing_ok=True)
        _remove_empty(self.folder)
        for name in self.names:
            source, target = self.backup / name, self.folder / name
            if source.exists() and not target.exists():
                os.replace(source, target)
        self.drop()


def _backup_path(run: Run) -> Path:
    assert run.folder is not None
    return run.folder / f".labelwise-replaced{'-' + run.stem if run.stem else ''}"


def _recover(run: Run) -> None:
    """Put back the results an ``--overwrite`` run set aside and never finished replacing (killed)."""
    backup = _backup_path(run)
    if not backup.is_dir():
        return
    assert run.folder is not None  # _backup_path checked it
    record = read_record(run.folder, run.stem, holder_alive=False) or {}
    log.warning("%s: restoring the results of the run an interrupted --overwrite run was replacing", run.folder)
    records = [run.path(n) for n in (CONFIG_FILE, RECORD_FILE, LOG_FILE)]
    _Aside(run.folder, backup, sorted(p.name for p in backup.iterdir())).restore(record.get("files", {}), records)


def earlier(
    run: Run, out: Path, file: Path | None, *, overwrite: bool, resume: bool
) -> tuple[dict[str, str], _Aside | None]:
    """Refuse to mix with an earlier run's results, or set them aside (``overwrite``).

    Returns the files of an earlier run that this one continues (``resume``), and the results
    set aside."""
    assert run.folder is not None
    _recover(run)
    record = read_record(run.folder, run.stem, holder_alive=False)
    outputs = dict(record.get("files", {})) if record else {}
    records = [run.path(n).name for n in (CONFIG_FILE, RECORD_FILE, LOG_FILE) if run.path(n).exists()]
    if record is None:
        if file is not None and file.exists():
            if not overwrite:
                raise LabelwiseError(f"{out}: exists; pass --overwrite to replace it, or choose another --out")
            return {}, _set_aside(run, [file.name, *records])
        leftovers = [p.name for p in run.folder.iterdir() if p.name != LOCK_FILE] if file is None else []
        if leftovers and not overwrite and not resume:
            raise LabelwiseError(
                f"{out}: is not empty and holds no labelwise run ({', '.join(sorted(leftovers)[:3])}"
                f"{' …' if len(leftovers) > 3 else ''}); choose an empty or new folder, or pass --overwrite"
            )
        return {}, None
    if resume and record.get("command") == run.command:
        return outputs, None
    finished = record.get("status") == "ok"
    if (outputs or record.get("made") or finished) and not overwrite:
        how = "--overwrite to replace them" + (", --resume to continue it" if run.command == "train" else "")
        raise LabelwiseError(
            f"{out}: holds the results of an earlier `labelwise {record.get('command', '?')}` run "
            f"({record.get('status', '?')}, started {record.get('started', '?')}); pass {how}, "
            "or choose another --out"
        )
    names = {rel.split("/", 1)[0] for rel in [*outputs, *record.get("made", [])]} | set(records)
    if file is not None:
        names.add(file.name)
    return {}, _set_aside(run, sorted(n for n in names if (run.folder / n).exists()))


def _set_aside(run: Run, names: list[str]) -> _Aside:
    assert run.folder is not None
    backup = _backup_path(run)
    backup.mkdir()
    for name in names:
        os.replace(run.folder / name, backup / name)
    return _Aside(run.folder, backup, names)


def _remove_empty(folder: Path) -> None:
    for dirpath, _, _ in sorted(os.walk(folder), key=lambda d: -len(d[0])):
        here = Path(dirpath)
        if here != folder and here.is_dir() and not any(here.iterdir()):
            here.rmdir()


def check_run_folder(folder: str | os.PathLike[str], files: Iterable[str], *, command: str) -> dict[str, Any] | None:
    """Refuse (one line) a ``command`` output folder that a failed, interrupted or killed run left,
    or whose ``files`` were not all written by the run its ``run.json`` records.

    Returns the record, or None for a folder without one (written by hand, or by an older
    labelwise), which is used as it is, with a warning.
    """
    folder = Path(folder)
    record = read_record(folder)
    if record is None:
        log.warning(
            "%s: no %s, so labelwise cannot check that its files come from one `%s` run", folder, RECORD_FILE, command
        )
        return None
    status = record.get("status")
    if status == "running":
        raise LabelwiseError(
            f"{folder}: `labelwise {record.get('command')}` is still writing to it (pid {record.get('pid')}); "
            "wait for it to finish"
        )
    if status != "ok":
        raise LabelwiseError(
            f"{folder}: left by a `labelwise {record.get('command', '?')}` run that {_ended(status)} "
            f"(started {record.get('started', '?')}); rerun it (or resume it) before using the folder"
        )
    written = record.get("files")
    if written is None:
        log.warning("%s: %s lists no files, so labelwise cannot check that they come from one run", folder, RECORD_FILE)
        return record
    for name in files:
        path = folder / name
        if not path.is_file():
            continue
        if name not in written:
            raise LabelwiseError(
                f"{path}: not written by the `labelwise {record.get('command')}` run of {folder} "
                f"({record.get('started', '?')}); the folder mixes runs: rerun it into a new folder"
            )
        if file_digest(path) != written[name]:
            raise LabelwiseError(
                f"{path}: changed since the `labelwise {record.get('command')}` run of "
                f"{record.get('started', '?')} wrote it (or comes from another run); rerun it into a new folder"
            )
    return record


def _ended(status: Any) -> str:
    return {"failed": "failed", "interrupted": "was interrupted", "killed": "was killed before it finished"}.get(
        str(status), f"ended with status {status!r}"
    )
