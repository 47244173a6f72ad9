"""The reconciliation worker through a database outage (PostgreSQL restarting, say).

The soak (bench/soak.py) saw both ``reconcile run`` workers exit on a PostgreSQL restart: only
a supervisor's restart brought reconciliation back. A lost or refused connection is no visit's
fault, so the worker waits and tries again, and no attempt is counted against the visits.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from sync.db import database_unreachable

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once the socket closes


def _error(engine, sql: str) -> Exception:
    with pytest.raises(Exception) as caught, engine.connect() as conn:
        conn.execute(text(sql))
    return caught.value


def test_refused_and_dropped_connections_are_an_outage_a_visits_own_error_is_not(db):
    refused = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/x")
    error = _error(refused, "SELECT 1")
    assert isinstance(error, OperationalError) and database_unreachable(error)
    assert not database_unreachable(ValueError("a visit's bad answer"))
    url = db.get_bind().url
    if url.get_backend_name() != "postgresql":
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:  # its server process ended under it, as in a restart
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            with pytest.raises(Exception) as caught:
                conn.execute(text("SELECT 1"))
        assert database_unreachable(caught.value)
        broken = _error(engine, "SELECT 1/0")  # an error of the statement, not the connection
        assert not database_unreachable(broken)
    finally:
        engine.dispose()


def test_a_worker_waits_out_an_unreachable_database_instead_of_exiting(tmp_path):
    env = {**os.environ, "DATABASE_URL":
           f"postgresql://postgres@127.0.0.1:{_closed_port()}/tapak",
           "TAPAK_INSTANCE": str(tmp_path), "LOG_LEVEL": "INFO"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "server", "reconcile",
                               "run", "--idle", "0.2"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)  # retries after 1 s and 2 s
        alive = worker.poll() is None
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=15)
    assert alive, err[-2000:]
    retries = [line for line in err.splitlines() if "database unreachable" in line]
    assert len(retries) >= 2, err[-2000:]
    assert '"retry_in_s": 1.0' in retries[0] and '"retry_in_s": 2.0' in retries[1]
