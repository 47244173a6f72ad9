"""The scheduler's leadership lease (migration 0018, ``sync.leader``).

One row per lock name. On SQLite it is the lock itself: the holder renews ``expires_at`` and a
standby takes the row over once it has expired. On PostgreSQL the lock is an advisory lock and
the row only records who holds it, for operators.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, UTCDateTime


class SchedulerLease(Base):
    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    renewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
