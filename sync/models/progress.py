"""Progress counters per round, kelurahan and metric, kept by database triggers (migration 0008).

The triggers on ``keluarga``, ``assignments`` and ``conflicts`` update these rows in the same
transaction as the change, whatever wrote it (ORM, Core bulk statements, COPY, cascades), so the
dashboard reads a few hundred small rows instead of counting a million families. Metrics:
``households`` (round 0), ``assigned``, the assignment statuses and review states, and per
kind ``conflicts_open:<kind>`` plus ``conflicts_escalated`` (round 0 for conflicts without a
round). ``sync.progress.recount`` computes the same numbers from the source tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base


class ProgressCount(Base):
    __tablename__ = "progress_counts"

    round_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kelurahan: Mapped[str] = mapped_column(String(13), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class EnumeratorLoad(Base):
    """Assignments per round, enumerator and metric, kept by database triggers (migration 0013).

    Metrics: ``assigned`` (every assignment) and one per status (``pending``, ``visited``,
    ``returned``, ``done``, ``closed``). The triggers on ``assignments`` move the counts when a
    row is inserted, deleted (also by the cascades from ``rounds`` and ``keluarga``) or changes
    status, enumerator or round; ``sync.progress.recount_load`` counts the same from the table.
    """

    __tablename__ = "enumerator_load"

    round_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    enumerator_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
