"""Rounds and assignments as a supervisor or admin may make them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from sync import assignments as core
from sync.models.assignment import Assignment, Round
from sync.models.registry import Keluarga
from sync.privacy import mask_number


def _raise(exc: core.AssignmentError):
    raise ServiceError(exc.status, exc.message, code=exc.code) from None


def create_round(session: Session, actor: User, name, starts_on, ends_on) -> Round:
    try:
        return core.create_round(session, name, starts_on, ends_on, actor.id)
    except core.AssignmentError as exc:
        _raise(exc)


def close_round(session: Session, actor: User, round_id: int) -> tuple[Round, int]:
    """Close a round (admins only): its open assignments end, status ``closed``.

    Returns the round and how many assignments ended; 409 ``round_closed`` when it already is.
    """
    if actor.role != "admin":
        raise ServiceError(403, "Only admins close rounds.", code="forbidden")
    try:
        ended = core.close_round(session, round_id, actor.id)
    except core.AssignmentError as exc:
        _raise(exc)
    return session.get(Round, round_id), ended


def assign(session: Session, actor: User, round_id: int, enumerator: str, *,
           household_ids=None, kelurahan=None, rt=None, rw=None) -> core.AssignResult:
    """Assign by ids, or by kelurahan (optionally one RT/RW), inside the actor's areas."""
    user = session.scalar(select(User).where(User.username == enumerator))
    if user is None or user.role != "enumerator" or not user.active:
        raise ServiceError(422, f"{enumerator!r} is not an active enumerator.",
                           code="invalid_enumerator")
    if household_ids is None:
        if not kelurahan:
            raise ServiceError(422, "Give household_ids, or a kelurahan (with rt/rw).")
        if not actor.covers(kelurahan):
            raise ServiceError(403, f"Kelurahan {kelurahan} is outside your areas.")
    households = core.select_households(session, household_ids=household_ids,
                                        kelurahan=kelurahan, rt=rt, rw=rw)
    try:
        return core.assign(session, round_id, user.id, households, actor_id=actor.id,
                           actor_covers=actor.covers, enumerator_covers=user.covers,
                           requested_ids=household_ids)
    except core.AssignmentError as exc:
        _raise(exc)


def unassign(session: Session, actor: User, round_id: int, household_id: str) -> None:
    try:
        core.unassign(session, round_id, household_id, actor_covers=actor.covers)
    except core.AssignmentError as exc:
        _raise(exc)


def list_assignments(session: Session, viewer: User, *, round_id=None, enumerator=None,
                     status=None, after: int | None = None, limit: int = 50):
    """Assignments the viewer may see: enumerators their own, supervisors their areas."""
    stmt = (select(Assignment, User.username, Keluarga.kode_kelurahan, Keluarga.no_kk)
            .join(User, User.id == Assignment.enumerator_id)
            .join(Keluarga, Keluarga.id == Assignment.household_id))
    if viewer.role == "enumerator":
        stmt = stmt.where(Assignment.enumerator_id == viewer.id)
    elif viewer.role == "supervisor":
        from server.services.households import area_clause

        stmt = stmt.where(area_clause(viewer))
    if round_id is not None:
        stmt = stmt.where(Assignment.round_id == round_id)
    if enumerator:
        stmt = stmt.where(User.username == enumerator)
    if status:
        stmt = stmt.where(Assignment.status == status)
    if after:
        stmt = stmt.where(Assignment.id > after)
    rows = session.execute(stmt.order_by(Assignment.id).limit(limit + 1)).all()
    items = [{"id": a.id, "round_id": a.round_id, "household_id": a.household_id,
              "enumerator": username, "status": a.status, "note": a.note,
              "kode_kelurahan": kelurahan, "no_kk": mask_number(no_kk),
              "assigned_at": a.assigned_at, "updated_at": a.updated_at}
             for a, username, kelurahan, no_kk in rows[:limit]]
    return items, (items[-1]["id"] if len(rows) > limit else None)
