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
import functools
import importlib.metadata
import inspect
import logging
import os
import platform
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ._io import (
    RunScope,
    current_scope,
    resolved,
    scoped,
    write_json,
    write_text,
)
from ._lock import locked
from ._records import CONFIG_FILE, LOG_FILE, RECORD_FILE, Run, earlier
from .errors import LabelwiseError

log = logging.getLogger("labelwise")
_PACKAGES = (
    "labelwise",
    "numpy",
    "pandas",
    "scikit-learn",
    "pillow",
    "torch",
    "torchvision",
    "timm",
    "cleanlab",
    "crowd-kit",
)


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
            raise LabelwiseError(
                f"{out}: is a folder; {command} writes one table: give a file path ending in .csv or .parquet"
            )
        folder, stem = target.parent, target.stem
    else:
        if target.exists() and not target.is_dir():
            raise LabelwiseError(f"{out}: is a file; --out takes a folder")
        folder, stem = target, ""
    parent = current_scope()
    scope = (
        parent.child(folder, target if single_file else None)
        if parent
        else RunScope(folder, target if single_file else None)
    )
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
    with locked(folder, command):
        kept, aside = earlier(run, out, target if single_file else None, overwrite=overwrite, resume=resume)
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
        write_text(
            run.path(CONFIG_FILE), yaml.safe_dump(plain(cli if cli is not None else dict(config)), sort_keys=False)
        )
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
                record.update(
                    status=status,
                    seconds=seconds,
                    finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    result=plain(run.result),
                    files=dict(sorted(files.items())),
                    made=sorted(scope.made),
                )
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
            with command_run(
                arguments.get(out),
                name,
                arguments,
                inputs=files,
                image_trees=trees,
                single_file=single_file,
                overwrite=bool(arguments.get("overwrite", False)),
                resume=bool(arguments.get("resume", False)),
            ) as run:
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
