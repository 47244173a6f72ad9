"""Reading visits as a caller may see them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from server.services.households import scope
from sync.ingest import missing_photos
from sync.models.registry import Keluarga
from sync.models.visit import Visit, VisitPhoto


def get_visible_visit(session: Session, user: User, uuid: str) -> Visit:
    """Enumerators see their own visits; others the visits of households they may see."""
    visit = session.get(Visit, uuid)
    if visit is not None and user.role == "enumerator":
        if visit.enumerator_id == user.id:
            return visit
        visit = None
    elif visit is not None:
        allowed = session.scalar(scope(select(Keluarga.id), user)
                                 .where(Keluarga.id == visit.household_id))
        visit = visit if allowed else None
    if visit is None:
        raise ServiceError(404, f"No visit {uuid!r} that you may see.")
    return visit


def visit_detail(session: Session, user: User, uuid: str) -> dict:
    visit = get_visible_visit(session, user, uuid)
    photos = session.scalars(select(VisitPhoto).where(VisitPhoto.visit_uuid == uuid)).all()
    from server.models import User as UserModel

    enumerator = session.get(UserModel, visit.enumerator_id)
    return {
        "uuid": visit.uuid, "household_id": visit.household_id, "form_id": visit.form_id,
        "form_version": visit.form_version, "enumerator": enumerator.username,
        "device_id": visit.device_id, "status": visit.status,
        "base_version": visit.base_version, "branch_id": visit.branch_id,
        "trunk_version": visit.trunk_version, "started_at": visit.started_at,
        "ended_at": visit.ended_at, "received_at": visit.received_at,
        "location": ({"lat": visit.lat, "lon": visit.lon, "accuracy_m": visit.accuracy_m}
                     if visit.lat is not None else None),
        "answers": visit.answers,
        "photos": [{"field": p.field, "sha256": p.sha256, "filename": p.filename}
                   for p in photos],
        "missing_photos": missing_photos(session, uuid),
        "conflicts": _conflicts(session, user, uuid),
        "filled": _filled(user, visit),
    }


def _filled(user: User, visit: Visit) -> list[dict]:
    """The fields the verified record held blank that the visit filled (outcome ``filled``,
    no conflict), in the comparison's order: whole values for reviewers, masked for the
    enumerator as its conflicts are. Empty until the visit is reconciled."""
    from server.services.conflicts import mask_path, mask_value

    filled = (visit.comparison or {}).get("filled") or {}
    if user.role in ("supervisor", "admin"):
        return [{"path": path, "value": value} for path, value in filled.items()]
    return [{"path": mask_path(path), "value": mask_value(value, path)}
            for path, value in filled.items()]


def _conflicts(session: Session, user: User, uuid: str) -> list[dict]:
    from server.services.conflicts import visit_conflicts

    return visit_conflicts(session, user, uuid)
