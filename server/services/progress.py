"""Progress per kecamatan or kelurahan for the dashboard and ``GET /progress``, scoped per caller.

Reads the trigger-kept counters (``sync.progress.counts``): a few hundred small rows whatever
the size of the registry. The return shape is documented in docs/progress.md.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from sync.areas import PRIORITY_KECAMATAN
from sync.assignments import active_round
from sync.db import utcnow
from sync.models.area import Area
from sync.models.assignment import Round
from sync.models.conflict import Conflict
from sync.privacy import mask_name, mask_number
from sync.progress import ASSIGNMENT_METRICS, ESCALATED, OPEN_PREFIX, counts

LEVELS = ("kecamatan", "kelurahan")


def _overlaps(user: User, code: str) -> bool:
    """Whether the user holds ``code``, an area above it, or an area below it."""
    return user.role == "admin" or any(
        code == a or code.startswith(a + ".") or a.startswith(code + ".") for a in user.areas)


def _empty() -> dict:
    return {"households": 0, **{m: 0 for m in ASSIGNMENT_METRICS}, "conflicts_open": {},
            "conflicts_open_total": 0, "escalated": 0, "percent_done": 0.0}


def _add(total: dict, metrics: dict[str, int]) -> None:
    for metric, n in metrics.items():
        if metric.startswith(OPEN_PREFIX):
            kind = metric[len(OPEN_PREFIX):]
            total["conflicts_open"][kind] = total["conflicts_open"].get(kind, 0) + n
            total["conflicts_open_total"] += n
        elif metric == ESCALATED:
            total["escalated"] += n
        elif metric in total:
            total[metric] += n


def _finish(row: dict) -> dict:
    row["conflicts_open"] = {k: n for k, n in sorted(row["conflicts_open"].items()) if n}
    assigned = row["assigned"]
    row["percent_done"] = round(100.0 * row["done"] / assigned, 1) if assigned else 0.0
    return row


def chosen_round(session: Session, round_id: int | None) -> Round | None:
    """The round asked for (404 when there is none such), or the active one."""
    if round_id is None:
        return active_round(session)
    row = session.get(Round, round_id)
    if row is None:
        raise ServiceError(404, f"No round {round_id}.", code="not_found")
    return row


def areas_at(session: Session, user: User, level: str, parent: str | None, *,
             priority: bool = False) -> list[tuple[str, str]]:
    """(code, name) of the areas of ``level`` (under ``parent``) the user may see: the rows of
    the dashboard and of the monitoring view. 422 for a level without its parent, 404 for a
    parent outside the user's areas."""
    if level not in LEVELS:
        raise ServiceError(422, f"Unknown level {level!r}.", code="validation_failed")
    if level == "kelurahan" and not parent:
        raise ServiceError(422, "Level kelurahan needs parent=<kecamatan code>.",
                           code="validation_failed")
    if level == "kecamatan":
        stmt = select(Area.code, Area.name).where(Area.level == "kecamatan")
        if parent:
            stmt = stmt.where(Area.parent_code == parent)
    else:
        if not _overlaps(user, parent):
            raise ServiceError(404, f"No kecamatan {parent!r} that you may see.", code="not_found")
        stmt = select(Area.code, Area.name).where(Area.level == "kelurahan",
                                                   Area.parent_code == parent)
    areas = [(c, n) for c, n in session.execute(stmt.order_by(Area.code)) if _overlaps(user, c)]
    if priority:
        areas = [(c, n) for c, n in areas
                 if (c if level == "kecamatan" else c.rsplit(".", 1)[0]) in PRIORITY_KECAMATAN]
    return areas


def progress(session: Session, user: User, level: str = "kecamatan", parent: str | None = None,
             round_id: int | None = None, *, priority: bool = False) -> dict:
    """Counters per area of ``level`` (under ``parent`` for kelurahan), for one round."""
    if user.role not in ("supervisor", "admin", "pemantau"):
        raise ServiceError(403, "Only supervisors, admins and monitors see progress.",
                           code="forbidden")
    rnd = chosen_round(session, round_id)
    areas = areas_at(session, user, level, parent, priority=priority)
    rows = {code: {"code": code, "name": name,
                   "priority": (code if level == "kecamatan" else parent) in PRIORITY_KECAMATAN,
                   **_empty()} for code, name in areas}
    prefix = parent + "." if level == "kelurahan" else None
    for kelurahan, metrics in counts(session, rnd.id if rnd else None, prefix).items():
        if user.role != "admin" and not user.covers(kelurahan):
            continue
        key = kelurahan if level == "kelurahan" else kelurahan.rsplit(".", 1)[0]
        if key in rows:
            _add(rows[key], metrics)
    totals = _empty()
    for row in rows.values():
        _add(totals, {k: v for k, v in row.items() if k in ("households", *ASSIGNMENT_METRICS)})
        _add(totals, {OPEN_PREFIX + k: n for k, n in row["conflicts_open"].items()})
        totals["escalated"] += row["escalated"]
    if user.role == "pemantau":
        # Workflow counts only: open conflicts by kind are the monitoring view's targeting
        # errors unsuppressed (a "deceased_receiving_aid: 1" in a small kelurahan); the
        # pemantau keeps their total and reads the kinds, suppressed, from /monitoring.
        for row in (*rows.values(), totals):
            row["conflicts_open"] = {}
    return {
        "level": level,
        "parent": parent,
        "round": {"id": rnd.id, "name": rnd.name} if rnd else None,
        "areas": [_finish(r) for r in rows.values()],
        "totals": _finish(totals),
        "generated_at": utcnow(),
    }


def _mask(value):
    """Conflict values may carry a NIK, a KK number or a name: mask strings in a list."""
    if isinstance(value, str):
        return mask_number(value) if value.isdigit() else mask_name(value)
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    return value


def escalated(session: Session, user: User, *, after: int | None = None, limit: int = 50,
              now: dt.datetime | None = None) -> tuple[list[dict], int | None]:
    """Open escalated conflicts, oldest first by id, values masked (admins only)."""
    if user.role != "admin":
        raise ServiceError(403, "Only admins see escalated conflicts.", code="forbidden")
    now = now or utcnow()
    stmt = (select(Conflict).where(Conflict.status == "open", Conflict.escalated_at.is_not(None))
            .order_by(Conflict.id).limit(limit + 1))
    if after is not None:
        stmt = stmt.where(Conflict.id > after)
    rows = list(session.scalars(stmt))
    items = [{
        "id": c.id, "kind": c.kind, "severity": c.severity, "field": c.field,
        "household_id": c.household_id, "kecamatan": c.kecamatan, "kelurahan": c.kelurahan,
        "round_id": c.round_id, "registry_value": _mask(c.registry_value),
        "visit_value": _mask(c.visit_value), "created_at": c.created_at,
        "escalated_at": c.escalated_at, "age_days": (now - c.created_at).days,
    } for c in rows[:limit]]
    return items, (items[-1]["id"] if len(rows) > limit else None)
