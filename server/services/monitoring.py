"""Monitoring figures per kecamatan or kelurahan for a ``pemantau`` (and supervisors, admins).

Aggregates only: coverage, targeting errors found, eligibility changes after verification,
member changes and a weekly series, computed on read from the tables (no counters, no
migration). Every definition is in docs/monitoring.md; ``tests/monitoring`` recomputes each one
from the raw tables and compares.

Two layers:

- ``measures(session, round_id, kelurahan)`` -> the exact figures per kelurahan (raw counts);
- ``monitoring(session, user, level, parent, round_id)`` -> the caller's areas at ``level``,
  summed from the kelurahan figures, passed through ``present``: counts below
  ``MIN_COUNT`` become ``"< 5"`` and rates are hidden (None) for areas with fewer than
  ``MIN_VERIFIED_FOR_RATES`` verified families (and for a count that is itself hidden, which
  the rate would give away).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from server.services.progress import areas_at, chosen_round
from sync.areas import PRIORITY_KECAMATAN
from sync.db import utcnow
from sync.models.area import Area
from sync.models.assignment import Round
from sync.models.conflict import Conflict
from sync.models.registry import (
    Keluarga,
    KeluargaVersion,
    VerifiedChange,
    VerifiedRecord,
    VerifiedVersion,
)
from sync.models.visit import Visit
from sync.reconcile.compare import match_members
from sync.reconcile.config import DEFAULT as RULES_CONFIG
from sync.reconcile.rules import Context, inclusion_error

ROLES = ("supervisor", "admin", "pemantau")
WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

MIN_COUNT = 5                 # counts below this are shown as "< 5"
MIN_VERIFIED_FOR_RATES = 20   # rates are hidden for areas with fewer verified families
SUPPRESSED = "< 5"
MAX_WEEKS = 156              # the weekly series keeps at most three years

# Measure name -> the conflict kind whose families it counts.
ERROR_KINDS = {
    "inclusion_errors": "inclusion_error",
    "exclusion_errors": "exclusion_error",
    "deceased_with_aid": "deceased_receiving_aid",
    "moved_with_aid": "moved_receiving_aid",
}
# Programmes of the eligibility changes (Sembako is paid as BPNT).
PROGRAMMES = ("pkh", "bpnt", "pbi_jk")
# A conflict upheld by review: resolved with the visit's finding accepted, or a value set.
UPHELD_RESOLUTIONS = ("accept_visit", "set_value")
VERIFIED_STATUSES = ("verified", "approved")
MEMBER_PATH = re.compile(r"^anggota\[[^\]]*\]$")  # a member's presence, not one of its fields
MEMBER_KINDS = ("died", "moved", "added")
WEEKLY_KEYS = ("visited", "verified", "returned", "flagged")


# --------------------------------------------------------------------------- eligibility


def eligible(doc: Mapping, desil) -> dict[str, bool]:
    """Whether ``doc`` (a registry or verified record) may receive each programme under the
    rules of ``inclusion_error``: its desil within the programme's threshold and none of
    Jakarta's exclusions (a car, a present member working as PNS/TNI/Polri/BUMN, branded
    bottled water, NJOP above Rp 1 billion). The rule itself decides: it is run on the record
    as if the family received every programme; a programme it flags is not allowed. A family
    without a desil is eligible for nothing (Tapak does not compute desil)."""
    if not isinstance(desil, int) or isinstance(desil, bool):
        return {p: False for p in PROGRAMMES}
    record = dict(doc)
    record["program"] = {**(doc.get("program") or {}), **{p: True for p in PROGRAMMES}}
    ctx = Context(visit={"answers": {}, "household_id": doc.get("id_keluarga")},
                  record=record, registry={"desil": desil})
    drafts = inclusion_error(ctx, RULES_CONFIG)
    refused = set()
    for d in drafts:
        detail = d.get("detail") or {}
        if detail.get("reason") == "desil":
            refused.add(detail.get("program"))
        else:
            refused.update(PROGRAMMES)
    return {p: p not in refused for p in PROGRAMMES}


# --------------------------------------------------------------------------- weeks


def iso_week(moment: dt.datetime | dt.date) -> str:
    """``2026-W49``: the ISO week of a moment in Jakarta's clock (a date is taken as is)."""
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        try:
            moment = moment.astimezone(WIB).date()
        except OverflowError:  # a device's clock at the end of time
            moment = moment.date()
    year, week, _ = moment.isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_monday(week: str) -> dt.date:
    year, number = week.split("-W")
    return dt.date.fromisocalendar(int(year), int(number), 1)


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


# --------------------------------------------------------------------------- raw measures


def _empty_raw() -> dict:
    return {
        "households": 0, "visited": 0, "verified": 0, "returned": 0,
        "targeting_errors": {m: {"flagged": 0, "upheld": 0} for m in ERROR_KINDS},
        "eligibility_changes": {p: {"gains": 0, "losses": 0} for p in PROGRAMMES},
        "members": {k: 0 for k in MEMBER_KINDS},
        "weekly": defaultdict(lambda: {k: 0 for k in WEEKLY_KEYS}),
    }


def _first(store: dict, key, moment) -> None:
    if moment is None:
        return
    if key not in store or moment < store[key]:
        store[key] = moment


def _in_scope(kelurahan_filter):
    if kelurahan_filter is None:
        return None
    return Keluarga.kode_kelurahan.in_(sorted(kelurahan_filter))


def measures(session: Session, round_id: int | None,
             kelurahan: Iterable[str] | None = None) -> dict[str, dict]:
    """The exact figures of each kelurahan (of ``kelurahan``, default all) for one round:
    ``{kode_kelurahan: {households, visited, verified, returned, targeting_errors,
    eligibility_changes, members, weekly: {iso_week: {...}}}}``. Families are counted in their
    current kelurahan (``keluarga.kode_kelurahan``)."""
    wanted = set(kelurahan) if kelurahan is not None else None
    scope = _in_scope(wanted)
    out: dict[str, dict] = defaultdict(_empty_raw)
    if wanted is not None:
        for code in wanted:
            out[code]
    stmt = (select(Keluarga.kode_kelurahan, func.count()).where(Keluarga.removed_at.is_(None))
            .group_by(Keluarga.kode_kelurahan))
    if scope is not None:
        stmt = stmt.where(scope)
    for code, n in session.execute(stmt):
        out[code]["households"] = n
    if round_id is None:
        return dict(out)

    # --- coverage: the round's visits -------------------------------------------------------
    visited: dict[str, dt.datetime] = {}
    verified: dict[str, dt.datetime] = {}
    returned: dict[str, dt.datetime] = {}
    where_kel: dict[str, str] = {}
    stmt = (select(Visit.household_id, Keluarga.kode_kelurahan, Visit.status, Visit.started_at,
                   Visit.received_at, Visit.processed_at, Visit.reviewed_at)
            .join(Keluarga, Keluarga.id == Visit.household_id)
            .where(Visit.round_id == round_id))
    if scope is not None:
        stmt = stmt.where(scope)
    for hid, kel, status, started, received, processed, reviewed in session.execute(stmt):
        where_kel[hid] = kel
        _first(visited, hid, started or received)
        if status == "verified":
            _first(verified, hid, processed or received)
        elif status == "approved":
            _first(verified, hid, reviewed or processed or received)
        elif status == "returned":
            _first(returned, hid, reviewed or received)
    for name, store in (("visited", visited), ("verified", verified), ("returned", returned)):
        for hid, moment in store.items():
            row = out[where_kel[hid]]
            row[name] += 1
            row["weekly"][iso_week(moment)][name] += 1

    # --- targeting errors found: families with a conflict of the kind ------------------------
    kinds = {kind: name for name, kind in ERROR_KINDS.items()}
    flagged: dict[tuple[str, str], dt.datetime] = {}
    upheld: set[tuple[str, str]] = set()
    any_flag: dict[str, dt.datetime] = {}
    stmt = (select(Conflict.household_id, Keluarga.kode_kelurahan, Conflict.kind,
                   Conflict.status, Conflict.resolution, Conflict.created_at)
            .join(Keluarga, Keluarga.id == Conflict.household_id)
            .where(Conflict.round_id == round_id, Conflict.kind.in_(sorted(kinds))))
    if scope is not None:
        stmt = stmt.where(scope)
    for hid, kel, kind, status, resolution, created in session.execute(stmt):
        where_kel[hid] = kel
        _first(flagged, (hid, kind), created)
        _first(any_flag, hid, created)
        if status == "resolved" and resolution in UPHELD_RESOLUTIONS:
            upheld.add((hid, kind))
    for (hid, kind), _moment in flagged.items():
        out[where_kel[hid]]["targeting_errors"][kinds[kind]]["flagged"] += 1
    for hid, kind in upheld:
        out[where_kel[hid]]["targeting_errors"][kinds[kind]]["upheld"] += 1
    for hid, moment in any_flag.items():
        out[where_kel[hid]]["weekly"][iso_week(moment)]["flagged"] += 1

    # --- eligibility: registry record vs verified record of the verified families -----------
    ids = sorted(verified)
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        stmt = (select(VerifiedRecord.household_id, VerifiedRecord.doc, KeluargaVersion.snapshot,
                       Keluarga.desil)
                .join(Keluarga, Keluarga.id == VerifiedRecord.household_id)
                .join(KeluargaVersion, and_(
                    KeluargaVersion.keluarga_id == VerifiedRecord.household_id,
                    KeluargaVersion.version == VerifiedRecord.registry_version))
                # a record nothing but the registry changed is its registry snapshot
                .where(VerifiedRecord.household_id.in_(part),
                       VerifiedRecord.local_changes.is_(True)))
        for hid, doc, snapshot, desil in session.execute(stmt):
            before, after = eligible(snapshot or {}, desil), eligible(doc or {}, desil)
            changes = out[where_kel[hid]]["eligibility_changes"]
            for p in PROGRAMMES:
                if after[p] and not before[p]:
                    changes[p]["gains"] += 1
                elif before[p] and not after[p]:
                    changes[p]["losses"] += 1

    # --- members: removals and additions applied from the round's visits ---------------------
    stmt = (select(VerifiedChange.household_id, Keluarga.kode_kelurahan, VerifiedChange.path,
                   VerifiedChange.old_value, VerifiedChange.new_value, VerifiedVersion.visit_uuid)
            .join(VerifiedVersion, VerifiedVersion.id == VerifiedChange.version_id)
            .join(Visit, Visit.uuid == VerifiedVersion.visit_uuid)
            .join(Keluarga, Keluarga.id == VerifiedChange.household_id)
            .where(Visit.round_id == round_id, VerifiedChange.path.like("anggota[%")))
    if scope is not None:
        stmt = stmt.where(scope)
    removals = []
    for _hid, kel, path, old, new, uuid in session.execute(stmt):
        if not MEMBER_PATH.match(path):
            continue
        if old is None and new is not None:
            out[kel]["members"]["added"] += 1
        elif old is not None and new is None:
            removals.append((kel, old, uuid))
    if removals:
        answers = dict(session.execute(select(Visit.uuid, Visit.answers).where(
            Visit.uuid.in_(sorted({u for _k, _o, u in removals})))).all())
        for kel, old, uuid in removals:
            status = member_status(old, (answers.get(uuid) or {}).get("anggota"))
            if status in RULES_CONFIG.member_died_codes:
                out[kel]["members"]["died"] += 1
            elif status in RULES_CONFIG.member_moved_codes:
                out[kel]["members"]["moved"] += 1
    return dict(out)


def member_status(member, visit_members) -> int | None:
    """Item 404 (``status_keberadaan``) the visit gave the removed record ``member``: the
    visit entry paired with it by reconciliation's own ``match_members`` (NIK, then name and
    birth date); None when the visit does not list it."""
    if not isinstance(member, Mapping) or not isinstance(visit_members, list):
        return None
    entries = [m for m in visit_members if isinstance(m, Mapping)]
    for rec_i, vis_i in match_members([member], entries, RULES_CONFIG):
        if rec_i == 0 and vis_i is not None:
            status = entries[vis_i].get("status_keberadaan")
            return status if isinstance(status, int) and not isinstance(status, bool) else None
    return None


# --------------------------------------------------------------------------- summing, scope


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
                   priority: bool = False, today: dt.date | None = None) -> dict:
    """The caller's areas at ``level`` with exact figures (the input of ``present``)."""
    if user.role not in ROLES:
        raise ServiceError(403, "Only monitors, supervisors and admins see monitoring.",
                           code="forbidden")
    rnd = chosen_round(session, round_id)
    areas = areas_at(session, user, level, parent, priority=priority)
    return _collect(session, user, level, parent, areas, rnd, today)


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
    return _collect(session, user, "kelurahan", None, areas, rnd, today)


def _collect(session: Session, user: User, level: str, parent: str | None,
             areas: list[tuple[str, str]], rnd: Round | None, today: dt.date | None) -> dict:
    codes = [c for c, _n in areas]
    kel_stmt = select(Area.code).where(Area.level == "kelurahan")
    if level == "kecamatan":
        kel_stmt = kel_stmt.where(Area.parent_code.in_(codes))
    else:
        kel_stmt = kel_stmt.where(Area.code.in_(codes))
    kelurahan = [k for k in session.scalars(kel_stmt)
                 if user.role == "admin" or user.covers(k)]
    per_kel = measures(session, rnd.id if rnd else None, kelurahan) if kelurahan else {}
    rows = {code: {"code": code, "name": name,
                   "priority": (code if level == "kecamatan" else code.rsplit(".", 1)[0])
                   in PRIORITY_KECAMATAN, **_empty_raw()} for code, name in areas}
    totals = _empty_raw()
    for kel, raw in per_kel.items():
        key = kel if level == "kelurahan" else kel.rsplit(".", 1)[0]
        if key in rows:
            _add(rows[key], raw)
            _add(totals, raw)
    weeks = round_weeks(rnd, totals["weekly"].keys(), today)
    for row in (*rows.values(), totals):
        row["weekly"] = [{"week": w, "starts_on": week_monday(w), **row["weekly"][w]}
                         for w in weeks]
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
               round_id: int | None = None, *, priority: bool = False) -> dict:
    """``present(raw_monitoring(...))``: the body of ``GET /api/v1/monitoring``."""
    return present(raw_monitoring(session, user, level, parent, round_id, priority=priority))


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
