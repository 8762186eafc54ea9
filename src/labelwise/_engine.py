"""Where the parallel parts of a command run: in this process (``local``) or on Ray (``ray``).

The engine is chosen per call (``engine=``), else by the innermost :func:`engine_scope`
(a command's own ``engine=`` holds for everything it calls: ``issues`` trains, ``train``
embeds), else by ``$LABELWISE_ENGINE``; the default is ``local``. Ray is imported only when
asked for. Without an address (``ray_address=`` or ``$RAY_ADDRESS``) a local Ray is started
with this machine's cores; with one, the existing cluster is joined.

Two shapes of work are distributed, both without a scheduler of labelwise's own:
:func:`map_batches` streams rows through a pool of actors that load something heavy once
(a backbone, the fold models), and :func:`run_tasks` runs one function per item (a fold, a
simulation run) as Ray tasks that are retried when their worker dies.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from .errors import LabelwiseError, require

log = logging.getLogger("labelwise")
F = TypeVar("F", bound=Callable[..., Any])

ENGINES = ("local", "ray")
ENGINE_ENV = "LABELWISE_ENGINE"
ADDRESS_ENV = "RAY_ADDRESS"
STALL_ENV = "LABELWISE_RAY_STALL_S"
#: Seconds a streaming map may go without a finished batch before it fails (``$LABELWISE_RAY_STALL_S``).
STALL_S = 600.0
#: How often Ray reruns a task whose worker died (a fold resumes from its last checkpoint).
TASK_RETRIES = 3


@dataclass(frozen=True)
class Engine:
    """A resolved engine: ``name`` (``local`` or ``ray``) and the Ray cluster ``address`` (None: start one)."""

    name: str = "local"
    address: str | None = None

    @property
    def is_ray(self) -> bool:
        return self.name == "ray"


_scope: contextvars.ContextVar[Engine | None] = contextvars.ContextVar("labelwise_engine", default=None)


def resolve_engine(engine: str | None = None, address: str | None = None) -> Engine:
    """The engine a call runs on: its own ``engine``, the enclosing scope's, ``$LABELWISE_ENGINE``, ``local``."""
    outer = _scope.get()
    name = engine or (outer.name if outer else None) or os.environ.get(ENGINE_ENV) or "local"
    name = name.strip().lower()
    if name not in ENGINES:
        raise LabelwiseError(f"engine must be one of {', '.join(ENGINES)}, got {name!r} (--engine / ${ENGINE_ENV})")
    address = address or (outer.address if outer else None) or os.environ.get(ADDRESS_ENV) or None
    return Engine(name, address if name == "ray" else None)


@contextlib.contextmanager
def engine_scope(engine: str | None = None, address: str | None = None) -> Iterator[Engine]:
    """Run the body, and everything it calls, on the resolved engine."""
    resolved = resolve_engine(engine, address)
    token = _scope.set(resolved)
    try:
        yield resolved
    finally:
        _scope.reset(token)


def scoped_engine(fn: F) -> F:
    """Run ``fn`` in the scope of its own ``engine`` and ``ray_address`` arguments."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind_partial(*args, **kwargs).arguments
        with engine_scope(given.get("engine"), given.get("ray_address")):
            return fn(*args, **kwargs)

    return cast(F, wrapper)


def connect(engine: Engine) -> ModuleType:
    """The ``ray`` module, connected: to ``engine.address``, or to a local Ray on this machine's cores."""
    ray = require("ray", "ray", "--engine ray")
    chatter = logging.INFO if _console_level() <= logging.INFO else logging.WARNING  # as verbose as labelwise
    if not ray.is_initialized():
        if engine.address:
            log.info("ray: joining the cluster at %s", engine.address)
            ray.init(address=engine.address, log_to_driver=True, logging_level=chatter)
        else:
            log.info("ray: starting a local Ray on this machine's %d cores", os.cpu_count() or 1)
            ray.init(include_dashboard=False, log_to_driver=True, logging_level=chatter)
    _quiet_ray_data(chatter)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # labelwise draws its own, on a terminal only
    context.raise_original_map_exception = True  # a bad image is the user's error, not a Ray traceback
    context.log_internal_stack_trace = False
    context.execution_no_progress_timeout_s = stall_seconds()
    return ray


def _console_level() -> int:
    """The lowest level labelwise prints anywhere but a file (its run logs take INFO always)."""
    levels = [h.level for h in log.handlers if not isinstance(h, logging.FileHandler)]
    return max(min(levels, default=logging.NOTSET), log.getEffectiveLevel())


class _DropNotice(logging.Filter):
    """Ray Data's notice that its progress bars are off: labelwise turned them off and draws its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Progress bars disabled")


def _quiet_ray_data(level: int) -> None:
    """Ray Data's console lines at ``level`` and above; its log file keeps everything."""
    import ray.data  # noqa: F401  (configures the "ray.data" logger)

    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)
            if not any(isinstance(f, _DropNotice) for f in handler.filters):
                handler.addFilter(_DropNotice())


def stall_seconds() -> float:
    """How long a streaming map may make no progress: ``$LABELWISE_RAY_STALL_S``, else :data:`STALL_S`."""
    given = os.environ.get(STALL_ENV, "").strip()
    try:
        seconds = float(given) if given else STALL_S
    except ValueError:
        raise LabelwiseError(f"${STALL_ENV} must be a number of seconds, got {given!r}") from None
    if seconds <= 0:
        raise LabelwiseError(f"${STALL_ENV} must be more than 0 seconds, got {given!r}")
    return seconds


def cluster_resources(ray: ModuleType) -> tuple[float, float]:
    """(CPUs, GPUs) of the whole cluster."""
    total = ray.cluster_resources()
    return float(total.get("CPU", 1.0)), float(total.get("GPU", 0.0))


@dataclass(frozen=True)
class WorkerShare:
    """What each worker asks Ray for, and the torch threads it runs with."""

    num_cpus: float
    num_gpus: float
    threads: int
    count: int  # workers that fit at once


def actor_share(ray: ModuleType) -> WorkerShare:
    """Actors for a streaming map: one per GPU where there are GPUs, else one per CPU.

    A CPU actor asks for half a CPU so that Ray Data's read tasks still find a core (a pool of
    whole-CPU actors on every core stalls against them) and computes with one thread, which
    keeps the cores busy exactly once.
    """
    cpus, gpus = cluster_resources(ray)
    if gpus >= 1:
        return WorkerShare(
            num_cpus=min(1.0, cpus / gpus / 2), num_gpus=1.0, threads=max(1, int(cpus // gpus) - 1), count=int(gpus)
        )
    return WorkerShare(num_cpus=0.5, num_gpus=0.0, threads=1, count=max(1, int(cpus)))


def largest_node(ray: ModuleType) -> float:
    """CPUs of the cluster's largest live node: no task may ask for more than one node has."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive", True)]
    return max((float(r.get("CPU", 0.0)) for r in nodes), default=1.0) or 1.0


def task_share(ray: ModuleType, n_tasks: int) -> WorkerShare:
    """Resources of each of ``n_tasks`` tasks: the cluster's cores (and GPUs) split between them,
    never more cores than the largest node has."""
    cpus, gpus = cluster_resources(ray)
    n = max(1, n_tasks)
    num_cpus = max(1, min(int(cpus // n), int(largest_node(ray))))
    num_gpus = 0.0 if gpus == 0 else (1.0 if gpus >= n else round(gpus / n, 4))
    count = n if gpus >= 1 and num_gpus < 1 else min(n, max(1, int(cpus // num_cpus)))
    return WorkerShare(num_cpus=float(num_cpus), num_gpus=num_gpus, threads=num_cpus, count=count)


def set_threads(threads: int) -> None:
    """Torch's intra-op threads in a worker (Ray's own default depends on the resources asked)."""
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(max(1, threads))


def labelwise_cause(exc: BaseException) -> LabelwiseError | None:
    """The :class:`LabelwiseError` that ``exc`` (a Ray task, actor or Ray Data error) wraps, if any."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, LabelwiseError) and not _is_ray_error(err):
            return err
        # Ray's wrappers (RayTaskError, also a subclass of the cause) keep the original in ``cause``.
        stack.extend([getattr(err, "cause", None), err.__cause__, err.__context__])
    return None


def _is_ray_error(err: BaseException) -> bool:
    return type(err).__module__.startswith("ray.")


@contextlib.contextmanager
def user_errors_from_ray() -> Iterator[None]:
    """A LabelwiseError raised on a worker surfaces as itself: one line, not a Ray traceback."""
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ == "ExecutionTimeoutError" and _is_ray_error(exc):
            raise LabelwiseError(
                f"ray: no batch finished for {stall_seconds():g} s (workers waiting for resources, see `ray status`, "
                f"or one batch slower than that); set ${STALL_ENV} to wait longer"
            ) from None
        cause = labelwise_cause(exc)
        if cause is None or cause is exc:
            raise
        raise type(cause)(str(cause)) from None


def map_batches(
    engine: Engine,
    columns: Mapping[str, np.ndarray],
    worker: type,
    *,
    constructor_kwargs: Mapping[str, Any],
    batch_size: int,
) -> Iterator[dict[str, np.ndarray]]:
    """Stream ``columns`` (equal-length arrays) through a pool of ``worker`` actors, yielding each
    finished batch (a dict of arrays) as it arrives, in no particular order.

    ``worker(**constructor_kwargs, threads=…)`` is built once per actor; ``worker(batch)`` maps a
    dict of arrays to a dict of arrays. Carry a row index in ``columns`` to put the rows back in order.
    """
    ray = connect(engine)
    share = actor_share(ray)
    n = len(next(iter(columns.values()))) if columns else 0
    if n == 0:
        return
    frame = pd.DataFrame({k: list(v) if np.ndim(v) > 1 else v for k, v in columns.items()})
    per_block = batch_size * max(1, min(8, n // (batch_size * share.count * 4)))
    blocks = [frame.iloc[i : i + per_block] for i in range(0, n, per_block)]
    size = max(1, min(share.count, len(blocks)))
    log.info(
        "ray: %d rows in %d blocks through %d actor(s) of %s CPU / %s GPU",
        n,
        len(blocks),
        size,
        share.num_cpus,
        share.num_gpus,
    )
    data = ray.data.from_pandas(blocks).map_batches(
        worker,
        batch_size=batch_size,
        batch_format="numpy",
        fn_constructor_kwargs={**constructor_kwargs, "threads": share.threads},
        compute=ray.data.ActorPoolStrategy(size=size),
        num_cpus=share.num_cpus,
        num_gpus=share.num_gpus or None,
    )
    with user_errors_from_ray():
        yield from data.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1)


def run_tasks(
    engine: Engine,
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    shared: Mapping[str, Any] | None = None,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``[fn(item, **shared) for item in items]``, one Ray task per item.

    ``shared`` values (arrays) are put into the object store once and reach every task; each
    task gets an equal share of the cluster (see :func:`task_share`) and ``fn`` is called with
    ``threads=`` that share's torch threads. A task whose worker dies is rerun up to
    :data:`TASK_RETRIES` times; ``on_done(i, result)`` runs on the driver as each finishes.
    """
    ray = connect(engine)
    share = task_share(ray, len(items))
    refs = {k: ray.put(v) for k, v in (shared or {}).items()}
    remote = ray.remote(_call).options(
        num_cpus=share.num_cpus, num_gpus=share.num_gpus, max_retries=TASK_RETRIES, retry_exceptions=False
    )
    log.info(
        "ray: %d task(s) of %s CPU / %s GPU, %d at a time", len(items), share.num_cpus, share.num_gpus, share.count
    )
    pending = {remote.remote(fn, item, share.threads, **refs): i for i, item in enumerate(items)}
    results: list[Any] = [None] * len(items)
    with user_errors_from_ray():
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            results[i] = ray.get(done[0])
            if on_done is not None:
                on_done(i, results[i])
    return results


def _call(fn: Callable[..., Any], item: Any, threads: int, **shared: Any) -> Any:
    set_threads(threads)
    return fn(item, **shared)
