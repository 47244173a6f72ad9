"""OpenRosa (ODK Collect, KoboCollect, Enketo): device keys, stored XForms, staged submissions.

- ``OpenRosaKey``: an enumerator's device key, like ODK Central's app users. The key travels in
  the URL path (``/openrosa/key/<token>/...``) because Collect has no bearer tokens; only its
  SHA-256 is stored. It does not expire and is revoked by making a new one (or by hand).
- ``OpenRosaXForm``: the XForm of an (immutable) form version, generated once: its md5 is
  formList's ``<hash>`` and the bytes served never change.
- ``OpenRosaSubmission`` and ``OpenRosaFile``: a submission as it arrives, maybe in several
  POSTs (``*isIncomplete*``), with each file part mapped from its filename to its SHA-256. The
  visit enters the push pipeline once every file its XML names is there.
- ``OpenRosaMedia``: an enumerator's ``households.csv`` and ``members.csv`` for a form version,
  with the ``state`` of their change feed they were built at; served only while that state is
  still the current one (``server.openrosa.service.media``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, UTCDateTime, utcnow


class OpenRosaKey(Base):
    __tablename__ = "openrosa_keys"
    __table_args__ = (Index("ix_openrosa_keys_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column()  # a user id; None from the CLI
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OpenRosaXForm(Base):
    __tablename__ = "openrosa_xforms"

    form_version_id: Mapped[int] = mapped_column(
        ForeignKey("form_versions.id", ondelete="CASCADE"), primary_key=True)
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    md5: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OpenRosaSubmission(Base):
    __tablename__ = "openrosa_submissions"

    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the visit's uuid
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    form_id: Mapped[str] = mapped_column(String(64))
    form_version: Mapped[int]
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # set when the visit went into the push pipeline (every named file had arrived)
    ingested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OpenRosaFile(Base):
    __tablename__ = "openrosa_files"

    instance_id: Mapped[str] = mapped_column(
        ForeignKey("openrosa_submissions.instance_id", ondelete="CASCADE"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OpenRosaMedia(Base):
    __tablename__ = "openrosa_media"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    form_version_id: Mapped[int] = mapped_column(
        ForeignKey("form_versions.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(128))
    households: Mapped[bytes] = mapped_column(LargeBinary)
    members: Mapped[bytes] = mapped_column(LargeBinary)
    households_md5: Mapped[str] = mapped_column(String(32))
    members_md5: Mapped[str] = mapped_column(String(32))
    # JSON: [household id, digest of what its rows are built from, length of its rows in
    # households, in members] per family, in order; lets a rebuild reuse unchanged families
    rows: Mapped[str | None] = mapped_column(Text)
    built_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
