"""The escalation and backup jobs, through their CLI commands and the scheduler's job list."""

import datetime as dt
import sqlite3

from sqlalchemy import inspect, select, text

from server.extensions import db as _db
from server.jobs import build_scheduler
from sync.models.conflict import Conflict


def test_scheduler_lists_the_jobs(app):
    ids = {job.id for job in build_scheduler(app).get_jobs()}
    assert {"escalate_conflicts", "backup"} <= ids


def test_escalate_flags_old_open_conflicts_once(runner, db, field, add_conflicts, consistent):
    add_conflicts([("KLG-A1", "31.73.01.1001", "photo_reused", field.round_id)], age_days=8)
    add_conflicts([("KLG-A2", "31.73.01.1002", "location_far", field.round_id)], age_days=3)
    add_conflicts([("KLG-A2", "31.73.01.1002", "visit_too_short", None)], age_days=30)
    db.execute(Conflict.__table__.update().where(Conflict.kind == "visit_too_short")
               .values(status="resolved"))
    db.commit()
    result = runner.invoke(args=["conflicts", "escalate"])
    assert result.exit_code == 0, result.output
    assert "escalated 1 conflict(s) open longer than 7 days" in result.output
    db.expire_all()
    flagged = {c.kind: c.escalated_at for c in db.scalars(select(Conflict))}
    assert flagged["photo_reused"] is not None
    assert flagged["location_far"] is None and flagged["visit_too_short"] is None
    consistent()
    again = runner.invoke(args=["conflicts", "escalate"])
    assert "escalated 0 conflict(s)" in again.output
    db.expire_all()
    assert db.scalar(select(Conflict.escalated_at).where(Conflict.kind == "photo_reused")) \
        == flagged["photo_reused"]


def _counts(conn_execute, tables):
    return {t: conn_execute(f'SELECT count(*) FROM "{t}"') for t in tables}


def test_backup_is_a_readable_copy_and_old_ones_are_pruned(app, runner, db, field,
                                                           add_conflicts, tmp_path):
    add_conflicts([("KLG-A1", "31.73.01.1001", "photo_reused", field.round_id)])
    if _db.engine.dialect.name != "sqlite":
        result = runner.invoke(args=["backup", "run"])
        assert result.exit_code == 0 and "pg_dump" in result.output
        return
    folder = tmp_path / "backups"
    folder.mkdir()
    today = dt.datetime.now(dt.UTC).date()
    old = folder / f"tapak-{today - dt.timedelta(days=7):%Y%m%d}.db"
    kept = folder / f"tapak-{today - dt.timedelta(days=6):%Y%m%d}.db"
    other = folder / "notes.txt"
    for path in (old, kept, other):
        path.write_bytes(b"x")
    saved = app.config["BACKUP_DIR"]
    app.config["BACKUP_DIR"] = str(folder)
    try:
        result = runner.invoke(args=["backup", "run"])
    finally:
        app.config["BACKUP_DIR"] = saved
    assert result.exit_code == 0, result.output
    copy = folder / f"tapak-{today:%Y%m%d}.db"
    assert copy.exists() and not old.exists() and kept.exists() and other.exists()
    assert not list(folder.glob("*.partial"))
    tables = inspect(_db.engine).get_table_names()
    with _db.engine.connect() as conn:
        want = _counts(lambda q: conn.execute(text(q)).scalar(), tables)
    backup = sqlite3.connect(copy)
    try:
        assert backup.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        got = _counts(lambda q: backup.execute(q).fetchone()[0], tables)
    finally:
        backup.close()
    assert got == want and want["keluarga"] == 3 and want["conflicts"] == 1
