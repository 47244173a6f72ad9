"""Monitoring figures: each family's facts per round, and counters summed from them.

The agencies' view (docs/monitoring.md) counts families, not rows: a family is visited once
however many visits it had, flagged once per kind however many conflicts, and its eligibility
change needs the registry rules run in Python. No trigger can compute that, so it is kept in
three steps, all in the writer's transaction or the reader's:

1. Triggers (migration 0014) mark a (round, family) pair dirty in ``monitoring_dirty`` whenever
   a row that feeds a measure is written: a visit, a conflict of a monitored kind, a verified
   version from a visit, the verified record, the family's kelurahan or desil.
2. ``drain`` takes the dirty pairs, recomputes each family's facts from the tables
   (``family_facts``), stores them (``monitoring_families``) and adds the difference between
   the old and the new facts to the counters (``monitoring_counts``: round, kelurahan, ISO
   week or ``''`` for the whole round, metric). The reconciliation worker drains after each
   batch, the review service after each decision, the scheduler every minute, and the reader
   whatever is left before it reads.
3. ``counts`` reads the counters of a round: a few rows per kelurahan, whatever the size of the
   registry.

``measures`` computes the same figures from the tables in one pass; it is the reference the
tests and ``flask --app server monitoring check`` compare the counters with.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import and_, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sync.models.conflict import Conflict
from sync.models.monitoring import MonitoringCount, MonitoringDirty, MonitoringFamily
from sync.models.progress import ProgressCount
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

WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

# Measure name -> the conflict kind whose families it counts (the triggers of migration 0014
# list the same four kinds).
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
MEMBER_PATH = re.compile(r"^anggota\[[^\]]*\]$")  # a member's presence, not one of its fields
MEMBER_KINDS = ("died", "moved", "added")
WEEKLY_KEYS = ("visited", "verified", "returned", "flagged")
CHUNK = 500

# A family's facts in one round: {(week, metric): n}, week "" for the whole round.
Facts = dict[tuple[str, str], int]


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


# --------------------------------------------------------------------------- facts


def _first(store: dict, key, moment) -> None:
    if moment is None:
        return
    if key not in store or moment < store[key]:
        store[key] = moment


def family_facts(session: Session, round_id: int, household_ids: Iterable[str] | None = None,
                 kelurahan: Iterable[str] | None = None) -> dict[str, tuple[str, Facts]]:
    """``{household_id: (kode_kelurahan, facts)}`` of the families with anything to count in
    the round: of ``household_ids`` when given (the drain's few), else of every family (of
    ``kelurahan`` when given: the reference computation). Families are counted in their current
    kelurahan (``keluarga.kode_kelurahan``)."""
    if household_ids is not None:
        ids = sorted(set(household_ids))
        out: dict[str, tuple[str, Facts]] = {}
        for start in range(0, len(ids), CHUNK):
            out.update(_facts(session, round_id, Keluarga.id.in_(ids[start:start + CHUNK])))
        return out
    scope = (Keluarga.kode_kelurahan.in_(sorted(set(kelurahan)))
             if kelurahan is not None else None)
    return _facts(session, round_id, scope)


def _facts(session: Session, round_id: int, scope) -> dict[str, tuple[str, Facts]]:
    where_kel: dict[str, str] = {}
    facts: dict[str, Facts] = defaultdict(lambda: defaultdict(int))

    def where(stmt):
        return stmt if scope is None else stmt.where(scope)

    # --- coverage: the round's visits ---------------------------------------------------
    visited: dict[str, dt.datetime] = {}
    verified: dict[str, dt.datetime] = {}
    returned: dict[str, dt.datetime] = {}
    stmt = where(select(Visit.household_id, Keluarga.kode_kelurahan, Visit.status,
                        Visit.started_at, Visit.received_at, Visit.processed_at,
                        Visit.reviewed_at)
                 .join(Keluarga, Keluarga.id == Visit.household_id)
                 .where(Visit.round_id == round_id))
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
            facts[hid][("", name)] += 1
            facts[hid][(iso_week(moment), name)] += 1

    # --- targeting errors found: families with a conflict of the kind --------------------
    kinds = {kind: name for name, kind in ERROR_KINDS.items()}
    flagged: set[tuple[str, str]] = set()
    upheld: set[tuple[str, str]] = set()
    any_flag: dict[str, dt.datetime] = {}
    stmt = where(select(Conflict.household_id, Keluarga.kode_kelurahan, Conflict.kind,
                        Conflict.status, Conflict.resolution, Conflict.created_at)
                 .join(Keluarga, Keluarga.id == Conflict.household_id)
                 .where(Conflict.round_id == round_id, Conflict.kind.in_(sorted(kinds))))
    for hid, kel, kind, status, resolution, created in session.execute(stmt):
        where_kel[hid] = kel
        flagged.add((hid, kind))
        _first(any_flag, hid, created)
        if status == "resolved" and resolution in UPHELD_RESOLUTIONS:
            upheld.add((hid, kind))
    for hid, kind in flagged:
        facts[hid][("", f"{kinds[kind]}:flagged")] += 1
    for hid, kind in upheld:
        facts[hid][("", f"{kinds[kind]}:upheld")] += 1
    for hid, moment in any_flag.items():
        facts[hid][(iso_week(moment), "flagged")] += 1

    # --- eligibility: registry record vs verified record of the verified families -------
    ids = sorted(verified)
    for start in range(0, len(ids), CHUNK):
        stmt = (select(VerifiedRecord.household_id, VerifiedRecord.doc, KeluargaVersion.snapshot,
                       Keluarga.desil)
                .join(Keluarga, Keluarga.id == VerifiedRecord.household_id)
                .join(KeluargaVersion, and_(
                    KeluargaVersion.keluarga_id == VerifiedRecord.household_id,
                    KeluargaVersion.version == VerifiedRecord.registry_version))
                # a record nothing but the registry changed is its registry snapshot
                .where(VerifiedRecord.household_id.in_(ids[start:start + CHUNK]),
                       VerifiedRecord.local_changes.is_(True)))
        for hid, doc, snapshot, desil in session.execute(stmt):
            before, after = eligible(snapshot or {}, desil), eligible(doc or {}, desil)
            for p in PROGRAMMES:
                if after[p] and not before[p]:
                    facts[hid][("", f"{p}:gains")] += 1
                elif before[p] and not after[p]:
                    facts[hid][("", f"{p}:losses")] += 1

    # --- members: removals and additions applied from the round's visits ----------------
    stmt = where(select(VerifiedChange.household_id, Keluarga.kode_kelurahan, VerifiedChange.path,
                        VerifiedChange.old_value, VerifiedChange.new_value,
                        VerifiedVersion.visit_uuid)
                 .join(VerifiedVersion, VerifiedVersion.id == VerifiedChange.version_id)
                 .join(Visit, Visit.uuid == VerifiedVersion.visit_uuid)
                 .join(Keluarga, Keluarga.id == VerifiedChange.household_id)
                 .where(Visit.round_id == round_id, VerifiedChange.path.like("anggota[%")))
    removals = []
    for hid, kel, path, old, new, uuid in session.execute(stmt):
        if not MEMBER_PATH.match(path):
            continue
        where_kel[hid] = kel
        if old is None and new is not None:
            facts[hid][("", "members:added")] += 1
        elif old is not None and new is None:
            removals.append((hid, old, uuid))
    if removals:
        answers = dict(session.execute(select(Visit.uuid, Visit.answers).where(
            Visit.uuid.in_(sorted({u for _h, _o, u in removals})))).all())
        for hid, old, uuid in removals:
            status = member_status(old, (answers.get(uuid) or {}).get("anggota"))
            if status in RULES_CONFIG.member_died_codes:
                facts[hid][("", "members:died")] += 1
            elif status in RULES_CONFIG.member_moved_codes:
                facts[hid][("", "members:moved")] += 1
    return {hid: (where_kel[hid], dict(f)) for hid, f in facts.items() if f}


# --------------------------------------------------------------------------- raw shape


def empty_raw() -> dict:
    """The figures of one area, all zero (the shape ``counts`` and ``measures`` return)."""
    return {
        "households": 0, "visited": 0, "verified": 0, "returned": 0,
        "targeting_errors": {m: {"flagged": 0, "upheld": 0} for m in ERROR_KINDS},
        "eligibility_changes": {p: {"gains": 0, "losses": 0} for p in PROGRAMMES},
        "members": {k: 0 for k in MEMBER_KINDS},
        "weekly": defaultdict(lambda: {k: 0 for k in WEEKLY_KEYS}),
    }


def _put(raw: dict, week: str, metric: str, n: int) -> None:
    """Add one counter to an area's figures."""
    if week:
        raw["weekly"][week][metric] += n
    elif metric in ("visited", "verified", "returned"):
        raw[metric] += n
    else:
        group, key = metric.split(":", 1)
        if group in ERROR_KINDS:
            raw["targeting_errors"][group][key] += n
        elif group in PROGRAMMES:
            raw["eligibility_changes"][group][key] += n
        else:  # members
            raw["members"][key] += n


def _key(column, by: str):
    """The area a kelurahan code counts in: itself, or its kecamatan (``31.73.01``)."""
    return column if by == "kelurahan" else func.substr(column, 1, 8)


def _households(session: Session, kelurahan: set[str] | None, by: str,
                out: dict[str, dict]) -> None:
    """Families per area, from the progress counters (round 0, ``households``)."""
    key = _key(ProgressCount.kelurahan, by)
    stmt = (select(key, func.sum(ProgressCount.n)).where(
        ProgressCount.round_id == 0, ProgressCount.metric == "households",
        ProgressCount.n != 0).group_by(key))
    if kelurahan is not None:
        stmt = stmt.where(ProgressCount.kelurahan.in_(sorted(kelurahan)))
    for code, n in session.execute(stmt):
        out[code]["households"] = int(n)


def measures(session: Session, round_id: int | None,
             kelurahan: Iterable[str] | None = None) -> dict[str, dict]:
    """The figures of each kelurahan (of ``kelurahan``, default all) for one round, computed
    from the tables (the reference the counters are checked against): ``{kode_kelurahan:
    {households, visited, verified, returned, targeting_errors, eligibility_changes, members,
    weekly: {iso_week: {...}}}}``."""
    wanted = set(kelurahan) if kelurahan is not None else None
    out: dict[str, dict] = defaultdict(empty_raw)
    for code in wanted or ():
        out[code]
    stmt = (select(Keluarga.kode_kelurahan, func.count()).where(Keluarga.removed_at.is_(None))
            .group_by(Keluarga.kode_kelurahan))
    if wanted is not None:
        stmt = stmt.where(Keluarga.kode_kelurahan.in_(sorted(wanted)))
    for code, n in session.execute(stmt):
        out[code]["households"] = n
    if round_id is None:
        return dict(out)
    for kel, facts in family_facts(session, round_id, kelurahan=wanted).values():
        for (week, metric), n in facts.items():
            _put(out[kel], week, metric, n)
    return dict(out)


def counts(session: Session, round_id: int | None, kelurahan: Iterable[str] | None = None,
           *, by: str = "kelurahan", weekly_by_area: bool = True
           ) -> tuple[dict[str, dict], dict[str, dict[str, int]]]:
    """The same figures as ``measures``, read from the counters (``drain`` first) and summed
    in SQL per area (``by`` kelurahan or kecamatan): ``(areas, weekly)``, ``weekly`` being the
    series summed over every area. Each area's own weekly series is read only when
    ``weekly_by_area`` (a year of weeks for every area is most of the rows)."""
    wanted = set(kelurahan) if kelurahan is not None else None
    out: dict[str, dict] = defaultdict(empty_raw)
    weekly: dict[str, dict[str, int]] = defaultdict(lambda: {k: 0 for k in WEEKLY_KEYS})
    _households(session, wanted, by, out)
    if round_id is None:
        return dict(out), dict(weekly)
    c = MonitoringCount
    key = _key(c.kelurahan, by)
    base = [c.round_id == round_id, c.n != 0]
    if wanted is not None:
        base.append(c.kelurahan.in_(sorted(wanted)))
    for code, metric, n in session.execute(
            select(key, c.metric, func.sum(c.n)).where(*base, c.week == "")
            .group_by(key, c.metric)):
        _put(out[code], "", metric, int(n))
    if weekly_by_area:
        for code, week, metric, n in session.execute(
                select(key, c.week, c.metric, func.sum(c.n)).where(*base, c.week != "")
                .group_by(key, c.week, c.metric)):
            out[code]["weekly"][week][metric] += int(n)
            weekly[week][metric] += int(n)
    else:
        for week, metric, n in session.execute(
                select(c.week, c.metric, func.sum(c.n)).where(*base, c.week != "")
                .group_by(c.week, c.metric)):
            weekly[week][metric] += int(n)
    return dict(out), dict(weekly)


# --------------------------------------------------------------------------- keeping counters


def _insert(session: Session, model):
    return (postgresql.insert(model) if session.get_bind().dialect.name == "postgresql"
            else sqlite.insert(model))


def refresh(session: Session, pairs: Iterable[tuple[int, str]]) -> int:
    """Recompute the facts of these (round, family) pairs and move the counters by the
    difference. Returns the pairs whose facts changed."""
    by_round: dict[int, set[str]] = defaultdict(set)
    for round_id, hid in pairs:
        by_round[round_id].add(hid)
    changed = 0
    postgres = session.get_bind().dialect.name == "postgresql"
    for round_id in sorted(by_round):
        ids = sorted(by_round[round_id])
        for start in range(0, len(ids), CHUNK):
            part = ids[start:start + CHUNK]
            stmt = (select(MonitoringFamily.household_id, MonitoringFamily.kelurahan,
                           MonitoringFamily.facts)
                    .where(MonitoringFamily.round_id == round_id,
                           MonitoringFamily.household_id.in_(part))
                    .order_by(MonitoringFamily.household_id))
            if postgres:
                stmt = stmt.with_for_update()
            old = {hid: (kel, _facts_from_json(doc)) for hid, kel, doc in session.execute(stmt)}
            new = family_facts(session, round_id, part)
            delta: dict[tuple[str, str, str], int] = defaultdict(int)
            gone, written = [], []
            for hid in part:
                before, after = old.get(hid), new.get(hid)
                if before == after:
                    continue
                changed += 1
                if before is not None:
                    for (week, metric), n in before[1].items():
                        delta[(before[0], week, metric)] -= n
                    gone.append(hid)
                if after is not None:
                    for (week, metric), n in after[1].items():
                        delta[(after[0], week, metric)] += n
                    written.append({"round_id": round_id, "household_id": hid,
                                    "kelurahan": after[0], "facts": _facts_to_json(after[1])})
            _apply(session, round_id, delta)
            if gone:
                session.execute(delete(MonitoringFamily).where(
                    MonitoringFamily.round_id == round_id,
                    MonitoringFamily.household_id.in_(gone)))
            if written:
                session.execute(_insert(session, MonitoringFamily), written)
    return changed


def _apply(session: Session, round_id: int, delta: Mapping[tuple[str, str, str], int]) -> None:
    """Upsert the counter moves, in key order (concurrent writers lock rows alike)."""
    rows = [{"round_id": round_id, "kelurahan": k, "week": w, "metric": m, "n": n}
            for (k, w, m), n in sorted(delta.items()) if n]
    if not rows:
        return
    stmt = _insert(session, MonitoringCount)
    stmt = stmt.on_conflict_do_update(
        index_elements=["round_id", "kelurahan", "week", "metric"],
        set_={"n": MonitoringCount.n + stmt.excluded.n})
    session.execute(stmt, rows)


def _facts_to_json(facts: Facts) -> list:
    return [[week, metric, n] for (week, metric), n in sorted(facts.items())]


def _facts_from_json(doc) -> Facts:
    return {(week, metric): n for week, metric, n in doc or ()}


def pending(session: Session) -> bool:
    """Whether any family waits to be counted again."""
    return session.scalar(select(MonitoringDirty.round_id).limit(1)) is not None


def drain(session: Session, limit: int | None = None,
          households: Iterable[str] | None = None) -> int:
    """Count again the families marked dirty (at most ``limit``; only ``households`` when
    given: a worker's batch), in the caller's write transaction; on PostgreSQL rows another
    drainer holds are skipped. Returns how many pairs were counted."""
    done = 0
    postgres = session.get_bind().dialect.name == "postgresql"
    only = sorted(set(households)) if households is not None else None
    if only == []:
        return 0
    after: tuple | None = None
    while limit is None or done < limit:
        size = CHUNK if limit is None else min(CHUNK, limit - done)
        stmt = (select(MonitoringDirty.round_id, MonitoringDirty.household_id)
                .order_by(MonitoringDirty.round_id, MonitoringDirty.household_id).limit(size))
        if only is not None:
            stmt = stmt.where(MonitoringDirty.household_id.in_(only))
        if after is not None:
            # From where the last chunk ended: the rows this transaction deleted stay in the
            # index until it commits, and a scan from the start walked them all again each
            # chunk (a drain of 77,000 families took 429 s, of 33,000 45 s).
            stmt = stmt.where(tuple_(MonitoringDirty.round_id, MonitoringDirty.household_id)
                              > tuple_(*after))
        if postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        pairs = [tuple(r) for r in session.execute(stmt)]
        if not pairs:
            break
        after = pairs[-1]
        # One round at a time: ``round_id = r AND household_id IN (...)`` is an index lookup a
        # family, where PostgreSQL planned ``(round_id, household_id) IN (pairs)`` as a scan
        # of the round's whole backlog.
        by_round: dict[int, list[str]] = {}
        for round_id, household_id in pairs:
            by_round.setdefault(round_id, []).append(household_id)
        for round_id, ids in by_round.items():
            session.execute(delete(MonitoringDirty).where(
                MonitoringDirty.round_id == round_id, MonitoringDirty.household_id.in_(ids)))
        refresh(session, pairs)
        done += len(pairs)
    return done


def rebuild(session: Session) -> int:
    """Forget every fact and counter and count every (round, family) pair again: for a
    database whose counters were found wrong (``check``). Returns the pairs counted."""
    session.execute(delete(MonitoringCount))
    session.execute(delete(MonitoringFamily))
    pairs = {(r, h) for r, h in session.execute(
        select(Visit.round_id, Visit.household_id).where(Visit.round_id.is_not(None)))}
    pairs |= {(r, h) for r, h in session.execute(
        select(Conflict.round_id, Conflict.household_id).where(
            Conflict.round_id.is_not(None), Conflict.kind.in_(sorted(ERROR_KINDS.values()))))}
    session.execute(delete(MonitoringDirty))
    refresh(session, sorted(pairs))
    return len(pairs)


def counters(session: Session) -> dict[tuple[int, str, str, str], int]:
    """Every non-zero counter: (round_id, kelurahan, week, metric) -> n."""
    return {(r, k, w, m): n for r, k, w, m, n in session.execute(
        select(MonitoringCount.round_id, MonitoringCount.kelurahan, MonitoringCount.week,
               MonitoringCount.metric, MonitoringCount.n).where(MonitoringCount.n != 0))}


def recount_all(session: Session) -> dict[tuple[int, str, str, str], int]:
    """What the counters should hold, computed from the tables for every round."""
    rounds = {r for (r,) in session.execute(
        select(Visit.round_id).where(Visit.round_id.is_not(None)).distinct())}
    rounds |= {r for (r,) in session.execute(
        select(Conflict.round_id).where(Conflict.round_id.is_not(None)).distinct())}
    out: dict[tuple[int, str, str, str], int] = defaultdict(int)
    for round_id in sorted(rounds):
        for kel, facts in family_facts(session, round_id).values():
            for (week, metric), n in facts.items():
                out[(round_id, kel, week, metric)] += n
    return {k: n for k, n in out.items() if n}


def check(session: Session) -> dict[tuple[int, str, str, str], tuple[int, int]]:
    """Counters that differ from a recount: key -> (counter, recount). Empty when all agree."""
    have, want = counters(session), recount_all(session)
    return {k: (have.get(k, 0), want.get(k, 0)) for k in sorted(set(have) | set(want))
            if have.get(k, 0) != want.get(k, 0)}
