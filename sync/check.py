"""Is this instance consistent? Row counts, counters, photos, the feed and visit statuses.

Run after a restore (and whenever in doubt) by ``flask --app server check``. Each section
returns the problems it found as lines a person reads; the instance passes when none has any.
Nothing here writes, apart from counting the families the monitoring triggers marked
(``monitoring.drain``, which the scheduler does every minute anyway), so that the monitoring
counters can be compared with a recount.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sync import feed, monitoring, progress
from sync.db import write_transaction
from sync.models.assignment import OPEN_STATUSES, Assignment
from sync.models.conflict import Conflict
from sync.models.feed import FeedEntry
from sync.models.review import ReviewDecision
from sync.models.visit import PROCESSED_STATUSES, VISIT_STATUSES, Photo, Visit, VisitPhoto
from sync.photos import PhotoStorage

# Tables whose row counts the report shows (the restored instance can be compared by eye).
COUNTED = ("keluarga", "verified_records", "rounds", "assignments", "visits", "visit_photos",
           "photos", "conflicts", "review_decisions", "feed_entries", "users")
# A visit in these statuses was decided by a supervisor, with this decision's audit row.
DECIDED = {"approved": "approve", "rejected": "reject", "returned": "return"}
# Not yet reconciled: no supervisor can have decided it.
UNDECIDED = ("waiting_photos", "queued", "processing", "held")
MAX_LINES = 50  # per section; the count says how many more


@dataclasses.dataclass
class Section:
    name: str
    problems: list[str] = dataclasses.field(default_factory=list)
    info: list[str] = dataclasses.field(default_factory=list)
    total: int = 0  # problems found, also those not listed

    @property
    def ok(self) -> bool:
        return self.total == 0

    def problem(self, line: str) -> None:
        self.total += 1
        if len(self.problems) < MAX_LINES:
            self.problems.append(line)


@dataclasses.dataclass
class Report:
    sections: list[Section]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sections)

    def lines(self) -> list[str]:
        out = []
        for s in self.sections:
            out.append(f"[{'ok' if s.ok else 'FAIL'}] {s.name}")
            out += [f"    {line}" for line in s.info]
            out += [f"  ! {line}" for line in s.problems]
            if s.total > len(s.problems):
                out.append(f"  ! ... and {s.total - len(s.problems)} more")
        out.append("consistent" if self.ok else
                   f"NOT consistent: {sum(s.total for s in self.sections)} problem(s)")
        return out


def row_counts(session: Session) -> Section:
    section = Section("row counts")
    tables = {t.name: t for t in Visit.metadata.sorted_tables}
    counts = {name: session.scalar(select(func.count()).select_from(tables[name]))
              for name in COUNTED if name in tables}
    section.info.append(", ".join(f"{k} {v}" for k, v in counts.items()))
    by_status = dict(session.execute(select(Visit.status, func.count()).group_by(Visit.status))
                     .all())
    if by_status:
        section.info.append("visits by status: " + ", ".join(
            f"{k} {v}" for k, v in sorted(by_status.items())))
    return section


def counters(session: Session, drain: bool = True) -> Section:
    """Progress counters (triggers) and monitoring counters against a recount."""
    section = Section("counters against a recount")
    for key, (have, want) in sorted(progress.differences(session).items(), key=str):
        section.problem(f"progress {key}: counter {have}, recount {want}")
    if drain:
        with write_transaction(session):
            monitoring.drain(session)
    elif monitoring.pending(session):
        section.info.append("monitoring: families still marked to count; not compared")
        return section
    for key, (have, want) in monitoring.check(session).items():
        section.problem(f"monitoring {key}: counter {have}, recount {want}")
    if section.ok:
        section.info.append("progress and monitoring counters agree with a recount")
    return section


def _hash(storage: PhotoStorage, sha: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with storage.open(sha) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def photos(session: Session, storage: PhotoStorage, verify_hash: bool = True) -> Section:
    """Each photo a visit references is stored, whole (SHA-256 and size), with its row; the
    photos of visits still waiting for them are listed apart, not as problems.

    One row a photo, streamed in hash order: a province's millions of photos are never held
    in memory at once.
    """
    section = Section("photos")
    not_waiting = func.max(case((Visit.status != "waiting_photos", 1), else_=0))
    stmt = (select(VisitPhoto.sha256, not_waiting, Photo.size_bytes)
            .join(Visit, Visit.uuid == VisitPhoto.visit_uuid)
            .outerjoin(Photo, Photo.sha256 == VisitPhoto.sha256)
            .group_by(VisitPhoto.sha256, Photo.size_bytes).order_by(VisitPhoto.sha256)
            .execution_options(yield_per=5000))
    referenced = checked = 0
    awaited: list[str] = []
    n_awaited = 0
    for sha, other_status, recorded in session.execute(stmt):
        referenced += 1
        stored = storage.exists(sha)
        if not stored and recorded is None and not other_status:
            n_awaited += 1
            if len(awaited) < MAX_LINES:
                awaited.append(sha)
            continue
        if recorded is None:
            section.problem(f"{sha}: referenced by a visit, no photos row")
        if not stored:
            section.problem(f"{sha}: referenced by a visit, not in the photo store")
            continue
        if verify_hash:
            size, actual = _hash(storage, sha)
            checked += 1
            if actual != sha:
                section.problem(f"{sha}: stored bytes hash to {actual}")
            elif recorded is not None and size != recorded:
                section.problem(f"{sha}: {size} bytes stored, {recorded} recorded")
    section.info.append(f"{referenced} referenced, {checked} hashed, "
                        f"{n_awaited} still awaited (visits in waiting_photos)")
    section.info += [f"awaited: {sha}" for sha in awaited]
    return section


def _apply(state: dict, page: feed.Page) -> None:
    for change in page.changes:
        key = (change["type"], change["id"])
        if change["op"] == "delete":
            state.pop(key, None)
        else:
            state[key] = change["data"]


def _pull(session: Session, user_id: int, after: int, limit: int, state: dict,
          stop: int | None = None) -> int:
    """Apply the feed from ``after`` into ``state``, ``limit`` a page, as a phone would, to
    its end (or to the first page that ends at or past ``stop``); return the cursor's seq."""
    while True:
        page = feed.pull(session, user_id, after, limit)
        _apply(state, page)
        after = page.seq
        if not page.more or (stop is not None and after >= stop):
            return after


def feed_consistency(session: Session, sample: int = 5, seed: int = 0) -> Section:
    """For sampled enumerators: pulling on from an old cursor ends where a full pull does,
    every upserted entity exists, and every open assignment is on the phone."""
    section = Section("feed")
    users = sorted(set(session.scalars(select(FeedEntry.user_id).where(
        FeedEntry.user_id.is_not(None)).distinct())))
    picked = random.Random(seed).sample(users, min(sample, len(users)))
    for user_id in sorted(picked):
        full: dict = {}
        _pull(session, user_id, 0, 10_000, full)
        seqs = sorted(session.scalars(select(FeedEntry.seq).where(
            (FeedEntry.user_id == user_id) | FeedEntry.user_id.is_(None))))
        old = seqs[len(seqs) // 2] if seqs else 0  # a phone that pulled half of it
        incremental: dict = {}
        cursor = _pull(session, user_id, 0, 7, incremental, stop=old)
        _pull(session, user_id, cursor, 3, incremental)
        if _plain(incremental) != _plain(full):
            differ = sorted(set(incremental) ^ set(full)) or sorted(
                k for k in full if _plain(full[k]) != _plain(incremental.get(k)))
            section.problem(f"enumerator {user_id}: pulling on from seq {cursor} differs from "
                            f"a full pull ({len(differ)} entities, e.g. {differ[0]})")
        for (typ, entity), data in full.items():
            if data is None:
                section.problem(f"enumerator {user_id}: feed upserts {typ} {entity}, "
                                "which does not exist")
        for round_id, household_id in session.execute(
                select(Assignment.round_id, Assignment.household_id).where(
                    Assignment.enumerator_id == user_id,
                    Assignment.status.in_(OPEN_STATUSES))):
            entity = feed.assignment_entity(round_id, household_id)
            if ("assignment", entity) not in full or ("household", household_id) not in full:
                section.problem(f"enumerator {user_id}: open assignment {entity} is not in "
                                "the feed")
    section.info.append(f"{len(picked)} of {len(users)} enumerators pulled both ways")
    return section


def _plain(value):
    """Data as JSON would carry it (RawJSON records are text either way)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return str(value) if isinstance(value, feed.RawJSON) else value


def visit_statuses(session: Session) -> Section:
    """Each visit's status is allowed and agrees with its other rows (anti-joins in SQL: the
    visits are never all read)."""
    section = Section("visit statuses")
    v = Visit.__table__.c
    d = ReviewDecision.__table__.c

    def visits(*where):
        return session.execute(select(v.uuid, v.status).where(*where).order_by(v.uuid)
                               .limit(MAX_LINES * 2))

    for uuid, status in visits(v.status.not_in(VISIT_STATUSES)):
        section.problem(f"visit {uuid}: unknown status {status!r}")
    for uuid, status in visits(v.status.in_(PROCESSED_STATUSES), v.processed_at.is_(None)):
        section.problem(f"visit {uuid}: {status} but never processed (no processed_at)")
    for status, action in DECIDED.items():
        decided = select(d.id).where(d.visit_uuid == v.uuid, d.action == action).exists()
        for uuid, _ in visits(v.status == status, ~decided):
            section.problem(f"visit {uuid}: {status} without a {action} decision row")
        for uuid, _ in visits(v.status == status, v.reviewed_by.is_(None)):
            section.problem(f"visit {uuid}: {status} without a reviewer")
    any_decision = select(d.id).where(d.visit_uuid == v.uuid,
                                      d.action.in_(sorted(DECIDED.values()))).exists()
    for uuid, status in visits(v.status.in_(UNDECIDED), any_decision):
        actions = sorted(set(session.scalars(select(d.action).where(
            d.visit_uuid == uuid, d.action.in_(sorted(DECIDED.values()))))))
        section.problem(f"visit {uuid}: {status} yet decided ({', '.join(actions)})")
    conflicted = select(Conflict.id).where(Conflict.visit_uuid == v.uuid).exists()
    for uuid, _ in visits(v.status == "needs_review", ~conflicted):
        section.problem(f"visit {uuid}: needs_review without any conflict")
    for uuid, _ in visits(v.status == "processing", v.claimed_by.is_(None)):
        section.problem(f"visit {uuid}: processing but claimed by no worker")
    awaiting = (select(VisitPhoto.sha256).where(VisitPhoto.visit_uuid == v.uuid)
                .where(~select(Photo.sha256).where(Photo.sha256 == VisitPhoto.sha256).exists())
                .exists())
    for uuid, _ in visits(v.status == "waiting_photos", ~awaiting):
        section.problem(f"visit {uuid}: waiting_photos but every photo it names is stored")
    return section


def run(session: Session, storage: PhotoStorage, *, sample: int = 5, verify_hash: bool = True,
        drain: bool = True, seed: int = 0) -> Report:
    """Every check, in the order the report prints them."""
    sections = [row_counts(session), counters(session, drain=drain),
                photos(session, storage, verify_hash), feed_consistency(session, sample, seed),
                visit_statuses(session)]
    session.rollback()  # end the read transaction
    return Report(sections)
