"""Database plumbing shared by the web app, the CLI and the workers.

Models live on the plain :class:`Base` below so that the core can be used without Flask;
flask-sqlalchemy adopts it as its ``model_class``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator

import orjson
from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Tapak table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC that comes back timezone-aware, on SQLite too.

    SQLite has no timezone type and drops the offset; naive datetimes are refused on the way
    in so a device's local time can never be stored as if it were UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone-aware value")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    # On SQLite each of the two steps above and SQLite's string conversion below them is a
    # Python call per value: one function does both, writing and reading SQLAlchemy's own
    # format (``2026-02-03 02:00:00.000000``), for the worker's thousands of values a batch.
    def bind_processor(self, dialect):
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value):
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime: give a timezone-aware value")
            return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return process

    def result_processor(self, dialect, coltype):
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        parse, utc = dt.datetime.fromisoformat, dt.UTC

        def process(value):
            if value is None:
                return None
            value = parse(value)
            return value.replace(tzinfo=utc) if value.tzinfo is None else value.astimezone(utc)
        return process


# A JSON document column: JSONB on PostgreSQL, JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


def json_loads(text: str | bytes):
    """JSON columns parsed by orjson, several times faster than ``json.loads`` on the 2 KB
    records and answers the worker reads by the hundred; ``json.loads`` takes what orjson
    refuses (NaN, integers beyond 64 bits), so every stored document still reads back."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def json_dumps(value) -> str:
    """JSON columns written by orjson: integer keys become strings as with ``json.dumps``;
    dates become ISO 8601 strings and NaN null, where ``json.dumps`` refused them or wrote
    what PostgreSQL refuses. What orjson cannot write goes to ``json.dumps``, which raises."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


# Options for every engine: JSON columns read and written with orjson.
ENGINE_OPTIONS = {"json_deserializer": json_loads, "json_serializer": json_dumps}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Execution option that asks for ``BEGIN IMMEDIATE`` on SQLite (see write_transaction).
_IMMEDIATE = "tapak_begin_immediate"


def configure_engine(engine: Engine, busy_timeout_ms: int = 30_000, cache_mb: int = 64,
                     mmap_mb: int = 1024, wal_autocheckpoint: int = 10_000) -> None:
    """Give a SQLite engine WAL, a busy timeout, foreign keys and explicit transactions.

    pysqlite's own transaction handling issues ``BEGIN`` lazily and never ``BEGIN IMMEDIATE``;
    it is switched off here and SQLAlchemy's ``begin`` event emits the statement instead.
    SQLite's own page cache is 2 MB by default; against a registry of a million families (a
    4 GB file) most lookups would then be a ``read`` of the file: each connection gets
    ``cache_mb`` of cache and reads through ``mmap_mb`` of memory map instead. The WAL is
    copied back into the database (a checkpoint, with an fsync) once it holds
    ``wal_autocheckpoint`` pages: SQLite's 1,000 (4 MB) made the reconciliation worker, which
    writes that much every two batches, spend a fifth of its time in checkpoints.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute(f"PRAGMA cache_size = {-1024 * int(cache_mb)}")
        cur.execute(f"PRAGMA mmap_size = {1024 * 1024 * int(mmap_mb)}")
        cur.execute(f"PRAGMA wal_autocheckpoint = {int(wal_autocheckpoint)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get(_IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.contextmanager
def background_checkpoints(engine: Engine, every: float = 0.5) -> Iterator[None]:
    """While the block runs, checkpoint a SQLite WAL from a thread of its own (PASSIVE: it
    never blocks a writer), so that the block's commits seldom reach ``wal_autocheckpoint``
    and do the copying and the fsyncs themselves. The thread waits on the disk with the GIL
    released. Nothing happens on other databases, or in memory."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    stop = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            while not stop.wait(every):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or locked: the next round, or the writers' own checkpoints
        finally:
            conn.close()

    thread = threading.Thread(target=run, name="sqlite-checkpoints", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def database_unreachable(exc: BaseException) -> bool:
    """A lost, refused or shutting-down database connection (PostgreSQL restarting, say):
    no row's fault, so a caller waits and tries again rather than blame its input. A deadlock
    or a constraint is not one (the reconciliation worker isolates the visit that caused it)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, InterfaceError):
        return True
    orig = getattr(exc, "orig", None)
    if not isinstance(exc, OperationalError) or not type(orig).__module__.startswith("psycopg"):
        return False
    # No SQLSTATE: the connection failed (refused, reset). 08: connection exception; 57P:
    # operator intervention (admin or crash shutdown, cannot connect now).
    state = getattr(orig, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


@contextlib.contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """Run a block as one write transaction, committed at the end or rolled back on error.

    On SQLite it starts with ``BEGIN IMMEDIATE`` so that the write lock is taken up front: a
    deferred transaction that read first and writes later can fail with SQLITE_BUSY, which the
    busy timeout cannot cure. Any read transaction already open is closed first.
    """
    if isinstance(session, scoped_session):
        session = session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={_IMMEDIATE: True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def scratch_postgres(server_url: str, name: str) -> tuple[str, Callable[[], None]]:
    """Create the database ``name`` beside the one ``server_url`` names (dropping a leftover of
    the same name first); return its URL and a function that drops it again.

    For tests and benchmarks, which each work in a database of their own so that runs never
    meet. Plain ``postgresql://`` URLs are routed to psycopg 3.
    """
    url = make_url(server_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() != "postgresql":
        raise ValueError("a scratch database needs a PostgreSQL server URL")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except BaseException:
        admin.dispose()
        raise

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop
