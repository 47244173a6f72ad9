"""Push ingest: each visit validated against its form version and stored with its status.

The rules follow ODK Central for duplicates (an identical resend is harmless, the same uuid
with other content is refused) and DHIS2's per-object import report (one result a visit, in
order; one bad visit never stops its neighbours). The whole batch is one transaction with a
savepoint per visit, committed before the response is sent: a visit the phone saw acknowledged
is on disk, and a crash before the commit acknowledges nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import forms
from sync import feed
from sync.db import utcnow, write_transaction
from sync.models.assignment import OPEN_STATUSES, Assignment
from sync.models.form import FormVersion
from sync.models.visit import Photo, SyncBatch, Visit, VisitPhoto

ACCEPTED, WAITING, DUPLICATE, REJECTED, UUID_REUSED = (
    "accepted", "waiting_photos", "duplicate", "rejected", "uuid_reused")


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
    return parsed if parsed.tzinfo is not None else None


class FormCache:
    """Published form versions by (form_id, version), loaded once per batch."""

    def __init__(self, session: Session):
        self.session, self.rows = session, {}

    def get(self, form_id, version) -> FormVersion | None:
        key = (form_id, version)
        if key not in self.rows:
            self.rows[key] = (self.session.scalar(select(FormVersion).where(
                FormVersion.form_id == form_id, FormVersion.version == version))
                if isinstance(form_id, str) and type(version) is int else None)
        return self.rows[key]


def ingest_batch(session: Session, *, user_id: int, device_id: str, batch_id: str,
                 raw_body: bytes, visits: list, compiled: Callable | None = None
                 ) -> list[VisitResult]:
    """Store a batch of visits for one enumerator; return one result a visit, in order."""
    from sync.forms import compiled_form

    compiled = compiled or compiled_form
    results: list[VisitResult] = []
    with write_transaction(session):
        batch = SyncBatch(batch_id=batch_id, user_id=user_id, device_id=device_id,
                          body=raw_body, visits=len(visits))
        session.add(batch)
        session.flush()
        cache = FormCache(session)
        changes: list[feed.Change] = []
        for visit in visits:
            result = _ingest_one(session, visit, user_id=user_id, device_id=device_id,
                                 batch=batch, cache=cache, compiled=compiled, changes=changes)
            results.append(result)
        batch.stored = sum(r.status in (ACCEPTED, WAITING) for r in results)
        feed.emit(session, changes)
    return results


def _ingest_one(session: Session, visit, *, user_id, device_id, batch, cache, compiled,
                changes) -> VisitResult:
    uuid = visit.get("uuid") if isinstance(visit, dict) else None
    if not isinstance(uuid, str) or not 8 <= len(uuid) <= 64:
        return VisitResult(uuid if isinstance(uuid, str) else None, REJECTED,
                           _error("uuid", "required", "Each visit needs a uuid (8-64 chars)."))
    digest = content_hash(visit)
    existing = session.execute(select(Visit.content_hash).where(Visit.uuid == uuid)).first()
    if existing is not None:
        return _repeat(uuid, existing[0], digest)
    household_id = visit.get("household_id")
    assignment = session.scalar(select(Assignment).where(
        Assignment.household_id == household_id, Assignment.enumerator_id == user_id,
        Assignment.status.in_(OPEN_STATUSES))) if isinstance(household_id, str) else None
    if assignment is None:
        return VisitResult(uuid, REJECTED, _error(
            "household_id", "not_assigned",
            "This household is not assigned to you (any more); the visit was not stored."))
    row = cache.get(visit.get("form_id"), visit.get("form_version"))
    if row is None:
        return VisitResult(uuid, REJECTED, _error(
            "form_version", "unknown_form", "No such published form version."))
    if row.closed_at is not None:
        return VisitResult(uuid, REJECTED, _error(
            "form_id", "form_closed", "This form is closed; visits for it are refused."))
    answers, errors = forms.validate_visit(compiled(row), visit)
    if errors:
        return VisitResult(uuid, REJECTED, errors)
    photos = _photo_refs(visit, answers)
    have = set(session.scalars(select(Photo.sha256).where(
        Photo.sha256.in_({sha for _field, sha, _name in photos})))) if photos else set()
    missing = sorted({sha for _field, sha, _name in photos} - have)
    now = utcnow()
    location = visit.get("location") or {}
    status = "waiting_photos" if missing else "queued"
    try:
        with session.begin_nested():
            session.add(Visit(
                uuid=uuid, content_hash=digest, household_id=household_id,
                form_id=row.form_id, form_version=row.version, enumerator_id=user_id,
                device_id=device_id, batch_id=batch.id, round_id=assignment.round_id,
                base_version=visit.get("base_version"), branch_id=visit.get("branch_id"),
                trunk_version=visit.get("trunk_version"),
                started_at=_parse_time(visit.get("started_at")),
                ended_at=_parse_time(visit.get("ended_at")),
                started_at_device=str(visit.get("started_at"))[:40],
                received_at=now, lat=location.get("lat"), lon=location.get("lon"),
                accuracy_m=location.get("accuracy_m"), answers=answers,
                raw=json.dumps(visit, ensure_ascii=False), status=status,
                queued_at=None if missing else now))
            session.flush()
            session.add_all(VisitPhoto(visit_uuid=uuid, field=field, sha256=sha, filename=name)
                            for field, sha, name in photos)
            session.flush()
    except IntegrityError:
        # Another device stored this uuid between our check and our insert.
        stored = session.execute(select(Visit.content_hash).where(Visit.uuid == uuid)).first()
        if stored is None:
            raise
        return _repeat(uuid, stored[0], digest)
    if assignment.status in ("pending", "returned"):
        assignment.status, assignment.updated_at = "visited", now
        changes.append(feed.Change(user_id, "assignment",
                                   feed.assignment_entity(assignment.round_id, household_id),
                                   "upsert"))
    return VisitResult(uuid, WAITING if missing else ACCEPTED, [], missing)


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


def _photo_refs(visit: dict, answers: dict) -> list[tuple[str, str, str | None]]:
    """The photos the cleaned answers use; a photo of a question that was not relevant is
    dropped with its answer, so the visit never waits for it."""
    used = _hashes_in(answers, set())
    refs = []
    for item in visit.get("photos") or []:
        if isinstance(item, dict) and isinstance(item.get("sha256"), str):
            sha = item["sha256"].lower()
            if sha not in used:
                continue
            name = item.get("filename")
            refs.append((str(item.get("field")), sha,
                         name[:255] if isinstance(name, str) else None))
    return list(dict.fromkeys(refs))


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
