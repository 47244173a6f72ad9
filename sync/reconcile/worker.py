"""The reconciliation worker: claims queued visits and reconciles them with the verified record.

For each visit it loads the verified record at the visit's base and now, the registry facts and
the lookups the rules need, runs the three-way comparison and the rules (``sync.reconcile``),
stores every finding as a conflict and ends the visit:

* ``verified``: no hard or soft conflict. The fills (fields the record held blank) and the
  auto-accept changes are applied (a new verified version, an audit row per field, the feed
  entry for the assigned phone), the assignment is done.
* ``needs_review``: conflicts are open; nothing is written back until a supervisor decides.
* ``held``: its predecessor in the same offline chain (``branch_id``, ``base_version - 1``) has
  not been reconciled yet. It is queued again when the predecessor is, and forced through
  (flagged ``out_of_order``) after ``Config.backlog_hold_days``.

A batch of claimed visits is reconciled in one write transaction: on SQLite ``BEGIN
IMMEDIATE`` makes it the single writer; on PostgreSQL an advisory lock per family, taken in
sorted order, keeps two workers from reconciling visits of one family at the same time. When a
batch fails, its visits are retried one by one, so that one bad visit never costs the others.
Reconciling a visit again writes nothing new: conflicts are unique per (visit, key) and a change
equal to the record is not a change.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Float, Integer, String, bindparam, column, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sync import feed, monitoring
from sync.db import (
    UTCDateTime,
    background_checkpoints,
    database_unreachable,
    utcnow,
    write_transaction,
)
from sync.ingest import FormCache
from sync.models.assignment import Assignment
from sync.models.conflict import Conflict
from sync.models.registry import (
    REGISTRY_SOURCE,
    Keluarga,
    KeluargaVersion,
    VerifiedRecord,
    VerifiedVersion,
)
from sync.models.visit import PROCESSED_STATUSES, Photo, Visit, VisitPhoto
from sync.privacy import exception_summary
from sync.queue import next_in_queue
from sync.reconcile import prefetch
from sync.reconcile.compare import three_way, verifies_map
from sync.reconcile.config import DEFAULT, Config
from sync.reconcile.near_copies import index_for
from sync.reconcile.rules import Context, run_rules
from sync.registry import StagedVersion, stage_changes, write_versions

log = logging.getLogger("tapak.reconcile")

# Visits reconciled in one transaction: per-batch costs (the lookups' statements, the commit,
# the feed's sequence row) spread thinner than at 200, while SQLite's write lock is still
# held for well under a second.
BATCH = 500
# Severities that keep a visit from being verified on its own.
BLOCKING = ("hard", "soft")
VISIT_SOURCE = "visit"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- loading ------------------------------------------------------------------------------


def version_doc(session: Session, household_id: str, version: int) -> dict | None:
    """The verified record of a family as ``version`` left it, or None when unknown.

    ``apply_changes`` keeps each version's snapshot; a version the importer wrote equals the
    registry snapshot it took in.
    """
    row = session.execute(
        select(VerifiedVersion.doc, VerifiedVersion.registry_version, VerifiedVersion.source)
        .where(VerifiedVersion.household_id == household_id,
               VerifiedVersion.version == version)).one_or_none()
    if row is None:
        return None
    doc, registry_version, source = row
    if doc is not None:
        return doc
    if source != REGISTRY_SOURCE or registry_version is None:
        return None
    return session.scalar(select(KeluargaVersion.snapshot).where(
        KeluargaVersion.keluarga_id == household_id,
        KeluargaVersion.version == registry_version))


def _members(answers: dict) -> list[dict]:
    m = answers.get("anggota") if isinstance(answers, dict) else None
    return [x for x in m if isinstance(x, dict)] if isinstance(m, list) else []


def _grouped(rows) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for key, hid in rows:
        if key:
            out[key].add(hid)
    return out


def _chunks(items: list, size: int = 500) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# The tables the worker's Core statements read and write.
_Vt, _VPt, _Pt = Visit.__table__, VisitPhoto.__table__, Photo.__table__
_Kt, _KVt, _VRt = Keluarga.__table__, KeluargaVersion.__table__, VerifiedRecord.__table__
_At = Assignment.__table__

# The worker reads and ends its visits and records through Core statements on these plain
# objects: ORM objects of the batch would make every query autoflush them and the commit
# inspect them, which cost more than reconciling.
_VISIT_FIELDS = ("uuid", "household_id", "form_id", "form_version", "enumerator_id", "round_id",
                 "base_version", "branch_id", "trunk_version", "started_at", "ended_at",
                 "received_at", "lat", "lon", "accuracy_m", "answers", "status")
_RECORD_FIELDS = ("household_id", "version", "doc", "registry_version", "local_changes",
                  "upstream_version", "updated_at")


@dataclasses.dataclass(slots=True)
class _Visit:
    """A claimed visit as the worker reads it, and how it ends."""

    uuid: str
    household_id: str
    form_id: str
    form_version: int
    enumerator_id: int
    round_id: int | None
    base_version: int | None
    branch_id: str | None
    trunk_version: int | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    received_at: dt.datetime | None
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    answers: dict
    status: str
    result_version: int | None = None
    compared_version: int | None = None
    comparison: dict | None = None
    hold_reason: str | None = None
    error: str | None = None
    processed_at: dt.datetime | None = None


@dataclasses.dataclass(slots=True)
class _Record:
    """A verified record as the worker reads it; ``stage_changes`` updates it in memory."""

    household_id: str
    version: int
    doc: dict
    registry_version: int | None
    local_changes: bool
    upstream_version: int | None
    updated_at: dt.datetime | None
    changed: bool = False


def _read_visits(session: Session, uuids: list[str], claimed: bool = True,
                 early: dict | None = None) -> list[_Visit]:
    """The visits of ``uuids`` still ``processing`` (claimed by ``claim``), or, with
    ``claimed=False``, all of them (just taken with ``next_in_queue``; those of ``early``,
    read ahead, from there)."""
    # status is not read: in SQLite it lies past the 3 KB of ``raw``, in overflow pages
    status = "processing" if claimed else "queued"
    if early and not claimed:
        visits = [_Visit(*early[u][0], status) for u in uuids if u in early]
        uuids = [u for u in uuids if u not in early]
    else:
        visits = []
    visits += [_Visit(*row, status) for row in _rows(
        session, _READ_CLAIMED if claimed else _READ_VISITS, uuids)] if uuids else []
    visits.sort(key=lambda v: (v.started_at is None, v.started_at or _EPOCH, v.uuid))
    return visits


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


_END_VALUES = {
    # processed: every finding of the comparison
    "processed": dict(status=bindparam("b_status"),
                      compared_version=bindparam("b_compared_version"),
                      result_version=bindparam("b_result_version"),
                      comparison=bindparam("b_comparison"), hold_reason=None, error=None,
                      processed_at=bindparam("b_processed_at")),
    "held": dict(status=bindparam("b_status"), hold_reason=bindparam("b_hold_reason")),
    "failed": dict(status=bindparam("b_status"), error=bindparam("b_error")),
}
# A batch taken from the queue in its own transaction is claimed by the same write.
_CLAIM_VALUES = dict(claimed_by=bindparam("b_worker"), claimed_at=bindparam("b_claimed_at"),
                     attempts=_Vt.c.attempts + 1)
_END_VISIT = {(kind, claim): update(Visit.__table__).where(_Vt.c.uuid == bindparam("b_uuid"))
              .values(**values, **(_CLAIM_VALUES if claim else {}))
              for kind, values in _END_VALUES.items() for claim in (False, True)}
_WRITE_RECORD = update(_VRt).where(_VRt.c.household_id == bindparam("b_household_id")).values(
    doc=bindparam("b_doc"), version=bindparam("b_version"),
    local_changes=bindparam("b_local_changes"), updated_at=bindparam("b_updated_at"))


def _write_visits(session: Session, visits: list[_Visit], worker: str | None = None,
                  now: dt.datetime | None = None) -> None:
    """End the batch's visits (and claim them for ``worker``, when given): one executemany
    per kind of ending."""
    groups: dict[str, list[dict]] = defaultdict(list)
    claim = {"b_worker": worker, "b_claimed_at": now} if worker is not None else {}
    for v in visits:
        if v.status == "held":
            groups["held"].append({"b_uuid": v.uuid, "b_status": v.status,
                                   "b_hold_reason": v.hold_reason, **claim})
        elif v.status == "failed":
            groups["failed"].append({"b_uuid": v.uuid, "b_status": v.status,
                                     "b_error": v.error, **claim})
        elif v.status not in ("processing", "queued"):
            groups["processed"].append({
                "b_uuid": v.uuid, "b_status": v.status, "b_compared_version": v.compared_version,
                "b_result_version": v.result_version, "b_comparison": v.comparison,
                "b_processed_at": v.processed_at, **claim})
    conn = session.connection()
    for kind, rows in groups.items():
        conn.execute(_END_VISIT[(kind, worker is not None)], rows)


def _write_records(session: Session, records: Iterable[_Record]) -> None:
    rows = [{"b_household_id": r.household_id, "b_doc": r.doc, "b_version": r.version,
             "b_local_changes": r.local_changes, "b_updated_at": r.updated_at}
            for r in records if r.changed]
    if rows:
        session.connection().execute(_WRITE_RECORD, rows)


@dataclasses.dataclass
class _Batch:
    """What a batch of visits needs from the database, loaded with a few queries."""

    records: dict[str, _Record]
    facts: dict[str, dict]
    nik_households: dict[str, set[str]]
    kk_households: dict[str, set[str]]
    photos: dict[str, list[dict]]           # visit uuid -> [{field, sha256, phash}]
    photo_sites: dict[str, list[dict]]      # sha256 -> [{sha256, phash, household_id, visit_uuid}]
    round_visits: dict[tuple, list[dict]]   # (household, round) -> [{uuid, enumerator_id}]
    upstream: dict[str, dict]               # household -> {path: new value}
    previous: dict[str, dict] = dataclasses.field(default_factory=dict)  # visit -> previous
    verifies: dict = dataclasses.field(default_factory=dict)  # (form, version) -> map
    # Writes gathered over the batch and made at its end: conflict rows, and the assignments
    # to finish, (round, household) -> blocking (False wins: the first verified visit ends it).
    conflicts: list[dict] = dataclasses.field(default_factory=list)
    finish: dict[tuple, bool] = dataclasses.field(default_factory=dict)
    finishing: set[str] = dataclasses.field(default_factory=set)  # families noted in finish
    # Families whose verified record changed: their holders' feed entries, written at the end.
    changed: dict[str, None] = dataclasses.field(default_factory=dict)
    staged: list[StagedVersion] = dataclasses.field(default_factory=list)  # versions to write
    staged_households: set[str] = dataclasses.field(default_factory=set)
    feed: list[feed.Change] = dataclasses.field(default_factory=list)  # emitted at the end
    # The batch's visits by (branch, family, base version), for a chain's predecessor.
    by_chain: dict[tuple, list[_Visit]] = dataclasses.field(default_factory=dict)

    def photo_lookup(self, sha: str, phash: str | None) -> list[dict]:
        found = list(self.photo_sites.get(sha, ()))
        if phash:
            found += self.photo_sites.get(("phash", phash), ())
        return found


def _in(column):
    return column.in_(bindparam("ids", expanding=True))


# The batch's lookups, built once and on the tables (Core), not the models: a statement made
# per batch costs more to build and to find in SQLAlchemy's cache than SQLite takes to run it,
# and rows of ORM statements go through the ORM's loading.
_RECORDS = (select(*[_VRt.c[f] for f in _RECORD_FIELDS]).where(_in(_VRt.c.household_id))
            .order_by(_VRt.c.household_id).with_for_update())
_FACTS = select(_Kt.c.id, _Kt.c.kode_kelurahan, _Kt.c.desil, _Kt.c.lat, _Kt.c.lon,
                _Kt.c.no_kk).where(_in(_Kt.c.id))
_PHOTOS = (select(_VPt.c.visit_uuid, _VPt.c.field, _VPt.c.sha256, _Pt.c.phash)
           .select_from(_VPt.outerjoin(_Pt, _Pt.c.sha256 == _VPt.c.sha256))
           .where(_in(_VPt.c.visit_uuid)))
# What is known of when and where each photo was taken: its EXIF (photos) and the app's claims
# of its photos[] entry (visit_photos); only the photos that have any (``photo_mismatch``).
_PHOTO_FACTS = (select(_VPt.c.visit_uuid, _VPt.c.field, _VPt.c.sha256, _Pt.c.taken_at,
                       _Pt.c.taken_at_local, _Pt.c.gps_lat, _Pt.c.gps_lon, _VPt.c.taken_at,
                       _VPt.c.lat, _VPt.c.lon, _VPt.c.accuracy_m)
                .select_from(_VPt.outerjoin(_Pt, _Pt.c.sha256 == _VPt.c.sha256))
                .where(_in(_VPt.c.visit_uuid),
                       or_(_Pt.c.taken_at_local.is_not(None), _Pt.c.gps_lat.is_not(None),
                           _VPt.c.taken_at.is_not(None), _VPt.c.lat.is_not(None))))
_FAMILY_VISITS = select(_Vt.c.uuid, _Vt.c.household_id, _Vt.c.round_id,
                        _Vt.c.enumerator_id).where(_in(_Vt.c.household_id))
_VISIT_STATUS = select(_Vt.c.uuid, _Vt.c.status).where(_in(_Vt.c.household_id))
_UPSTREAM = select(_KVt.c.keluarga_id, _KVt.c.version,
                   _KVt.c.changed_fields).where(_in(_KVt.c.keluarga_id))
_SITES_BY_SHA = (select(_VPt.c.sha256, _Pt.c.phash, _Vt.c.household_id, _Vt.c.uuid)
                 .select_from(_VPt.join(_Vt, _Vt.c.uuid == _VPt.c.visit_uuid)
                              .outerjoin(_Pt, _Pt.c.sha256 == _VPt.c.sha256))
                 .where(_in(_VPt.c.sha256)))
_SITES_BY_PHASH = (select(_Pt.c.sha256, _Pt.c.phash, _Vt.c.household_id, _Vt.c.uuid)
                   .select_from(_Pt.join(_VPt, _VPt.c.sha256 == _Pt.c.sha256)
                                .join(_Vt, _Vt.c.uuid == _VPt.c.visit_uuid))
                   .where(_in(_Pt.c.phash)).order_by(_Pt.c.sha256, _Vt.c.uuid))
_READ_VISITS = select(*[_Vt.c[f] for f in _VISIT_FIELDS if f != "status"]).where(
    _in(_Vt.c.uuid))
_READ_CLAIMED = _READ_VISITS.where(_Vt.c.status == "processing")


def _raw_rows(session: Session, sql: str, ids: Iterable) -> list:
    """Rows of ``sql`` (``IN ({})`` for the ids) by the driver itself, for lookups of strings
    by strings: SQLAlchemy's expanding of 500 parameters costs as much as SQLite's search."""
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    out = []
    for chunk in _chunks(sorted(ids)):
        out += conn.exec_driver_sql(sql.format(", ".join([mark] * len(chunk))),
                                    tuple(chunk)).fetchall()
    return out


_NIK_HOLDERS_SQL = "SELECT nik, keluarga_id FROM anggota WHERE nik IN ({})"
_SHARED_NIKS_SQL = "SELECT nik FROM shared_niks WHERE nik IN ({})"
_KK_HOLDERS_SQL = "SELECT no_kk, id FROM keluarga WHERE no_kk IN ({})"
_SHARED_SQL = ("SELECT sha256 FROM visit_photos WHERE sha256 IN ({}) GROUP BY sha256 "
               "HAVING count(*) > 1")


def _rows(session: Session, stmt, ids: Iterable) -> list:
    """``stmt``'s rows for ``ids``, 500 at a time."""
    conn, out = session.connection(), []
    for chunk in _chunks(sorted(ids)):
        out += conn.execute(stmt, {"ids": chunk}).all()
    return out


def _load(session: Session, visits: list[_Visit], config: Config = DEFAULT,
          early: dict | None = None) -> _Batch:
    hids = sorted({v.household_id for v in visits})
    # Locked on PostgreSQL until the batch commits, as apply_changes locks them: a supervisor's
    # decision on one of these families waits instead of writing a version under the batch.
    records = {row[0]: _Record(*row) for row in _rows(session, _RECORDS, hids)}
    facts = {row.id: row._asdict() for row in _rows(session, _FACTS, hids)}

    nik_households = _nik_holders(session, visits, records)
    kks = set()
    for v in visits:
        if v.answers.get("no_kk"):
            kks.add(str(v.answers["no_kk"]))
        rec = records.get(v.household_id)
        if rec is not None and rec.doc.get("no_kk"):
            kks.add(rec.doc["no_kk"])
    kk_rows = _raw_rows(session, _KK_HOLDERS_SQL, kks)

    photos: dict[str, list[dict]] = defaultdict(list)
    early = early or {}
    for v in visits:
        if v.uuid in early:  # read ahead (``prefetch``): a queued visit's photos are all in
            photos[v.uuid] = [{"field": f, "sha256": sha, "phash": ph}
                              for f, sha, ph in early[v.uuid][1]]
    rest = [v.uuid for v in visits if v.uuid not in early]
    for vp_uuid, field, sha, ph in _rows(session, _PHOTOS, rest) if rest else ():
        photos[vp_uuid].append({"field": field, "sha256": sha, "phash": ph})
    photos = {u: ps for u, ps in photos.items() if ps}
    if photos:
        _add_photo_facts(session, photos)
    photo_sites = _photo_sites(session, [p for ps in photos.values() for p in ps],
                               config.phash_max_distance)

    # The round's visits of each family; their status (past ``raw``, see _read_visits) only
    # for the families with more than one, to leave out the returned and rejected ones.
    family_visits = _rows(session, _FAMILY_VISITS, hids)
    count: dict[str, int] = defaultdict(int)
    for row in family_visits:
        count[row[1]] += 1
    several = [h for h, n in count.items() if n > 1]
    status = dict(_rows(session, _VISIT_STATUS, several)) if several else {}
    round_visits: dict[tuple, list[dict]] = defaultdict(list)
    for uuid, hid, round_id, enumerator_id in family_visits:
        if status.get(uuid) not in ("returned", "rejected"):
            round_visits[(hid, round_id)].append({"uuid": uuid, "enumerator_id": enumerator_id})

    upstream: dict[str, dict] = {}
    behind = {h: r.registry_version for h, r in records.items() if r.upstream_version}
    for hid, version, fields in (_rows(session, _UPSTREAM, behind) if behind else ()):
        if version > behind[hid]:
            for path in fields or ():
                upstream.setdefault(hid, {})[path] = None
    return _Batch(records, facts, nik_households, _grouped(kk_rows), dict(photos),
                  photo_sites, dict(round_visits), upstream, _previous_visits(session, visits))


def _add_photo_facts(session: Session, photos: dict[str, list[dict]]) -> None:
    """Add to the batch's photos their EXIF time and GPS and the app's claims (the rules'
    ``photo_time`` and ``photo_point`` say which wins)."""
    by_key = {(u, p["field"], p["sha256"]): p for u, ps in photos.items() for p in ps}
    for (uuid, fld, sha, exif_at, exif_local, exif_lat, exif_lon, taken_at, lat, lon,
         acc) in _rows(session, _PHOTO_FACTS, photos):
        p = by_key.get((uuid, fld, sha))
        if p is None:
            continue
        p.update(exif_taken_at=exif_at, exif_taken_at_local=exif_local, exif_lat=exif_lat,
                 exif_lon=exif_lon, taken_at=taken_at,
                 location=({"lat": lat, "lon": lon, "accuracy_m": acc}
                           if lat is not None and lon is not None else None))


def _read_ahead(conn, claimed: set[str], limit: int) -> dict[str, tuple]:
    """What ``prefetch`` reads for the next batch, on its own connection: the queue's next
    ``limit`` visits after those claimed, as ``_READ_VISITS`` and ``_PHOTOS`` give them
    (uuid -> (row, [(field, sha256, phash)])); both never change once a visit is queued."""
    with Session(bind=conn) as session:
        head = next_in_queue(session, limit + len(claimed))
    uuids = [u for u in head if u not in claimed][:limit]
    if not uuids:
        return {}
    out = {row[0]: (tuple(row), []) for row in conn.execute(_READ_VISITS, {"ids": uuids})}
    for vp_uuid, field, sha, ph in conn.execute(_PHOTOS, {"ids": uuids}):
        out[vp_uuid][1].append((field, sha, ph))
    return out


def _nik_holders(session: Session, visits: list[_Visit],
                 records: dict[str, _Record]) -> dict[str, set[str]]:
    """The families holding each NIK of the batch's visits and records (``anggota``).

    A record with no local changes is its family's registry extract, whose members are the
    family's anggota rows: each of their NIKs is held by that family alone unless
    ``shared_niks`` has it (the importer keeps it). Only the shared ones and the NIKs a
    family's extract does not hold (members a visit adds, records changed since) are looked up
    in the NIK index, a page read each."""
    own: dict[str, str] = {}  # NIK -> the family whose registry members hold it
    niks: set[str] = set()    # looked up
    for v in visits:
        rec = records.get(v.household_id)
        mine = {m.get("nik") for m in (rec.doc.get("anggota") or ())
                if m.get("nik")} if rec is not None else set()
        if rec is not None and not rec.local_changes:
            for n in mine:
                if own.setdefault(n, v.household_id) != v.household_id:
                    niks.add(n)  # on two families' extracts: shared, whatever the table says
        else:
            niks |= mine
            mine = set()
        niks.update(n for m in _members(v.answers) if (n := m.get("nik")) and n not in mine)
    unsure = [n for n in own if n not in niks]
    niks.update(row[0] for row in _raw_rows(session, _SHARED_NIKS_SQL, unsure))
    holders = _grouped(_raw_rows(session, _NIK_HOLDERS_SQL, niks))
    for n, hid in own.items():
        if n not in niks:
            holders[n] = {hid}
    return holders


def _photo_sites(session: Session, photos: list[dict], max_distance: int) -> dict:
    """Where else each photo (by SHA-256) or a near copy (by phash band) was taken."""
    shas = sorted({p["sha256"] for p in photos})
    sites: dict = defaultdict(list)
    if not shas:
        return sites
    # Same bytes: only a photo some other visit (or field) also references has other sites,
    # found by the SHA-256 index alone; then where those were taken.
    shared = [row[0] for row in _raw_rows(session, _SHARED_SQL, shas)]
    for sha, ph, hid, uuid in _rows(session, _SITES_BY_SHA, shared) if shared else ():
        sites[sha].append({"sha256": sha, "phash": ph, "household_id": hid, "visit_uuid": uuid})
    # Near copies: the stored hashes within ``max_distance`` bits, from the in-memory band
    # index (``near_copies``), then the photos holding them and their visits.
    phashes = sorted({p["phash"] for p in photos if p.get("phash")})
    if not phashes:
        return sites
    index = index_for(session)
    near_hashes = index.others_of(phashes, max_distance)
    wanted = sorted({h for hs in near_hashes.values() for h in hs})
    by_hash: dict[str, list[tuple]] = defaultdict(list)
    for sha, other, hid, uuid in _rows(session, _SITES_BY_PHASH, wanted) if wanted else ():
        by_hash[other].append({"sha256": sha, "phash": other, "household_id": hid,
                               "visit_uuid": uuid})
    for ph, hs in near_hashes.items():
        rows = [row for h in hs for row in by_hash.get(h, ())]
        sites[("phash", ph)] = rows[:200]  # an equal phash is a near copy too
    return sites


_PREVIOUS_COLUMNS = (_Vt.c.started_at, _Vt.c.uuid, _Vt.c.ended_at, _Vt.c.lat, _Vt.c.lon,
                     _Vt.c.accuracy_m)
_Vp = _Vt.alias("p")
# An enumerator's visits from its last one before ``first`` up to ``last``: the previous visit
# of each of its visits in the batch is among them, and those visits are most of them.
_PREVIOUS = select(*_PREVIOUS_COLUMNS).where(
    _Vt.c.enumerator_id == bindparam("e"),
    _Vt.c.started_at >= func.coalesce(
        select(func.max(_Vp.c.started_at))
        .where(_Vp.c.enumerator_id == bindparam("e"), _Vp.c.started_at < bindparam("first"))
        .scalar_subquery(), bindparam("first")),
    _Vt.c.started_at < bindparam("last"))


# _PREVIOUS for every enumerator of a batch at once, on SQLite: the (enumerator, first, last)
# spans as one JSON parameter, so that the statement's text never changes (a VALUES list
# joined to the visits cost more to compile each batch than the per-enumerator statements
# take to run). Each span is looked up by ix_visits_enumerator_started.
_PREVIOUS_ALL_SQLITE = text(
    "SELECT j.value ->> 0, v.started_at, v.uuid, v.ended_at, v.lat, v.lon, v.accuracy_m "
    "FROM json_each(:spans) AS j JOIN visits AS v ON v.enumerator_id = j.value ->> 0 "
    "AND v.started_at >= coalesce((SELECT max(p.started_at) FROM visits AS p "
    "WHERE p.enumerator_id = j.value ->> 0 AND p.started_at < j.value ->> 1), j.value ->> 1) "
    "AND v.started_at < j.value ->> 2").columns(
        column("e", Integer), column("started_at", UTCDateTime), column("uuid", String),
        column("ended_at", UTCDateTime), column("lat", Float), column("lon", Float),
        column("accuracy_m", Float))
_SQLITE_TIME_WRITE = UTCDateTime().bind_processor(sqlite.dialect())


def _previous_rows(conn, by_enumerator: dict[int, list[_Visit]]) -> dict[int, list]:
    """Each enumerator's rows of ``_PREVIOUS``: one statement on SQLite, one per enumerator
    elsewhere."""
    spans = {e: (min(v.started_at for v in own), max(v.started_at for v in own))
             for e, own in by_enumerator.items()}
    if conn.dialect.name == "sqlite":
        out: dict[int, list] = defaultdict(list)
        fmt = _SQLITE_TIME_WRITE
        param = json.dumps([[e, fmt(a), fmt(b)] for e, (a, b) in spans.items()])
        for e, *row in conn.execute(_PREVIOUS_ALL_SQLITE, {"spans": param}):
            out[e].append(row)
        return out
    return {e: conn.execute(_PREVIOUS, {"e": e, "first": a, "last": b}).all()
            for e, (a, b) in spans.items()}


def _previous_visits(session: Session, visits: list[_Visit]) -> dict[str, dict]:
    """Each visit's previous visit by the same enumerator (by start time), from its
    enumerator's visits of ``_PREVIOUS`` (``_previous_rows``)."""
    by_enumerator: dict[int, list[_Visit]] = defaultdict(list)
    for v in visits:
        if v.started_at is not None:
            by_enumerator[v.enumerator_id].append(v)
    if not by_enumerator:
        return {}
    found: dict[str, tuple] = {}
    every = _previous_rows(session.connection(), by_enumerator)
    for enumerator, own in by_enumerator.items():
        rows = sorted(every.get(enumerator, ()), key=lambda r: (r[0], r[1]))
        starts = [row[0] for row in rows]
        for v in own:
            i = bisect.bisect_left(starts, v.started_at) - 1  # the last one strictly before
            if i >= 0:
                found[v.uuid] = rows[i]
    return {u: {"uuid": uuid, "started_at": started, "ended_at": ended,
                "location": ({"lat": lat, "lon": lon, "accuracy_m": acc}
                             if lat is not None else None)}
            for u, (started, uuid, ended, lat, lon, acc) in found.items()}


# --- one visit ----------------------------------------------------------------------------


def draft_key(draft: dict, ordinal: int) -> str:
    """A stable name for a finding within its visit: kind, field, reason and ordinal."""
    detail = draft.get("detail") or {}
    reason = detail.get("reason") or detail.get("match") or ""
    raw = f"{draft['kind']}|{draft.get('field') or ''}|{reason}|{ordinal}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


_PLAIN = (str, int, float, bool, type(None))


def _plain(value) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged (str keys, plain leaves)."""
    t = type(value)
    if t in _PLAIN:
        return True
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if t is list:
        return all(_plain(v) for v in value)
    return False


def _copy(value):
    t = type(value)
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list:
        return [_copy(v) for v in value]
    return value


def _jsonable(value):
    """``value`` as JSON would give it back (a copy); plain values skip the round trip."""
    if type(value) in _PLAIN:
        return value
    if _plain(value):
        return _copy(value)
    return json.loads(json.dumps(value, default=str))


def _predecessor(session: Session, visit: _Visit,
                 batch: _Batch) -> _Visit | tuple | None | bool:
    """The visit before this one in its offline chain: one of the batch (a ``_Visit``), one
    of the database (a row with ``status`` and ``result_version``), None (not arrived), or
    True when the visit starts its chain (nothing to wait for)."""
    if not visit.branch_id or visit.trunk_version is None or visit.base_version is None \
            or visit.base_version <= visit.trunk_version:
        return True
    key = (visit.branch_id, visit.household_id, visit.base_version - 1)
    for other in batch.by_chain.get(key, ()):
        if other.uuid != visit.uuid:
            return other
    return session.execute(select(Visit.status, Visit.result_version).where(
        Visit.branch_id == visit.branch_id, Visit.household_id == visit.household_id,
        Visit.base_version == visit.base_version - 1, Visit.uuid != visit.uuid)
        .limit(1)).first()


def _reconcile(session: Session, visit: _Visit, batch: _Batch, config: Config,
               forms: FormCache, now: dt.datetime) -> str:
    record = batch.records.get(visit.household_id)
    if record is None:  # the family vanished (cascade): nothing to compare with
        visit.status, visit.error = "failed", "no verified record"
        return visit.status
    if visit.household_id in batch.staged_households:
        _write_staged(session, batch)  # a second visit of the family reads the versions back
    extra: list[dict] = []
    pred = _predecessor(session, visit, batch)
    if pred is not True and (pred is None or pred.status not in PROCESSED_STATUSES):
        held_for = now - (visit.received_at or now)
        if held_for < dt.timedelta(days=config.backlog_hold_days):
            visit.status = "held"
            visit.hold_reason = "waiting for the previous visit of its offline chain"
            return visit.status
        extra.append({"kind": "out_of_order", "severity": config.severity.get("out_of_order",
                                                                                "soft"),
                      "field": None, "registry_value": None, "visit_value": None,
                      "base_value": None, "detail": {"held_days": round(held_for.days, 1)},
                      "message": "forced through without the previous visit of its offline "
                                 "chain"})
        pred = True
    if pred is not True and pred.result_version is not None:
        base_version = pred.result_version  # the server version the phone's chain built on
    else:
        base_version = visit.trunk_version if visit.trunk_version is not None \
            else visit.base_version
    current = record.doc
    base = None
    if base_version is not None and base_version != record.version:
        base = version_doc(session, visit.household_id, base_version)

    key = (visit.form_id, visit.form_version)
    if key not in batch.verifies:
        form = forms.get(*key)
        batch.verifies[key] = verifies_map(form.definition if form is not None else {})
    cmp = three_way(base, current, visit.answers, batch.verifies[key], config)
    facts = dict(batch.facts.get(visit.household_id) or {})
    facts["program"] = current.get("program") or {}
    ctx = Context(
        visit={"uuid": visit.uuid, "household_id": visit.household_id,
               "answers": visit.answers, "started_at": visit.started_at,
               "ended_at": visit.ended_at, "photos": batch.photos.get(visit.uuid, []),
               "location": ({"lat": visit.lat, "lon": visit.lon, "accuracy_m": visit.accuracy_m}
                            if visit.lat is not None else None)},
        record=current, registry=facts,
        nik_households=batch.nik_households, kk_households=batch.kk_households,
        photo_lookup=batch.photo_lookup,
        previous_visit=batch.previous.get(visit.uuid),
        round_visits=batch.round_visits.get((visit.household_id, visit.round_id), ()),
        upstream_changed=batch.upstream.get(visit.household_id, {}),
        proposed_changes=cmp.changed_fields,
        today=visit.started_at.date() if visit.started_at else None,
    )
    drafts = extra + cmp.drafts(config) + run_rules(ctx, config)
    _store_conflicts(session, visit, record.version, facts.get("kode_kelurahan") or "", drafts,
                     now, batch)

    blocking = any(d["severity"] in BLOCKING for d in drafts)
    applied: dict = {}
    compared = version = record.version
    if not blocking and cmp.changes_to_apply:
        # the family's assignment updates go first, as one visit at a time would make them
        _write_finish(session, batch, now, visit.household_id)
        staged = stage_changes(record, cmp.changes_to_apply, source=VISIT_SOURCE,
                               actor_id=visit.enumerator_id, visit_uuid=visit.uuid, now=now)
        if staged is not None:
            version = staged.version
            batch.staged.append(staged)
            batch.staged_households.add(visit.household_id)
            batch.changed[visit.household_id] = None
            record.changed = True
        applied = cmp.changes_to_apply
    visit.status = "needs_review" if blocking else "verified"
    visit.compared_version, visit.result_version = compared, version
    visit.comparison = {  # paths are strings: only the values need making plain
        "confirmed": cmp.confirmed_paths,
        "proposed": _jsonable(cmp.proposed_changes),
        "concurrent": _jsonable(cmp.concurrent_values),
        "filled": _jsonable(cmp.filled_values),
        "applied": _jsonable(applied), "skipped": list(cmp.skipped),
        "base_version": base_version,
    }
    visit.hold_reason, visit.error, visit.processed_at = None, None, now
    _finish_assignment(visit, blocking, batch)
    return visit.status


def _write_staged(session: Session, batch: _Batch) -> None:
    write_versions(session, batch.staged)
    batch.staged.clear()
    batch.staged_households.clear()


def _store_conflicts(session: Session, visit: _Visit, version: int, kelurahan: str,
                     drafts: list[dict], now: dt.datetime, batch: _Batch) -> None:
    """Add the visit's conflict rows to the batch's (inserted at its end, ``_write``)."""
    if not drafts:
        return
    seen: dict[tuple, int] = defaultdict(int)
    rows = batch.conflicts
    for d in drafts:
        detail = d.get("detail") or {}
        ident = (d["kind"], d.get("field"), detail.get("reason") or detail.get("match") or "")
        rows.append({
            "household_id": visit.household_id, "visit_uuid": visit.uuid,
            "round_id": visit.round_id, "kelurahan": kelurahan, "kecamatan": kelurahan[:8],
            "key": draft_key(d, seen[ident]), "kind": d["kind"], "severity": d["severity"],
            "field": d.get("field"), "registry_value": _jsonable(d.get("registry_value")),
            "visit_value": _jsonable(d.get("visit_value")),
            "base_value": _jsonable(d.get("base_value")), "message": d.get("message") or "",
            "detail": _jsonable(detail) or None, "record_version": version, "status": "open",
            "created_at": now, "updated_at": now,
        })
        seen[ident] += 1


def _insert_conflicts(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    # Core, not the ORM's bulk insert: one executemany, with no per-row ORM bookkeeping.
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Conflict.__table__)
    stmt = ins.on_conflict_do_nothing(index_elements=["visit_uuid", "key"])
    conn = session.connection()
    for chunk in _chunks(rows, 1000):
        conn.execute(stmt, chunk)


def _finish_assignment(visit: _Visit, blocking: bool, batch: _Batch) -> None:
    """Note the visit's assignment as finished; ``_write_finish`` updates it."""
    if visit.round_id is None:
        return
    key = (visit.round_id, visit.household_id)
    batch.finish[key] = batch.finish.get(key, True) and blocking
    batch.finishing.add(visit.household_id)


def _write_finish(session: Session, batch: _Batch, now: dt.datetime,
                  household_id: str | None = None) -> None:
    """Update the noted assignments (all, or one family's): one statement per round and
    outcome. Reviewed as one visit at a time would leave them: a verified visit sets ``done``
    (and later visits find the assignment closed), visits needing review before it only set
    the review state; the phones get their assignment's change."""
    if household_id is not None and household_id not in batch.finishing \
            and household_id not in batch.changed:
        return  # nothing noted for the family (its first visit of the batch, mostly)
    # The holders of a changed family get its record before its assignment can close.
    changed = [h for h in batch.changed if household_id is None or h == household_id]
    if changed:
        batch.feed += feed.household_changes(session, changed)
        for h in changed:
            del batch.changed[h]
    keys = [k for k in batch.finish if household_id is None or k[1] == household_id]
    if not keys:
        return
    groups: dict[tuple, list[str]] = defaultdict(list)
    for key in keys:
        groups[(key[0], batch.finish.pop(key))].append(key[1])
    changes = []
    for (round_id, blocking), hids in groups.items():
        values_ = {"review_state": "needs_review" if blocking else "verified",
                   "updated_at": now}
        if not blocking:
            values_["status"] = "done"
        order = {h: i for i, h in enumerate(hids)}
        for chunk in _chunks(hids):
            updated = session.connection().execute(
                update(_At)
                .where(_At.c.round_id == round_id, _At.c.household_id.in_(chunk),
                       _At.c.status.in_(("pending", "visited", "returned")))
                .values(**values_)
                .returning(_At.c.enumerator_id, _At.c.household_id)).all()
            if not blocking:
                updated.sort(key=lambda r: (order[r[1]], r[0]))
                changes += [feed.Change(u, "assignment", feed.assignment_entity(round_id, h),
                                        "upsert") for u, h in updated]
    batch.feed += changes


# By the status index, named on SQLite: its statistics say a status matches a third of the
# visits, so it would scan the table for one (and SQLAlchemy renders no table hint there).
_ANY_HELD = select(_Vt.c.uuid).where(_Vt.c.status == "held").limit(1)
_ANY_HELD_SQLITE = text("SELECT uuid FROM visits INDEXED BY ix_visits_status_queued "
                        "WHERE status = 'held' LIMIT 1")


def _release_successors(session: Session, visits: list[_Visit], now: dt.datetime) -> int:
    """Queue again the held visits whose chain predecessor was just reconciled."""
    keys = [(v.branch_id, v.household_id, v.base_version + 1) for v in visits
            if v.branch_id and v.base_version is not None and v.status in PROCESSED_STATUSES]
    # Held visits are few and mostly none: one probe of the status index says whether to look
    # (the branch lookup below reads each branch's visits, held or not).
    conn = session.connection()
    if not keys or conn.execute(_ANY_HELD_SQLITE if conn.dialect.name == "sqlite"
                                else _ANY_HELD).first() is None:
        return 0
    # The held visits of these branches (indexed), matched here: one long OR of (branch,
    # family, version) triples costs SQLite far more than the lookup.
    wanted, uuids = set(keys), []
    for chunk in _chunks(sorted({b for b, _h, _n in keys})):
        for uuid, b, h, n in session.execute(
                select(Visit.uuid, Visit.branch_id, Visit.household_id, Visit.base_version)
                .where(Visit.status == "held", Visit.branch_id.in_(chunk))):
            if (b, h, n) in wanted:
                uuids.append(uuid)
    released = 0
    for chunk in _chunks(sorted(uuids)):
        released += session.execute(update(Visit).where(Visit.status == "held",
                                                        Visit.uuid.in_(chunk))
                                    .values(status="queued", queued_at=now)).rowcount
    return released


# --- batches ------------------------------------------------------------------------------


def _lock_households(session: Session, household_ids: Iterable[str]) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: the write transaction is the single writer
    for hid in sorted(set(household_ids)):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:h))"), {"h": hid})


@contextlib.contextmanager
def _collector_paused():
    """No garbage collection while a batch runs: its objects live until it ends and then go
    by reference counting, and collections during it walked them again and again (a tenth of
    the time); what they leave in cycles is collected at the next collection after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _process(session: Session, uuids: list[str] | None, config: Config,
             now: dt.datetime, worker: str | None = None, limit: int = 0) -> dict[str, str]:
    """Reconcile a batch in one write transaction: the claimed visits of ``uuids``, or, with
    ``worker``, the ``limit`` first of the queue (``uuids`` None) or those of ``uuids`` still
    in it, claimed by the same transaction."""
    # The collector comes back once the batch's objects are gone with _batch's frame: back
    # while they lived, its next pass walked them all and moved them to older generations.
    with _collector_paused():
        return _batch(session, uuids, config, now, worker, limit)


def _batch(session: Session, uuids: list[str] | None, config: Config,
           now: dt.datetime, worker: str | None, limit: int) -> dict[str, str]:
    with write_transaction(session):
        ahead = session.info.get(prefetch.KEY)
        early = ahead.take() if ahead is not None else {}
        if worker is not None:
            from_queue = uuids is None
            uuids = next_in_queue(session, limit if uuids is None else len(uuids), now,
                                  uuids=uuids)
            if ahead is not None and from_queue and uuids:
                ahead.start(uuids, limit)  # the next batch, read while this one runs
        visits = _read_visits(session, uuids, claimed=worker is None,
                              early=early) if uuids else []
        if not visits:
            return {}
        _lock_households(session, (v.household_id for v in visits))
        batch, forms = _load(session, visits, config, early), FormCache(session)
        for v in visits:
            if v.branch_id and v.base_version is not None:
                batch.by_chain.setdefault((v.branch_id, v.household_id, v.base_version),
                                          []).append(v)
        out = {v.uuid: _reconcile(session, v, batch, config, forms, now) for v in visits}
        _write_staged(session, batch)
        _write_records(session, batch.records.values())
        _write_visits(session, visits, worker, now)
        _insert_conflicts(session, batch.conflicts)
        _write_finish(session, batch, now)
        feed.emit(session, batch.feed)  # one feed_state update for the batch
        _release_successors(session, visits, now)
        # the monitoring counters move in the same transaction as what they count
        monitoring.drain(session, households=(v.household_id for v in visits))
    return out


def process_visits(session: Session, uuids: list[str], *, config: Config = DEFAULT,
                   now: dt.datetime | None = None) -> dict[str, str]:
    """Reconcile claimed visits (status ``processing``, see ``sync.queue.claim``); return
    uuid -> new status.

    The whole batch is one transaction; if it fails, each visit is tried alone and a visit that
    still fails goes back to the queue (or to ``failed`` after ``config.max_attempts``).
    """
    return _isolated(session, uuids, config, now or utcnow(), None)


def _isolated(session: Session, uuids: list[str] | None, config: Config, now: dt.datetime,
              worker: str | None, limit: int = 0) -> dict[str, str]:
    """``_process`` the batch; when it fails, each of its visits alone."""
    try:
        return _process(session, uuids, config, now, worker, limit)
    except Exception as exc:  # noqa: BLE001 - isolate the bad visit below
        if database_unreachable(exc):
            raise  # no visit's fault: nothing to isolate, no attempt to count
        failure = exc
    if uuids is None:
        # The batch came from the queue: take its head again (another worker may have taken
        # some meanwhile), and try each visit alone, since which one failed is not known.
        with write_transaction(session):
            uuids = next_in_queue(session, limit, now)
    elif len(uuids) == 1:
        return {uuids[0]: _failed(session, uuids[0], config, failure, worker)}
    out: dict[str, str] = {}
    for uuid in uuids:
        try:
            out.update(_process(session, [uuid], config, now, worker))
        except Exception as exc:  # noqa: BLE001 - one bad visit never costs its neighbours
            if database_unreachable(exc):
                raise
            out[uuid] = _failed(session, uuid, config, exc, worker)
    return out



def _failed(session: Session, uuid: str, config: Config, error: Exception,
            worker: str | None = None) -> str:
    # The type and frames only: an exception's message may quote the visit's answers.
    log.error("reconciliation failed", extra={"visit_uuid": uuid, **exception_summary(error)})
    with write_transaction(session):
        visit = session.get(Visit, uuid, with_for_update=True)
        if visit is None:
            return "missing"
        if worker is not None:  # claimed by the transaction that failed: count the attempt
            if visit.status not in ("queued", "processing"):
                return visit.status  # another worker reconciled it meanwhile
            visit.attempts += 1
            visit.claimed_by, visit.claimed_at = worker, utcnow()
        visit.status = "failed" if visit.attempts >= config.max_attempts else "queued"
        visit.error = "reconciliation raised an error; see the worker's log"
        visit.queued_at = utcnow()
        return visit.status


def requeue_expired_holds(session: Session, config: Config = DEFAULT,
                          now: dt.datetime | None = None) -> int:
    """Queue held visits whose hold has run out, to be forced through."""
    now = now or utcnow()
    limit = now - dt.timedelta(days=config.backlog_hold_days)
    with write_transaction(session):
        return session.execute(update(Visit).where(Visit.status == "held",
                                                   Visit.received_at <= limit)
                               .values(status="queued", queued_at=now)).rowcount


def run_once(session: Session, worker: str | None = None, limit: int = BATCH,
             config: Config = DEFAULT, now: dt.datetime | None = None) -> dict[str, str]:
    """Take up to ``limit`` visits from the queue and reconcile them, claimed and ended by one
    transaction; return uuid -> status."""
    return _isolated(session, None, config, now or utcnow(), worker or worker_name(), limit)


def drain(session: Session, worker: str | None = None, limit: int = BATCH,
          config: Config = DEFAULT, max_seconds: float | None = None) -> int:
    """Reconcile until the queue is empty (or ``max_seconds`` pass); return how many.

    A round in which every claimed visit failed and went back to the queue ends the drain, so
    a visit that keeps raising is retried at the next run, not in a tight loop.
    """
    requeue_expired_holds(session, config)
    worker = worker or worker_name()
    started, total = time.monotonic(), 0
    with background_checkpoints(session.get_bind()), \
            prefetch.reading_ahead(session, _read_ahead):
        while True:
            done = run_once(session, worker, limit, config)
            total += len(done)
            if not done or all(s in ("queued", "failed") for s in done.values()) \
                    or (max_seconds is not None and time.monotonic() - started > max_seconds):
                return total
