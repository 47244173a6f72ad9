"""Rounds and assignments: who visits which family, and the feed entries that tell their phones.

Supervisors assign inside their areas, by a list of families, by kelurahan, or by RT/RW.
Assigning a family another enumerator holds in the same round moves it: the old phone gets a
delete, the new one an upsert. A family is never open in two rounds at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync.db import utcnow
from sync.feed import Change, assignment_entity, emit
from sync.models.assignment import ASSIGNMENT_STATUSES, OPEN_STATUSES, Assignment, Round
from sync.models.registry import Keluarga


class AssignmentError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclasses.dataclass
class AssignResult:
    assigned: int = 0  # new to this round
    moved: int = 0  # taken from another enumerator
    unchanged: int = 0  # already held by this enumerator
    skipped: list[dict] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def create_round(session: Session, name: str, starts_on: dt.date, ends_on: dt.date,
                 actor_id: int | None = None) -> Round:
    if ends_on < starts_on:
        raise AssignmentError(422, "invalid_dates", "A round cannot end before it starts.")
    if session.scalar(select(Round.id).where(Round.name == name)) is not None:
        raise AssignmentError(409, "round_exists", f"A round named {name!r} already exists.")
    row = Round(name=name, starts_on=starts_on, ends_on=ends_on, created_by=actor_id)
    session.add(row)
    session.flush()
    return row


def active_round(session: Session, today: dt.date | None = None) -> Round | None:
    """The round running today (the latest started one), else the latest round."""
    today = today or dt.date.today()
    running = session.scalar(select(Round).where(Round.starts_on <= today,
                                                 Round.ends_on >= today)
                             .order_by(Round.starts_on.desc(), Round.id.desc()).limit(1))
    return running or session.scalar(select(Round).order_by(Round.id.desc()).limit(1))


def _get_round(session: Session, round_id: int, *, open_only: bool = False) -> Round:
    row = session.get(Round, round_id)
    if row is None:
        raise AssignmentError(404, "not_found", f"No round {round_id}.")
    if open_only and row.state == "closed":
        raise AssignmentError(409, "round_closed", f"Round {round_id} is closed.")
    return row


def close_round(session: Session, round_id: int, actor_id: int | None = None) -> int:
    """Close a round: its open assignments end (status ``closed``) and leave the phones.

    Returns how many assignments ended. The families may then be assigned in another round;
    done assignments, visits and conflicts of the round stay as they are.
    """
    row = _get_round(session, round_id)
    if row.state == "closed":
        raise AssignmentError(409, "round_closed", f"Round {round_id} is already closed.")
    now = utcnow()
    row.state, row.closed_at, row.closed_by = "closed", now, actor_id
    held = session.execute(select(Assignment.enumerator_id, Assignment.household_id).where(
        Assignment.round_id == round_id, Assignment.status.in_(OPEN_STATUSES))).all()
    if held:
        session.execute(update(Assignment).where(
            Assignment.round_id == round_id, Assignment.status.in_(OPEN_STATUSES))
            .values(status="closed", updated_at=now).execution_options(
                synchronize_session=False))
    session.flush()
    changes: list[Change] = []
    for enumerator_id, household_id in held:
        changes += [Change(enumerator_id, "assignment", assignment_entity(round_id, household_id),
                           "delete"),
                    Change(enumerator_id, "household", household_id, "delete")]
    emit(session, changes)
    session.expire_all()
    return len(held)


def select_households(session: Session, *, household_ids: list[str] | None = None,
                      kelurahan: str | None = None, rt: str | None = None,
                      rw: str | None = None) -> list[tuple[str, str]]:
    """(id, kelurahan) of the families a request names; removed families are left out."""
    stmt = select(Keluarga.id, Keluarga.kode_kelurahan).where(Keluarga.removed_at.is_(None))
    if household_ids is not None:
        stmt = stmt.where(Keluarga.id.in_(household_ids))
    else:
        stmt = stmt.where(Keluarga.kode_kelurahan == kelurahan)
        if rt:
            stmt = stmt.where(Keluarga.rt == rt)
        if rw:
            stmt = stmt.where(Keluarga.rw == rw)
    return list(session.execute(stmt.order_by(Keluarga.id)).all())


def assign(session: Session, round_id: int, enumerator_id: int, households: list[tuple[str, str]],
           *, actor_id: int | None, actor_covers: Callable[[str], bool],
           enumerator_covers: Callable[[str], bool],
           requested_ids: list[str] | None = None) -> AssignResult:
    """Give ``households`` to an enumerator in a round; report what was done to each."""
    _get_round(session, round_id, open_only=True)
    result = AssignResult()
    found = {h for h, _ in households}
    for missing in sorted(set(requested_ids or ()) - found):
        result.skipped.append({"household_id": missing, "reason": "not_found"})
    ids = [h for h, _ in households]
    current: dict[str, Assignment] = {}
    rows = session.scalars(select(Assignment).where(
        Assignment.household_id.in_(ids),
        Assignment.status.in_(OPEN_STATUSES) | (Assignment.round_id == round_id))) if ids else []
    for a in rows:
        # An open assignment in another round wins: it is what blocks this one.
        if a.household_id not in current or (a.round_id != round_id
                                             and a.status in OPEN_STATUSES):
            current[a.household_id] = a
    changes: list[Change] = []
    now = utcnow()
    for household_id, kelurahan in households:
        if not actor_covers(kelurahan):
            result.skipped.append({"household_id": household_id, "reason": "outside_your_areas"})
            continue
        if not enumerator_covers(kelurahan):
            result.skipped.append({"household_id": household_id,
                                   "reason": "outside_enumerator_areas"})
            continue
        held = current.get(household_id)
        if held is not None and held.round_id != round_id:
            result.skipped.append({"household_id": household_id,
                                   "reason": "open_in_another_round",
                                   "round_id": held.round_id})
            continue
        if held is None:
            session.add(Assignment(round_id=round_id, household_id=household_id,
                                   enumerator_id=enumerator_id, status="pending",
                                   assigned_by=actor_id, assigned_at=now, updated_at=now))
            result.assigned += 1
        elif held.enumerator_id == enumerator_id and held.status in OPEN_STATUSES:
            result.unchanged += 1
            continue
        else:
            if held.status in OPEN_STATUSES and held.enumerator_id != enumerator_id:
                changes += _withdraw(held)
                result.moved += 1
            else:
                result.assigned += 1  # a done assignment in this round, opened again
            held.enumerator_id, held.status, held.note = enumerator_id, "pending", None
            held.assigned_by, held.assigned_at, held.updated_at = actor_id, now, now
        entity = assignment_entity(round_id, household_id)
        changes += [Change(enumerator_id, "assignment", entity, "upsert"),
                    Change(enumerator_id, "household", household_id, "upsert")]
    session.flush()
    emit(session, changes)
    return result


def _withdraw(a: Assignment) -> list[Change]:
    """The entries that take a family off its current enumerator's phone."""
    return [Change(a.enumerator_id, "assignment", assignment_entity(a.round_id, a.household_id),
                   "delete"),
            Change(a.enumerator_id, "household", a.household_id, "delete")]


def unassign(session: Session, round_id: int, household_id: str, *,
             actor_covers: Callable[[str], bool]) -> None:
    _get_round(session, round_id, open_only=True)
    row = session.scalar(select(Assignment).where(Assignment.round_id == round_id,
                                                  Assignment.household_id == household_id))
    kelurahan = session.scalar(select(Keluarga.kode_kelurahan).where(Keluarga.id == household_id))
    if row is None or kelurahan is None or not actor_covers(kelurahan):
        raise AssignmentError(404, "not_found",
                              f"No assignment of {household_id!r} in round {round_id}.")
    changes = _withdraw(row) if row.status in OPEN_STATUSES else []
    session.delete(row)
    session.flush()
    emit(session, changes)


def set_status(session: Session, round_id: int, household_id: str, status: str,
               note: str | None = None) -> Assignment:
    """Move an assignment along (visited, returned with a note, done); the phone is told."""
    if status not in ASSIGNMENT_STATUSES:
        raise AssignmentError(422, "invalid_status", f"Unknown status {status!r}.")
    row = session.scalar(select(Assignment).where(Assignment.round_id == round_id,
                                                  Assignment.household_id == household_id))
    if row is None:
        raise AssignmentError(404, "not_found", "No such assignment.")
    if row.status == "closed" and status != "done":
        # Its round was closed: the family may already be open in the next one.
        raise AssignmentError(409, "round_closed", f"Round {round_id} is closed.")
    row.status, row.updated_at = status, utcnow()
    if note is not None:
        row.note = note
    session.flush()
    entity = assignment_entity(round_id, household_id)
    emit(session, [Change(row.enumerator_id, "assignment", entity, "upsert")])
    return row
