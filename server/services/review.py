"""Supervisors' decisions on conflicts (resolve, bulk, reopen), visits (approve, reject, return).

Every decision runs in one write transaction and leaves three traces: the conflict's (or
visit's) own status and note, one ``review_decisions`` row (who, when, which decision, note,
which verified version), and a new verified version with ``source="review"``. A decision that
changes fields writes them through ``sync.registry.apply_changes`` (one ``verified_changes`` row
a field, and the phone's feed entry); a decision that changes none (``keep_registry``, a
reject, a return) still writes a version, with no changed fields, carrying the note, so the
family's history shows it. Reopening writes only the audit row: it does not undo the version
the decision wrote; resolving again writes a new one.

A stale view (the conflict is no longer open, the visit no longer under review) gets 409.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from server.services.conflicts import get_visible, require_reviewer, summary, usernames
from sync import monitoring
from sync.assignments import AssignmentError, set_status
from sync.db import utcnow, write_transaction
from sync.models.assignment import Assignment
from sync.models.conflict import DECISIONS, Conflict
from sync.models.review import ReviewDecision
from sync.models.visit import Visit
from sync.registry import ChangeError, apply_changes, apply_order

SOURCE = "review"
BULK_DECISIONS = ("accept_visit", "keep_registry")
VISIT_DECISIONS = ("approve", "reject", "return")
MAX_BULK = 500
# Conflicts whose visit value is a change of ``field`` (the comparison's drafts). A rule finding
# (photo_reused, location_far, ...) names a field at most for context: accepting the visit
# despite it changes nothing; the visit's changes come with their own field_mismatch.
CHANGE_KINDS = ("field_mismatch", "concurrent_update")
# The visit statuses a review may start from (else 409: someone decided first).
REVIEWABLE = {"approve": ("needs_review",), "reject": ("needs_review", "verified"),
              "return": ("needs_review", "verified")}
# Statuses of a visit whose conflicts may be reopened (approved goes back to needs_review).
REOPENABLE_VISIT = ("needs_review", "verified", "approved")


# --- writing ----------------------------------------------------------------------------------


def _change_error(exc: ChangeError) -> ServiceError:
    if exc.code in ("member_not_found", "member_ambiguous"):
        return ServiceError(409, "The field names a member the record no longer has in that "
                                 "form; decide the member's NIK change first, or set the value.",
                            code="stale_field", details={"reason": exc.code})
    if exc.code == "household_not_found":
        return ServiceError(409, "The family has no verified record.", code=exc.code)
    return ServiceError(422, "The value does not fit the field.", code="invalid_value",
                        details={"reason": exc.code})


def write_version(session: Session, household_id: str, changes: dict[str, Any], *,
                  actor_id: int, visit_uuid: str | None, note: str | None) -> int:
    """Apply ``changes`` as a new verified version (``source="review"``); when they change
    nothing, the version is still written, without changed fields, carrying the note."""
    try:
        return apply_changes(session, household_id, changes, source=SOURCE, actor_id=actor_id,
                             visit_uuid=visit_uuid, note=note, always_version=True)
    except ChangeError as exc:
        raise _change_error(exc) from None


def _audit(session: Session, user: User, action: str, *, household_id: str, kecamatan: str,
           kelurahan: str, decision: str | None = None, conflict_id: int | None = None,
           visit_uuid: str | None = None, field: str | None = None, value: Any = None,
           note: str | None = None, version: int | None = None) -> None:
    session.add(ReviewDecision(
        action=action, decision=decision, conflict_id=conflict_id, visit_uuid=visit_uuid,
        household_id=household_id, kecamatan=kecamatan, kelurahan=kelurahan, field=field,
        value=value, note=note, actor_id=user.id, verified_version=version,
        created_at=utcnow()))


def _close(c: Conflict, user: User, status: str, resolution: str | None, value: Any,
           note: str | None) -> None:
    now = utcnow()
    c.status, c.resolution, c.resolution_value = status, resolution, value
    c.note, c.resolved_by, c.resolved_at, c.updated_at = note, user.id, now, now


def _stale_conflict(session: Session, c: Conflict) -> ServiceError:
    who = usernames(session, [c.resolved_by]).get(c.resolved_by)
    return ServiceError(409, "This conflict was already decided; reload it.",
                        code="already_decided",
                        details={"status": c.status, "resolution": c.resolution,
                                 "resolved_by": who,
                                 "resolved_at": c.resolved_at.isoformat()
                                 if c.resolved_at else None})


def _open_count(session: Session, visit_uuid: str | None) -> int:
    if visit_uuid is None:
        return 0
    return session.scalar(select(func.count()).select_from(Conflict).where(
        Conflict.visit_uuid == visit_uuid, Conflict.status == "open"))


def _visit_state(session: Session, visit_uuid: str | None) -> dict | None:
    if visit_uuid is None:
        return None
    visit = session.get(Visit, visit_uuid)
    return {"uuid": visit_uuid, "status": visit.status if visit else None,
            "open_conflicts": _open_count(session, visit_uuid)}


# --- conflicts --------------------------------------------------------------------------------


def _check_note(note: str | None) -> str | None:
    if note is not None and not isinstance(note, str):
        raise ServiceError(422, "The note must be text.", code="validation_failed")
    note = (note or "").strip() or None
    if note is not None and len(note) > 2000:
        raise ServiceError(422, "The note may have at most 2000 characters.",
                           code="validation_failed")
    return note


def _resolve_in(session: Session, user: User, conflict_id: int, decision: str, value: Any,
                note: str | None) -> dict:
    c = get_visible(session, user, conflict_id, for_update=True)
    if c.status != "open":
        raise _stale_conflict(session, c)
    changes: dict[str, Any] = {}
    applied_value = None
    if decision == "accept_visit" and c.field and c.kind in CHANGE_KINDS:
        changes, applied_value = {c.field: c.visit_value}, c.visit_value
    elif decision == "set_value":
        if not c.field:
            raise ServiceError(422, "This finding names no field to set; accept the visit or "
                                    "keep the registry.", code="no_field")
        changes, applied_value = {c.field: value}, value
    version = write_version(session, c.household_id, changes, actor_id=user.id,
                            visit_uuid=c.visit_uuid, note=note)
    dismissed = decision == "dismiss"  # the finding does not hold (a photo that is legitimate)
    _close(c, user, "dismissed" if dismissed else "resolved", decision, applied_value, note)
    _audit(session, user, "dismiss" if dismissed else "resolve", decision=decision,
           conflict_id=c.id,
           visit_uuid=c.visit_uuid, household_id=c.household_id, kecamatan=c.kecamatan,
           kelurahan=c.kelurahan, field=c.field, value=applied_value, note=note,
           version=version)
    session.flush()
    monitoring.drain(session, households=[c.household_id])
    out = summary(c, masked=False)
    out.update({"resolution_value": c.resolution_value, "note": c.note,
                "resolved_by": user.username, "resolved_at": c.resolved_at,
                "verified_version": version, "applied": sorted(changes),
                "visit": _visit_state(session, c.visit_uuid)})
    return out


def resolve_conflict(session: Session, user: User, conflict_id: int, decision: str,
                     value: Any = None, note: str | None = None) -> dict:
    """Decide one open conflict: ``accept_visit`` applies the visit's value at the field,
    ``set_value`` applies ``value``, ``keep_registry`` applies nothing, ``dismiss`` applies
    nothing and closes the finding as ``dismissed`` (it does not hold). 409 when not open.

    The visit stays ``needs_review`` when its last conflict is decided: as in ODK Central and
    SurveyCTO, the submission itself is approved explicitly (``review_visit``).
    """
    require_reviewer(user)
    if decision not in DECISIONS:
        raise ServiceError(422, "Unknown decision.", code="validation_failed")
    note = _check_note(note)
    with write_transaction(session):
        return _resolve_in(session, user, int(conflict_id), decision, value, note)


def bulk_resolve(session: Session, user: User, ids: list[int], decision: str,
                 note: str | None = None) -> list[dict]:
    """Resolve each id on its own (its own transaction): one result per id, in order.

    A result is ``{"id", "status": "resolved", "verified_version"}`` or ``{"id", "status":
    "error", "error": {"code", "message", "http_status"}}``; one failure stops nothing.
    """
    require_reviewer(user)
    if decision not in BULK_DECISIONS:
        raise ServiceError(422, "Bulk decisions are accept_visit or keep_registry.",
                           code="validation_failed")
    if not ids or len(ids) > MAX_BULK:
        raise ServiceError(422, f"Send between 1 and {MAX_BULK} ids.", code="validation_failed")
    note = _check_note(note)
    results = []
    for conflict_id in ids:
        try:
            with write_transaction(session):
                out = _resolve_in(session, user, int(conflict_id), decision, None, note)
            results.append({"id": conflict_id, "status": "resolved",
                            "verified_version": out["verified_version"],
                            "visit": out["visit"]})
        except ServiceError as exc:
            results.append({"id": conflict_id, "status": "error",
                            "error": {"code": exc.code or _code(exc.status),
                                      "message": exc.message, "http_status": exc.status}})
    return results


def _code(status: int) -> str:
    from server.errors import CODES

    return CODES.get(status, "error")


def reopen_conflict(session: Session, user: User, conflict_id: int,
                    note: str | None = None) -> dict:
    """Open a resolved or dismissed conflict again (audited). The version its decision wrote
    stays; deciding again writes a new one. An approved visit goes back to needs_review."""
    require_reviewer(user)
    note = _check_note(note)
    with write_transaction(session):
        c = get_visible(session, user, int(conflict_id), for_update=True)
        if c.status == "open":
            raise ServiceError(409, "This conflict is open already.", code="already_open")
        visit = session.get(Visit, c.visit_uuid) if c.visit_uuid else None
        if visit is not None and visit.status not in REOPENABLE_VISIT:
            raise ServiceError(409, f"The visit was {visit.status}; its conflicts stay closed.",
                               code="visit_closed", details={"visit_status": visit.status})
        previous = {"status": c.status, "resolution": c.resolution}
        now = utcnow()
        c.status, c.resolution, c.resolution_value = "open", None, None
        c.note, c.resolved_by, c.resolved_at, c.updated_at = None, None, None, now
        if visit is not None and visit.status == "approved":
            visit.status = "needs_review"
            _set_review_state(session, visit, "needs_review")
        _audit(session, user, "reopen", decision=previous["resolution"], conflict_id=c.id,
               visit_uuid=c.visit_uuid, household_id=c.household_id, kecamatan=c.kecamatan,
               kelurahan=c.kelurahan, field=c.field, value=previous, note=note)
        session.flush()
        monitoring.drain(session, households=[c.household_id])
        out = summary(c, masked=False)
        out.update({"reopened_from": previous, "visit": _visit_state(session, c.visit_uuid)})
        return out


# --- visits -----------------------------------------------------------------------------------


def _set_review_state(session: Session, visit: Visit, state: str | None) -> None:
    if visit.round_id is None:
        return
    row = session.scalar(select(Assignment).where(Assignment.round_id == visit.round_id,
                                                  Assignment.household_id == visit.household_id))
    if row is not None:
        row.review_state, row.updated_at = state, utcnow()


def review_visit(session: Session, user: User, uuid: str, decision: str,
                 note: str | None = None) -> dict:
    """Approve, reject or return a visit under review; 409 when it is no longer reviewable.

    ``approve`` applies the visit's fills and proposed changes that no conflict decided
    otherwise (its open conflicts are resolved ``accept_visit``): visit approved, assignment
    done and verified. It is refused while a hard conflict is open. ``reject``: open conflicts
    dismissed, nothing applied, visit rejected, assignment review_state rejected (its status is
    left as it is).
    ``return``: the same, but the visit is returned and the assignment goes back to the
    enumerator (status ``returned`` with the note) through the pull feed.
    """
    from server.services.visits import get_visible_visit

    require_reviewer(user)
    if decision not in VISIT_DECISIONS:
        raise ServiceError(422, "Unknown decision.", code="validation_failed")
    note = _check_note(note)
    with write_transaction(session):
        get_visible_visit(session, user, uuid)  # 404 outside the caller's areas
        visit = session.scalars(select(Visit).where(Visit.uuid == uuid)
                                .with_for_update()).one()
        if visit.status not in REVIEWABLE[decision]:
            raise ServiceError(409, f"The visit is {visit.status}; it cannot be {decision}d "
                                    "now. Reload it.", code="stale_review",
                               details={"status": visit.status})
        conflicts = session.scalars(select(Conflict).where(Conflict.visit_uuid == uuid)
                                    .order_by(Conflict.id).with_for_update()).all()
        open_ = [c for c in conflicts if c.status == "open"]
        from sync.models.registry import Keluarga

        kelurahan = session.get(Keluarga, visit.household_id).kode_kelurahan
        area = {"household_id": visit.household_id, "kelurahan": kelurahan,
                "kecamatan": kelurahan[:8]}
        changes: dict[str, Any] = {}
        if decision == "approve":
            hard = [c.id for c in open_ if c.severity == "hard"]
            if hard:
                raise ServiceError(409, "Decide the hard conflicts before approving the visit.",
                                   code="hard_conflicts_open", details={"conflict_ids": hard})
            decided = {c.field for c in conflicts if c.status != "open" and c.field}
            comparison = visit.comparison or {}
            applied = comparison.get("applied") or {}
            # Its proposed changes and its fills (fields the record held blank, no conflict
            # of their own), except those applied when it was reconciled or decided since.
            for outcome in ("filled", "proposed"):
                for path, value in (comparison.get(outcome) or {}).items():
                    if path not in decided and path not in applied:
                        changes[path] = value
            for c in open_:
                if c.kind in CHANGE_KINDS and c.field and c.field not in decided:
                    changes.setdefault(c.field, c.visit_value)
            changes = apply_order(changes)
        # The assignment first, then the feed: a push and the reconciliation worker update
        # assignments (whose trigger locks the enumerator's enumerator_load rows) before they
        # emit to the feed (its one feed_state row). Taking feed_state first here, as
        # write_version's emit would, deadlocked against a push of the same enumerator.
        assignment = _move_assignment(session, visit, decision, note)
        session.flush()
        version = write_version(session, visit.household_id, changes, actor_id=user.id,
                                visit_uuid=uuid, note=note)
        closed = []
        for c in open_:
            if decision == "approve":
                value = c.visit_value if c.kind in CHANGE_KINDS and c.field else None
                _close(c, user, "resolved", "accept_visit", value, note)
                _audit(session, user, "resolve", decision="accept_visit", conflict_id=c.id,
                       visit_uuid=uuid, field=c.field, value=value, note=note, version=version,
                       **area)
            else:
                _close(c, user, "dismissed", None, None, note)
                _audit(session, user, "dismiss", decision=decision, conflict_id=c.id,
                       visit_uuid=uuid, field=c.field, note=note, version=version, **area)
            closed.append(c.id)
        now = utcnow()
        visit.status = {"approve": "approved", "reject": "rejected",
                        "return": "returned"}[decision]
        visit.reviewed_by, visit.reviewed_at, visit.review_note = user.id, now, note
        visit.result_version = version
        _audit(session, user, decision, decision=decision, visit_uuid=uuid,
               value={"applied": list(changes)} if changes else None, note=note,
               version=version, **area)
        session.flush()
        monitoring.drain(session, households=[visit.household_id])
        return {"uuid": uuid, "household_id": visit.household_id, "decision": decision,
                "status": visit.status, "note": note, "reviewed_by": user.username,
                "reviewed_at": now, "verified_version": version, "applied": list(changes),
                "resolved" if decision == "approve" else "dismissed": closed,
                "assignment": assignment}


def _move_assignment(session: Session, visit: Visit, decision: str,
                     note: str | None) -> dict | None:
    if visit.round_id is None:
        if decision == "return":
            raise ServiceError(409, "The visit belongs to no round; there is no assignment to "
                                    "send back.", code="no_assignment")
        return None
    row = session.scalar(select(Assignment).where(Assignment.round_id == visit.round_id,
                                                  Assignment.household_id == visit.household_id))
    if row is None:
        if decision == "return":
            raise ServiceError(409, "The family has no assignment in the visit's round.",
                               code="no_assignment")
        return None
    try:
        if decision == "approve":
            row = set_status(session, visit.round_id, visit.household_id, "done")
            row.review_state = "verified"
        elif decision == "return":
            row = set_status(session, visit.round_id, visit.household_id, "returned",
                             note=note or "")
            row.review_state = None
        else:
            row.review_state, row.updated_at = "rejected", utcnow()
    except AssignmentError as exc:
        raise ServiceError(exc.status, exc.message, code=exc.code) from None
    return {"round_id": row.round_id, "status": row.status, "review_state": row.review_state,
            "note": row.note}
