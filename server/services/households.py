"""Reading households as a caller may see them: scoped, filtered, paginated, masked."""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from sync.models.assignment import OPEN_STATUSES, Assignment
from sync.models.registry import Anggota, Keluarga, KeluargaVersion, VerifiedRecord
from sync.privacy import mask_number
from sync.registry import household_history


def area_clause(user: User):
    """Rows in the user's areas: each area code covers itself and every code below it."""
    clauses = []
    for code in user.areas:
        if code.count(".") >= 3:
            clauses.append(Keluarga.kode_kelurahan == code)
        else:
            clauses.append(Keluarga.kode_kelurahan.like(code + ".%"))
    return or_(*clauses) if clauses else Keluarga.id.is_(None)


def scope(stmt: Select, user: User) -> Select:
    """Limit a query on ``Keluarga`` to what ``user`` may see.

    Admins see everything, supervisors their areas, and enumerators only the families assigned
    to them now (an open assignment in any round): never a neighbour's, even in their own area.
    """
    if user.role == "admin":
        return stmt
    if user.role == "enumerator":
        held = select(Assignment.household_id).where(
            Assignment.enumerator_id == user.id, Assignment.status.in_(OPEN_STATUSES))
        return stmt.where(Keluarga.id.in_(held))
    return stmt.where(area_clause(user))


def list_households(session: Session, user: User, *, kecamatan: str | None = None,
                    kelurahan: str | None = None, q: str | None = None,
                    after: str | None = None, limit: int = 50) -> tuple[list[dict], str | None]:
    """One page of households ordered by id, and the id to continue after (or None)."""
    member_count = (select(func.count()).where(Anggota.keluarga_id == Keluarga.id)
                    .correlate(Keluarga).scalar_subquery())
    stmt = scope(select(Keluarga, VerifiedRecord.version, member_count)
                 .outerjoin(VerifiedRecord, VerifiedRecord.household_id == Keluarga.id), user)
    if kecamatan:
        stmt = stmt.where(Keluarga.kode_kelurahan.like(kecamatan + ".%"))
    if kelurahan:
        stmt = stmt.where(Keluarga.kode_kelurahan == kelurahan)
    if q:
        q = q.strip()
        stmt = stmt.where(or_(Keluarga.id == q, Keluarga.no_kk == q,
                              Keluarga.id.like(q.replace("%", "") + "%")))
    if after:
        stmt = stmt.where(Keluarga.id > after)
    rows = session.execute(stmt.order_by(Keluarga.id).limit(limit + 1)).all()
    more = len(rows) > limit
    items = [_summary(k, version, members) for k, version, members in rows[:limit]]
    return items, (items[-1]["household_id"] if more else None)


def _summary(k: Keluarga, version: int | None, members: int) -> dict:
    return {
        "household_id": k.id,
        "no_kk": mask_number(k.no_kk),
        "kode_kelurahan": k.kode_kelurahan,
        "kode_kecamatan": k.kode_kelurahan.rsplit(".", 1)[0],
        "rt": k.rt,
        "rw": k.rw,
        "desil": k.desil,
        "members": members,
        "version": version,
        "registry_version": k.registry_version,
        "removed": k.removed_at is not None,
        "registry_changed_at": k.registry_changed_at,
    }


def get_visible(session: Session, user: User, household_id: str) -> Keluarga:
    """The family, or 404 when it does not exist or the caller may not see it (no oracle)."""
    row = session.scalar(scope(select(Keluarga).where(Keluarga.id == household_id), user))
    if row is None:
        raise ServiceError(404, f"No household {household_id!r} that you may see.")
    return row


def household_detail(session: Session, user: User, household_id: str) -> dict:
    """Registry record as delivered, verified record, its version, and the whole history."""
    k = get_visible(session, user, household_id)
    latest = session.scalar(select(KeluargaVersion)
                            .where(KeluargaVersion.keluarga_id == k.id)
                            .order_by(KeluargaVersion.version.desc()).limit(1))
    verified = session.get(VerifiedRecord, k.id)
    return {
        "household_id": k.id,
        "kode_kelurahan": k.kode_kelurahan,
        "registry": {
            "version": k.registry_version,
            "record": latest.snapshot if latest else None,
            "removed_at": k.removed_at,
            "changed_at": k.registry_changed_at,
        },
        "verified": {
            "version": verified.version if verified else None,
            "record": verified.doc if verified else None,
            "local_changes": verified.local_changes if verified else False,
            "upstream_version": verified.upstream_version if verified else None,
            "updated_at": verified.updated_at if verified else None,
        },
        "version": verified.version if verified else None,
        "history": household_history(session, k.id),
    }
