"""UTC timestamps and SQLite write transactions."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from server.extensions import db
from server.models import User
from sync.db import UTCDateTime, write_transaction


def test_timestamps_come_back_aware_and_in_utc(db, make_user):
    user = make_user("ani")
    wib = dt.timezone(dt.timedelta(hours=7))
    user.created_at = dt.datetime(2026, 1, 5, 9, 12, tzinfo=wib)
    db.commit()
    db.expire_all()
    loaded = db.get(User, user.id).created_at
    assert loaded.tzinfo is not None and loaded.utcoffset() == dt.timedelta(0)
    assert loaded == dt.datetime(2026, 1, 5, 2, 12, tzinfo=dt.UTC)


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError):
        UTCDateTime().process_bind_param(dt.datetime(2026, 1, 1), sa.create_engine("sqlite://").dialect)


def test_sqlite_stores_timestamps_in_sqlalchemys_format_and_compares_them_as_text():
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("at", UTCDateTime))
    engine = sa.create_engine("sqlite://")
    table.metadata.create_all(engine)
    wib = dt.timezone(dt.timedelta(hours=7))
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"at": dt.datetime(2026, 2, 3, 9, 0, 5, 12, tzinfo=wib)},
                                      {"at": dt.datetime(2026, 2, 3, 2, 0, tzinfo=dt.UTC)},
                                      {"at": None}])
        assert conn.exec_driver_sql("SELECT at FROM t ORDER BY id").scalars().all() == [
            "2026-02-03 02:00:05.000012", "2026-02-03 02:00:00.000000", None]
        assert conn.execute(sa.select(table.c.at).order_by(table.c.id)).scalars().all() == [
            dt.datetime(2026, 2, 3, 2, 0, 5, 12, tzinfo=dt.UTC),
            dt.datetime(2026, 2, 3, 2, 0, tzinfo=dt.UTC), None]
        later = sa.select(table.c.id).where(table.c.at > dt.datetime(2026, 2, 3, 9, 0, 1,
                                                                       tzinfo=wib))
        assert conn.execute(later).scalars().all() == [1]
        with pytest.raises(sa.exc.StatementError, match="naive"):
            conn.execute(table.insert(), {"at": dt.datetime(2026, 1, 1)})


def test_write_transaction_takes_the_sqlite_write_lock_up_front(app, make_user):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's")
    first = Session(db.engine)
    try:
        with write_transaction(first):
            # While the first holds the write lock, a second writer cannot even begin.
            raw = db.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA busy_timeout = 50")
                with pytest.raises(Exception, match="locked"):
                    raw.driver_connection.execute("BEGIN IMMEDIATE")
            finally:
                raw.invalidate()  # never hand the 50 ms timeout back to the pool
    finally:
        first.close()


def test_write_transaction_rolls_back_on_error(db, make_user):
    make_user("ani")
    with pytest.raises(RuntimeError), write_transaction(db):
        db.get(User, 1).full_name = "changed"
        raise RuntimeError("stop")
    db.expire_all()
    assert db.scalar(sa.select(User.full_name).where(User.username == "ani")) is None


def test_background_checkpoints_copy_the_wal_back_while_a_block_runs(tmp_path):
    import threading
    import time

    from sync.db import background_checkpoints, configure_engine

    path = tmp_path / "ck.db"
    # The writer never checkpoints itself: only the background thread can grow the file.
    engine = sa.create_engine(f"sqlite:///{path}")
    configure_engine(engine, wal_autocheckpoint=0)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
    start = path.stat().st_size
    with background_checkpoints(engine, every=0.05):
        assert any(t.name == "sqlite-checkpoints" for t in threading.enumerate())
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 100_000,))
        deadline = time.monotonic() + 5
        while path.stat().st_size <= start and time.monotonic() < deadline:
            time.sleep(0.05)
    assert path.stat().st_size > start + 100_000
    assert not any(t.name == "sqlite-checkpoints" for t in threading.enumerate())
    engine.dispose()


def test_background_checkpoints_do_nothing_on_other_databases():
    from sync.db import background_checkpoints

    with background_checkpoints(sa.create_engine("sqlite://")):
        pass  # in memory: no thread, no error
