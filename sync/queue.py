"""The reconciliation queue: accepted visits waiting to be compared with the registry.

Several workers claim from it safely: on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` (a row
another worker is claiming is skipped, never waited on or taken twice); on SQLite the claim
runs under ``BEGIN IMMEDIATE``, the single writer. A claim that a worker never finishes (it
died) is taken back after ``stale_after``. The reconciliation worker takes its batches with
``next_in_queue`` inside the transaction that reconciles them, so a batch is claimed and ended
by one write of each visit; ``claim`` marks visits ``processing`` for a later transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync.db import utcnow, write_transaction
from sync.models.visit import Visit

STALE_AFTER = dt.timedelta(minutes=10)
_V = Visit.__table__.c


def next_in_queue(session: Session, limit: int, now: dt.datetime | None = None,
                  stale_after: dt.timedelta = STALE_AFTER,
                  uuids: list[str] | None = None) -> list[str]:
    """The first ``limit`` claimable visits (queued, or claimed longer than ``stale_after``
    ago), in queue order, or those of ``uuids`` still claimable. Call it inside a write
    transaction: on PostgreSQL the rows stay locked until it ends (``SKIP LOCKED``: a row
    another worker holds is passed over, never waited on or taken twice)."""
    now = now or utcnow()
    pg = session.get_bind().dialect.name == "postgresql"
    # Queued visits, and claims gone stale, each read in the order of the status index
    # (an OR of the two would scan and sort the whole table), then merged: the first
    # ``limit`` of both by (queued_at, uuid), NULLs where the database sorts them.
    groups = []
    for cond in (_V.status == "queued",
                 (_V.status == "processing") & (_V.claimed_at < now - stale_after)):
        stmt = select(_V.queued_at, _V.uuid).where(cond)
        if uuids is not None:
            stmt = stmt.where(_V.uuid.in_(uuids))
        stmt = stmt.order_by(_V.queued_at, _V.uuid).limit(limit)
        if pg:
            stmt = stmt.with_for_update(skip_locked=True)
        groups.append(session.connection().execute(stmt).all())  # Core: no ORM loading
    found = groups[0] if not groups[1] else groups[1] if not groups[0] else sorted(
        groups[0] + groups[1], key=lambda r: ((r[0] is None) == pg, r[0] or now, r[1]))
    return [uuid for _q, uuid in found[:limit]]


def claim(session: Session, worker: str, limit: int = 50,
          stale_after: dt.timedelta = STALE_AFTER) -> list[str]:
    """Mark up to ``limit`` queued visits as processing by ``worker``; return their uuids."""
    now = utcnow()
    with write_transaction(session):
        uuids = next_in_queue(session, limit, now, stale_after)
        if uuids:
            session.execute(update(Visit).where(Visit.uuid.in_(uuids))
                            .values(status="processing", claimed_by=worker, claimed_at=now,
                                    attempts=Visit.attempts + 1))
    return uuids


def queue_length(session: Session) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(Visit)
                          .where(Visit.status == "queued"))
