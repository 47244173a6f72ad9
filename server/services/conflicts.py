"""The conflict queue as a caller may see it: scoped, filtered, keyset-paginated, masked.

Supervisors see the conflicts of their areas, admins all, enumerators none (403). The area codes
are copied onto every conflict, so the queue filters on ``(status, kelurahan, id)`` or
``(status, kecamatan, id)`` without a join, pages by ``id`` (keyset: no OFFSET), and counts per
kind with one GROUP BY over the same index range.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from sync.models.conflict import CONFLICT_STATUSES, Conflict
from sync.models.review import ReviewDecision
from sync.privacy import mask_name, mask_number

SORTS = ("newest", "oldest", "severity")
SEVERITY_RANK = {"hard": 0, "soft": 1, "info": 2}
_NIK_IN_PATH = re.compile(r"NIK=(\d+)")
_LONG_NUMBER = re.compile(r"^\d{16}$")
_NAME_KEYS = {"nama"}
_NUMBER_KEYS = {"nik", "no_kk"}


def require_reviewer(user: User) -> None:
    """Review is for supervisors and admins; enumerators get 403."""
    if user.role not in ("supervisor", "admin"):
        raise ServiceError(403, "Only supervisors and admins review conflicts.")


def area_clause(user: User, model=Conflict):
    """Rows of ``model`` (with ``kecamatan`` and ``kelurahan`` columns) in the user's areas."""
    clauses = []
    for code in user.areas:
        depth = code.count(".")
        if depth >= 3:
            clauses.append(model.kelurahan == code)
        elif depth == 2:
            clauses.append(model.kecamatan == code)
        else:
            clauses.append(model.kecamatan.like(code + ".%"))
    return or_(*clauses) if clauses else model.id.is_(None)


def scope(stmt: Select, user: User, model=Conflict) -> Select:
    require_reviewer(user)
    return stmt if user.role == "admin" else stmt.where(area_clause(user, model))


# --- masking ----------------------------------------------------------------------------------


def mask_path(path: str | None) -> str | None:
    """``anggota[NIK=3173014508850003].nama`` → ``anggota[NIK=317301********03].nama``."""
    if not path:
        return path
    return _NIK_IN_PATH.sub(lambda m: "NIK=" + (mask_number(m.group(1)) or ""), path)


def mask_value(value: Any, field: str | None = None) -> Any:
    """Hide NIKs, KK numbers and names inside a conflict value, whatever its shape."""
    leaf = (field or "").rsplit(".", 1)[-1]
    if isinstance(value, dict):
        return {k: mask_value(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    if isinstance(value, str):
        if leaf in _NAME_KEYS:
            return mask_name(value)
        if leaf in _NUMBER_KEYS or _LONG_NUMBER.match(value):
            return mask_number(value)
    return value


# --- other families (photo_reused) -------------------------------------------------------------
# A reused photo names the other families it was taken at (``registry_value`` and
# ``detail.other_household_ids``). A family outside the caller's areas is never named: as on the
# review page ("foto di keluarga lain, di luar wilayah Anda"), the caller learns the hash
# distance and the date of its photo, not its id, visit or name.


def _other_ids(c: Conflict) -> list[str]:
    detail = c.detail if isinstance(c.detail, dict) else {}
    ids = detail.get("other_household_ids") or c.registry_value or ()
    return [h for h in ids if isinstance(h, str)] if isinstance(ids, list) else []


def _covered_families(session: Session, user: User, ids) -> set[str]:
    """The ids among ``ids`` of families whose kelurahan the caller covers."""
    from sync.models.registry import Keluarga

    ids = sorted({i for i in ids if isinstance(i, str)})
    if not ids:
        return set()
    rows = session.execute(select(Keluarga.id, Keluarga.kode_kelurahan)
                           .where(Keluarga.id.in_(ids)))
    return {i for i, kel in rows if kel and user.covers(kel)}


def redact_other_families(session: Session, user: User,
                          pairs: list[tuple[Conflict, dict]]) -> None:
    """Drop the families outside the caller's areas from each photo_reused conflict's dict.

    ``pairs``: (the row, its dict as ``summary`` or ``conflict_detail`` made it, masked or
    not). ``registry_value`` and ``detail.other_household_ids`` keep the visible ids only (in
    one query for all the rows).
    """
    reused = [(c, d) for c, d in pairs if c.kind == "photo_reused"]
    if not reused:
        return
    seen = _covered_families(session, user, [h for c, _ in reused for h in _other_ids(c)])
    for c, d in reused:
        raw, shown = c.registry_value, d.get("registry_value")
        if isinstance(raw, list) and isinstance(shown, list) and len(raw) == len(shown):
            d["registry_value"] = [v for r, v in zip(raw, shown, strict=True) if r in seen]
        elif isinstance(shown, list):
            d["registry_value"] = []
        detail = d.get("detail")
        if isinstance(detail, dict) and isinstance(detail.get("other_household_ids"), list):
            d["detail"] = {**detail, "other_household_ids": [
                h for h in detail["other_household_ids"] if h in seen]}


def photo_matches(session: Session, user: User, c: Conflict) -> list[dict]:
    """photo_reused: each other family's closest matching photo, closest first.

    Every entry has ``visible``, ``distance_bits`` (perceptual-hash distance, 0 for the same
    file), ``exact`` (same SHA-256) and ``at`` (when that visit started, ISO 8601). A visible
    entry (a family in the caller's areas) adds ``household_id``, ``kelurahan``,
    ``visit_uuid`` and ``sha256``; one outside the caller's areas has nothing more.
    """
    from sync.models.registry import Keluarga
    from sync.models.visit import Photo, Visit, VisitPhoto
    from sync.photos import phash_distance

    others = sorted(set(_other_ids(c)))
    if not others:
        return []
    sha = c.visit_value if isinstance(c.visit_value, str) else None
    mine = session.get(Photo, sha) if sha else None
    rows = session.execute(
        select(VisitPhoto.sha256, Visit.uuid, Visit.household_id, Visit.started_at,
               Visit.received_at, Photo.phash)
        .join(Visit, Visit.uuid == VisitPhoto.visit_uuid)
        .outerjoin(Photo, Photo.sha256 == VisitPhoto.sha256)
        .where(Visit.household_id.in_(others), Visit.uuid != (c.visit_uuid or ""))).all()
    best: dict[str, tuple] = {}
    for other_sha, uuid, hid, started, received, phash in rows:
        if other_sha == sha:
            bits = 0
        elif mine is not None and mine.phash and phash:
            try:
                bits = phash_distance(mine.phash, phash)
            except ValueError:
                continue
        else:
            continue
        key = (bits, started or received, uuid)
        if hid not in best or key < best[hid][0]:
            best[hid] = (key, other_sha, uuid, started or received)
    kelurahan = dict(session.execute(select(Keluarga.id, Keluarga.kode_kelurahan)
                                     .where(Keluarga.id.in_(sorted(best)))).all())
    out = []
    for hid in sorted(best, key=lambda h: best[h][0]):
        (bits, _, _), other_sha, uuid, when = best[hid]
        entry = {"visible": False, "distance_bits": bits, "exact": other_sha == sha,
                 "at": when.isoformat() if when is not None else None}
        kel = kelurahan.get(hid)
        if kel and user.covers(kel):
            entry.update(visible=True, household_id=hid, kelurahan=kel, visit_uuid=uuid,
                         sha256=other_sha)
        out.append(entry)
    return out


# --- the list ---------------------------------------------------------------------------------


def _filtered(user: User, status: str | None, kind: str | None, kecamatan: str | None,
              kelurahan: str | None, household_id: str | None, visit_uuid: str | None,
              columns) -> Select:
    stmt = scope(select(*columns), user)
    if status:
        stmt = stmt.where(Conflict.status == status)
    if kecamatan:
        stmt = stmt.where(Conflict.kecamatan == kecamatan)
    if kelurahan:
        stmt = stmt.where(Conflict.kelurahan == kelurahan)
    if household_id:
        stmt = stmt.where(Conflict.household_id == household_id)
    if visit_uuid:
        stmt = stmt.where(Conflict.visit_uuid == visit_uuid)
    if kind:
        stmt = stmt.where(Conflict.kind == kind)
    return stmt


def summary(c: Conflict, *, masked: bool = True) -> dict:
    """A conflict as the queue lists it (values masked unless ``masked`` is False)."""
    m = mask_value if masked else (lambda v, f=None: v)
    return {
        "id": c.id, "household_id": c.household_id, "visit_uuid": c.visit_uuid,
        "round_id": c.round_id, "kind": c.kind, "severity": c.severity,
        "field": mask_path(c.field) if masked else c.field,
        "registry_value": m(c.registry_value, c.field), "visit_value": m(c.visit_value, c.field),
        "base_value": m(c.base_value, c.field), "message": c.message, "status": c.status,
        "resolution": c.resolution, "created_at": c.created_at, "updated_at": c.updated_at,
        "escalated_at": c.escalated_at, "kecamatan": c.kecamatan, "kelurahan": c.kelurahan,
    }


def list_conflicts(session: Session, user: User, *, status: str | None = "open",
                   kind: str | None = None, kecamatan: str | None = None,
                   kelurahan: str | None = None, household_id: str | None = None,
                   visit_uuid: str | None = None, sort: str = "newest", limit: int = 50,
                   cursor: str | None = None) -> dict:
    """One page of the queue, the cursor to the next one, and counts per kind.

    ``cursor`` is the opaque ``next_cursor`` of the previous page (signed: 400 when edited).
    ``counts`` apply every filter but ``kind``, so the page can show a tab per kind.
    """
    from server.pagination import decode_cursor, encode_cursor

    if status is not None and status not in CONFLICT_STATUSES and status != "all":
        raise ServiceError(422, "Unknown status.", code="validation_failed")
    if sort not in SORTS:
        raise ServiceError(422, "Unknown sort.", code="validation_failed")
    status = None if status == "all" else status
    limit = max(1, min(int(limit), 500))
    position = decode_cursor(f"conflicts.{sort}", cursor)
    stmt = _filtered(user, status, kind, kecamatan, kelurahan, household_id, visit_uuid,
                     [Conflict])
    rank = case(SEVERITY_RANK, value=Conflict.severity, else_=3)
    if sort == "newest":
        if position is not None:
            stmt = stmt.where(Conflict.id < int(position))
        stmt = stmt.order_by(Conflict.id.desc())
    elif sort == "oldest":
        if position is not None:
            stmt = stmt.where(Conflict.id > int(position))
        stmt = stmt.order_by(Conflict.id)
    else:  # severity first (hard, soft, info), newest first within a severity
        if position is not None:
            r, last = int(position[0]), int(position[1])
            stmt = stmt.where(or_(rank > r, (rank == r) & (Conflict.id < last)))
        stmt = stmt.order_by(rank, Conflict.id.desc())
    rows = session.scalars(stmt.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        pos = ([SEVERITY_RANK.get(last.severity, 3), last.id] if sort == "severity"
               else last.id)
        next_cursor = encode_cursor(f"conflicts.{sort}", pos)
    counts = _counts(session, user, status, kecamatan, kelurahan, household_id, visit_uuid)
    items = [summary(c) for c in rows]
    redact_other_families(session, user, list(zip(rows, items, strict=True)))
    return {"items": items, "next_cursor": next_cursor,
            "counts": dict(sorted(counts.items())), "total": sum(counts.values()) if not kind
            else counts.get(kind, 0)}


def _counts(session: Session, user: User, status: str | None, kecamatan: str | None,
            kelurahan: str | None, household_id: str | None, visit_uuid: str | None
            ) -> dict[str, int]:
    """Conflicts per kind for the filters (all but kind).

    The common queue view (open conflicts of one area the caller covers whole) reads the
    progress counters, kept by the triggers of migration 0008, instead of a row per conflict.
    """
    area = kelurahan or kecamatan
    if (status == "open" and area and not household_id and not visit_uuid
            and user.covers(area)
            and (not (kelurahan and kecamatan) or kelurahan.startswith(kecamatan + "."))):
        from sync.progress import open_conflict_counts

        return open_conflict_counts(session, kelurahan=kelurahan,
                                    kecamatan=None if kelurahan else kecamatan)
    return group_counts(session, user, status, kecamatan, kelurahan, household_id, visit_uuid)


def group_counts(session: Session, user: User, status: str | None, kecamatan: str | None,
                 kelurahan: str | None, household_id: str | None, visit_uuid: str | None
                 ) -> dict[str, int]:
    """Conflicts per kind by GROUP BY over the conflicts themselves."""
    # Grouping on ``kind || ''`` keeps SQLite's planner off the (status, kind) index, which
    # would scan every open conflict to save a sort; the area filter's index is far narrower.
    kind_key = (Conflict.kind + "").label("kind")
    stmt = _filtered(user, status, None, kecamatan, kelurahan, household_id, visit_uuid,
                     [kind_key, func.count()]).group_by(kind_key)
    return {k: n for k, n in session.execute(stmt)}


def get_visible(session: Session, user: User, conflict_id: int, *, for_update: bool = False
                ) -> Conflict:
    """The conflict, or 404 when it does not exist or lies outside the caller's areas."""
    stmt = scope(select(Conflict).where(Conflict.id == conflict_id), user)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise ServiceError(404, f"No conflict {conflict_id} that you may see.")
    return row


# --- the detail -------------------------------------------------------------------------------


def decision_dict(d: ReviewDecision, usernames: dict[int, str]) -> dict:
    return {"id": d.id, "action": d.action, "decision": d.decision, "conflict_id": d.conflict_id,
            "visit_uuid": d.visit_uuid, "field": d.field, "value": d.value, "note": d.note,
            "by": usernames.get(d.actor_id), "at": d.created_at,
            "verified_version": d.verified_version}


def usernames(session: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def conflict_detail(session: Session, user: User, conflict_id: int) -> dict:
    """Everything a supervisor needs to decide: values whole, photos, history and the map."""
    from server.services.media import signed_url
    from server.svg import kelurahan_map_svg
    from sync.models.registry import Keluarga
    from sync.models.visit import Visit, VisitPhoto
    from sync.registry import household_history

    c = get_visible(session, user, conflict_id)
    out = summary(c, masked=False)
    visit = session.get(Visit, c.visit_uuid) if c.visit_uuid else None
    family = session.get(Keluarga, c.household_id)
    decisions = session.scalars(select(ReviewDecision)
                                .where(ReviewDecision.household_id == c.household_id)
                                .order_by(ReviewDecision.id)).all()
    names = usernames(session, [c.resolved_by, visit.enumerator_id if visit else None,
                                *(d.actor_id for d in decisions)])
    history = household_history(session, c.household_id)
    by_version = {d.verified_version: d for d in decisions if d.verified_version is not None}
    actor_ids = [e.get("actor_id") for e in history]
    names.update(usernames(session, actor_ids))
    for entry in history:
        if entry["layer"] == "verified":
            entry["actor"] = names.get(entry.get("actor_id"))
            d = by_version.get(entry["version"])
            if d is not None and entry.get("source") == "review":
                entry["decision"] = {"action": d.action, "decision": d.decision,
                                     "conflict_id": d.conflict_id}
    photos = []
    if visit is not None:
        for p in session.scalars(select(VisitPhoto).where(VisitPhoto.visit_uuid == visit.uuid)
                                 .order_by(VisitPhoto.field, VisitPhoto.sha256)):
            photos.append({"field": p.field, "sha256": p.sha256,
                           "thumb_url": signed_url(p.sha256, "thumb"),
                           "url": signed_url(p.sha256, "full")})
    open_left = 0
    if visit is not None:
        open_left = session.scalar(select(func.count()).select_from(Conflict).where(
            Conflict.visit_uuid == visit.uuid, Conflict.status == "open"))
    point = (visit.lat, visit.lon) if visit is not None and visit.lat is not None else None
    registered = ((family.lat, family.lon) if family is not None and family.lat is not None
                  else None)
    out.update({
        "detail": dict(c.detail) if isinstance(c.detail, dict) else c.detail,
        "record_version": c.record_version,
        "resolution_value": c.resolution_value, "note": c.note,
        "resolved_by": names.get(c.resolved_by), "resolved_at": c.resolved_at,
        "visit": None if visit is None else {
            "uuid": visit.uuid, "status": visit.status,
            "enumerator": names.get(visit.enumerator_id), "started_at": visit.started_at,
            "ended_at": visit.ended_at, "received_at": visit.received_at,
            "location": ({"lat": visit.lat, "lon": visit.lon, "accuracy_m": visit.accuracy_m}
                         if visit.lat is not None else None),
            "open_conflicts": open_left, "review_note": visit.review_note,
        },
        "registered_location": ({"lat": family.lat, "lon": family.lon}
                                if registered else None),
        "photos": photos,
        "history": history,
        "decisions": [decision_dict(d, names) for d in decisions if d.conflict_id == c.id],
        "map_svg": kelurahan_map_svg(c.kelurahan, point=point,
                                     accuracy_m=visit.accuracy_m if visit else None,
                                     registered=registered),
    })
    if c.kind == "photo_reused":
        if _other_ids(c):  # what the other photos are, named only inside the caller's areas
            out["detail"] = {**(out["detail"] or {}), "others": photo_matches(session, user, c)}
        redact_other_families(session, user, [(c, out)])
    return out


# What an enumerator may see of their own visit's conflicts: the data they can correct. The
# integrity and eligibility checks (photos, GPS, timing, aid, other families) are the
# reviewers' alone: telling a fabricator which check fired teaches how to evade it.
ENUMERATOR_KINDS = frozenset({"field_mismatch", "concurrent_update", "invalid_identity",
                              "upstream_changed"})


def visit_conflicts(session: Session, user: User, visit_uuid: str) -> list[dict]:
    """A visit's conflicts for its detail: whole values for reviewers; for the enumerator,
    masked and only the kinds in ``ENUMERATOR_KINDS``."""
    query = select(Conflict).where(Conflict.visit_uuid == visit_uuid).order_by(Conflict.id)
    whole = user.role in ("supervisor", "admin")
    if not whole:
        query = query.where(Conflict.kind.in_(sorted(ENUMERATOR_KINDS)))
    rows = session.scalars(query).all()
    items = [summary(c, masked=not whole) for c in rows]
    redact_other_families(session, user, list(zip(rows, items, strict=True)))
    return items


__all__ = ["list_conflicts", "conflict_detail", "get_visible", "mask_value", "mask_path",
           "require_reviewer", "scope", "area_clause", "summary", "visit_conflicts",
           "photo_matches", "redact_other_families"]
