"""``labelwise label``: a labeling project in a folder, served on this machine.

A project is a folder holding ``labels.db`` (or, for a team server, ``project.json`` naming a
PostgreSQL database), the queue it was made from and a run record. ``label(QUEUE, DIR)`` makes one
and serves it; ``label(DIR)`` continues it; ``add_annotator``, ``export`` and ``status`` work on a
project whether or not its server is running.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import write_json, write_table
from .._run import command_run
from ..crowd.importers.database import DB_FILE, PROJECT_FILE, database_of
from ..errors import LabelwiseError, require

log = logging.getLogger("labelwise")

ADMIN = "admin"
SERVER_FILE = "server.json"  # where the running server listens, for links made while it runs


@dataclass
class LabelingProject:
    """What :func:`label` did: the project folder, its database, the links it printed."""

    folder: Path
    db: str
    created: bool
    counts: dict[str, int]
    links: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    exported: Path | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "db": _public(self.db),
            "created": self.created,
            "counts": self.counts,
            "annotators_linked": sorted(k for k in self.links if k != ADMIN),
            "url": self.url,
            "exported": str(self.exported) if self.exported else None,
        }


def is_project(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a labeling project folder (or its database file)."""
    path = Path(path)
    return (path.is_dir() or path.is_file()) and database_of(path) is not None


def project_db(path: str | os.PathLike[str]) -> str:
    """The database of a project folder (or the database file itself): a file path or a URL."""
    found = database_of(Path(path))
    if found is None:
        raise LabelwiseError(
            f"{path}: not a labeling project (no {DB_FILE}); make one with `labelwise label QUEUE --out DIR`"
        )
    return found


def label(
    queue: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    images: str | os.PathLike[str] | None = None,
    gold: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | str | None = None,
    annotators: Sequence[str] | str | int | None = None,
    add_annotators: Sequence[str] = (),
    db: str | None = None,
    overlap: int = 1,
    max_overlap: int | None = None,
    confident: float = 0.9,
    lease: float = 120,
    exam_pass: float = 0.8,
    min_gold_accuracy: float | None = None,
    training_pct: float = 30,
    exam_pct: float = 20,
    page_size: int = 50,
    honeypots_per_page: int = 1,
    grid_size: int = 36,
    all_rows: bool = False,
    export: str | os.PathLike[str] | None = None,
    serve: bool = True,
    host: str = "127.0.0.1",
    port: int | None = None,
    on_ready: Callable[[LabelingProject], None] | None = None,
    random_state: int = 0,
) -> LabelingProject:
    """Make a labeling project from ``queue`` in ``out`` and serve it, or continue the project
    ``queue`` (a project folder) when ``out`` is not given.

    ``annotators`` (names, ``"alice,bob"`` or a count) get one private link each at creation;
    ``add_annotators`` adds more to an existing project. ``gold``: known answers, split into
    training / exam / honeypot tasks (``training_pct``, ``exam_pct``, the rest), with
    ``honeypots_per_page`` honeypots among every ``page_size`` tasks. ``overlap`` answers per
    task, up to ``max_overlap`` where the Dawid-Skene posterior stays below ``confident``;
    ``lease`` seconds before an unanswered task goes back to the pool; ``exam_pass`` (share of the
    exam right) before real tasks; an annotator whose honeypot accuracy falls below
    ``min_gold_accuracy`` is stopped and their answers are left out of aggregation.
    ``export`` (``answers.csv`` or a Label Studio ``export.json``) writes the results and returns
    without serving; ``serve=False`` prepares the project and returns. ``on_ready`` is called with
    the project (its links and URL) once the server listens.
    """
    require("sqlalchemy", "label", "the labeling app")
    from ..crowd.tasks import annotator_names
    from .store import Settings, Store

    creating = out is not None
    if not creating and not is_project(queue):
        raise LabelwiseError(f"{queue}: not a labeling project; to make one give --out DIR")
    folder = Path(out if creating else queue)  # type: ignore[arg-type]
    if folder.is_file():
        folder = folder.parent
    if creating and is_project(folder):
        raise LabelwiseError(f"{folder}: already holds a labeling project; continue it with `labelwise label {folder}`")
    url = db or (project_db(folder) if not creating else str(folder / DB_FILE))
    names = annotator_names(annotators) or []
    if ADMIN in [*names, *add_annotators]:
        raise LabelwiseError(f"annotators: {ADMIN!r} is the name of the admin's account; choose another")
    if creating:
        from .queue import read_queue

        found = read_queue(
            queue,
            images=images,
            gold=gold,
            classes=_class_list(classes),
            training_pct=training_pct,
            exam_pct=exam_pct,
            all_rows=all_rows,
            seed=random_state,
        )
        settings = Settings(
            classes=found.classes,
            overlap=overlap,
            max_overlap=max_overlap,
            confident=confident,
            lease_seconds=lease,
            exam_pass=exam_pass,
            min_gold_accuracy=min_gold_accuracy,
            page_size=page_size,
            per_page=honeypots_per_page,
            grid_size=grid_size,
            images_root=str(found.images_root),
            mode="review" if found.kind == "issues" else "label",
        )
        _check(settings, len(names))
    if not creating and (export is not None or add_annotators or not serve):
        return _manage(folder, url, add_annotators, export)
    arguments = {k: v for k, v in locals().items() if k in _RECORDED}
    with command_run(
        folder,
        "label",
        arguments,
        inputs=[queue if creating else None, gold],
        image_trees=[found.images_root] if creating else [],
        resume=True,
    ):
        if creating:
            store = Store.create(url, settings, found.tasks)
            write_table(folder / "queue.csv", found.tasks)
            if db is not None:
                write_json(folder / PROJECT_FILE, {"db": db})
                os.chmod(folder / PROJECT_FILE, 0o600)  # it may hold the database password
        else:
            store = Store.open(url)
        try:
            links = {name: store.add_annotator(name) for name in [*names, *add_annotators]}
            links[ADMIN] = (  # a new admin link at every start: whoever starts the server is the admin
                store.reset_token(ADMIN) if store.has_annotator(ADMIN) else store.add_annotator(ADMIN, admin=True)
            )
            project = LabelingProject(folder, url, creating, _counts(store), links=links)
            if not serve:
                return project
            from .server import make_app
            from .serving import serve as serve_forever

            app = make_app(store, store.settings.images_root)

            def ready(bound_port: int) -> None:
                project.url = f"http://{_shown_host(host)}:{bound_port}/"
                project.links = {
                    name: project.url + ("admin" if name == ADMIN else "") + f"#token={token}"
                    for name, token in links.items()
                }
                write_json(folder / SERVER_FILE, {"url": project.url, "pid": os.getpid()})
                log.info("labeling %s on %s", folder, project.url)
                if on_ready is not None:
                    on_ready(project)

            try:
                serve_forever(app, host=host, port=port or 0, on_ready=ready)
            finally:
                (folder / SERVER_FILE).unlink(missing_ok=True)  # links made later must not name a dead server
            return project
        finally:
            store.close()


def _manage(
    folder: Path, url: str, add_annotators: Sequence[str], export: str | os.PathLike[str] | None
) -> LabelingProject:
    """Add annotators and export answers, beside a server that may be running."""
    from .store import Store

    store = Store.open(url)
    try:
        base = _server_url(folder)
        links = {}
        for name in add_annotators:
            token = store.add_annotator(name)
            links[name] = f"{base}#token={token}" if base else token
        target = Path(export) if export is not None else None
        if target is not None:
            from .export import export_answers

            export_answers(store, target)
        return LabelingProject(folder, url, False, _counts(store), links=links, exported=target)
    finally:
        store.close()


def _server_url(folder: Path) -> str | None:
    import json

    try:
        return str(json.loads((folder / SERVER_FILE).read_text(encoding="utf-8"))["url"])
    except (OSError, ValueError, KeyError):
        return None


_RECORDED = {
    "queue",
    "out",
    "images",
    "gold",
    "classes",
    "annotators",
    "overlap",
    "max_overlap",
    "confident",
    "lease",
    "exam_pass",
    "min_gold_accuracy",
    "training_pct",
    "exam_pct",
    "page_size",
    "honeypots_per_page",
    "grid_size",
    "host",
    "port",
    "random_state",
}


def _class_list(classes: Sequence[str] | str | None) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, str):
        if os.path.isfile(classes):
            from ..data.table import read_classes

            return read_classes(classes)
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    return list(classes) or None


def _check(settings: Any, n_annotators: int) -> None:
    """What :class:`Settings` cannot know: the annotators it will have."""
    if n_annotators and settings.overlap > n_annotators:
        log.warning("--overlap %d with %d annotator(s): add more with --add-annotator", settings.overlap, n_annotators)


def _counts(store: Any) -> dict[str, int]:
    roles = store.task_table()["role"].value_counts()
    counts = {role: int(roles.get(role, 0)) for role in ("task", "training", "exam", "honeypot")}
    counts["answers"] = len(store.answers(include_excluded=True))
    return counts


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "localhost") else f"[{host}]" if ":" in host else host


def _public(db: str) -> str:
    """A database URL without its password."""
    if "://" not in db or "@" not in db:
        return db
    scheme, rest = db.split("://", 1)
    credentials, place = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{place}"
