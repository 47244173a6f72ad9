"""Enumerators' quality: the signals of fabricated visits, per enumerator.

Visits, the median visit length (``ended_at - started_at`` as the phone reported them), the
conflicts their visits raised by kind, and the two strongest signals apart: a photo reused from
another visit (``photo_reused``) and a journey no one can make between two visits
(``impossible_travel``). Supervisors see the enumerators of their areas, admins everyone.
"""

from __future__ import annotations

import statistics

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from server.services.devices import manages
from sync.models.conflict import Conflict
from sync.models.visit import Visit

SIGNALS = ("photo_reused", "impossible_travel")


def enumerator_quality(session: Session, viewer: User, round_id: int | None = None
                       ) -> list[dict]:
    """One row per enumerator the viewer manages, the most suspicious first."""
    if viewer.role not in ("supervisor", "admin"):
        raise ServiceError(403, "Only supervisors and admins see quality.", code="forbidden")
    users = [u for u in session.scalars(select(User).where(User.role == "enumerator")
                                        .order_by(User.username)) if manages(viewer, u)]
    ids = [u.id for u in users]
    if not ids:
        return []
    visits = select(Visit.enumerator_id, Visit.started_at, Visit.ended_at).where(
        Visit.enumerator_id.in_(ids))
    if round_id is not None:
        visits = visits.where(Visit.round_id == round_id)
    counts: dict[int, int] = {}
    minutes: dict[int, list[float]] = {}
    for user_id, started, ended in session.execute(visits):
        counts[user_id] = counts.get(user_id, 0) + 1
        if started is not None and ended is not None and ended >= started:
            minutes.setdefault(user_id, []).append((ended - started).total_seconds() / 60)
    kinds = (select(Visit.enumerator_id, Conflict.kind, func.count())
             .join(Visit, Visit.uuid == Conflict.visit_uuid)
             .where(Visit.enumerator_id.in_(ids)))
    if round_id is not None:
        kinds = kinds.where(Visit.round_id == round_id)
    conflicts: dict[int, dict[str, int]] = {}
    for user_id, kind, n in session.execute(kinds.group_by(Visit.enumerator_id, Conflict.kind)):
        conflicts.setdefault(user_id, {})[kind] = n
    rows = []
    for u in users:
        by_kind = dict(sorted(conflicts.get(u.id, {}).items(), key=lambda kv: (-kv[1], kv[0])))
        lengths = minutes.get(u.id)
        rows.append({
            "username": u.username, "full_name": u.full_name, "areas": u.areas,
            "active": u.active, "visits": counts.get(u.id, 0),
            "median_minutes": round(statistics.median(lengths), 1) if lengths else None,
            "conflicts": by_kind, "conflicts_total": sum(by_kind.values()),
            **{s: by_kind.get(s, 0) for s in SIGNALS},
        })
    rows.sort(key=lambda r: (-(r["photo_reused"] + r["impossible_travel"]),
                             -r["conflicts_total"], r["username"]))
    return rows
