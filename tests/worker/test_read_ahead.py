"""The worker reading the next batch ahead on SQLite (``sync.reconcile.prefetch``): what it
reads is what the batch would have read, a visit it did not read is read by the batch, and
every visit is reconciled once."""

import pytest
from sqlalchemy import select

from sync.models import Visit
from sync.reconcile import prefetch, worker

from .test_worker import conflicts, visit_row


@pytest.fixture
def ahead(db):
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("reading ahead is for SQLite files; PostgreSQL reads in the batch")
    reader = prefetch.ReadAhead(db.get_bind(), worker._read_ahead)
    db.info[prefetch.KEY] = reader
    yield reader
    db.info.pop(prefetch.KEY, None)
    reader.close()


def _queued(db) -> list[str]:
    db.commit()
    return list(db.scalars(select(Visit.uuid).where(Visit.status == "queued")
                           .order_by(Visit.queued_at, Visit.uuid)))


def test_a_visit_read_ahead_equals_the_visit_read_by_the_batch(db, located, deliver, ahead):
    pairs = [located("KLG-A1"), located("KLG-A1")]
    for pair in pairs:
        deliver(pair)
    uuids = _queued(db)
    assert len(uuids) == 2
    ahead.start([uuids[0]], 5)
    early = ahead.take()
    assert list(early) == [uuids[1]]  # the queue after the claimed one
    [read] = worker._read_visits(db, [uuids[1]], claimed=False)
    [made] = worker._read_visits(db, [uuids[1]], claimed=False, early=early)
    assert made == read  # every field, the answers and the times included
    fields = {p["field"] for p in pairs[1][0]["photos"]}
    assert {f for f, _sha, _ph in early[uuids[1]][1]} == fields
    batch = worker._load(db, [made], early=early)
    again = worker._load(db, [read])
    assert batch.photos == again.photos and len(batch.photos[uuids[1]]) == len(fields)
    db.rollback()


def _spy(monkeypatch) -> list[str]:
    """The uuids of the visits handed to batches as read ahead, in order."""
    served: list[str] = []
    real = prefetch.ReadAhead.take

    def take(self):
        got = real(self)
        served.extend(got)
        return got

    monkeypatch.setattr(prefetch.ReadAhead, "take", take)
    return served


def test_batches_read_ahead_reconcile_every_visit_once(db, located, deliver, ahead,
                                                       monkeypatch):
    served = _spy(monkeypatch)
    for _ in range(3):
        deliver(located("KLG-A1"))
    uuids = _queued(db)
    done: dict[str, str] = {}
    while got := worker.run_once(db, "test", 1):
        done.update(got)
    assert set(done) == set(uuids) and len(done) == 3
    assert served == uuids[1:]  # each batch but the first was read ahead
    for u in uuids:
        row = visit_row(db, u)
        assert row.status in ("verified", "needs_review") and row.attempts == 1
    # the second and third visits of the family are duplicates of the first, found as such
    assert {c.kind for c in conflicts(db)} >= {"duplicate_visit"}


def test_a_visit_pushed_after_the_read_ahead_is_read_by_its_batch(db, located, deliver, ahead,
                                                                  monkeypatch):
    served = _spy(monkeypatch)
    first, second = located("KLG-A1"), located("KLG-A2")
    deliver(first)
    deliver(second, who="budi")
    assert len(worker.run_once(db, "test", 1)) == 1  # claims one, reads the other ahead
    late = located("KLG-A2")
    assert deliver(late, who="budi")[0]["status"] in ("accepted", "waiting_photos")
    # pushed after the read-ahead began: not in it
    done = worker.run_once(db, "test", 5)
    assert set(done) == {second[0]["uuid"], late[0]["uuid"]}
    assert served == [second[0]["uuid"]]  # the late one was read by the batch itself
    for v, _images in (first, second, late):
        assert visit_row(db, v["uuid"]).status in ("verified", "needs_review")
    assert ahead.take() == {}  # the queue was empty after the last claim


def test_drain_reads_ahead_and_stops_reading_when_done(db, located, deliver, monkeypatch):
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("reading ahead is for SQLite files")
    started: list[int] = []
    real = prefetch.ReadAhead.start

    def start(self, claimed, limit):
        started.append(len(claimed))
        return real(self, claimed, limit)

    monkeypatch.setattr(prefetch.ReadAhead, "start", start)
    for _ in range(2):
        deliver(located("KLG-A1"))
    assert worker.drain(db, worker="test", limit=1) == 2
    assert started == [1, 1] and prefetch.KEY not in db.info
