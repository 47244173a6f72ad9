"""Reading the next batch's visits ahead, on SQLite, while the worker reconciles this one.

A batch's time is about a third SQLite reading pages no other visit of the run touches, and
SQLite reads with the GIL released. While ``drain`` reconciles a batch, a thread of the worker
reads, on a connection of its own, the rows the next batch will start with: the visits next in
the queue (their columns the worker reads, which never change once a visit is queued) and
their photos (a queued visit has all of its photos, and a photo's hashes never change). Only
these are read ahead: the records, families and every lookup that a push, an import or this
very batch can change are read by the batch's own transaction, as before.

What is read ahead is a guess: the next batch is claimed by its own transaction, as always, and
a visit it claims that was not read ahead (a push in between, another worker on the queue) is
read then. SQLite's WAL gives the reader the database as the last commit left it, which is
what the batch's own transaction sees, since the batch holds the only write lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

KEY = "tapak_prefetch"  # in Session.info while ``reading_ahead`` runs

_QUEUE_SQL = ("SELECT uuid FROM visits WHERE status = 'queued' "
              "ORDER BY queued_at, uuid LIMIT ?")
_VISITS_SQL = ("SELECT uuid, household_id, form_id, form_version, enumerator_id, round_id, "
               "base_version, branch_id, trunk_version, started_at, ended_at, received_at, lat, "
               "lon, accuracy_m, answers FROM visits WHERE uuid IN ({})")
_PHOTOS_SQL = ("SELECT vp.visit_uuid, vp.field, vp.sha256, p.phash FROM visit_photos vp "
               "LEFT OUTER JOIN photos p ON p.sha256 = vp.sha256 WHERE vp.visit_uuid IN ({})")


class ReadAhead:
    """One thread, one read-only connection: ``start`` reads the queue's next visits after
    the given ones; ``take`` gives what the last ``start`` read (uuid -> (row, photos))."""

    def __init__(self, path: str, mmap_mb: int = 1024):
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute(f"PRAGMA mmap_size = {1024 * 1024 * int(mmap_mb)}")
        self._conn.execute("PRAGMA query_only = ON")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self._future: Future | None = None

    def start(self, claimed: list[str], limit: int) -> None:
        self._future = self._pool.submit(self._read, set(claimed), limit)

    def take(self) -> dict[str, tuple]:
        future, self._future = self._future, None
        if future is None:
            return {}
        try:
            return future.result()
        except sqlite3.Error:
            return {}  # a guess only: the batch reads what it lacks

    def close(self) -> None:
        self.take()
        self._pool.shutdown()
        self._conn.close()

    def _read(self, claimed: set[str], limit: int) -> dict[str, tuple]:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            uuids = [u for (u,) in conn.execute(_QUEUE_SQL, (limit + len(claimed),))
                     if u not in claimed][:limit]
            if not uuids:
                return {}
            marks = ", ".join("?" * len(uuids))
            out = {row[0]: (row, []) for row in conn.execute(_VISITS_SQL.format(marks), uuids)}
            for row in conn.execute(_PHOTOS_SQL.format(marks), uuids):
                out[row[0]][1].append(row[1:])
            return out
        finally:
            conn.execute("COMMIT")


@contextlib.contextmanager
def reading_ahead(session: Session, engine: Engine) -> Iterator[None]:
    """While the block runs, ``drain``'s batches on a SQLite file read the next one ahead."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    ahead = ReadAhead(path)
    session.info[KEY] = ahead
    try:
        yield
    finally:
        session.info.pop(KEY, None)
        ahead.close()

