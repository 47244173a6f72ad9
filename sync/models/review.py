"""The audit of supervisors' decisions: one row per decision, including those that change nothing.

A decision that changes fields also writes a verified version (``source="review"``) whose
per-field audit is in ``verified_changes``; this table says *why*: which conflict or visit, which
decision, by whom, with which note, and which verified version it produced. Reopening a
conflict writes a row too (it changes no record).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, UTCDateTime, utcnow
from sync.models.registry import NullableJSON

# resolve (decision accept_visit | keep_registry | set_value), dismiss (by a visit's reject or
# return), reopen, and the visit reviews approve | reject | return.
ACTIONS = ("resolve", "dismiss", "reopen", "approve", "reject", "return")


class ReviewDecision(Base):
    __tablename__ = "review_decisions"
    __table_args__ = (
        Index("ix_review_decisions_household", "household_id", "id"),
        Index("ix_review_decisions_conflict", "conflict_id", "id"),
        Index("ix_review_decisions_visit", "visit_uuid", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(String(16))
    conflict_id: Mapped[int | None] = mapped_column(
        ForeignKey("conflicts.id", ondelete="CASCADE"))
    visit_uuid: Mapped[str | None] = mapped_column(String(64))
    household_id: Mapped[str] = mapped_column(ForeignKey("keluarga.id", ondelete="CASCADE"))
    kecamatan: Mapped[str] = mapped_column(String(8))
    kelurahan: Mapped[str] = mapped_column(String(13))
    field: Mapped[str | None] = mapped_column(String(200))
    value: Mapped[object | None] = mapped_column(NullableJSON)
    note: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The verified version this decision wrote (None for reopen).
    verified_version: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
