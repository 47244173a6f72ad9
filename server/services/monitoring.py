"""Monitoring figures per kecamatan or kelurahan for a ``pemantau`` (and supervisors, admins).

Aggregates only: coverage, targeting errors found, eligibility changes after verification,
member changes and a weekly series. They are read from counters kept as the data is written
(``sync.monitoring``: triggers mark families, drains count them again); every definition is in
docs/monitoring.md, and ``tests/monitoring`` recomputes each one from the raw tables and
compares.

Two layers:

- ``raw_monitoring(session, user, level, parent, round_id)`` -> the caller's areas at
  ``level``, summed from the kelurahan counters (exact figures);
- ``present`` -> what every role is shown: counts below ``MIN_COUNT`` become ``"< 5"`` and
  rates are hidden (None) for areas with fewer than ``MIN_VERIFIED_FOR_RATES`` verified
  families (and for a count that is itself hidden, which the rate would give away).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from server.services.progress import areas_at, chosen_round
from sync import monitoring as counters
from sync.areas import PRIORITY_KECAMATAN
from sync.db import utcnow, write_transaction
from sync.models.area import Area
from sync.models.assignment import Round
from sync.monitoring import (  # noqa: F401  (the measures' vocabulary, used by pages and tests)
    ERROR_KINDS,
    MEMBER_KINDS,
    PROGRAMMES,
    WEEKLY_KEYS,
    eligible,
    empty_raw,
    iso_week,
    measures,
    week_monday,
)

ROLES = ("supervisor", "admin", "pemantau")
WIB = counters.WIB

MIN_COUNT = 5                 # counts below this are shown as "< 5"
MIN_VERIFIED_FOR_RATES = 20   # rates are hidden for areas with fewer verified families
SUPPRESSED = "< 5"
MAX_WEEKS = 156              # the weekly series keeps at most three years
# Families a read counts again before it reads, when writers left some (the worker and the
# scheduler drain the rest).
READ_DRAIN_LIMIT = 5000


# --------------------------------------------------------------------------- weeks


def round_weeks(rnd: Round | None, events: Iterable[str], today: dt.date | None = None
                ) -> list[str]:
    """ISO weeks from the round's first week (or an earlier week holding an event) to the
    week of today (WIB) or of its end, whichever is earlier (or a later week holding an event,
    never after this week); at most ``MAX_WEEKS``, the latest kept."""
    if rnd is None:
        return []
    today = today or dt.datetime.now(WIB).date()
    this_week = week_monday(iso_week(today))
    first = week_monday(iso_week(rnd.starts_on))
    last = week_monday(iso_week(min(today, rnd.ends_on)))
    for week in events:
        monday = week_monday(week)
        if monday <= this_week:
            last = max(last, monday)
        first = min(first, monday)
    if last < first:
        return []
    if (last - first).days > 7 * (MAX_WEEKS - 1):
        first = last - dt.timedelta(weeks=MAX_WEEKS - 1)
    out, day = [], first
    while day <= last:
        out.append(iso_week(day))
        day += dt.timedelta(days=7)
    return out


# --------------------------------------------------------------------------- summing, scope


def counted(session: Session, round_id: int | None, kelurahan: Iterable[str], *,
            by: str = "kelurahan", weekly_by_area: bool = False) -> tuple[dict, dict]:
    """The figures of the kelurahan summed per area from the counters (``counts``), after
    counting again what writers left marked (up to ``READ_DRAIN_LIMIT`` families)."""
    if round_id is not None and counters.pending(session):
        with write_transaction(session):
            counters.drain(session, limit=READ_DRAIN_LIMIT)
    return counters.counts(session, round_id, kelurahan, by=by, weekly_by_area=weekly_by_area)


def _add(total: dict, raw: Mapping) -> None:
    for key in ("households", "visited", "verified", "returned"):
        total[key] += raw[key]
    for m, pair in raw["targeting_errors"].items():
        for k, n in pair.items():
            total["targeting_errors"][m][k] += n
    for p, pair in raw["eligibility_changes"].items():
        for k, n in pair.items():
            total["eligibility_changes"][p][k] += n
    for k, n in raw["members"].items():
        total["members"][k] += n
    for week, row in raw["weekly"].items():
        for k, n in row.items():
            total["weekly"][week][k] += n


def raw_monitoring(session: Session, user: User, level: str = "kecamatan",
                   parent: str | None = None, round_id: int | None = None, *,
                   priority: bool = False, today: dt.date | None = None,
                   weekly_by_area: bool = False) -> dict:
    """The caller's areas at ``level`` with exact figures (the input of ``present``); the
    weekly series of the totals, and of each area with ``weekly_by_area``."""
    if user.role not in ROLES:
        raise ServiceError(403, "Only monitors, supervisors and admins see monitoring.",
                           code="forbidden")
    rnd = chosen_round(session, round_id)
    areas = areas_at(session, user, level, parent, priority=priority)
    return _collect(session, user, level, parent, areas, rnd, today, weekly_by_area)


def raw_kelurahan_of(session: Session, user: User, kecamatan: Iterable[str],
                     round_id: int | None = None, *, today: dt.date | None = None) -> dict:
    """Every kelurahan of ``kecamatan`` the caller covers, with exact figures (the map's)."""
    if user.role not in ROLES:
        raise ServiceError(403, "Only monitors, supervisors and admins see monitoring.",
                           code="forbidden")
    rnd = chosen_round(session, round_id)
    stmt = (select(Area.code, Area.name).where(Area.level == "kelurahan",
                                               Area.parent_code.in_(sorted(kecamatan)))
            .order_by(Area.code))
    areas = [(c, n) for c, n in session.execute(stmt) if user.covers(c)]
    return _collect(session, user, "kelurahan", None, areas, rnd, today, False)


def _collect(session: Session, user: User, level: str, parent: str | None,
             areas: list[tuple[str, str]], rnd: Round | None, today: dt.date | None,
             weekly_by_area: bool) -> dict:
    codes = [c for c, _n in areas]
    kel_stmt = select(Area.code).where(Area.level == "kelurahan")
    if level == "kecamatan":
        kel_stmt = kel_stmt.where(Area.parent_code.in_(codes))
    else:
        kel_stmt = kel_stmt.where(Area.code.in_(codes))
    kelurahan = [k for k in session.scalars(kel_stmt)
                 if user.role == "admin" or user.covers(k)]
    per_area, weekly = (counted(session, rnd.id if rnd else None, kelurahan, by=level,
                                weekly_by_area=weekly_by_area)
                        if kelurahan else ({}, {}))
    rows = {code: {"code": code, "name": name,
                   "priority": (code if level == "kecamatan" else code.rsplit(".", 1)[0])
                   in PRIORITY_KECAMATAN, **empty_raw()} for code, name in areas}
    totals = empty_raw()
    for key, raw in per_area.items():
        if key in rows:
            _add(rows[key], raw)
            _add(totals, raw)
    weeks = round_weeks(rnd, weekly.keys(), today)
    empty_week = {k: 0 for k in WEEKLY_KEYS}
    totals["weekly"] = [{"week": w, "starts_on": week_monday(w), **weekly.get(w, empty_week)}
                        for w in weeks]
    for row in rows.values():
        row["weekly"] = ([{"week": w, "starts_on": week_monday(w), **row["weekly"][w]}
                          for w in weeks] if weekly_by_area else None)
    return {
        "level": level, "parent": parent,
        "round": ({"id": rnd.id, "name": rnd.name, "starts_on": rnd.starts_on,
                   "ends_on": rnd.ends_on} if rnd else None),
        "areas": list(rows.values()), "totals": totals, "computed_at": utcnow(),
    }


# --------------------------------------------------------------------------- the output layer


def count(n: int):
    """A count as shown: ``"< 5"`` below ``MIN_COUNT``, else the number."""
    return SUPPRESSED if n < MIN_COUNT else n


def rate(n: int, verified: int) -> float | None:
    """Per 1,000 verified families, one decimal; None (hidden) with fewer than
    ``MIN_VERIFIED_FOR_RATES`` verified families, or when the count itself is hidden (the
    rate and the verified count would give it away)."""
    if verified < MIN_VERIFIED_FOR_RATES or n < MIN_COUNT:
        return None
    return round(1000.0 * n / verified, 1)


def present_area(raw: Mapping) -> dict:
    verified = raw["verified"]
    out = {k: raw[k] for k in ("code", "name", "priority") if k in raw}
    out.update({k: count(raw[k]) for k in ("households", "visited", "verified", "returned")})
    out["rates_shown"] = verified >= MIN_VERIFIED_FOR_RATES
    out["targeting_errors"] = {
        m: {"flagged": count(p["flagged"]), "upheld": count(p["upheld"]),
            "flagged_per_1000": rate(p["flagged"], verified),
            "upheld_per_1000": rate(p["upheld"], verified)}
        for m, p in raw["targeting_errors"].items()}
    out["eligibility_changes"] = {
        p: {"gains": count(v["gains"]), "losses": count(v["losses"])}
        for p, v in raw["eligibility_changes"].items()}
    out["members"] = {k: count(n) for k, n in raw["members"].items()}
    if raw["weekly"] is not None:
        out["weekly"] = [{"week": w["week"], "starts_on": w["starts_on"],
                          **{k: count(w[k]) for k in WEEKLY_KEYS}} for w in raw["weekly"]]
    return out


def present(raw: Mapping) -> dict:
    """Small counts suppressed, rates hidden: what every role is shown (API, CSV, page)."""
    return {
        "level": raw["level"], "parent": raw["parent"], "round": raw["round"],
        "min_count": MIN_COUNT, "min_verified_for_rates": MIN_VERIFIED_FOR_RATES,
        "areas": [present_area(a) for a in raw["areas"]],
        "totals": present_area(raw["totals"]),
        "computed_at": raw["computed_at"],
    }


def monitoring(session: Session, user: User, level: str = "kecamatan", parent: str | None = None,
               round_id: int | None = None, *, priority: bool = False,
               weekly_by_area: bool = False) -> dict:
    """``present(raw_monitoring(...))``: the body of ``GET /api/v1/monitoring``."""
    return present(raw_monitoring(session, user, level, parent, round_id, priority=priority,
                                  weekly_by_area=weekly_by_area))


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    ["level", "code", "name", "round_id", "households", "visited", "verified", "returned"]
    + [f"{m}_{k}" for m in ERROR_KINDS
       for k in ("flagged", "upheld", "flagged_per_1000", "upheld_per_1000")]
    + [f"{p}_{k}" for p in PROGRAMMES for k in ("gains", "losses")]
    + [f"members_{k}" for k in MEMBER_KINDS]
    + ["computed_at"]
)


def csv_rows(data: Mapping) -> Iterable[list]:
    """One row per area, then a ``total`` row, of ``present``'s output."""
    rnd = data["round"]
    computed = data["computed_at"].isoformat()
    for area in (*data["areas"], {**data["totals"], "code": "total", "name": "Total"}):
        row = [data["level"], area["code"], area["name"], rnd["id"] if rnd else "",
               area["households"], area["visited"], area["verified"], area["returned"]]
        for m in ERROR_KINDS:
            e = area["targeting_errors"][m]
            row += [e["flagged"], e["upheld"],
                    "" if e["flagged_per_1000"] is None else e["flagged_per_1000"],
                    "" if e["upheld_per_1000"] is None else e["upheld_per_1000"]]
        for p in PROGRAMMES:
            row += [area["eligibility_changes"][p]["gains"],
                    area["eligibility_changes"][p]["losses"]]
        row += [area["members"][k] for k in MEMBER_KINDS]
        row.append(computed)
        yield row
