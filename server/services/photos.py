"""Photos over HTTP: storing an upload, recording it, and who may see it."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import metrics
from server.models import User
from server.services import ServiceError
from server.services.households import scope
from sync import photos as store
from sync.db import write_transaction
from sync.ingest import photo_arrived
from sync.models.registry import Keluarga
from sync.models.visit import Photo, Visit, VisitPhoto

ACCEPTED_TYPES = {"image/jpeg", "image/png", "image/heic", "image/heif"}


@lru_cache(maxsize=8)
def _storage(root: str) -> store.LocalPhotoStorage:
    return store.LocalPhotoStorage(root)


def storage() -> store.PhotoStorage:
    return _storage(current_app.config["PHOTO_DIR"])


def _sha(name: str) -> str:
    try:
        return store.normalise_sha256(name)
    except store.PhotoError as exc:
        raise ServiceError(exc.status, exc.message, code=exc.code) from None


def has_photo(session: Session, name: str) -> bool:
    sha = _sha(name)
    return session.get(Photo, sha) is not None and storage().exists(sha)


def receive(session: Session, user: User, name: str, stream, content_type: str | None,
            content_length: int | None) -> tuple[dict, bool]:
    """Store an upload (streamed, hash-checked, validated) and queue visits it completes."""
    sha = _sha(name)
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in ACCEPTED_TYPES:
        raise ServiceError(415, "Send the photo's bytes as image/jpeg, image/png or image/heic.",
                           code="unsupported_media_type")
    limit = current_app.config["MAX_PHOTO_BYTES"]
    if content_length is not None and content_length > limit:
        raise ServiceError(413, f"A photo may have at most {limit} bytes.", code="too_large",
                           details={"max_bytes": limit})
    try:
        result = store.receive_photo(storage(), sha, stream, max_bytes=limit)
    except store.PhotoError as exc:
        details = {"max_bytes": limit} if exc.code == "too_large" else {}
        raise ServiceError(exc.status, exc.message, code=exc.code, details=details) from None
    created = False
    with write_transaction(session):
        if session.get(Photo, sha) is None:
            session.add(_row(result, user))
            try:
                session.flush()
                created = True
            except IntegrityError:  # the same photo from two phones at once
                session.rollback()
                session.begin()
        queued = photo_arrived(session, sha)
    if created:
        metrics.count_photo_stored(result.size_bytes)
    return {"sha256": sha, "size_bytes": result.size_bytes, "mime_type": result.mime_type,
            "width": result.width, "height": result.height, "queued_visits": queued}, created


def _row(result: store.PhotoResult, user: User) -> Photo:
    taken = result.taken_at
    return Photo(sha256=result.sha256, size_bytes=result.size_bytes, mime_type=result.mime_type,
                 width=result.width, height=result.height, phash=result.phash,
                 taken_at_local=taken.isoformat() if isinstance(taken, dt.datetime) else None,
                 taken_at=taken if taken is not None and result.taken_at_has_offset else None,
                 gps_lat=result.gps_lat, gps_lon=result.gps_lon, uploaded_by=user.id)


def may_see(session: Session, user: User, sha: str) -> bool:
    """Whoever uploaded it, or whoever may see a household one of its visits is for."""
    photo = session.get(Photo, sha)
    if photo is None:
        return False
    if user.role == "admin" or photo.uploaded_by == user.id:
        return True
    households = select(Visit.household_id).join(
        VisitPhoto, VisitPhoto.visit_uuid == Visit.uuid).where(VisitPhoto.sha256 == sha)
    visible = scope(select(Keluarga.id), user).where(Keluarga.id.in_(households)).limit(1)
    return session.scalar(visible) is not None


def open_photo(session: Session, user: User, name: str, size: str):
    sha = _sha(name)
    if not may_see(session, user, sha) or not storage().exists(sha):
        raise ServiceError(404, "No such photo that you may see.")
    return storage().path(sha, "thumb" if size == "thumb" else "full"), \
        session.get(Photo, sha).mime_type


def cleanup(session: Session, grace_seconds: float, temp_older_than: float = 86400) -> dict:
    """Remove photos no visit references once the grace period has passed, and stale temps.

    The grace period covers the usual order of things on a phone: photos are uploaded before
    the visit that references them is pushed.
    """
    referenced = set(session.scalars(select(VisitPhoto.sha256).distinct()))
    removed = store.remove_unreferenced(storage(), referenced, grace_seconds)
    if removed:
        with write_transaction(session):
            for sha in removed:
                if sha not in referenced:
                    photo = session.get(Photo, sha)
                    if photo is not None:
                        session.delete(photo)
    temps = store.remove_stale_temp_files(storage(), temp_older_than)
    return {"removed": len(removed), "temp_files": temps}
