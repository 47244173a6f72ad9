"""The change feed behind ``GET /sync/pull``: what each enumerator's phone must download.

``feed_entries`` keeps, per recipient, only the latest change of each entity (like CouchDB's
changes feed): a newer change of the same entity replaces the older entry with a higher ``seq``.
A recipient of NULL means every enumerator (forms). ``feed_state`` holds the last ``seq``
handed out; bumping it takes that row's lock until commit, so changes commit in ``seq`` order
and a reader can never see seq N+1 while N is still uncommitted.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, UTCDateTime, utcnow

FEED_TYPES = ("assignment", "household", "form")
FEED_OPS = ("upsert", "delete")


class FeedState(Base):
    """A single row: the last seq handed out, and the seq below which tombstones were purged."""

    __tablename__ = "feed_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    compacted_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[int] = mapped_column(default=1)
    compacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class FeedEntry(Base):
    __tablename__ = "feed_entries"
    __table_args__ = (
        Index("ix_feed_entries_user_seq", "user_id", "seq"),
        Index("ix_feed_entries_user_entity", "user_id", "type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(12))
    entity_id: Mapped[str] = mapped_column(String(128))
    op: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
