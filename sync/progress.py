"""Progress counters: reading them, recounting them from scratch, and escalating old conflicts.

The counters (``progress_counts``, and ``enumerator_load`` per round and enumerator) are written
only by the triggers of migrations 0008 and 0013; this module reads them. ``recount`` and
``recount_load`` compute the same numbers with GROUP BY queries over the source tables: the
tests compare both, and an operator can compare them on a live database
(``flask --app server progress check``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sync.db import utcnow
from sync.models.assignment import Assignment
from sync.models.conflict import Conflict
from sync.models.progress import EnumeratorLoad, ProgressCount
from sync.models.registry import Keluarga

OPEN_PREFIX = "conflicts_open:"
ESCALATED = "conflicts_escalated"
ASSIGNMENT_METRICS = ("assigned", "pending", "visited", "returned", "done",
                      "verified", "needs_review", "rejected")

Counts = dict[tuple[int, str, str], int]


def counters(session: Session) -> Counts:
    """Every non-zero counter row: (round_id, kelurahan, metric) -> n."""
    rows = session.execute(select(ProgressCount.round_id, ProgressCount.kelurahan,
                                  ProgressCount.metric, ProgressCount.n)
                           .where(ProgressCount.n != 0))
    return {(r, k, m): n for r, k, m, n in rows}


def recount_all(session: Session) -> Counts:
    """What the counters should hold, counted from keluarga, assignments and conflicts."""
    out: Counts = {}
    for kel, n in session.execute(select(Keluarga.kode_kelurahan, func.count())
                                  .where(Keluarga.removed_at.is_(None))
                                  .group_by(Keluarga.kode_kelurahan)):
        out[(0, kel, "households")] = n
    joined = select(Assignment.round_id, Keluarga.kode_kelurahan).join(
        Keluarga, Keluarga.id == Assignment.household_id)
    for r, kel, n in session.execute(joined.add_columns(func.count())
                                     .group_by(Assignment.round_id, Keluarga.kode_kelurahan)):
        out[(r, kel, "assigned")] = n
    for column in (Assignment.status, Assignment.review_state):
        stmt = (joined.add_columns(column, func.count()).where(column.is_not(None))
                .group_by(Assignment.round_id, Keluarga.kode_kelurahan, column))
        for r, kel, metric, n in session.execute(stmt):
            out[(r, kel, metric)] = n
    round0 = func.coalesce(Conflict.round_id, 0)
    for r, kel, kind, n in session.execute(
            select(round0, Conflict.kelurahan, Conflict.kind, func.count())
            .where(Conflict.status == "open").group_by(round0, Conflict.kelurahan, Conflict.kind)):
        out[(r, kel, OPEN_PREFIX + kind)] = n
    for r, kel, n in session.execute(
            select(round0, Conflict.kelurahan, func.count())
            .where(Conflict.status == "open", Conflict.escalated_at.is_not(None))
            .group_by(round0, Conflict.kelurahan)):
        out[(r, kel, ESCALATED)] = n
    return out


def _per_kelurahan(rows: Counts, round_id: int | None) -> dict[str, dict[str, int]]:
    """Fold one round's view: households and round-less conflicts (round 0) plus the round."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (r, kel, metric), n in rows.items():
        if r == 0 or r == round_id:
            out[kel][metric] += n
    return {k: dict(v) for k, v in out.items()}


def counts(session: Session, round_id: int | None,
           kelurahan_like: str | None = None) -> dict[str, dict[str, int]]:
    """The round's counters per kelurahan: {kelurahan: {metric: n}} (from the counters table).

    ``kelurahan_like`` is a code prefix (``31.73.01.``) to read only one kecamatan's rows.
    """
    rounds = [0] if round_id is None else [0, round_id]
    stmt = select(ProgressCount.round_id, ProgressCount.kelurahan, ProgressCount.metric,
                  ProgressCount.n).where(ProgressCount.round_id.in_(rounds),
                                         ProgressCount.n != 0)
    if kelurahan_like:
        stmt = stmt.where(ProgressCount.kelurahan.like(kelurahan_like + "%"))
    rows = {(r, k, m): n for r, k, m, n in session.execute(stmt)}
    return _per_kelurahan(rows, round_id)


def recount(session: Session, round_id: int | None) -> dict[str, dict[str, int]]:
    """The same numbers as ``counts`` computed from the source tables with GROUP BY."""
    return _per_kelurahan(recount_all(session), round_id)


def enumerator_load(session: Session, round_id: int,
                    enumerator_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each enumerator's assignments in the round, from the counters (migration 0013).

    {enumerator_id: {"assigned": n, "pending": n, ...}}; an enumerator without assignments in
    the round gets an empty dict. The same numbers as ``GROUP BY enumerator_id, status`` over
    the round's assignments (``recount_load``), read from a few rows per enumerator.
    """
    out: dict[int, dict[str, int]] = {i: {} for i in enumerator_ids}
    if not enumerator_ids:
        return out
    for user_id, metric, n in session.execute(
            select(EnumeratorLoad.enumerator_id, EnumeratorLoad.metric, EnumeratorLoad.n)
            .where(EnumeratorLoad.round_id == round_id,
                   EnumeratorLoad.enumerator_id.in_(enumerator_ids), EnumeratorLoad.n != 0)):
        out[user_id][metric] = int(n)
    return out


LoadCounts = dict[tuple[int, int, str], int]


def round_totals(session: Session) -> dict[int, dict[str, int]]:
    """Each round's assignments by status, summed from the counters: {round_id: {status: n}}
    (the rounds page; ``assigned`` left out)."""
    out: dict[int, dict[str, int]] = {}
    for round_id, metric, n in session.execute(
            select(EnumeratorLoad.round_id, EnumeratorLoad.metric, func.sum(EnumeratorLoad.n))
            .where(EnumeratorLoad.metric != "assigned", EnumeratorLoad.n != 0)
            .group_by(EnumeratorLoad.round_id, EnumeratorLoad.metric)):
        if n:
            out.setdefault(round_id, {})[metric] = int(n)
    return out


def load_counters(session: Session) -> LoadCounts:
    """Every non-zero ``enumerator_load`` row: (round_id, enumerator_id, metric) -> n."""
    rows = session.execute(select(EnumeratorLoad.round_id, EnumeratorLoad.enumerator_id,
                                  EnumeratorLoad.metric, EnumeratorLoad.n)
                           .where(EnumeratorLoad.n != 0))
    return {(r, e, m): n for r, e, m, n in rows}


def recount_load(session: Session) -> LoadCounts:
    """What ``enumerator_load`` should hold, counted from the assignments with GROUP BY."""
    out: LoadCounts = {}
    for r, e, status, n in session.execute(
            select(Assignment.round_id, Assignment.enumerator_id, Assignment.status,
                   func.count())
            .group_by(Assignment.round_id, Assignment.enumerator_id, Assignment.status)):
        out[(r, e, "assigned")] = out.get((r, e, "assigned"), 0) + n
        out[(r, e, status)] = n
    return out


def differences(session: Session) -> dict[tuple[int, str, str], tuple[int, int]]:
    """Counter rows that disagree with a recount: key -> (counter, recount).

    Both counter tables: a ``progress_counts`` key is (round, kelurahan, metric); an
    ``enumerator_load`` key is (round, ``"enumerator <id>"``, metric).
    """
    have, want = counters(session), recount_all(session)
    out = {k: (have.get(k, 0), want.get(k, 0)) for k in set(have) | set(want)
           if have.get(k, 0) != want.get(k, 0)}
    have_load, want_load = load_counters(session), recount_load(session)
    for r, e, m in set(have_load) | set(want_load):
        pair = (have_load.get((r, e, m), 0), want_load.get((r, e, m), 0))
        if pair[0] != pair[1]:
            out[(r, f"enumerator {e}", m)] = pair
    return out


def escalate(session: Session, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Flag open conflicts created before ``now - older_than``; return how many were flagged.

    Flagged once: ``escalated_at`` stays as first set, and the triggers count the conflict in
    ``conflicts_escalated`` while it stays open.
    """
    now = now or utcnow()
    result = session.execute(update(Conflict)
                             .where(Conflict.status == "open", Conflict.escalated_at.is_(None),
                                    Conflict.created_at < now - older_than)
                             .values(escalated_at=now)
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0


def open_conflict_counts(session: Session, *, kelurahan: str | None = None,
                         kecamatan: str | None = None) -> dict[str, int]:
    """Open conflicts per kind in one kelurahan or kecamatan (every round), from the counters.

    For the queue's tabs: the same numbers as ``GROUP BY kind`` over the open conflicts of the
    area, without reading a row per conflict (about 3,400 in a kelurahan at full scale).
    """
    stmt = select(ProgressCount.metric, func.sum(ProgressCount.n)).where(
        ProgressCount.metric.like(OPEN_PREFIX + "%"), ProgressCount.n != 0)
    if kelurahan:
        stmt = stmt.where(ProgressCount.kelurahan == kelurahan)
    if kecamatan:
        stmt = stmt.where(ProgressCount.kelurahan.like(kecamatan + ".%"))
    rows = session.execute(stmt.group_by(ProgressCount.metric))
    return {m[len(OPEN_PREFIX):]: int(n) for m, n in sorted(rows) if n}
