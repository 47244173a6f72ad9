"""The queue's claim, read as two index lookups and merged: same choice and order as one query."""

import datetime as dt

from sqlalchemy import update

from sync.db import utcnow
from sync.models import Visit
from sync.queue import claim


def test_claim_takes_queued_and_stale_claims_by_queue_order(db, located, deliver):
    visits = [located("KLG-A1")[0] for _ in range(3)]
    deliver(*[(v, {}) for v in visits])
    u1, u2, u3 = (v["uuid"] for v in visits)
    now = utcnow()
    stale = now - dt.timedelta(hours=1)
    for uuid, status, queued, claimed in (
            (u1, "queued", now - dt.timedelta(minutes=3), None),
            (u2, "processing", now - dt.timedelta(minutes=5), stale),  # a dead worker's claim
            (u3, "processing", now - dt.timedelta(minutes=9), now)):   # a live claim: left
        db.execute(update(Visit).where(Visit.uuid == uuid).values(
            status=status, queued_at=queued, claimed_at=claimed, claimed_by="old"))
    db.commit()
    assert claim(db, "w", limit=1) == [u2]  # the older of queued and stale
    assert claim(db, "w", limit=5) == [u1]
    assert claim(db, "w", limit=5) == []
    db.commit()
    rows = {u: db.get(Visit, u) for u in (u1, u2, u3)}
    assert [rows[u].claimed_by for u in (u1, u2, u3)] == ["w", "w", "old"]
