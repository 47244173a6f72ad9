"""The leader lock itself (sync/leader.py), two holders in one process on the test database."""

from __future__ import annotations

import time

import pytest

from server.extensions import db
from sync.leader import AdvisoryLock, LeaseLock, leader_lock


@pytest.fixture
def locks(app):
    made = []

    def make(**kw):
        lock = leader_lock(db.engine, **{"lease_seconds": 2, "renew_seconds": 1, **kw})
        made.append(lock)
        return lock

    yield make
    for lock in made:
        lock.release()


def test_the_lock_is_advisory_on_postgresql_and_a_lease_elsewhere(locks):
    lock = locks()
    assert isinstance(lock, AdvisoryLock if db.engine.dialect.name == "postgresql"
                      else LeaseLock)


def test_one_holder_at_a_time_and_a_release_hands_it_over(locks):
    a, b = locks(), locks()
    assert a.try_acquire() and a.leading
    assert not b.try_acquire() and not b.leading
    assert a.confirm() and not b.confirm()
    a.release()
    assert not a.leading and not a.confirm()
    assert b.try_acquire() and b.confirm()
    assert not a.try_acquire()


def test_a_holder_stops_leading_before_its_lease_could_be_taken(locks):
    a = locks()
    assert a.try_acquire()
    time.sleep(1.1)  # lease 2 s - renew 1 s: no longer sure, though nobody took it yet
    assert not a.leading
    assert not a.confirm()  # a job would not start


def test_a_stalled_lease_holder_finds_its_lease_taken_and_starts_nothing(locks):
    if db.engine.dialect.name == "postgresql":
        pytest.skip("the advisory lock lives with its session, however slow the holder")
    a, b = locks(), locks()
    assert a.try_acquire()
    assert not b.try_acquire()
    time.sleep(2.1)  # a renewed nothing for a whole lease
    assert b.try_acquire()
    assert not a.try_acquire() and not a.confirm()


def test_the_lease_must_outlast_two_renewals(app):
    with pytest.raises(ValueError):
        leader_lock(db.engine, lease_seconds=15, renew_seconds=10)
