"""Conflicts: what reconciliation flagged on a visit, one row per field or rule finding.

A conflict is the contract's review item (``GET /conflicts/{id}``). Reconciliation writes it
from a draft (``sync.reconcile``); a supervisor resolves it. ``key`` is a digest of the draft
(kind, field, message, detail), unique per visit, so that processing a visit twice stores each
finding once. The area codes are copied from the family so that the queue filters on indexed
columns without a join.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, JSONDoc, UTCDateTime, utcnow
from sync.models.registry import NullableJSON

CONFLICT_STATUSES = ("open", "resolved", "dismissed")
SEVERITIES = ("hard", "soft", "info")
DECISIONS = ("accept_visit", "keep_registry", "set_value", "dismiss")


class Conflict(Base):
    __tablename__ = "conflicts"
    __table_args__ = (
        UniqueConstraint("visit_uuid", "key"),
        Index("ix_conflicts_status_kelurahan", "status", "kelurahan", "id"),
        Index("ix_conflicts_status_kecamatan", "status", "kecamatan", "id"),
        Index("ix_conflicts_status_kind", "status", "kind", "id"),
        Index("ix_conflicts_household", "household_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("keluarga.id", ondelete="CASCADE"))
    # Found by the unique (visit_uuid, key) index: a second index of it only cost inserts.
    visit_uuid: Mapped[str | None] = mapped_column(
        ForeignKey("visits.uuid", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="SET NULL"))
    kecamatan: Mapped[str] = mapped_column(String(8))
    kelurahan: Mapped[str] = mapped_column(String(13))
    key: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(8))
    field: Mapped[str | None] = mapped_column(String(200))
    registry_value: Mapped[object | None] = mapped_column(NullableJSON)
    visit_value: Mapped[object | None] = mapped_column(NullableJSON)
    base_value: Mapped[object | None] = mapped_column(NullableJSON)
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict | None] = mapped_column(JSONDoc)
    # The verified record's version when the conflict was raised.
    record_version: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(12), default="open")
    # accept_visit | keep_registry | set_value (with resolution_value), and the note.
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolution_value: Mapped[object | None] = mapped_column(NullableJSON)
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
