"""Visits pushed by phones, their photos, and the batches they came in.

A visit is stored once, under the ``uuid`` the phone made when the form was opened, with the
canonical hash of its content: a resend with the same hash is a harmless duplicate, other
content under the same uuid is refused. Rejected visits are not stored (the phone may correct
and resend them); the batch's raw body is kept verbatim as evidence of what arrived.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Float, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, JSONDoc, UTCDateTime, utcnow

# waiting_photos -> queued -> processing -> verified | needs_review (or held, back to queued
# when its predecessor in the offline chain arrives; failed after repeated errors);
# needs_review -> approved | rejected | returned by a supervisor.
VISIT_STATUSES = ("waiting_photos", "queued", "processing", "held", "verified", "needs_review",
                  "approved", "rejected", "returned", "failed")
# Statuses of a visit that reconciliation has finished with.
PROCESSED_STATUSES = ("verified", "needs_review", "approved", "rejected", "returned")


class SyncBatch(Base):
    """One push request as it arrived: who, from which device, and the raw body, verbatim."""

    __tablename__ = "sync_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    visits: Mapped[int] = mapped_column(default=0)
    stored: Mapped[int] = mapped_column(default=0)


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_status_queued", "status", "queued_at"),
        Index("ix_visits_household_received", "household_id", "received_at"),
        Index("ix_visits_enumerator_started", "enumerator_id", "started_at"),
        Index("ix_visits_branch", "branch_id"),
    )

    uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    household_id: Mapped[str] = mapped_column(ForeignKey("keluarga.id"))
    form_id: Mapped[str] = mapped_column(String(64))
    form_version: Mapped[int]
    enumerator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str] = mapped_column(String(128))
    batch_id: Mapped[int] = mapped_column(ForeignKey("sync_batches.id"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    base_version: Mapped[int | None]
    branch_id: Mapped[str | None] = mapped_column(String(64))
    trunk_version: Mapped[int | None]
    # Device time as the phone reported it (with its offset), and server time.
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at_device: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    answers: Mapped[dict] = mapped_column(JSONDoc)
    raw: Mapped[str] = mapped_column(Text)  # this visit's JSON as received
    status: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Reconciliation's findings: the verified version it compared with and left, the paths by
    # outcome (confirmed, proposed, concurrent, applied), why it is held or failed.
    compared_version: Mapped[int | None]
    result_version: Mapped[int | None]
    comparison: Mapped[dict | None] = mapped_column(JSONDoc)
    hold_reason: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(200))
    # The supervisor's review (approve / reject / return) and its note.
    reviewed_by: Mapped[int | None]  # users.id (no FK: adding one would rebuild the table)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)
    # How the visit arrived: ``json`` (the push API) or ``openrosa`` (Collect, Kobo, Enketo).
    # Nothing downstream reads it: both go through the same checks, queue and review.
    channel: Mapped[str] = mapped_column(String(16), default="json", server_default="json")


class VisitPhoto(Base):
    """A photo a visit references, by hash (never by file name), with what the app claims of
    it: its ``photos[]`` entry's capture time and GPS point (``taken_at``, ``location``).

    The claims are the visit's, not the photo's: the same bytes may be referenced by several
    visits, each saying something else. A photo the app re-encoded has no EXIF, so these are
    all there is; where the photo has EXIF, the photo checks read EXIF (``Photo``) first.
    """

    __tablename__ = "visit_photos"
    __table_args__ = (Index("ix_visit_photos_sha256", "sha256"),)

    visit_uuid: Mapped[str] = mapped_column(ForeignKey("visits.uuid", ondelete="CASCADE"),
                                            primary_key=True)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    # The entry's ``taken_at`` (UTC) and as the phone wrote it (with its offset).
    taken_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    taken_at_device: Mapped[str | None] = mapped_column(String(40))
    # The entry's ``location``: where the phone was when the photo was taken.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)


class Photo(Base):
    """A stored photo and what was derived from it; the bytes live in the photo storage.

    Near copies (perceptual hashes a few bits apart) are found by the worker's in-memory band
    index (``sync.reconcile.near_copies``), which then asks for the photos of a hash by
    ``ix_photos_phash``.
    """

    __tablename__ = "photos"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    phash: Mapped[str | None] = mapped_column(String(16), index=True)
    taken_at_local: Mapped[str | None] = mapped_column(String(32))  # EXIF, as the camera wrote
    taken_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # when it had an offset
    gps_lat: Mapped[float | None] = mapped_column(Float)
    gps_lon: Mapped[float | None] = mapped_column(Float)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # indexed: the worker's near-copy index reads the photos received since its last batch
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
