"""The reconciliation queue: accepted visits waiting to be compared with the registry.

Several workers claim from it safely: on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` (a row
another worker is claiming is skipped, never waited on or taken twice); on SQLite the claim
runs under ``BEGIN IMMEDIATE``, the single writer. A claim that a worker never finishes (it
died) is taken back after ``stale_after``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync.db import utcnow, write_transaction
from sync.models.visit import Visit


def claim(session: Session, worker: str, limit: int = 50,
          stale_after: dt.timedelta = dt.timedelta(minutes=10)) -> list[str]:
    """Mark up to ``limit`` queued visits as processing by ``worker``; return their uuids."""
    now = utcnow()
    pg = session.get_bind().dialect.name == "postgresql"
    with write_transaction(session):
        # Queued visits, and claims gone stale, each read in the order of the status index
        # (an OR of the two would scan and sort the whole table), then merged: the first
        # ``limit`` of both by (queued_at, uuid), NULLs where the database sorts them.
        groups = []
        for cond in (Visit.status == "queued",
                     (Visit.status == "processing") & (Visit.claimed_at < now - stale_after)):
            stmt = (select(Visit.queued_at, Visit.uuid).where(cond)
                    .order_by(Visit.queued_at, Visit.uuid).limit(limit))
            if pg:
                stmt = stmt.with_for_update(skip_locked=True)
            groups.append(session.execute(stmt).all())
        found = groups[0] if not groups[1] else groups[1] if not groups[0] else sorted(
            groups[0] + groups[1], key=lambda r: ((r[0] is None) == pg, r[0] or now, r[1]))
        uuids = [uuid for _q, uuid in found[:limit]]
        if uuids:
            session.execute(update(Visit).where(Visit.uuid.in_(uuids))
                            .values(status="processing", claimed_by=worker, claimed_at=now,
                                    attempts=Visit.attempts + 1))
    return uuids


def queue_length(session: Session) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(Visit)
                          .where(Visit.status == "queued"))
