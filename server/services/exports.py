"""CSV exports, streamed: verified changes for the DTSEN maintainers, visit outcomes per area.

Rows are read with ``yield_per`` (a server-side cursor on PostgreSQL) and written a chunk at
a time, so an export of millions of rows never sits in memory. Every cell that a spreadsheet
would take for a formula (``= + - @``, tab, carriage return) is prefixed with a quote.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from server.models import User
from server.services import ServiceError
from server.services.households import area_clause
from sync.models.conflict import Conflict
from sync.models.registry import REGISTRY_SOURCE, Keluarga, VerifiedChange, VerifiedVersion
from sync.models.visit import Visit

CHUNK = 1000
CHANGES_HEADER = ["household_id", "kecamatan", "kelurahan", "field", "old", "new",
                  "verified_version", "source", "visit_uuid", "decided_by", "decided_at", "note"]
OUTCOMES_HEADER = ["visit_uuid", "household_id", "kecamatan", "kelurahan", "round_id",
                   "enumerator", "status", "started_at", "ended_at", "received_at",
                   "reviewed_by", "reviewed_at", "conflicts_hard", "conflicts_soft",
                   "conflicts_info", "conflicts_open"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not run: JSON for structures, quote-prefixed formulas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.datetime):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _writer() -> tuple[io.StringIO, csv.writer]:
    buf = io.StringIO()
    return buf, csv.writer(buf, lineterminator="\r\n")


def csv_stream(header: list[str], rows: Iterator[list]) -> Iterator[str]:
    buf, writer = _writer()
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        n += 1
        if n % CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _check(user: User, kecamatan: str | None = None, kelurahan: str | None = None) -> None:
    if user.role not in ("supervisor", "admin"):
        raise ServiceError(403, "Only supervisors and admins export.")
    for code in (kecamatan, kelurahan):
        if code and not user.covers(code):
            raise ServiceError(403, "That area is outside your areas.")


def changes_csv(session: Session, user: User, since: dt.datetime | None = None,
                kecamatan: str | None = None, kelurahan: str | None = None) -> Iterator[str]:
    """Verified changes not from the registry import, one row a changed field, oldest first.

    Checks permissions before the first chunk (so a refusal is a proper error response).
    """
    _check(user, kecamatan, kelurahan)
    actor = aliased(User)
    stmt = (select(VerifiedChange.household_id, Keluarga.kode_kelurahan, VerifiedChange.path,
                   VerifiedChange.old_value, VerifiedChange.new_value, VerifiedVersion.version,
                   VerifiedVersion.source, VerifiedVersion.visit_uuid, actor.username,
                   VerifiedVersion.created_at, VerifiedVersion.note)
            .join(VerifiedVersion, VerifiedVersion.id == VerifiedChange.version_id)
            .join(Keluarga, Keluarga.id == VerifiedChange.household_id)
            .outerjoin(actor, actor.id == VerifiedVersion.actor_id)
            .where(VerifiedVersion.source != REGISTRY_SOURCE))
    if since is not None:
        stmt = stmt.where(VerifiedChange.created_at >= since)
    if user.role != "admin":
        stmt = stmt.where(area_clause(user))
    if kecamatan:
        stmt = stmt.where(Keluarga.kode_kelurahan.like(kecamatan + ".%"))
    if kelurahan:
        stmt = stmt.where(Keluarga.kode_kelurahan == kelurahan)
    stmt = stmt.order_by(VerifiedChange.created_at, VerifiedChange.id)

    def rows():
        result = session.execute(stmt.execution_options(yield_per=CHUNK))
        for hid, kel, path, old, new, version, source, visit, who, at, note in result:
            yield [hid, kel[:8], kel, path, old, new, version, source, visit, who, at, note]

    return csv_stream(CHANGES_HEADER, rows())


def outcomes_csv(session: Session, user: User, kecamatan: str | None = None,
                 kelurahan: str | None = None, round_id: int | None = None) -> Iterator[str]:
    """Every visit of the area (and round): who, when, its status and conflicts by severity."""
    _check(user, kecamatan, kelurahan)
    counts = (select(Conflict.visit_uuid.label("uuid"),
                     *(func.sum(case((Conflict.severity == s, 1), else_=0)).label(s)
                       for s in ("hard", "soft", "info")),
                     func.sum(case((Conflict.status == "open", 1), else_=0)).label("open"))
              .group_by(Conflict.visit_uuid))
    if kelurahan:
        counts = counts.where(Conflict.kelurahan == kelurahan)
    elif kecamatan:
        counts = counts.where(Conflict.kecamatan == kecamatan)
    counts = counts.subquery()
    enumerator, reviewer = aliased(User), aliased(User)
    stmt = (select(Visit.uuid, Visit.household_id, Keluarga.kode_kelurahan, Visit.round_id,
                   enumerator.username, Visit.status, Visit.started_at, Visit.ended_at,
                   Visit.received_at, reviewer.username, Visit.reviewed_at,
                   counts.c.hard, counts.c.soft, counts.c.info, counts.c.open)
            .join(Keluarga, Keluarga.id == Visit.household_id)
            .join(enumerator, enumerator.id == Visit.enumerator_id)
            .outerjoin(reviewer, reviewer.id == Visit.reviewed_by)
            .outerjoin(counts, counts.c.uuid == Visit.uuid))
    if user.role != "admin":
        stmt = stmt.where(area_clause(user))
    if kelurahan:
        stmt = stmt.where(Keluarga.kode_kelurahan == kelurahan)
    elif kecamatan:
        stmt = stmt.where(Keluarga.kode_kelurahan.like(kecamatan + ".%"))
    if round_id is not None:
        stmt = stmt.where(Visit.round_id == round_id)
    stmt = stmt.order_by(Keluarga.kode_kelurahan, Visit.household_id, Visit.received_at,
                         Visit.uuid)

    def rows():
        for r in session.execute(stmt.execution_options(yield_per=CHUNK)):
            (uuid, hid, kel, rnd, who, status, started, ended, received, reviewer_name,
             reviewed_at, hard, soft, info, open_) = r
            yield [uuid, hid, kel[:8], kel, rnd, who, status, started, ended, received,
                   reviewer_name, reviewed_at, hard or 0, soft or 0, info or 0, open_ or 0]

    return csv_stream(OUTCOMES_HEADER, rows())
