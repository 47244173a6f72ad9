"""Published form versions: immutable once stored, closable."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, JSONDoc, UTCDateTime, utcnow


class FormVersion(Base):
    """One version of one form, exactly as published; ``hash`` is its canonical content hash."""

    __tablename__ = "form_versions"
    __table_args__ = (UniqueConstraint("form_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict] = mapped_column(JSONDoc)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
