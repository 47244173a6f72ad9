"""Streaming import of a DTSEN extract into the registry and the verified record.

``import_extract(session, path)`` reads JSON Lines (one family a line) or a directory holding
``keluarga.csv`` and ``anggota.csv``, in batches, so memory stays flat whatever the size:

* CSV: both files must be sorted by ``id_keluarga`` (byte order, as ``LC_ALL=C sort`` gives and as
  ``sync.generator`` writes them); members are read in step with their family (a merge join).
  The order is checked before anything is written.
* Each batch is one write transaction. Rows are written with the driver's ``executemany`` on
  SQLite and ``COPY`` on PostgreSQL, bypassing the ORM, which is what keeps the import close to
  the speed of a bare insert.
* A line that cannot be stored goes to the reject file (JSON Lines: ``line``, ``file``, ``id``,
  ``reason``, ``detail``), never the line's contents: reasons ``not_json``, ``not_object``,
  ``missing_id``, ``invalid_value`` (detail: the field path), ``unknown_kelurahan``,
  ``duplicate_id`` (the id came earlier in this extract), ``member_without_family``.
* Identity checks (``sync.identity``) run for every new or changed family; their reasons are
  stored in ``anggota.nik_issues`` and ``keluarga.no_kk_issues``. Nothing is rejected for them.
* A family whose content hash is unchanged is left alone (re-importing changes nothing but
  ``last_seen_import_id``). A changed one gets a new registry version with its changed paths,
  its typed rows are replaced, ``registry_changed_at`` is set, and its verified record follows
  (new version, source ``registry_import``, an audit row per path) unless it has local changes,
  in which case it keeps them and ``upstream_version`` notes the registry version not taken in.
* After a full extract, families not in it are marked removed (a ``removed`` registry version;
  nothing is deleted). ``partial=True`` skips that for an extract of a few areas. A removed family
  that comes back gets a ``restored`` version.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from operator import itemgetter
from pathlib import Path

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session
from tqdm import tqdm

from sync import feed
from sync.db import UTCDateTime, utcnow, write_transaction
from sync.identity import Issue, check_kk, check_nik, issues_as_json
from sync.models import Area
from sync.models.registry import (
    FAMILY_FIELDS,
    MEMBER_FIELDS,
    REGISTRY_SOURCE,
    Import,
)
from sync.registry import (
    GROUP_FIELDS,
    MEMBER_KEYS,
    MEMBERS,
    TOP_FIELDS,
    InvalidValue,
    canonical_json,
    content_hash,
    diff_records,
    normalize_family,
)

log = logging.getLogger(__name__)

KELUARGA_CSV = "keluarga.csv"
ANGGOTA_CSV = "anggota.csv"
ID = "id_keluarga"

# Column lists of the bulk writes, derived from the models.
FAMILY_COLUMNS = [col for _path, col, _typ in FAMILY_FIELDS]
KELUARGA_COLUMNS = FAMILY_COLUMNS + [
    "no_kk_issues", "content_hash", "registry_version", "first_import_id", "last_import_id",
    "last_seen_import_id", "created_at", "registry_changed_at", "removed_at",
]
ANGGOTA_COLUMNS = ["keluarga_id", "no_urut"] + [col for _k, col, _t in MEMBER_FIELDS] + [
    "nik_issues"]
VERSION_COLUMNS = ["keluarga_id", "version", "kind", "import_id", "content_hash", "snapshot",
                   "changed_fields", "created_at"]
VERIFIED_COLUMNS = ["household_id", "version", "doc", "registry_version", "local_changes",
                    "updated_at"]
VERIFIED_VERSION_COLUMNS = ["household_id", "version", "source", "import_id",
                            "registry_version", "created_at"]
CHANGE_COLUMNS = ["version_id", "household_id", "path", "old_value", "new_value", "created_at"]

_UPDATE_COLUMNS = FAMILY_COLUMNS[1:] + [
    "no_kk_issues", "content_hash", "registry_version", "last_import_id", "last_seen_import_id",
    "registry_changed_at", "removed_at",
]
_DUPLICATE = Issue("nik_duplicate_in_family", "the same NIK appears twice in this family")


class ExtractError(ValueError):
    """The extract as a whole cannot be read (missing files, unsorted CSV)."""


@dataclass
class ImportSummary:
    """What an import did; ``read`` counts family lines, ``rejected`` reject-file entries."""

    import_id: int
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    removed: int = 0
    members: int = 0
    flagged: int = 0
    seconds: float = 0.0
    reject_path: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class _Line:
    """One family as read: its line, its id, the parsed object, or why it was rejected."""

    line: int
    id: str | None
    obj: dict | None = None
    reason: str | None = None
    file: str | None = None


# --- reading ----------------------------------------------------------------------------------


def _id_of(obj: dict) -> str | None:
    value = obj.get(ID)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def read_jsonl(path: Path) -> Iterator[_Line]:
    """Families of a JSON Lines extract; blank lines are skipped."""
    name = path.name
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                yield _Line(number, None, reason="not_json", file=name)
                continue
            if not isinstance(obj, dict):
                yield _Line(number, None, reason="not_object", file=name)
                continue
            fid = _id_of(obj)
            if fid is None:
                yield _Line(number, None, reason="missing_id", file=name)
                continue
            yield _Line(number, fid, obj, file=name)


def _check_sorted(path: Path) -> None:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None) or []
        if ID not in header:
            raise ExtractError(f"{path.name} has no {ID} column")
        col, previous = header.index(ID), ""
        for row in reader:
            if len(row) > col and row[col]:
                if row[col] < previous:
                    raise ExtractError(
                        f"{path.name} is not sorted by {ID} (line {reader.line_num}); sort it "
                        f"with LC_ALL=C sort, keeping the header first"
                    )
                previous = row[col]


def _nest(row: dict[str, str]) -> dict:
    """A keluarga.csv row as the extract's nested object (``rumah.lantai`` -> rumah/lantai)."""
    obj: dict = {key: row.get(key) for key, _ in TOP_FIELDS}
    for group, fields in GROUP_FIELDS.items():
        obj[group] = {key: row.get(f"{group}.{key}") for key, _ in fields}
    return obj


def check_csv_dir(directory: Path) -> None:
    """Refuse a CSV extract that lacks a file or is not sorted, before anything is written."""
    for name in (KELUARGA_CSV, ANGGOTA_CSV):
        if not (directory / name).is_file():
            raise ExtractError(f"{directory / name} is missing")
    for name in (KELUARGA_CSV, ANGGOTA_CSV):
        _check_sorted(directory / name)


def read_csv_dir(directory: Path) -> Iterator[_Line]:
    """Families of a CSV extract, members joined in step (both files sorted by id_keluarga)."""
    kel_path, ang_path = directory / KELUARGA_CSV, directory / ANGGOTA_CSV
    with open(kel_path, newline="", encoding="utf-8") as kf, \
            open(ang_path, newline="", encoding="utf-8") as af:
        families, members = csv.DictReader(kf), csv.DictReader(af)
        pending = next(members, None)
        previous = None
        for row in families:
            number = families.line_num
            fid = (row.get(ID) or "").strip() or None
            if fid is None:
                yield _Line(number, None, reason="missing_id", file=KELUARGA_CSV)
                continue
            while pending is not None and (pending.get(ID) or "") < fid:
                yield _Line(members.line_num, pending.get(ID) or None,
                            reason="member_without_family", file=ANGGOTA_CSV)
                pending = next(members, None)
            group = []
            while pending is not None and pending.get(ID) == fid:
                group.append({key: pending.get(key) for key in MEMBER_KEYS})
                pending = next(members, None)
            if fid == previous:
                # Its members went to the first line with this id.
                yield _Line(number, fid, reason="duplicate_id", file=KELUARGA_CSV)
                continue
            previous = fid
            obj = _nest(row)
            obj[MEMBERS] = group
            yield _Line(number, fid, obj, file=KELUARGA_CSV)
        while pending is not None:
            yield _Line(members.line_num, pending.get(ID) or None,
                        reason="member_without_family", file=ANGGOTA_CSV)
            pending = next(members, None)


def read_extract(path: str | Path) -> tuple[str, Iterator[_Line]]:
    """The format (``jsonl`` or ``csv``) and the families of an extract file or directory."""
    path = Path(path)
    if path.is_dir():
        check_csv_dir(path)
        return "csv", read_csv_dir(path)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            raise ExtractError("a CSV extract is the directory holding keluarga.csv and "
                               "anggota.csv; give the directory")
        return "jsonl", read_jsonl(path)
    raise ExtractError(f"{path} does not exist")


def _batches(items: Iterable[_Line], size: int) -> Iterator[list[_Line]]:
    batch: list[_Line] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- writing ----------------------------------------------------------------------------------


class _Bulk:
    """Bulk statements on the session's own connection and transaction, per dialect."""

    def __init__(self, session: Session):
        self.conn = session.connection()
        self.raw = self.conn.connection.driver_connection
        self.pg = self.conn.dialect.name == "postgresql"

    def ts(self, value: dt.datetime):
        """A UTC timestamp exactly as ``UTCDateTime`` binds it (SQLite: SQLAlchemy's text)."""
        process = UTCDateTime().bind_processor(self.conn.dialect)
        return process(value) if process else value

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        cols = ", ".join(columns)
        if self.pg:
            with self.raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            self.raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    def many(self, sql: str, rows: list[tuple]) -> None:
        """``executemany`` of a statement written with ``?`` placeholders."""
        if not rows:
            return
        if self.pg:
            with self.raw.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)
        else:
            self.raw.executemany(sql, rows)

    def where_in(self, sql: str, ids: list[str], *params) -> list[tuple]:
        """Run ``sql`` whose ``{ids}`` is a list of ids, with ``?`` parameters before it."""
        if not ids:
            return []
        if self.pg:
            with self.raw.cursor() as cur:
                cur.execute(sql.replace("?", "%s").format(ids="= ANY(%s)"), (*params, ids))
                return cur.fetchall() if cur.description else []
        marks = "(" + ", ".join("?" * len(ids)) + ")"
        cur = self.raw.execute(sql.format(ids=f"IN {marks}"), (*params, *ids))
        return cur.fetchall() if cur.description else []


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _getter(keys) -> Callable[[dict], tuple]:
    """``itemgetter`` that always returns a tuple, even for one key."""
    keys = list(keys)
    return itemgetter(*keys) if len(keys) > 1 else (lambda d, k=keys[0]: (d[k],))


_TOP_VALUES = _getter(key for key, _ in TOP_FIELDS)
_GROUP_VALUES = [(group, _getter(key for key, _ in fields))
                 for group, fields in GROUP_FIELDS.items()]
_MEMBER_VALUES = _getter(MEMBER_KEYS)


def _family_values(rec: dict) -> tuple:
    """The family's field values in ``FAMILY_COLUMNS`` order."""
    values = _TOP_VALUES(rec)
    for group, getter in _GROUP_VALUES:
        values += getter(rec[group])
    return values


def identity_rows(fid: str, rec: dict, today: dt.date) -> tuple[list[tuple], bool, str | None]:
    """A family's anggota rows with their NIK issues, whether anything failed, the KK issues."""
    rows, flagged = [], False
    niks = [m["nik"] for m in rec[MEMBERS] if m["nik"]]
    dupes = {n for n in niks if niks.count(n) > 1} if len(set(niks)) < len(niks) else ()
    for number, m in enumerate(rec[MEMBERS], start=1):
        issues = check_nik(m["nik"], sex=m["jenis_kelamin"], birth_date=m["tanggal_lahir"],
                           today=today)
        if m["nik"] in dupes:
            issues.append(_DUPLICATE)
        if issues:
            flagged = True
        rows.append((fid, number, *_MEMBER_VALUES(m), _json(issues_as_json(issues))))
    kk_issues = check_kk(rec["no_kk"], today=today)
    return rows, flagged or bool(kk_issues), _json(issues_as_json(kk_issues))


_NIK_AT = ANGGOTA_COLUMNS.index("nik")
_HOLDERS = "SELECT nik, keluarga_id FROM anggota WHERE nik {ids}"


def note_shared_niks(bulk: _Bulk, member_rows: list[tuple]) -> None:
    """Add to ``shared_niks`` the NIKs of just-written anggota rows that another family
    holds too (the worker's duplicate-NIK lookups rely on it holding every such NIK). The
    holders are grouped here: a GROUP BY over thousands of listed NIKs cost SQLite 160 MB."""
    niks = sorted({row[_NIK_AT] for row in member_rows if row[_NIK_AT]})
    shared: set[str] = set()
    for i in range(0, len(niks), 2_000):
        first: dict[str, str] = {}
        for nik, fid in bulk.where_in(_HOLDERS, niks[i:i + 2_000]):
            if first.setdefault(nik, fid) != fid:
                shared.add(nik)
    if shared:
        bulk.many("INSERT INTO shared_niks (nik) VALUES (?) ON CONFLICT DO NOTHING",
                  [(n,) for n in sorted(shared)])


# The tables a new family is written to, in order, with their columns.
NEW_FAMILY_TABLES = {
    "keluarga": KELUARGA_COLUMNS,
    "anggota": ANGGOTA_COLUMNS,
    "keluarga_versions": VERSION_COLUMNS,
    "verified_records": VERIFIED_COLUMNS,
    "verified_versions": VERIFIED_VERSION_COLUMNS,
}


def add_new_family(tables: dict[str, list[tuple]], rec: dict, snapshot: str, digest: str,
                   member_rows: list[tuple], kk_json: str | None, imp_id: int, now_db) -> None:
    """Append the rows of a family seen for the first time (registry v1, verified v1)."""
    fid = rec[ID]
    tables["keluarga"].append((*_family_values(rec), kk_json, digest, 1, imp_id, imp_id, imp_id,
                               now_db, None, None))
    tables["anggota"].extend(member_rows)
    tables["keluarga_versions"].append((fid, 1, "created", imp_id, digest, snapshot, None,
                                        now_db))
    tables["verified_records"].append((fid, 1, snapshot, 1, False, now_db))
    tables["verified_versions"].append((fid, 1, REGISTRY_SOURCE, imp_id, 1, now_db))


class _Importer:
    """One import run: sorts each batch into new, changed and unchanged families."""

    def __init__(self, session: Session, summary: ImportSummary, *, rejects: Path,
                 today: dt.date):
        self.session = session
        self.imp_id = summary.import_id
        self.summary = summary
        self.rejects_path = rejects
        self.rejects = None
        self.today = today
        self.kelurahan = set(
            session.scalars(select(Area.code).where(Area.level == "kelurahan"))
        )

    # Rejects hold where and why, never the line's contents (NIKs, names).
    def reject(self, item: _Line, reason: str | None = None, detail: str | None = None) -> None:
        if self.rejects is None:
            self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
            self.rejects = open(self.rejects_path, "w", encoding="utf-8")
            self.summary.reject_path = str(self.rejects_path)
        entry = {"line": item.line, "file": item.file, "id": item.id,
                 "reason": reason or item.reason, "detail": detail}
        self.rejects.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.summary.rejected += 1

    def close(self) -> None:
        if self.rejects is not None:
            self.rejects.close()

    def batch(self, items: list[_Line]) -> None:
        s = self.summary
        imp_id = self.imp_id
        prepared: dict[str, tuple[_Line, dict, str, str]] = {}
        for item in items:
            if item.file != ANGGOTA_CSV:
                s.read += 1
            if item.reason:
                self.reject(item)
                continue
            if item.id in prepared:
                self.reject(item, "duplicate_id")
                continue
            try:
                rec = normalize_family(item.obj)
            except InvalidValue as exc:
                self.reject(item, "invalid_value", exc.path)
                continue
            rec[ID] = item.id
            if rec["kode_kelurahan"] not in self.kelurahan:
                self.reject(item, "unknown_kelurahan")
                continue
            snapshot = canonical_json(rec)
            prepared[item.id] = (item, rec, snapshot, content_hash(snapshot))
        if not prepared:
            return

        bulk = _Bulk(self.session)
        existing = {
            row[0]: row[1:]
            for row in bulk.where_in(
                "SELECT id, content_hash, registry_version, last_seen_import_id, removed_at "
                "FROM keluarga WHERE id {ids}", list(prepared))
        }
        now = utcnow()
        now_db = bulk.ts(now)
        new, changed, unchanged = [], [], []
        for fid, entry in prepared.items():
            old = existing.get(fid)
            if old is None:
                new.append(entry)
            elif old[2] == imp_id:
                self.reject(entry[0], "duplicate_id")
            elif old[0] == entry[3] and old[3] is None:
                unchanged.append(fid)
            else:
                changed.append((entry, old[1], old[3] is not None))
        s.unchanged += len(unchanged)
        bulk.where_in("UPDATE keluarga SET last_seen_import_id = ? WHERE id {ids}",
                      unchanged, imp_id)
        if new:
            self.insert_new(bulk, new, now_db)
        if changed:
            self.update_changed(bulk, changed, now_db)

    def identity(self, fid: str, rec: dict) -> tuple[list[tuple], str | None]:
        member_rows, flagged, kk_json = identity_rows(fid, rec, self.today)
        s = self.summary
        s.members += len(member_rows)
        if flagged:
            s.flagged += 1
        return member_rows, kk_json

    def insert_new(self, bulk: _Bulk, new: list, now_db) -> None:
        tables: dict[str, list[tuple]] = {name: [] for name in NEW_FAMILY_TABLES}
        for _item, rec, snapshot, digest in new:
            member_rows, kk_json = self.identity(rec[ID], rec)
            add_new_family(tables, rec, snapshot, digest, member_rows, kk_json, self.imp_id,
                           now_db)
        for name, columns in NEW_FAMILY_TABLES.items():
            bulk.insert(name, columns, tables[name])
        note_shared_niks(bulk, tables["anggota"])
        self.summary.inserted += len(new)

    def update_changed(self, bulk: _Bulk, changed: list, now_db) -> None:
        imp_id = self.imp_id
        ids = [entry[1][ID] for entry, _v, _r in changed]
        old_snapshots = {
            fid: snap if isinstance(snap, dict) else json.loads(snap)
            for fid, snap in bulk.where_in(
                "SELECT v.keluarga_id, v.snapshot FROM keluarga k JOIN keluarga_versions v "
                "ON v.keluarga_id = k.id AND v.version = k.registry_version WHERE k.id {ids}",
                ids)
        }
        verified = {
            fid: (version, bool(local))
            for fid, version, local in bulk.where_in(
                "SELECT household_id, version, local_changes FROM verified_records "
                "WHERE household_id {ids}", ids)
        }
        kel, ang, ver, follow, upstream, rebase, vver, audit = [], [], [], [], [], [], [], {}
        for (_item, rec, snapshot, digest), version, removed in changed:
            fid = rec[ID]
            new_version = version + 1
            diff = diff_records(old_snapshots[fid], rec)
            member_rows, kk_json = self.identity(fid, rec)
            ang.extend(member_rows)
            kel.append((*_family_values(rec)[1:], kk_json, digest, new_version, imp_id, imp_id,
                        now_db, None, fid))
            ver.append((fid, new_version, "restored" if removed else "changed", imp_id, digest,
                        snapshot, _json(list(diff)), now_db))
            v_version, local = verified[fid]
            if not diff:  # restored as it was: nothing to take in
                if not local:
                    rebase.append((new_version, fid))
            elif local:
                upstream.append((new_version, fid))
            else:
                follow.append((v_version + 1, snapshot, new_version, now_db, fid))
                vver.append((fid, v_version + 1, REGISTRY_SOURCE, imp_id, new_version, now_db))
                audit[fid] = diff
        bulk.many(f"UPDATE keluarga SET {', '.join(c + ' = ?' for c in _UPDATE_COLUMNS)} "
                  "WHERE id = ?", kel)
        bulk.where_in("DELETE FROM anggota WHERE keluarga_id {ids}", ids)
        bulk.insert("anggota", ANGGOTA_COLUMNS, ang)
        note_shared_niks(bulk, ang)
        bulk.insert("keluarga_versions", VERSION_COLUMNS, ver)
        bulk.many("UPDATE verified_records SET version = ?, doc = ?, registry_version = ?, "
                  "upstream_version = NULL, updated_at = ? WHERE household_id = ?", follow)
        bulk.many("UPDATE verified_records SET upstream_version = ? WHERE household_id = ?",
                  upstream)
        bulk.many("UPDATE verified_records SET registry_version = ? WHERE household_id = ?",
                  rebase)
        bulk.insert("verified_versions", VERIFIED_VERSION_COLUMNS, vver)
        # Phones holding a family whose verified record followed the registry get it again.
        feed.household_changed(self.session, [row[-1] for row in follow])
        if audit:
            version_ids = bulk.where_in(
                "SELECT household_id, id FROM verified_versions WHERE import_id = ? "
                "AND household_id {ids}", list(audit), imp_id)
            bulk.insert("verified_changes", CHANGE_COLUMNS, [
                (vid, fid, path, _json(old), _json(new), now_db)
                for fid, vid in version_ids
                for path, (old, new) in audit[fid].items()
            ])
        self.summary.updated += len(changed)

    def mark_removed(self) -> None:
        """Families of earlier imports absent from this full extract: a ``removed`` version."""
        params = {"imp": self.imp_id, "now": utcnow()}
        now = bindparam("now", type_=UTCDateTime)
        self.session.execute(text(
            "INSERT INTO keluarga_versions (keluarga_id, version, kind, import_id, content_hash, "
            "snapshot, changed_fields, created_at) "
            "SELECT k.id, k.registry_version + 1, 'removed', :imp, v.content_hash, v.snapshot, "
            "NULL, :now FROM keluarga k JOIN keluarga_versions v ON v.keluarga_id = k.id "
            "AND v.version = k.registry_version "
            "WHERE k.removed_at IS NULL AND k.last_seen_import_id <> :imp").bindparams(now),
            params)
        result = self.session.execute(text(
            "UPDATE keluarga SET removed_at = :now, registry_changed_at = :now, "
            "registry_version = registry_version + 1, last_import_id = :imp "
            "WHERE removed_at IS NULL AND last_seen_import_id <> :imp").bindparams(now), params)
        self.summary.removed = result.rowcount


def default_rejects_path(path: str | Path) -> Path:
    """``X.rejects.jsonl`` beside a JSON Lines file, ``DIR/rejects.jsonl`` for a CSV directory."""
    path = Path(path)
    return path / "rejects.jsonl" if path.is_dir() else path.with_suffix(".rejects.jsonl")


_COUNTS = ("read", "inserted", "updated", "unchanged", "rejected", "removed", "members", "flagged")


def import_extract(
    session: Session,
    path: str | Path,
    *,
    label: str | None = None,
    rejects: str | Path | None = None,
    batch_size: int = 2000,
    partial: bool = False,
    progress: bool = False,
    today: dt.date | None = None,
) -> ImportSummary:
    """Import an extract (JSON Lines file or CSV directory); see the module docstring.

    Commits batch by batch; an import that fails midway is marked ``failed`` and can simply be
    run again (families already stored are then unchanged). ``today`` fixes the date identity
    checks resolve two-digit years against (tests).
    """
    started = time.perf_counter()
    fmt, items = read_extract(path)
    with write_transaction(session):
        imp = Import(label=label, source_path=str(path), format=fmt, partial=partial,
                     started_at=utcnow())
        session.add(imp)
    summary = ImportSummary(import_id=imp.id)
    importer = _Importer(session, summary,
                         rejects=Path(rejects) if rejects else default_rejects_path(path),
                         today=today or dt.date.today())
    bar = tqdm(desc="families", unit=" fam", unit_scale=True, file=sys.stderr,
               disable=not progress, mininterval=1.0, smoothing=0.1)
    status = "failed"
    try:
        for batch in _batches(items, batch_size):
            with write_transaction(session):
                importer.batch(batch)
                # The counts so far, in the batch's own commit: /metrics and the import page
                # show a long import's progress, not zeros until it ends.
                session.execute(update(Import).where(Import.id == summary.import_id).values(
                    {f"n_{key}": getattr(summary, key) for key in _COUNTS}))
            bar.update(len(batch))
        if not partial:
            with write_transaction(session):
                importer.mark_removed()
        status = "done"
    finally:
        bar.close()
        importer.close()
        summary.seconds = round(time.perf_counter() - started, 3)
        with write_transaction(session):
            imp = session.get(Import, summary.import_id)
            imp.status, imp.finished_at, imp.seconds = status, utcnow(), summary.seconds
            imp.reject_path = summary.reject_path
            for key in _COUNTS:
                setattr(imp, f"n_{key}", getattr(summary, key))
        log.info("registry import %s %s: %s", summary.import_id, status,
                 {k: v for k, v in summary.as_dict().items() if k != "reject_path"})
    return summary

