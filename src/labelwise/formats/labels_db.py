"""The labeling app's database (``DIR/labels.db``, or a PostgreSQL database): schema, migration, connection.

SQLAlchemy Core, one code path for both. SQLite runs in WAL mode with ``synchronous=FULL`` (an
acknowledged answer survives ``kill -9`` and power loss) and a busy timeout; SQLAlchemy, not the
``sqlite3`` module, emits ``BEGIN`` so that a write transaction can be ``BEGIN IMMEDIATE`` (it takes the
write lock first, so a claim never reads a state another claim is about to change). On PostgreSQL a
write transaction takes a transaction-scoped advisory lock for the same effect. ``crowd`` reads the
answers through :func:`read_answers`, without the app.

Tables (schema version 2): ``meta`` (schema_version, config JSON), ``tasks`` (one per image; ``target``
is the overlap wanted, ``counted``/``leased`` the kind=label answers of active annotators and the live
leases, kept by the app in the same transactions that change them), ``annotators`` (sha256 of the
token only), ``leases``, ``answers`` (one per task and annotator, edits bump ``revision``) and
``events``; ``loop_rounds``, ``loop_asked`` and ``loop_history`` hold ``labelwise loop``'s state
(version 2).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import LabelwiseError, MissingExtraError

try:
    import sqlalchemy as sa
    from sqlalchemy import Column, Double, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
    from sqlalchemy.engine import URL, Connection, Engine, make_url
except ImportError as exc:  # pragma: no cover - the lean install
    raise MissingExtraError("the labels database needs 'sqlalchemy': pip install 'labelwise[label]'") from exc

SCHEMA_VERSION = 2
ROLES = ("task", "training", "exam", "honeypot")
KINDS = ("label", "skip", "unsure", "not")
#: PostgreSQL advisory lock that serializes the app's write transactions (any constant, the same everywhere).
ADVISORY_LOCK = 0x6C61_6265_6C77

metadata = sa.MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sample_id", Text, nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("gold_label", Text),
    Column("hint", Text),
    Column("given_label", Text),
    Column("suggestion", Text),
    Column("suggestion_score", Double),
    Column("reason", Text),
    Column("position", Integer, nullable=False),
    Column("target", Integer, nullable=False),
    Column("counted", Integer, nullable=False, server_default="0"),
    Column("leased", Integer, nullable=False, server_default="0"),
)
# "next task" walks this index in breadth-first order and stops at the first row it may hand out
Index("ix_tasks_open", tasks.c.role, tasks.c.counted + tasks.c.leased, tasks.c.position)
Index("ix_tasks_suggestion", tasks.c.role, tasks.c.suggestion, tasks.c.position)

annotators = Table(
    "annotators",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("is_admin", sa.Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False, default="active"),
    Column("status_reason", Text),
    Column("created_at", Double, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=False),
    Column("annotator_id", Integer, ForeignKey("annotators.id"), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    UniqueConstraint("task_id", "annotator_id", name="uq_leases_task_annotator"),
)
Index("ix_leases_expires", leases.c.expires_at)
Index("ix_leases_annotator", leases.c.annotator_id, leases.c.created_at)

answers = Table(
    "answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=False),
    Column("annotator_id", Integer, ForeignKey("annotators.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("label", Text),
    Column("seconds", Double),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    UniqueConstraint("task_id", "annotator_id", name="uq_answers_task_annotator"),
)
Index("ix_answers_annotator", answers.c.annotator_id, answers.c.id)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("annotator_id", Integer),
    Column("task_id", Integer),
    Column("kind", String(32), nullable=False),
    Column("detail", Text),
)
Index("ix_events_kind", events.c.kind, events.c.id)

loop_rounds = Table(
    "loop_rounds",
    metadata,
    Column("round", Integer, primary_key=True, autoincrement=False),
    Column("stage", String(16), nullable=False),  # labeling → decided
    Column("asked", Integer, nullable=False),
    Column("answers", Integer, nullable=False, server_default="0"),
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double),
    Column("metrics", Text),  # JSON: the round's figures
)

loop_asked = Table(
    "loop_asked",
    metadata,
    Column("round", Integer, ForeignKey("loop_rounds.round"), primary_key=True, autoincrement=False),
    Column("sample_id", Text, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("score", Double, nullable=False),
    Column("label_before", Text),
    Column("guess", Text),
)

loop_history = Table(
    "loop_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("round", Integer, ForeignKey("loop_rounds.round"), nullable=False),
    Column("sample_id", Text, nullable=False),
    Column("old_label", Text),
    Column("new_label", Text),
    Column("source", String(16), nullable=False),
    Column("confidence", Double),
    Column("evidence", Text),
)
Index("ix_loop_history_round", loop_history.c.round, loop_history.c.id)

LOOP_TABLES = (loop_rounds, loop_asked, loop_history)


def _add_loop_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(LOOP_TABLES))


#: ``MIGRATIONS[v](conn)`` brings a version-``v`` database to ``v + 1`` (inside the migration's transaction).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _add_loop_tables}


def database_url(url_or_path: str | os.PathLike[str]) -> URL:
    """The SQLAlchemy URL of a file path (SQLite) or a ``sqlite://`` / ``postgresql://`` URL (psycopg 3).

    >>> database_url("postgresql://u:p@h/db").drivername, database_url("/x/labels.db").database
    ('postgresql+psycopg', '/x/labels.db')
    """
    text = os.fspath(url_or_path)
    if "://" not in text:
        if not text or os.path.isdir(text):
            raise LabelwiseError(f"{text!r}: give a database file (DIR/labels.db) or URL, not a folder")
        return URL.create("sqlite", database=os.path.abspath(text))
    try:
        url = make_url(text)
    except sa.exc.ArgumentError:
        raise LabelwiseError(f"{text!r} is neither a database URL nor a file path") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise LabelwiseError(f"{where(url)}: labelwise stores labels in SQLite or PostgreSQL, not {backend}")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise LabelwiseError("an in-memory SQLite database cannot be shared by the app's threads; give a file")
    return url


def where(url: URL | Engine) -> str:
    """The database for messages: the file of SQLite, the URL without its password otherwise."""
    url = url.url if isinstance(url, Engine) else url
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def connect(url_or_path: str | os.PathLike[str]) -> Engine:
    """An Engine (a thread-safe pool) for the labels database; SQLite gets WAL, synchronous=FULL, busy_timeout."""
    url = database_url(url_or_path)
    if url.get_backend_name() == "postgresql":
        require_psycopg()
        return sa.create_engine(url, pool_size=10, max_overflow=30, pool_timeout=60, pool_pre_ping=True)
    folder = Path(str(url.database)).parent
    if not folder.is_dir():
        raise LabelwiseError(f"{url.database}: the folder {folder} does not exist")
    engine = sa.create_engine(url, pool_size=10, max_overflow=30, pool_timeout=60)
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            "a PostgreSQL labels database needs psycopg: pip install 'labelwise[postgres]'"
        ) from exc


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (see _sqlite_begin), not the driver
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("labelwise_write", False):
        # a commit that loses nothing of value on power loss (a lease) skips the fsync; the next durable
        # commit syncs the write-ahead log with it
        conn.exec_driver_sql(f"PRAGMA synchronous = {'FULL' if options.get('labelwise_durable', True) else 'NORMAL'}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


_ADVISORY_LOCK = sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK))
_NOT_DURABLE = sa.text("SET LOCAL synchronous_commit TO OFF")


@contextmanager
def write_transaction(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its first statement; commits on exit.
    ``durable=False``: the commit may return before it reaches the disk (it survives a killed process,
    not a power cut; SQLite syncs it with the next durable commit)."""
    with engine.connect() as conn:
        conn.execution_options(labelwise_write=True, labelwise_durable=durable)
        with conn.begin():
            if not is_sqlite(conn):
                conn.execute(_ADVISORY_LOCK)
                if not durable:
                    conn.execute(_NOT_DURABLE)
            yield conn


def schema_version(conn: Connection) -> int | None:
    """The stored schema version; None for a database without labelwise tables."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("meta"):
        clash = [t for t in metadata.tables if inspector.has_table(t)]
        if clash:
            raise LabelwiseError(
                f"{where(conn.engine)}: holds table(s) {', '.join(clash)} but is not a labelwise labels database"
            )
        return None
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    if value is None:
        raise LabelwiseError(
            f"{where(conn.engine)}: a meta table without schema_version; not a labelwise labels database"
        )
    return int(value)


def migrate(engine: Engine) -> int:
    """Create the tables, or bring an older schema to :data:`SCHEMA_VERSION`; returns the version found
    (0 for a new database). A newer schema than this labelwise knows is refused."""
    with write_transaction(engine) as conn:
        found = schema_version(conn)
        if found is None:
            metadata.create_all(conn)
            conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            return 0
        if found > SCHEMA_VERSION:
            raise LabelwiseError(
                f"{where(engine)}: labels database schema version {found} is newer than this labelwise "
                f"reads ({SCHEMA_VERSION}); upgrade labelwise"
            )
        for version in range(found, SCHEMA_VERSION):
            if version not in MIGRATIONS:
                raise LabelwiseError(f"{where(engine)}: no migration from labels database schema version {version}")
            MIGRATIONS[version](conn)
        if found < SCHEMA_VERSION:
            conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        return found


def analyze(conn: Connection) -> None:
    """Fresh planner statistics on PostgreSQL (without them a new project's claims scan every task)."""
    if not is_sqlite(conn):
        conn.exec_driver_sql("ANALYZE tasks, answers, leases, annotators")


def read_config(conn: Connection) -> dict[str, Any] | None:
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "config")).scalar()
    return None if value is None else dict(json.loads(value))


def answer_rows(conn: Connection, *, include_excluded: bool = False) -> pd.DataFrame:
    """Every answer, one row: answer_id, sample_id, worker, label, kind, seconds, created_at, updated_at,
    revision, role, gold_label, excluded (the annotator is stopped: their answers count nowhere)."""
    excluded = annotators.c.status != "active"
    query = (
        sa.select(
            answers.c.id.label("answer_id"),
            tasks.c.sample_id,
            annotators.c.name.label("worker"),
            answers.c.label,
            answers.c.kind,
            answers.c.seconds,
            answers.c.created_at,
            answers.c.updated_at,
            answers.c.revision,
            tasks.c.role,
            tasks.c.gold_label,
            excluded.label("excluded"),
        )
        .select_from(answers.join(tasks, tasks.c.id == answers.c.task_id))
        .join(annotators, annotators.c.id == answers.c.annotator_id)
        .order_by(answers.c.id)
    )
    if not include_excluded:
        query = query.where(~excluded)
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=list(query.selected_columns.keys()))
    frame["excluded"] = frame["excluded"].astype(bool)
    return frame


def read_answers(url_or_path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The answers of a labels database for aggregation: ``task, worker, label, source`` (kind=label answers
    on real, honeypot and exam tasks of annotators not stopped) and the gold labels (task → label) of the
    honeypot and exam tasks. Training answers (given with hints) are left out."""
    text = os.fspath(url_or_path)
    if "://" not in text and not Path(text).is_file():
        raise LabelwiseError(f"{text}: no such labels database")
    engine = connect(url_or_path)
    try:
        migrate(engine)
        with engine.connect() as conn:
            if read_config(conn) is None:
                raise LabelwiseError(f"{where(engine)}: no labeling project in this database")
            rows = answer_rows(conn)
            gold_rows = conn.execute(
                sa.select(tasks.c.sample_id, tasks.c.gold_label).where(
                    tasks.c.role.in_(("honeypot", "exam")), tasks.c.gold_label.is_not(None)
                )
            ).all()
    finally:
        engine.dispose()
    rows = rows[(rows["kind"] == "label") & rows["role"].isin(["task", "honeypot", "exam"])]
    table = pd.DataFrame(
        {
            "task": rows["sample_id"].astype(str).to_numpy(),
            "worker": rows["worker"].astype(str).to_numpy(),
            "label": rows["label"].astype(str).to_numpy(),
            "source": [f"{where(engine)}, answer {i}" for i in rows["answer_id"]],
        }
    )
    gold = pd.Series(
        [g for _, g in gold_rows], index=pd.Index([s for s, _ in gold_rows], name="task"), name="label", dtype=object
    )
    return table, gold
