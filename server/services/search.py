"""Finding a family by KK number, NIK or name, within the caller's areas.

For the supervisor's search page (``/review/cari``): the query arrives in a POST body, never in
a URL, and every result is masked (``sync.privacy``): the family's page shows the whole record.
"""

from __future__ import annotations

import re

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from server.services.households import scope
from sync.models.registry import Anggota, Keluarga
from sync.privacy import mask_name, mask_number

NUMBER = re.compile(r"^\d{16}$")
MIN_NAME = 3


def find_families(session: Session, user: User, query: str, *, limit: int = 50
                  ) -> tuple[str, list[dict], bool]:
    """(how the query was read, matching families masked, whether there were more).

    Sixteen digits are a KK number or a NIK (of a registry member); otherwise a family id, or
    part of a member's name (at least three letters, any case). Removed families are left out.
    """
    if user.role not in ("supervisor", "admin"):
        raise ServiceError(403, "Only supervisors and admins search.", code="forbidden")
    query = " ".join(query.split())
    if NUMBER.match(query):
        how = "number"
        matched = select(Anggota.keluarga_id).where(Anggota.nik == query)
        where = or_(Keluarga.no_kk == query, Keluarga.id.in_(matched))
    elif len(query) >= MIN_NAME:
        how = "name"
        pattern = "%" + query.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        matched = select(Anggota.keluarga_id).where(func.lower(Anggota.nama).like(pattern))
        where = or_(Keluarga.id == query, Keluarga.id.in_(matched))
    else:
        raise ServiceError(422, "Give 16 digits, a family id, or 3 letters of a name.",
                           code="query_too_short")
    stmt = scope(select(Keluarga.id, Keluarga.no_kk, Keluarga.kode_kelurahan, Keluarga.rt,
                        Keluarga.rw).where(where, Keluarga.removed_at.is_(None)), user)
    rows = session.execute(stmt.order_by(Keluarga.id).limit(limit + 1)).all()
    ids = [r[0] for r in rows[:limit]]
    members: dict[str, list[tuple]] = {}
    if ids:
        for hid, nik, nama, hubungan in session.execute(
                select(Anggota.keluarga_id, Anggota.nik, Anggota.nama, Anggota.hubungan)
                .where(Anggota.keluarga_id.in_(ids)).order_by(Anggota.keluarga_id,
                                                              Anggota.no_urut)):
            members.setdefault(hid, []).append((nik, nama, hubungan))
    items = []
    for hid, kk, kelurahan, rt, rw in rows[:limit]:
        people = members.get(hid, [])
        head = next((m for m in people if m[2] == 1), people[0] if people else None)
        if how == "number":
            hits = [m for m in people if m[0] == query]
            what = "No. KK" if kk == query else "NIK"
        else:
            hits = [m for m in people if query.lower() in (m[1] or "").lower()]
            what = "ID keluarga" if hid == query else "Nama"
        items.append({
            "household_id": hid, "kode_kelurahan": kelurahan, "rt": rt, "rw": rw,
            "no_kk": mask_number(kk), "head": mask_name(head[1]) if head else None,
            "matched_by": what,
            "members": [{"nik": mask_number(n), "nama": mask_name(nm)} for n, nm, _h in hits],
        })
    return how, items, len(rows) > limit
