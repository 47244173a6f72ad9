"""One leader among several processes, by a lock in the database (the scheduler's, issue 19).

Every machine may run ``flask --app server scheduler run``; only the process that holds the lock
runs jobs, the others poll until it is free. Two locks, chosen by the database:

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection of its own,
  held for as long as the leadership. A holder killed with ``kill -9`` closes its socket and the
  server frees the lock at once; a machine that vanishes is dropped by the server's TCP
  keepalives, set on that session to about a lease. When the connection breaks (a PostgreSQL
  restart ends every session) the lock is gone: the holder learns it at its next check and
  steps down, and the lock is taken again by whoever asks first.
- SQLite (one machine): a lease row in ``scheduler_lease``, renewed by its holder and taken over
  once ``expires_at`` has passed. After a ``kill -9`` a standby takes over within a lease and a
  poll (30 s + 10 s by default).

A holder counts itself leader only until ``lease - renew`` seconds after its last confirmed
check, so a holder that can no longer reach the database stops before anyone else may start.
Callers check :meth:`LeaderLock.confirm` right before each job, so no job starts on a process
that has lost the lock. The row also records who leads (holder, host, pid), for operators.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from sqlalchemy import Connection, Engine, create_engine, delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from sync.db import _IMMEDIATE, utcnow
from sync.models.scheduler import SchedulerLease

log = logging.getLogger("tapak.leader")

LEASE = SchedulerLease.__table__


class LeaderLock:
    """A named lock one process at a time holds. Thread-safe: the polling loop renews it while
    job threads call :meth:`confirm`."""

    kind = "lock"

    def __init__(self, engine: Engine, name: str = "scheduler", lease_seconds: float = 30,
                 renew_seconds: float = 10) -> None:
        if renew_seconds <= 0 or lease_seconds < 2 * renew_seconds:
            raise ValueError("the lease must last at least two renewals")
        self.engine = engine
        self.name = name
        self.lease_seconds = float(lease_seconds)
        self.renew_seconds = float(renew_seconds)
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.holder = f"{self.pid}-{uuid.uuid4().hex[:12]}"
        self._valid_until = 0.0  # time.monotonic() until which this process may act as leader
        self._mutex = threading.RLock()
        self._reachable = True

    def _unreachable(self, exc: Exception) -> None:
        """Log once per outage, not at every poll."""
        if self._reachable:
            log.warning("leader lock unreachable", extra={
                **self._describe(), "error": type(exc).__name__,
                "leading_for_s": round(max(0.0, self._valid_until - time.monotonic()), 1)})
        self._reachable = False

    def _reached(self) -> None:
        if not self._reachable:
            log.info("leader lock reachable again", extra=self._describe())
        self._reachable = True

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._valid_until

    def _confirmed(self, started: float) -> None:
        """The lock was confirmed by a check that began at ``started`` (monotonic)."""
        self._valid_until = started + self.lease_seconds - self.renew_seconds

    def _describe(self) -> dict:
        return {"lock": self.name, "kind": self.kind, "holder": self.holder, "host": self.host,
                "pid": self.pid}

    def try_acquire(self) -> bool:
        """Take the lock, or keep it; return whether this process leads now."""
        raise NotImplementedError

    def confirm(self) -> bool:
        """Whether this process still leads, checked against the database (before a job)."""
        with self._mutex:
            return self.leading and self.try_acquire()

    def release(self) -> None:
        """Give the lock up, so that a standby takes over at its next poll."""
        raise NotImplementedError


class LeaseLock(LeaderLock):
    """A lease row: SQLite's lock. The holder's and the standbys' clocks must agree (on SQLite
    they are one machine's)."""

    kind = "lease"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite) that waits for other writers
        for half a renewal, not the app's 30 s busy timeout."""
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
            if raw is not None:
                busy = raw.execute("PRAGMA busy_timeout").fetchone()[0]
                raw.execute(f"PRAGMA busy_timeout = {int(self.renew_seconds * 500)}")
            try:
                with conn.execution_options(**{_IMMEDIATE: True}).begin():
                    yield conn
            finally:
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout = {int(busy)}")

    def try_acquire(self) -> bool:
        with self._mutex:
            started = time.monotonic()
            was = self.leading
            now = utcnow()
            until = now + _seconds(self.lease_seconds)
            try:
                with self._transaction() as conn:
                    row = conn.execute(select(LEASE).where(LEASE.c.name == self.name)).first()
                    if row is None:
                        conn.execute(LEASE.insert().values(
                            name=self.name, holder=self.holder, host=self.host, pid=self.pid,
                            acquired_at=now, renewed_at=now, expires_at=until))
                        got, previous = True, None
                    elif row.holder == self.holder:
                        conn.execute(update(LEASE).where(LEASE.c.name == self.name)
                                     .values(renewed_at=now, expires_at=until))
                        got, previous = True, None
                    elif row.expires_at <= now:
                        conn.execute(update(LEASE).where(LEASE.c.name == self.name).values(
                            holder=self.holder, host=self.host, pid=self.pid, acquired_at=now,
                            renewed_at=now, expires_at=until))
                        got, previous = True, {"previous_host": row.host,
                                               "previous_pid": row.pid}
                    else:
                        got, previous = False, None
            except SQLAlchemyError as exc:
                self._unreachable(exc)
                return self.leading
            self._reached()
            if got:
                self._confirmed(started)
                if not was:
                    log.info("leadership acquired", extra={**self._describe(), **(previous or {})})
            else:
                self._valid_until = 0.0
                if was:
                    log.warning("leadership lost", extra={**self._describe(),
                                                         "new_host": row.host,
                                                         "new_pid": row.pid})
            return got

    def release(self) -> None:
        with self._mutex:
            was = self.leading
            self._valid_until = 0.0
            try:
                with self._transaction() as conn:
                    conn.execute(update(LEASE).where(LEASE.c.name == self.name,
                                                     LEASE.c.holder == self.holder)
                                 .values(expires_at=utcnow()))
            except SQLAlchemyError as exc:
                log.warning("leader lock not released", extra={**self._describe(),
                                                               "error": type(exc).__name__})
                return
            if was:
                log.info("leadership released", extra=self._describe())


class AdvisoryLock(LeaderLock):
    """A PostgreSQL session advisory lock on a connection of its own."""

    kind = "advisory"

    def __init__(self, engine: Engine, name: str = "scheduler", lease_seconds: float = 30,
                 renew_seconds: float = 10) -> None:
        super().__init__(engine, name, lease_seconds, renew_seconds)
        digest = hashlib.sha256(f"tapak:{name}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        # A connection of its own, never pooled: its session is the lock.
        self._engine = create_engine(engine.url, poolclass=NullPool,
                                     isolation_level="AUTOCOMMIT",
                                     connect_args=self._connect_args())
        self._conn = None

    def _connect_args(self) -> dict:
        """The client gives up on a silent server within about a renewal."""
        return {"application_name": "tapak-leader",
                "connect_timeout": max(2, int(self.renew_seconds)),
                "keepalives": 1, "keepalives_idle": max(1, int(self.renew_seconds)),
                "keepalives_interval": 1, "keepalives_count": 3,
                "tcp_user_timeout": int(self.renew_seconds * 1000)}

    def _connect(self):
        conn = self._engine.connect()
        # The server drops a vanished holder (and its lock) after about a lease of silence,
        # later than the holder stops counting itself leader (lease - renew after its last check).
        idle = max(1, int(self.lease_seconds - self.renew_seconds))
        conn.exec_driver_sql(f"SET tcp_keepalives_idle = {idle}")
        conn.exec_driver_sql("SET tcp_keepalives_interval = 1")
        conn.exec_driver_sql(f"SET tcp_keepalives_count = {max(1, int(self.renew_seconds))}")
        conn.exec_driver_sql(f"SET statement_timeout = {int(self.renew_seconds * 1000)}")
        return conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def _holds(self, conn) -> bool:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND objsubid = 1"
            " AND ((classid::bigint << 32) | objid::bigint) = :key"),
            {"key": self.key}).scalar())

    def _record(self, conn, acquired: bool) -> None:
        """Who leads, in scheduler_lease, for operators (the lock itself is the session's)."""
        from sqlalchemy.dialects.postgresql import insert

        now = utcnow()
        until = now + _seconds(self.lease_seconds)
        if acquired:
            stmt = insert(LEASE).values(name=self.name, holder=self.holder, host=self.host,
                                        pid=self.pid, acquired_at=now, renewed_at=now,
                                        expires_at=until)
            conn.execute(stmt.on_conflict_do_update(index_elements=[LEASE.c.name], set_={
                "holder": stmt.excluded.holder, "host": stmt.excluded.host,
                "pid": stmt.excluded.pid, "acquired_at": now, "renewed_at": now,
                "expires_at": until}))
        else:
            conn.execute(update(LEASE).where(LEASE.c.name == self.name,
                                             LEASE.c.holder == self.holder)
                         .values(renewed_at=now, expires_at=until))

    def try_acquire(self) -> bool:
        with self._mutex:
            started = time.monotonic()
            was = self.leading
            try:
                if self._conn is None:
                    self._conn = self._connect()
                conn = self._conn
                if was:
                    got = self._holds(conn)
                else:
                    got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                            {"key": self.key}).scalar())
                if got:
                    self._record(conn, acquired=not was)
            except SQLAlchemyError as exc:
                # The session is gone (PostgreSQL restarted, the network broke): so is its lock.
                self._drop_connection()
                self._valid_until = 0.0
                if was:
                    log.warning("leadership lost", extra={**self._describe(),
                                                         "reason": "connection",
                                                         "error": type(exc).__name__})
                self._unreachable(exc)
                return False
            self._reached()
            if got:
                self._confirmed(started)
                if not was:
                    log.info("leadership acquired", extra=self._describe())
            else:
                self._valid_until = 0.0
                if was:
                    log.warning("leadership lost", extra={**self._describe(),
                                                         "reason": "lock not held"})
                    self._drop_connection()
            return got

    def release(self) -> None:
        with self._mutex:
            was = self.leading
            self._valid_until = 0.0
            if self._conn is not None:
                try:
                    if was:
                        self._conn.execute(delete(LEASE).where(LEASE.c.name == self.name,
                                                               LEASE.c.holder == self.holder))
                    self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
                    self._conn.close()
                except SQLAlchemyError:
                    self._drop_connection()
                self._conn = None
            self._engine.dispose()
            if was:
                log.info("leadership released", extra=self._describe())


def _seconds(n: float):
    import datetime as dt

    return dt.timedelta(seconds=n)


def leader_lock(engine: Engine, name: str = "scheduler", lease_seconds: float = 30,
                renew_seconds: float = 10) -> LeaderLock:
    """The lock for ``engine``'s database: advisory on PostgreSQL, a lease row elsewhere."""
    cls = AdvisoryLock if engine.dialect.name == "postgresql" else LeaseLock
    return cls(engine, name, lease_seconds, renew_seconds)


def follow(lock: LeaderLock, on_gain: Callable[[], None], on_loss: Callable[[], None],
           stop: threading.Event) -> None:
    """Poll the lock every ``renew_seconds`` until ``stop`` is set: ``on_gain`` when this
    process becomes leader, ``on_loss`` when it stops being one (also when stopped). The lock
    is not released here: the caller does, once the jobs in flight are done."""
    leading = False
    while not stop.is_set():
        now = lock.try_acquire()
        if now and not leading:
            on_gain()
        elif leading and not now:
            on_loss()
        leading = now
        # A standby polls as often as the holder renews; the holder renews well inside its lease.
        stop.wait(lock.renew_seconds)
    if leading:
        on_loss()
