"""Rounds (verification campaigns) and the assignment of families to enumerators in them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, UTCDateTime, utcnow

ASSIGNMENT_STATUSES = ("pending", "visited", "returned", "done", "closed")
OPEN_STATUSES = ("pending", "visited", "returned")
# An assignment has ended when its work is done, or when its round was closed before it was
# (``closed``): neither is open, so the family may be assigned again in another round.
ENDED_STATUSES = ("done", "closed")
ROUND_STATES = ("open", "closed")


class Round(Base):
    """A named verification campaign with start and end dates."""

    __tablename__ = "rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # ``open``: families may be assigned and visited; ``closed``: the round is over, its open
    # assignments ended (status ``closed``), nothing more is assigned or pushed in it.
    state: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column()  # a user id (no foreign key: migration 0012)


class Assignment(Base):
    """One family given to one enumerator in one round.

    A family has one row per round (a reassignment moves the row to the new enumerator) and at
    most one open assignment across all rounds at any time: the partial unique index makes
    "never twice at once" hold even when two supervisors assign concurrently.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("round_id", "household_id"),
        Index("ix_assignments_enumerator_round", "enumerator_id", "round_id"),
        Index("uq_assignments_open_household", "household_id", unique=True,
              sqlite_where=text("status NOT IN ('done', 'closed')"),
              postgresql_where=text("status NOT IN ('done', 'closed')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    household_id: Mapped[str] = mapped_column(ForeignKey("keluarga.id", ondelete="CASCADE"))
    enumerator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    note: Mapped[str | None] = mapped_column(Text)
    # What reconciliation and review made of the family's latest visit in this round:
    # None (not yet), verified, needs_review, rejected. ``status`` says where the work is.
    review_state: Mapped[str | None] = mapped_column(String(16))
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
