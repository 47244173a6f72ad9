"""Push ingest: each visit validated against its form version and stored with its status.

The rules follow ODK Central for duplicates (an identical resend is harmless, the same uuid
with other content is refused) and DHIS2's per-object import report (one result a visit, in
order; one bad visit never stops its neighbours). The whole batch is one transaction,
committed before the response is sent: a visit the phone saw acknowledged is on disk, and a
crash before the commit acknowledges nothing.

It runs in two phases so that the write lock is held only for the writes:

1. Outside any write transaction: each visit's uuid, content hash, envelope (location,
   versions, branch) and answers are checked against its published form version; this is
   most of the CPU time of a push.
2. In the write transaction: what the database decides, for the whole batch at once (which
   uuids are stored already, which families are assigned to this enumerator, which photos
   are there), in the same order of checks as one visit at a time would take, then one insert
   per table. The visits go in with ``ON CONFLICT DO NOTHING``, sorted by uuid (two batches
   never wait on each other in opposite orders): a uuid another device stored in the meantime
   is reported as a duplicate or a reuse, never as an error. Should the bulk insert fail for
   any other reason, it is rolled back to its savepoint and each visit is inserted in a
   savepoint of its own, as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Callable

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

import forms
from sync import feed
from sync.db import utcnow, write_transaction
from sync.models.assignment import OPEN_STATUSES, Assignment
from sync.models.form import FormVersion
from sync.models.visit import Photo, SyncBatch, Visit, VisitPhoto

ACCEPTED, WAITING, DUPLICATE, REJECTED, UUID_REUSED = (
    "accepted", "waiting_photos", "duplicate", "rejected", "uuid_reused")

_MAX_INT = 2**31 - 1  # the versions are INTEGER columns


@dataclasses.dataclass
class VisitResult:
    uuid: str | None
    status: str
    errors: list[dict] = dataclasses.field(default_factory=list)
    missing_photos: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(visit: dict) -> str:
    """The identity of a visit's content: the same bytes whatever the key order or spacing."""
    return hashlib.sha256(canonical_json(visit).encode()).hexdigest()


def _error(path: str, code: str, message: str) -> list[dict]:
    return [{"path": path, "code": code, "message": message}]


def _parse_time(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and not _beyond_utc(parsed) else None


def _beyond_utc(value: dt.datetime) -> bool:
    """Whether an aware time has no UTC equivalent (9999-12-31T23:00-14:00), so cannot be
    stored."""
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        return True
    return False


class FormCache:
    """Published form versions by (form_id, version), loaded once per batch."""

    def __init__(self, session: Session):
        self.session, self.rows = session, {}

    def get(self, form_id, version) -> FormVersion | None:
        if not isinstance(form_id, str) or type(version) is not int:
            return None  # (and never an unhashable key)
        if "\x00" in form_id or not 0 <= version <= _MAX_INT:
            return None  # no such row, and the database would refuse to compare
        key = (form_id, version)
        if key not in self.rows:
            self.rows[key] = self.session.scalar(select(FormVersion).where(
                FormVersion.form_id == form_id, FormVersion.version == version))
        return self.rows[key]


def _number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _envelope_errors(visit: dict) -> list[dict]:
    """Fields around the answers that the form does not check but the row stores: a value of
    the wrong type is this visit's error, never a failed batch."""
    errors: list[dict] = []
    location = visit.get("location")
    if location is not None:
        if not isinstance(location, dict):
            errors += _error("location", "type",
                             "location must be an object with lat, lon and accuracy_m.")
        else:
            for key in ("lat", "lon", "accuracy_m"):
                if location.get(key) is not None and not _number(location[key]):
                    errors += _error(f"location.{key}", "type", f"location.{key} must be a "
                                     "number.")
    for key in ("base_version", "trunk_version"):
        value = visit.get(key)
        if value is not None and (type(value) is not int or not 0 <= value <= _MAX_INT):
            errors += _error(key, "type", f"{key} must be a whole number (the record version "
                             "the visit started from).")
    for key in ("started_at", "ended_at"):
        value = visit.get(key)
        with contextlib.suppress(ValueError, TypeError):
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is not None and _beyond_utc(parsed):
                errors += _error(key, "out_of_range", f"{key} must be a time that exists in "
                                 "UTC (years 1 to 9999).")
    branch = visit.get("branch_id")
    if branch is not None and (not isinstance(branch, str) or len(branch) > 64):
        errors += _error("branch_id", "type", "branch_id must be a string of at most 64 "
                         "characters.")
    photos = visit.get("photos")
    if isinstance(photos, list):  # (the form checks the list and its field/sha256/filename)
        for i, item in enumerate(photos):
            if isinstance(item, dict):
                errors += _photo_claim_errors(item, f"photos[{i}]")
    return errors


# RFC 3339's date-time (section 5.6): a full date, ``T`` (or ``t``), a time with seconds,
# optional fraction, and a zone (``Z`` or an offset). fromisoformat alone takes more
# (no seconds, no zone, week dates), which a phone's claim must not rely on.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)",
                      re.ASCII)


def parse_rfc3339(value) -> dt.datetime | None:
    """An RFC 3339 date-time with its offset, as an aware datetime; None when it is not one
    (or has no UTC equivalent)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # nanoseconds: Python keeps microseconds
        text = text[:frac.start(1) + 6] + text[frac.end(1):]
    try:
        parsed = dt.datetime.fromisoformat(text.replace("t", "T"))
    except ValueError:  # 2026-02-30, 25:00, an offset of 24 hours or more
        return None
    return None if _beyond_utc(parsed) else parsed


def _photo_claim_errors(item: dict, path: str) -> list[dict]:
    """A photos[] entry's ``taken_at`` and ``location``: what the app says of a photo whose
    EXIF the re-encoding dropped. Both optional (null is absent); a bad one is this visit's
    error."""
    errors: list[dict] = []
    taken = item.get("taken_at")
    if taken is not None and parse_rfc3339(taken) is None:
        errors += _error(f"{path}.taken_at", "format", "taken_at must be an RFC 3339 date-time "
                         "with its offset, such as 2026-01-05T09:12:00+07:00.")
    location = item.get("location")
    if location is None:
        return errors
    if not isinstance(location, dict):
        return errors + _error(f"{path}.location", "type", "location must be an object with "
                               "lat, lon and accuracy_m.")
    bounds = {"lat": (-90, 90), "lon": (-180, 180), "accuracy_m": (0, math.inf)}
    for key, (low, high) in bounds.items():
        value = location.get(key)
        if value is None:
            if key != "accuracy_m":
                errors += _error(f"{path}.location.{key}", "required",
                                 f"location.{key} is required when location is given.")
        elif not _number(value):
            errors += _error(f"{path}.location.{key}", "type", f"location.{key} must be a "
                             "number.")
        elif not low <= value <= high:
            errors += _error(f"{path}.location.{key}", "out_of_range",
                             f"location.{key} must be between {low:g} and {high:g}."
                             if high < math.inf else f"location.{key} must be at least 0.")
    return errors


@dataclasses.dataclass
class _Candidate:
    """A visit that passed every check that needs no database, ready to be stored."""

    index: int
    uuid: str
    digest: str
    household_id: object
    form: FormVersion | None
    errors: list[dict]  # the form's verdict, reported only if the database checks pass
    row: dict | None = None
    photos: list[dict] = dataclasses.field(default_factory=list)  # visit_photos rows


def ingest_batch(session: Session, *, user_id: int, device_id: str, batch_id: str,
                 raw_body: bytes, visits: list, compiled: Callable | None = None,
                 channel: str = "json") -> list[VisitResult]:
    """Store a batch of visits for one enumerator; return one result a visit, in order.

    ``channel`` (``json`` or ``openrosa``) is stored on each visit and read by nothing else."""
    from sync.forms import compiled_form

    compiled = compiled or compiled_form
    results: list[VisitResult | None] = [None] * len(visits)
    cache = FormCache(session)
    candidates = []
    for index, visit in enumerate(visits):  # phase 1: no write lock
        outcome = _check(visit, index, cache, compiled, device_id)
        if isinstance(outcome, VisitResult):
            results[index] = outcome
        else:
            if outcome.row is not None:
                outcome.row["channel"] = channel
            candidates.append(outcome)
    with write_transaction(session):  # phase 2
        batch = SyncBatch(batch_id=batch_id, user_id=user_id, device_id=device_id,
                          body=raw_body, visits=len(visits))
        session.add(batch)
        session.flush()
        changes = _store(session, candidates, results, user_id=user_id, batch_id=batch.id)
        batch.stored = sum(r.status in (ACCEPTED, WAITING) for r in results)
        feed.emit(session, changes)
    return results


def _check(visit, index: int, cache: FormCache, compiled: Callable,
           device_id: str) -> VisitResult | _Candidate:
    uuid = visit.get("uuid") if isinstance(visit, dict) else None
    if not isinstance(uuid, str) or not 8 <= len(uuid) <= 64:
        return VisitResult(uuid if isinstance(uuid, str) else None, REJECTED,
                           _error("uuid", "required", "Each visit needs a uuid (8-64 chars)."))
    text = canonical_json(visit)
    if "\\u0000" in text:  # JSON's only spelling of a NUL, which PostgreSQL text cannot hold
        errors = _nul_errors(visit)
        if errors:
            return VisitResult(uuid, REJECTED, errors)
    candidate = _Candidate(index, uuid, hashlib.sha256(text.encode()).hexdigest(),
                           visit.get("household_id"), None, [])
    row = cache.get(visit.get("form_id"), visit.get("form_version"))
    if row is None:
        candidate.errors = _error("form_version", "unknown_form",
                                  "No such published form version.")
        return candidate
    candidate.form = row
    if row.closed_at is not None:
        candidate.errors = _error("form_id", "form_closed",
                                  "This form is closed; visits for it are refused.")
        return candidate
    answers, errors = forms.validate_visit(compiled(row), visit)
    errors = errors + _envelope_errors(visit)
    if errors:
        candidate.errors = errors
        return candidate
    candidate.photos = _photo_refs(visit, answers)
    location = visit.get("location") or {}
    candidate.row = dict(
        uuid=uuid, content_hash=candidate.digest, household_id=candidate.household_id,
        form_id=row.form_id, form_version=row.version, device_id=device_id,
        base_version=visit.get("base_version"), branch_id=visit.get("branch_id"),
        trunk_version=visit.get("trunk_version"),
        started_at=_parse_time(visit.get("started_at")),
        ended_at=_parse_time(visit.get("ended_at")),
        started_at_device=str(visit.get("started_at"))[:40],
        lat=location.get("lat"), lon=location.get("lon"),
        accuracy_m=location.get("accuracy_m"), answers=answers,
        raw=json.dumps(visit, ensure_ascii=False), attempts=0)
    return candidate


def _nul_errors(value, path: str = "") -> list[dict]:
    """Every string (or key) holding a NUL: a whole visit refused here, before any query."""
    found: list[dict] = []
    if isinstance(value, str) and "\x00" in value:
        found += _error(path, "nul_character", "Text must not contain NUL characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                found += _error(where, "nul_character", "Keys must not contain NUL characters.")
            found += _nul_errors(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _nul_errors(item, f"{path}[{i}]")
    return found


def _store(session: Session, candidates: list[_Candidate], results: list,
           *, user_id: int, batch_id: int) -> list[feed.Change]:
    """Decide and store the candidates (in the write transaction); fill in their results."""
    if not candidates:
        return []
    uuids = {c.uuid for c in candidates}
    stored = dict(session.execute(select(Visit.uuid, Visit.content_hash)
                                  .where(Visit.uuid.in_(uuids))).all())
    households = {c.household_id for c in candidates if isinstance(c.household_id, str)}
    assignments = {h: (i, r, s) for i, h, r, s in session.execute(
        select(Assignment.id, Assignment.household_id, Assignment.round_id, Assignment.status)
        .where(Assignment.household_id.in_(households), Assignment.enumerator_id == user_id,
               Assignment.status.in_(OPEN_STATUSES)))} if households else {}
    hashes = {p["sha256"] for c in candidates for p in c.photos}
    have = set(session.scalars(select(Photo.sha256).where(Photo.sha256.in_(hashes)))) \
        if hashes else set()
    now = utcnow()
    first: dict[str, _Candidate] = {}  # uuid -> the candidate of this batch that stores it
    repeats: list[_Candidate] = []  # the same uuid again later in this batch
    for c in candidates:  # the checks in the order a single visit takes them
        if c.uuid in stored:
            results[c.index] = _repeat(c.uuid, stored[c.uuid], c.digest)
        elif c.uuid in first:
            repeats.append(c)
        elif not isinstance(c.household_id, str) or c.household_id not in assignments:
            results[c.index] = VisitResult(c.uuid, REJECTED, _error(
                "household_id", "not_assigned",
                "This household is not assigned to you (any more); the visit was not stored."))
        elif c.errors:
            results[c.index] = VisitResult(c.uuid, REJECTED, c.errors)
        else:
            missing = sorted({p["sha256"] for p in c.photos} - have)
            c.row.update(enumerator_id=user_id, batch_id=batch_id,
                         round_id=assignments[c.household_id][1], received_at=now,
                         status="waiting_photos" if missing else "queued",
                         queued_at=None if missing else now)
            results[c.index] = VisitResult(c.uuid, WAITING if missing else ACCEPTED, [],
                                           missing)
            first[c.uuid] = c
    inserted, refused = _insert(session, sorted(first.values(), key=lambda c: c.uuid))
    for uuid in refused:
        c = first.pop(uuid)
        results[c.index] = VisitResult(uuid, REJECTED, _error(
            "", "unstorable", "A value of this visit does not fit; nothing of it was stored."))
    lost = [c for c in first.values() if c.uuid not in inserted]
    if lost:  # another device stored these uuids between our look and our insert
        stored.update(session.execute(select(Visit.uuid, Visit.content_hash).where(
            Visit.uuid.in_([c.uuid for c in lost]))).all())
        for c in lost:
            results[c.index] = _repeat(c.uuid, stored[c.uuid], c.digest)
    for c in repeats:
        if c.uuid in refused:
            results[c.index] = VisitResult(c.uuid, REJECTED, _error(
                "uuid", "unstorable", "An earlier visit of this batch with this uuid could not "
                "be stored; send this one again on its own."))
            continue
        results[c.index] = _repeat(c.uuid, first[c.uuid].digest if c.uuid in inserted
                                   else stored[c.uuid], c.digest)
    links = [{"visit_uuid": c.uuid, **p}
             for c in first.values() if c.uuid in inserted for p in c.photos]
    if links:
        session.execute(insert(VisitPhoto), links)
    visited = {}
    for c in first.values():
        assignment_id, round_id, status = assignments[c.household_id]
        if c.uuid in inserted and status in ("pending", "returned"):
            visited[assignment_id] = (round_id, c.household_id)
    if not visited:
        return []
    session.execute(update(Assignment).where(Assignment.id.in_(sorted(visited)),
                                             Assignment.status.in_(("pending", "returned")))
                    .values(status="visited", updated_at=now))
    return [feed.Change(user_id, "assignment", feed.assignment_entity(r, h), "upsert")
            for r, h in visited.values()]


def _insert(session: Session, candidates: list[_Candidate]) -> tuple[set[str], set[str]]:
    """Insert the visits; return (uuids inserted, uuids the database refused).

    A uuid in neither set was stored by another device between our look and our insert. A
    refusal (a value that does not fit a column) is that visit's alone; a lost connection or
    a deadlock is not a visit's fault and fails the batch, which the phone sends again.
    """
    if not candidates:
        return set(), set()
    rows = [c.row for c in candidates]
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        stmt = (postgresql.insert(Visit) if dialect == "postgresql" else sqlite.insert(Visit))
        stmt = stmt.on_conflict_do_nothing(index_elements=["uuid"]).returning(Visit.uuid)
        try:
            with session.begin_nested():
                return set(session.scalars(stmt, rows)), set()
        except (IntegrityError, DataError):
            pass  # rolled back to the savepoint: one visit at a time below
    inserted, refused = set(), set()
    for row in rows:
        try:
            with session.begin_nested():
                session.execute(insert(Visit), [row])
            inserted.add(row["uuid"])
        except IntegrityError:
            if session.scalar(select(Visit.uuid).where(Visit.uuid == row["uuid"])) is None:
                raise
        except DataError:
            refused.add(row["uuid"])
    return inserted, refused


def _repeat(uuid: str, stored_hash: str, digest: str) -> VisitResult:
    if stored_hash == digest:
        return VisitResult(uuid, DUPLICATE)
    return VisitResult(uuid, UUID_REUSED, _error(
        "uuid", "uuid_reused",
        "A different visit is already stored under this uuid; it was not replaced."))


def _hashes_in(value, out: set) -> set:
    if isinstance(value, dict):
        for item in value.values():
            _hashes_in(item, out)
    elif isinstance(value, list):
        for item in value:
            _hashes_in(item, out)
    elif isinstance(value, str) and len(value) == 64:
        out.add(value.lower())
    return out


def _photo_refs(visit: dict, answers: dict) -> list[dict]:
    """The photos the cleaned answers use, as ``visit_photos`` rows (with the entry's
    ``taken_at`` and ``location``, already checked); a photo of a question that was not
    relevant is dropped with its answer, so the visit never waits for it."""
    used = _hashes_in(answers, set())
    refs: dict[tuple[str, str], dict] = {}
    for item in visit.get("photos") or []:
        if isinstance(item, dict) and isinstance(item.get("sha256"), str):
            sha = item["sha256"].lower()
            key = (str(item.get("field")), sha)
            if sha not in used or key in refs:
                continue
            name = item.get("filename")
            taken = item.get("taken_at")
            location = item.get("location") if isinstance(item.get("location"), dict) else {}
            refs[key] = {"field": key[0], "sha256": sha,
                         "filename": name[:255] if isinstance(name, str) else None,
                         "taken_at": parse_rfc3339(taken),
                         "taken_at_device": taken if isinstance(taken, str) else None,
                         "lat": location.get("lat"), "lon": location.get("lon"),
                         "accuracy_m": location.get("accuracy_m")}
    return list(refs.values())


def photo_arrived(session: Session, sha256: str) -> list[str]:
    """Queue the visits whose last missing photo this was; return their uuids."""
    waiting = session.scalars(select(Visit.uuid).join(VisitPhoto).where(
        VisitPhoto.sha256 == sha256, Visit.status == "waiting_photos")).all()
    ready = []
    for uuid in waiting:
        still_missing = session.scalar(
            select(VisitPhoto.sha256).outerjoin(Photo, Photo.sha256 == VisitPhoto.sha256)
            .where(VisitPhoto.visit_uuid == uuid, Photo.sha256.is_(None)).limit(1))
        if still_missing is None:
            ready.append(uuid)
    if ready:
        session.execute(update(Visit).where(Visit.uuid.in_(ready),
                                            Visit.status == "waiting_photos")
                        .values(status="queued", queued_at=utcnow()))
    return ready


def missing_photos(session: Session, uuid: str) -> list[str]:
    return sorted(session.scalars(
        select(VisitPhoto.sha256).outerjoin(Photo, Photo.sha256 == VisitPhoto.sha256)
        .where(VisitPhoto.visit_uuid == uuid, Photo.sha256.is_(None))).all())
