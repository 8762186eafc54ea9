"""The output folder of a command: one run at a time, a record of what it did, and its inputs kept safe.

Besides its products, every command leaves ``config.yaml`` (the resolved options),
``run.json`` (versions, seed, timing, status, and the content hash of every file it wrote) and
``labelwise.log`` in its folder. While it runs, a lock in the folder turns away a second run;
the lock is the operating system's, so a run that dies (even by ``kill -9``) never leaves a
stale one. ``run.json`` says ``running`` from the start, then ``ok``, ``failed`` or
``interrupted``; a ``running`` record without a live lock holder was killed.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import errno
import functools
import importlib.metadata
import inspect
import json
import logging
import os
import platform
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml

from ._io import RunScope, current_scope, file_digest, resolved, scoped, write_json, write_text
from .errors import LabelwiseError

log = logging.getLogger("labelwise")
LOG_FILE = "labelwise.log"
RECORD_FILE = "run.json"
CONFIG_FILE = "config.yaml"
LOCK_FILE = ".labelwise.lock"
_PACKAGES = ("labelwise", "numpy", "pandas", "scikit-learn", "pillow", "torch", "torchvision", "timm", "cleanlab",
             "crowd-kit")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape results (those installed)."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def plain(value: Any) -> Any:
    """Make option values YAML/JSON friendly (paths → str, tuples → lists, data → a short description)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and not hasattr(value, "table"):
        return plain(dataclasses.asdict(value))
    if hasattr(value, "table") and hasattr(value, "source"):  # a Dataset
        return f"Dataset({value.source or 'in memory'}, {len(value.table)} rows)"
    if hasattr(value, "shape"):
        return f"{type(value).__name__}{tuple(value.shape)}"
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return plain(value.item())
    text = repr(value)
    return text if len(text) <= 200 else text[:199] + "…"


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


F = TypeVar("F", bound=Callable[..., Any])
_HELD: dict[Path, int] = {}
# The options of the command line that started this run, as the user named them: what the
# outermost run records as config.yaml, so that it can be passed back with --config.
_COMMAND_LINE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("labelwise_cli", default=None)


@contextlib.contextmanager
def command_line_options(options: Mapping[str, Any]) -> Iterator[None]:
    """Record ``options`` (a command's parsed command line) as the config of the run it starts."""
    token = _COMMAND_LINE.set(dict(options))
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)  # folders this process holds the lock of, and how deeply nested


@contextlib.contextmanager
def command_run(
    out: str | os.PathLike[str] | None,
    command: str,
    config: Mapping[str, Any],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    image_trees: Iterable[str | os.PathLike[str] | None] = (),
    single_file: bool = False,
    overwrite: bool = False,
    resume: bool = False,
) -> Iterator[Run]:
    """Run ``command`` with its outputs in ``out`` (a folder, or with ``single_file`` one table).

    ``inputs`` are the files and folders the command was given; ``image_trees`` the folders whose
    every sub-folder it reads images from. Before anything is written, a one-line error refuses:
    an output that would cover an input; a folder another run is writing to; a folder (or file)
    holding an earlier run's results, unless ``overwrite`` (the old results are then removed as a
    whole) or ``resume`` (the same command continues them). Readers declare what else they read
    while the command runs (:func:`labelwise._io.note_input`).

    ``out=None`` runs the command without an output folder: nothing is recorded.
    """
    if out is None:
        yield Run(None, command)
        return
    out = Path(out)
    target = resolved(out)
    if single_file:
        if target.is_dir():
            raise LabelwiseError(f"{out}: is a folder; {command} writes one table: give a file path ending in .csv or .parquet")
        folder, stem = target.parent, target.stem
    else:
        if target.exists() and not target.is_dir():
            raise LabelwiseError(f"{out}: is a file; --out takes a folder")
        folder, stem = target, ""
    parent = current_scope()
    scope = parent.child(folder, target if single_file else None) if parent else RunScope(folder, target if single_file else None)
    with scoped(scope):
        from ._io import note_images, note_input

        for path in inputs:
            if path is not None:
                note_input(path)
        for path in image_trees:
            if path is not None:
                note_images(path, recursive=True)
    run = Run(folder, command, stem)
    _make_folder(folder, out)
    with _locked(folder, command):
        kept, aside = _earlier(run, out, target if single_file else None, overwrite=overwrite, resume=resume)
        scope.written.update(kept)
        cli = _COMMAND_LINE.get()
        if cli is not None:
            _COMMAND_LINE.set(None)  # runs nested in this one record their own arguments
        record: dict[str, Any] = {
            "command": command,
            "status": "running",
            "run_id": uuid.uuid4().hex,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "argv": sys.argv,
            "seed": config.get("random_state", config.get("seed")),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
            "arguments": plain(dict(config)),
        }
        write_text(run.path(CONFIG_FILE), yaml.safe_dump(plain(cli if cli is not None else dict(config)), sort_keys=False))
        write_json(run.path(RECORD_FILE), record)
        handler = logging.FileHandler(run.path(LOG_FILE), mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.setLevel(logging.INFO)
        log.addHandler(handler)
        started = time.time()
        status = "failed"
        log.info("labelwise %s started (output in %s)", command, out)
        try:
            with scoped(scope):
                yield run
            status = "ok"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            seconds = round(time.time() - started, 3)
            log.info("labelwise %s %s in %.1f s", command, status, seconds)
            log.removeHandler(handler)
            handler.close()
            if aside is not None and status != "ok":  # the earlier results come back, as they were
                aside.restore(scope.written, [run.path(n) for n in (CONFIG_FILE, RECORD_FILE, LOG_FILE)])
            else:
                if aside is not None:
                    aside.drop()
                own = {run.path(n).name for n in (CONFIG_FILE, RECORD_FILE, LOG_FILE)}
                files = {k: v for k, v in scope.written.items() if Path(k).name not in own or "/" in k}
                record.update(status=status, seconds=seconds,
                              finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              result=plain(run.result), files=dict(sorted(files.items())), made=sorted(scope.made))
                write_json(run.path(RECORD_FILE), record)
                if parent is not None:
                    parent.adopt(scope)


InputsOf = Callable[[Mapping[str, Any]], tuple[list[Any], list[Any]]]


def recorded(
    name: str,
    *,
    inputs: InputsOf | None = None,
    out: str = "out",
    single_file: bool = False,
) -> Callable[[F], F]:
    """Make a library function a command: called with an output folder, it runs inside
    :func:`command_run`, with its arguments as the resolved config and the summary of what it
    returns as ``run.json``'s result.

    ``inputs(arguments)`` gives ``(inputs, image_trees)`` from the call's arguments. The
    function's own ``overwrite`` and ``resume`` arguments, when it has them, are honoured.
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            files, trees = inputs(arguments) if inputs is not None else ([], [])
            with command_run(arguments.get(out), name, arguments, inputs=files, image_trees=trees,
                             single_file=single_file, overwrite=bool(arguments.get("overwrite", False)),
                             resume=bool(arguments.get("resume", False))) as run:
                result = fn(*bound.args, **bound.kwargs)
                run.result.update(summary_of(result))
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def summary_of(result: Any) -> dict[str, Any]:
    """What ``run.json`` records of a command's result: its ``summary()`` when it has one."""
    if hasattr(result, "summary") and callable(result.summary):
        return dict(result.summary())
    if isinstance(result, Mapping):
        return {str(k): v for k, v in result.items() if not str(k).startswith("_")}
    if hasattr(result, "shape"):
        return {"shape": list(result.shape)}
    return {}


def _make_folder(folder: Path, out: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise LabelwiseError(f"{out}: a file stands where the output folder {folder} would go") from None
    except OSError as exc:
        raise LabelwiseError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _locked(folder: Path, command: str) -> Iterator[None]:
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
            raise LabelwiseError(f"{folder}: another run is writing to this folder: {who}; wait for it or choose another --out")
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"command": command, "pid": os.getpid(), "host": socket.gethostname(),
                             "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
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


def read_record(folder: str | os.PathLike[str], stem: str = "", *, holder_alive: bool | None = None) -> dict[str, Any] | None:
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
    record = read_record(run.folder, run.stem, holder_alive=False) or {}
    log.warning("%s: restoring the results of the run an interrupted --overwrite run was replacing", run.folder)
    records = [run.path(n) for n in (CONFIG_FILE, RECORD_FILE, LOG_FILE)]
    _Aside(run.folder, backup, sorted(p.name for p in backup.iterdir())).restore(record.get("files", {}), records)


def _earlier(run: Run, out: Path, file: Path | None, *, overwrite: bool, resume: bool) -> tuple[dict[str, str], _Aside | None]:
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
            raise LabelwiseError(f"{out}: is not empty and holds no labelwise run ({', '.join(sorted(leftovers)[:3])}"
                                 f"{' …' if len(leftovers) > 3 else ''}); choose an empty or new folder, or pass --overwrite")
        return {}, None
    if resume and record.get("command") == run.command:
        return outputs, None
    finished = record.get("status") == "ok"
    if (outputs or record.get("made") or finished) and not overwrite:
        how = "--overwrite to replace them" + (", --resume to continue it" if run.command == "train" else "")
        raise LabelwiseError(f"{out}: holds the results of an earlier `labelwise {record.get('command', '?')}` run "
                             f"({record.get('status', '?')}, started {record.get('started', '?')}); pass {how}, "
                             "or choose another --out")
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
        log.warning("%s: no %s, so labelwise cannot check that its files come from one `%s` run", folder, RECORD_FILE, command)
        return None
    status = record.get("status")
    if status == "running":
        raise LabelwiseError(f"{folder}: `labelwise {record.get('command')}` is still writing to it (pid {record.get('pid')}); "
                             "wait for it to finish")
    if status != "ok":
        raise LabelwiseError(f"{folder}: left by a `labelwise {record.get('command', '?')}` run that {_ended(status)} "
                             f"(started {record.get('started', '?')}); rerun it (or resume it) before using the folder")
    written = record.get("files")
    if written is None:
        log.warning("%s: %s lists no files, so labelwise cannot check that they come from one run", folder, RECORD_FILE)
        return record
    for name in files:
        path = folder / name
        if not path.is_file():
            continue
        if name not in written:
            raise LabelwiseError(f"{path}: not written by the `labelwise {record.get('command')}` run of {folder} "
                                 f"({record.get('started', '?')}); the folder mixes runs: rerun it into a new folder")
        if file_digest(path) != written[name]:
            raise LabelwiseError(f"{path}: changed since the `labelwise {record.get('command')}` run of "
                                 f"{record.get('started', '?')} wrote it (or comes from another run); rerun it into a new folder")
    return record


def _ended(status: Any) -> str:
    return {"failed": "failed", "interrupted": "was interrupted", "killed": "was killed before it finished"}.get(
        str(status), f"ended with status {status!r}")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(old: dict[str, Any], new: dict[str, Any], *, most: int = 3) -> str:
    """What differs between two (nested) settings, for an error message; ``""`` when nothing.

    >>> config_differences({"lr": 0.1, "m": {"w": 16}}, {"lr": 0.2, "m": {"w": 16}})
    'lr: 0.1 before, 0.2 now'
    """
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = "; ".join(f"{k}: {a.get(k)!r} before, {b.get(k)!r} now" for k in keys[:most])
    return shown + (" …" if len(keys) > most else "")
