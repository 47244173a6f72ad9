"""The monitoring counters (``sync.monitoring``) equal the figures computed from the tables
after every kind of write that feeds them, and the writers leave nothing uncounted."""

from __future__ import annotations

from sqlalchemy import delete, select, text, update

from server.services.review import reopen_conflict
from sync import monitoring
from sync.db import write_transaction
from sync.models import (
    Conflict,
    Keluarga,
    MonitoringFamily,
    Round,
    VerifiedRecord,
    Visit,
)
from tests.monitoring.conftest import MONITORED, _user


def _drained(db) -> None:
    with write_transaction(db):
        monitoring.drain(db)
    assert not monitoring.pending(db)


def _agree(db) -> None:
    """Counters, once drained, equal a recount from the tables, kelurahan by kelurahan."""
    _drained(db)
    assert monitoring.check(db) == {}
    rnd = db.scalar(select(Round))
    (got, weekly), want = monitoring.counts(db, rnd.id), monitoring.measures(db, rnd.id)
    summed = {}
    for raw in want.values():
        for week, row in raw["weekly"].items():
            for k, n in row.items():
                summed[(week, k)] = summed.get((week, k), 0) + n
    assert {(w, k): n for w, row in weekly.items() for k, n in row.items() if n} == \
        {key: n for key, n in summed.items() if n}
    for code in set(got) | set(want):
        g, w = got.get(code, monitoring.empty_raw()), want.get(code, monitoring.empty_raw())
        plain = [{**r, "weekly": {k: dict(v) for k, v in r["weekly"].items() if any(v.values())}}
                 for r in (g, w)]
        assert plain[0] == plain[1], code


def test_a_bootstrapped_round_leaves_nothing_uncounted(app, db, runner):
    """The worker counts each batch's families in the batch's own transaction."""
    result = runner.invoke(args=["bootstrap", "--households", "300",
                                 "--visits-per-kecamatan", "4"])
    assert result.exit_code == 0, result.output
    assert db.scalar(select(Visit.uuid).where(Visit.status.in_(("verified", "needs_review"))))
    assert not monitoring.pending(db)
    assert monitoring.check(db) == {}
    assert db.scalar(select(MonitoringFamily.household_id)) is not None


def test_the_counters_follow_every_writer(demo, db, client, token):
    _agree(db)
    totals, _weekly = monitoring.counts(db, db.scalar(select(Round.id)), by="kecamatan")
    assert sum(r["visited"] for r in totals.values()) > 0
    assert sum(r["targeting_errors"]["inclusion_errors"]["upheld"] for r in totals.values()) > 0

    # A decision made through the service is counted in its own transaction.
    admin = _user(db, "admin")
    resolved = db.scalar(select(Conflict).where(Conflict.kind.in_(MONITORED),
                                                Conflict.status == "resolved",
                                                Conflict.resolution == "accept_visit")
                         .order_by(Conflict.id))
    reopen_conflict(db, admin, resolved.id, note="dibuka lagi")
    assert not monitoring.pending(db)
    assert monitoring.check(db) == {}

    # A verified family moves to another kelurahan, another's desil changes (an import).
    verified = db.scalars(select(VerifiedRecord.household_id)
                          .where(VerifiedRecord.local_changes.is_(True))
                          .order_by(VerifiedRecord.household_id)).all()
    counted = set(db.scalars(select(MonitoringFamily.household_id)))
    moved, redesil = [h for h in verified if h in counted][:2]
    target = db.scalar(select(Keluarga.kode_kelurahan).where(
        Keluarga.kode_kelurahan != db.get(Keluarga, moved).kode_kelurahan))
    db.execute(update(Keluarga).where(Keluarga.id == moved).values(kode_kelurahan=target))
    db.execute(update(Keluarga).where(Keluarga.id == redesil).values(desil=9))
    db.commit()
    assert monitoring.check(db) != {}  # stale until drained: the next read counts them
    assert client.get("/api/v1/monitoring?level=kecamatan",
                      headers=token("admin")).status_code == 200
    assert not monitoring.pending(db)
    _agree(db)
    assert db.get(MonitoringFamily, (db.scalar(select(Round.id)), moved)).kelurahan == target

    # Conflicts deleted with a bulk statement (no ORM), a visit's status changed by one.
    db.execute(delete(Conflict).where(Conflict.kind == "exclusion_error"))
    db.execute(update(Visit).where(Visit.status == "approved").values(status="rejected"))
    db.commit()
    _agree(db)

    # A rebuild from nothing gives the same counters.
    before = monitoring.counters(db)
    with write_transaction(db):
        monitoring.rebuild(db)
    assert monitoring.counters(db) == before


def test_the_migration_marks_what_is_there(demo, db):
    """An upgrade of a live database marks every (round, family) pair; the first drain counts
    them all (here: the counters thrown away and the pairs marked as the migration does)."""
    _drained(db)
    before = monitoring.counters(db)
    with write_transaction(db):
        db.execute(text("DELETE FROM monitoring_counts"))
        db.execute(text("DELETE FROM monitoring_families"))
        db.execute(text(
            "INSERT INTO monitoring_dirty (round_id, household_id) "
            "SELECT round_id, household_id FROM visits WHERE round_id IS NOT NULL UNION "
            "SELECT round_id, household_id FROM conflicts WHERE round_id IS NOT NULL "
            "AND kind IN ('inclusion_error', 'exclusion_error', 'deceased_receiving_aid', "
            "'moved_receiving_aid')"))
    _drained(db)
    assert monitoring.counters(db) == before


def test_the_commands_and_the_job(app, demo, db, runner):
    from server.jobs import build_scheduler, monitoring_drain

    assert "monitoring_drain" in {job.id for job in build_scheduler(app).get_jobs()}
    family = db.scalar(select(MonitoringFamily.household_id))
    db.execute(update(Keluarga).where(Keluarga.id == family).values(desil=10))
    db.commit()
    assert monitoring.pending(db)
    db.commit()  # end this session's read, so that it sees the job's write
    assert monitoring_drain(app) >= 1
    db.commit()
    assert not monitoring.pending(db)
    result = runner.invoke(args=["monitoring", "check"])
    assert result.exit_code == 0, result.output
    assert "agree" in result.output
    db.execute(text("UPDATE monitoring_counts SET n = n + 1 WHERE metric = 'visited' "
                    "AND week = ''"))
    db.commit()
    result = runner.invoke(args=["monitoring", "check"])
    assert result.exit_code == 1 and "counter" in result.output
    assert runner.invoke(args=["monitoring", "rebuild"]).exit_code == 0
    assert runner.invoke(args=["monitoring", "check"]).exit_code == 0


def test_a_drain_goes_chunk_by_chunk_over_several_rounds_and_stops_at_its_limit(db):
    """More marked pairs than a chunk, across two rounds: a limited drain counts exactly its
    limit and leaves the rest marked; a full drain counts what is left, every pair once."""
    from sync.models.monitoring import MonitoringDirty

    pairs = [(r, f"KLG-D{i:05d}") for r in (1, 2) for i in range(monitoring.CHUNK + 150)]
    with write_transaction(db):
        db.execute(MonitoringDirty.__table__.insert(),
                   [{"round_id": r, "household_id": h} for r, h in pairs])
    with write_transaction(db):
        assert monitoring.drain(db, limit=monitoring.CHUNK + 200) == monitoring.CHUNK + 200
    left = set(db.execute(select(MonitoringDirty.round_id, MonitoringDirty.household_id)))
    assert left == set(pairs[monitoring.CHUNK + 200:])  # in key order: round 1 first
    with write_transaction(db):
        assert monitoring.drain(db) == len(left)
    assert not monitoring.pending(db)
