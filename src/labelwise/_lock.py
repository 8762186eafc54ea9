"""One run per output folder: a lock file held with the operating system's advisory lock
(``flock``), so a run that dies — even by ``kill -9`` — never leaves a stale lock behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from ._io import resolved
from .errors import LabelwiseError

LOCK_FILE = ".labelwise.lock"
_HELD: dict[Path, int] = {}  # folders this process holds the lock of, and how deeply nested


@contextlib.contextmanager
def locked(folder: Path, command: str) -> Iterator[None]:
    """Hold the folder's lock for the block; one line naming the holder when another run has it."""
    if folder in _HELD:  # a command nested in another that writes into the same folder
        _HELD[folder] += 1
        try:
            yield
        finally:
            _HELD[folder] -= 1
        return
    path = folder / LOCK_FILE
    try:
        fh = open(path, "a+", encoding="utf-8")
    except OSError as exc:
        raise LabelwiseError(f"{folder}: cannot write to the output folder ({exc.strerror or exc})") from None
    try:
        if not _try_lock(fh):
            fh.seek(0)
            try:
                holder = json.loads(fh.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            who = f"labelwise {holder.get('command', '?')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')})"
            raise LabelwiseError(
                f"{folder}: another run is writing to this folder: {who}; wait for it or choose another --out"
            )
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "command": command,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            )
        )
        fh.flush()
        _HELD[folder] = 1
        try:
            yield
        finally:
            del _HELD[folder]
            _unlock(fh)
    finally:
        fh.close()


def _try_lock(fh: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


def _unlock(fh: IO[str]) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        with contextlib.suppress(OSError):
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def is_locked(folder: str | os.PathLike[str]) -> bool:
    """Whether a live process holds ``folder``'s lock (this one included)."""
    folder = resolved(folder)
    if folder in _HELD:
        return True
    path = folder / LOCK_FILE
    if not path.is_file():
        return False
    with open(path, "a+", encoding="utf-8") as fh:
        if _try_lock(fh):
            _unlock(fh)
            return False
        return True
