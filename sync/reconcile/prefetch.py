"""Reading the next batch's visits ahead, on SQLite, while the worker reconciles this one.

A quarter to a third of a batch's time is SQLite reading pages no other visit of the run
touches, and SQLite reads with the GIL released. While ``drain`` reconciles a batch, a thread
of the worker reads, on a connection of its own and with the worker's own statements
(``worker._read_ahead``), the rows the next batch will start with: the visits next in the queue
(their columns the worker reads, which never change once a visit is queued) and their photos
(a queued visit has all of its photos, and a photo's hashes never change). Only these are read
ahead: the records, families and every lookup that a push, an import or this
very batch can change are read by the batch's own transaction, as before.

What is read ahead is a guess: the next batch is claimed by its own transaction, as always, and
a visit it claims that was not read ahead (a push in between, another worker on the queue) is
read then. SQLite's WAL gives the reader the database as the last commit left it, which is
what the batch's own transaction sees, since the batch holds the only write lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

KEY = "tapak_prefetch"  # in Session.info while ``reading_ahead`` runs

# What the worker reads ahead: (connection, uuids the batch claimed, limit) -> uuid -> data.
Reader = Callable[[Connection, set, int], dict]


class ReadAhead:
    """One thread, one connection of its own: ``start`` runs the worker's ``read`` for the
    visits after the ones a batch claimed; ``take`` gives what the last ``start`` read."""

    def __init__(self, engine: Engine, read: Reader):
        self._conn = engine.connect()
        self._read_with = read
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self._future: Future | None = None

    def start(self, claimed: list[str], limit: int) -> None:
        self._future = self._pool.submit(self._read, set(claimed), limit)

    def take(self) -> dict:
        future, self._future = self._future, None
        if future is None:
            return {}
        try:
            return future.result()
        except DBAPIError:
            return {}  # a guess only: the batch reads what it lacks

    def close(self) -> None:
        self.take()
        self._pool.shutdown()
        self._conn.close()

    def _read(self, claimed: set[str], limit: int) -> dict:
        with self._conn.begin():  # one snapshot; it writes nothing
            return self._read_with(self._conn, claimed, limit)


@contextlib.contextmanager
def reading_ahead(session: Session, read: Reader) -> Iterator[None]:
    """While the block runs, the worker's batches on a SQLite file read the next one ahead
    with ``read``."""
    engine = session.get_bind()
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    ahead = ReadAhead(engine, read)
    session.info[KEY] = ahead
    try:
        yield
    finally:
        session.info.pop(KEY, None)
        ahead.close()
