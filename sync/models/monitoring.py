"""Monitoring counters and the per-family facts they are summed from (migration 0014).

``monitoring_dirty`` holds the (round, family) pairs a trigger marked as needing to be counted
again; ``monitoring_families`` each family's facts in a round as last counted; and
``monitoring_counts`` their sums per round, kelurahan, ISO week (``''`` for the whole round)
and metric. ``sync.monitoring`` says how they are kept.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, JSONDoc


class MonitoringDirty(Base):
    __tablename__ = "monitoring_dirty"

    round_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    household_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class MonitoringFamily(Base):
    __tablename__ = "monitoring_families"
    # the triggers find a family's rounds by its id
    __table_args__ = (Index("ix_monitoring_families_household", "household_id"),)

    round_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    household_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kelurahan: Mapped[str] = mapped_column(String(13))
    facts: Mapped[list] = mapped_column(JSONDoc)  # [[week, metric, n], ...]


class MonitoringCount(Base):
    __tablename__ = "monitoring_counts"

    round_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kelurahan: Mapped[str] = mapped_column(String(13), primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
