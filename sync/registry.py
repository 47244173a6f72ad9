"""The registry record's canonical form, change paths, and the verified record's one writer.

A family record is a dict in the extract's shape (``rumah.lantai`` is ``rec["rumah"]["lantai"]``)
with every field of ``sync.models.registry`` present, typed, ``None`` when absent. Its canonical
JSON is what registry versions store and hash, so a JSON Lines and a CSV extract of the same
families give the same versions.

Change paths, used by ``apply_changes``, by ``diff_records`` and in every audit entry:

* ``desil``, ``no_kk``, ``alamat`` ... a top-level field; ``rumah.lantai``, ``aset.mobil``,
  ``program.pkh`` a field of a group;
* ``anggota[NIK=3173014508850003].pekerjaan`` a member's field, the member chosen by NIK (it must
  name exactly one member), or ``anggota[2].pekerjaan`` by 0-based position;
* ``anggota[NIK=...]`` or ``anggota[2]`` with a member dict replaces that member (by NIK: adds it
  when no member has the NIK), with ``None`` removes it; ``anggota[+]`` with a dict appends one;
* ``anggota`` the whole list (only in diffs, when nothing but the order changed).

Audit entries store the path with the member named by NIK when the NIK is unique in the family,
by position otherwise, whichever way the caller named it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable

import orjson
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sync import feed
from sync.db import utcnow
from sync.models.registry import (
    FAMILY_FIELDS,
    MEMBER_FIELDS,
    REGISTRY_SOURCE,
    Import,
    KeluargaVersion,
    VerifiedChange,
    VerifiedRecord,
    VerifiedVersion,
)

MEMBERS = "anggota"


class InvalidValue(ValueError):
    """A value that does not fit its field; ``path`` names the field."""

    def __init__(self, path: str):
        super().__init__(f"invalid value at {path}")
        self.path = path


class ChangeError(ValueError):
    """A change that cannot be applied; ``code`` is stable.

    The message never holds values or paths (a path can name a member by NIK); ``path`` carries
    the offending path for a caller that may show it.
    """

    def __init__(self, code: str, message: str, path: str | None = None):
        super().__init__(message)
        self.code = code
        self.path = path


# --- typed values -----------------------------------------------------------------------------

_TRUE = {"true", "1", "ya", "y", "t", "yes"}
_FALSE = {"false", "0", "tidak", "n", "f", "no"}


def _to_int(v):
    if v is None or v == "":
        return None
    t = type(v)
    if t is int:
        return v
    if t is str:
        return int(v)
    if t is float and v.is_integer():
        return int(v)
    raise ValueError


def _to_bool(v):
    if v is None or v == "":
        return None
    if v is True or v is False:
        return v
    if type(v) is str:
        low = v.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    elif type(v) is int and v in (0, 1):
        return bool(v)
    raise ValueError


def _to_float(v):
    if v is None or v == "":
        return None
    if type(v) is bool:
        raise ValueError
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError
    return f


def _to_str(v):
    if v is None:
        return None
    t = type(v)
    if t is str:
        v = v.strip()
        return v or None
    if t is int:
        return str(v)
    raise ValueError


def _to_date(v):
    """An ISO date ``YYYY-MM-DD``, kept as that string (JSON has no date type)."""
    if v is None or v == "":
        return None
    if type(v) is str and len(v) == 10 and v[4] == "-" and v[7] == "-":
        dt.date.fromisoformat(v)
        return v
    raise ValueError


def _to_sex(v):
    v = _to_str(v)
    if v is None:
        return None
    v = {"1": "L", "2": "P"}.get(v, v.upper())
    if v not in ("L", "P"):
        raise ValueError
    return v


_CONVERTERS: dict[type, Callable] = {
    int: _to_int, bool: _to_bool, float: _to_float, str: _to_str, dt.date: _to_date,
}


def _converter(key: str, typ: type) -> Callable:
    return _to_sex if key == "jenis_kelamin" else _CONVERTERS[typ]


# The record's layout, compiled once from the models: top-level fields, then groups.
TOP_FIELDS: list[tuple[str, Callable]] = [
    (path, _converter(path, typ)) for path, _col, typ in FAMILY_FIELDS if "." not in path
]
GROUP_FIELDS: dict[str, list[tuple[str, Callable]]] = {}
for _path, _col, _typ in FAMILY_FIELDS:
    if "." in _path:
        _group, _key = _path.split(".", 1)
        GROUP_FIELDS.setdefault(_group, []).append((_key, _converter(_key, _typ)))
MEMBER_CONVERTERS: list[tuple[str, Callable]] = [
    (key, _converter(key, typ)) for key, _col, typ in MEMBER_FIELDS
]
_MEMBER_KEYS = {key for key, _ in MEMBER_CONVERTERS}
# Every CSV column of keluarga.csv (dotted group paths) and of anggota.csv.
FAMILY_PATHS: list[str] = [path for path, _col, _typ in FAMILY_FIELDS]
MEMBER_KEYS: list[str] = [key for key, _ in MEMBER_CONVERTERS]


def normalize_member(obj, index: int, *, strict: bool = False) -> dict:
    """A member dict with every member field, typed; raises InvalidValue naming the field."""
    if not isinstance(obj, dict):
        raise InvalidValue(f"{MEMBERS}[{index}]")
    if strict and not obj.keys() <= _MEMBER_KEYS:
        raise InvalidValue(f"{MEMBERS}[{index}].{sorted(obj.keys() - _MEMBER_KEYS)[0]}")
    out = {}
    for key, conv in MEMBER_CONVERTERS:
        try:
            out[key] = conv(obj.get(key))
        except (ValueError, TypeError):
            raise InvalidValue(f"{MEMBERS}[{index}].{key}") from None
    return out


def normalize_family(obj: dict) -> dict:
    """The canonical record of a parsed extract family; raises InvalidValue naming the field.

    Unknown keys are ignored: the record holds exactly the fields the models know.
    """
    rec = {}
    get = obj.get
    for key, conv in TOP_FIELDS:
        try:
            rec[key] = conv(get(key))
        except (ValueError, TypeError):
            raise InvalidValue(key) from None
    for group, fields in GROUP_FIELDS.items():
        src = get(group)
        if src is None:
            src = {}
        elif not isinstance(src, dict):
            raise InvalidValue(group)
        sub = {}
        for key, conv in fields:
            try:
                sub[key] = conv(src.get(key))
            except (ValueError, TypeError):
                raise InvalidValue(f"{group}.{key}") from None
        rec[group] = sub
    members = get(MEMBERS)
    if members is None:
        members = []
    elif not isinstance(members, list):
        raise InvalidValue(MEMBERS)
    rec[MEMBERS] = [normalize_member(m, i) for i, m in enumerate(members)]
    return rec


def canonical_json(rec: dict) -> str:
    """The stored and hashed form: compact, keys in the models' order, UTF-8 kept as is."""
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


def content_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- diffs ------------------------------------------------------------------------------------


def _member_keys(members: list[dict]) -> list[str]:
    """Each member's selector: ``NIK=...`` when its NIK is unique in the list, else its index."""
    counts: dict[str, int] = {}
    for m in members:
        if m.get("nik"):
            counts[m["nik"]] = counts.get(m["nik"], 0) + 1
    return [
        f"NIK={m['nik']}" if m.get("nik") and counts[m["nik"]] == 1 else str(i)
        for i, m in enumerate(members)
    ]


def diff_records(old: dict, new: dict) -> dict[str, tuple]:
    """Every changed path with its (old, new) value; members are matched by NIK, else index."""
    changes: dict[str, tuple] = {}
    for key, _ in TOP_FIELDS:
        if old.get(key) != new.get(key):
            changes[key] = (old.get(key), new.get(key))
    for group, fields in GROUP_FIELDS.items():
        a, b = old.get(group) or {}, new.get(group) or {}
        for key, _ in fields:
            if a.get(key) != b.get(key):
                changes[f"{group}.{key}"] = (a.get(key), b.get(key))
    old_m, new_m = old.get(MEMBERS) or [], new.get(MEMBERS) or []
    if old_m == new_m:
        return changes
    old_by = dict(zip(_member_keys(old_m), old_m, strict=True))
    new_by = dict(zip(_member_keys(new_m), new_m, strict=True))
    member_changes = False
    for sel, before in old_by.items():
        after = new_by.get(sel)
        if after is None:
            changes[f"{MEMBERS}[{sel}]"] = (before, None)
            member_changes = True
            continue
        for key in MEMBER_KEYS:
            if before.get(key) != after.get(key):
                changes[f"{MEMBERS}[{sel}].{key}"] = (before.get(key), after.get(key))
                member_changes = True
    for sel, after in new_by.items():
        if sel not in old_by:
            changes[f"{MEMBERS}[{sel}]"] = (None, after)
            member_changes = True
    if not member_changes:  # the same members in another order
        changes[MEMBERS] = (old_m, new_m)
    return changes


# --- applying paths ---------------------------------------------------------------------------

_MEMBER_PATH = re.compile(r"^anggota\[(?:(\d+)|NIK=([^\]]+)|(\+))\](?:\.(\w+))?$")
_FIELD_CONVERTERS = {key: conv for key, conv in TOP_FIELDS} | {
    f"{g}.{k}": conv for g, fields in GROUP_FIELDS.items() for k, conv in fields
}
_MEMBER_FIELD_CONVERTERS = dict(MEMBER_CONVERTERS)
_READ_ONLY = {"id_keluarga"}


def _convert(conv: Callable, value, path: str):
    try:
        return conv(value)
    except (ValueError, TypeError):
        raise ChangeError("invalid_value", "the value does not fit the field", path) from None


def _find_member(members: list[dict], index: str | None, nik: str | None, path: str) -> int | None:
    if index is not None:
        i = int(index)
        if i >= len(members):
            raise ChangeError("member_not_found", "no member at that position", path)
        return i
    found = [i for i, m in enumerate(members) if m.get("nik") == nik]
    if len(found) > 1:
        raise ChangeError("member_ambiguous", "several members have that NIK", path)
    return found[0] if found else None


def apply_path(doc: dict, path: str, value) -> tuple[str, object, object] | None:
    """Set one path in ``doc`` (in place); return (audit path, old, new), or None if unchanged."""
    conv = _FIELD_CONVERTERS.get(path)
    if conv is not None:
        if path in _READ_ONLY:
            raise ChangeError("read_only", "this field cannot be changed", path)
        new = _convert(conv, value, path)
        group, _, key = path.rpartition(".")
        target = doc.setdefault(group, {}) if group else doc
        old = target.get(key)
        if old == new:
            return None
        target[key] = new
        return path, old, new
    match = _MEMBER_PATH.match(path)
    if match is None:
        raise ChangeError("unknown_path", "no such field", path)
    index, nik, append, field = match.groups()
    members = doc.setdefault(MEMBERS, [])
    if append:
        if field:
            raise ChangeError("unknown_path", "anggota[+] takes a whole member", path)
        member = _member_change(value, len(members))
        if member is None:
            raise ChangeError("invalid_value", "anggota[+] needs a member", path)
        members.append(member)
        return _member_path(members, len(members) - 1), None, member
    i = _find_member(members, index, nik, path)
    if field:
        conv = _MEMBER_FIELD_CONVERTERS.get(field)
        if conv is None:
            raise ChangeError("unknown_path", "no such member field", path)
        if i is None:
            raise ChangeError("member_not_found", "no member matches", path)
        new = _convert(conv, value, path)
        old = members[i].get(field)
        if old == new:
            return None
        audit = f"{_member_path(members, i)}.{field}"
        members[i][field] = new
        return audit, old, new
    member = _member_change(value, i if i is not None else len(members))
    if member is not None and nik is not None and member["nik"] is None:
        member["nik"] = nik
    if i is None:
        if member is None:
            raise ChangeError("member_not_found", "no member matches", path)
        members.append(member)
        return _member_path(members, len(members) - 1), None, member
    old = members[i]
    if old == member:
        return None
    audit = _member_path(members, i)
    if member is None:
        del members[i]
    else:
        members[i] = member
    return audit, old, member


def _member_change(value, index: int) -> dict | None:
    if value is None:
        return None
    try:
        return normalize_member(value, index, strict=True)
    except InvalidValue as exc:  # exc.path names the member field, by position
        raise ChangeError("invalid_value", "the member does not fit", exc.path) from None


def _member_path(members: list[dict], i: int) -> str:
    return f"{MEMBERS}[{_member_keys(members)[i]}]"


_MEMBER_NIK_PATH = re.compile(r"^anggota\[[^\]]+\]\.nik$")


def apply_order(changes: dict[str, object]) -> dict[str, object]:
    """``changes`` in an order ``apply_changes`` can take them: family fields, member fields,
    member NIKs (other paths name members by their old NIK), removals (positional ones from
    the highest index), then additions. For changes read back from JSON (JSONB keeps no key
    order)."""
    def rank(item):
        path, value = item
        if not path.startswith("anggota"):
            return (0, path)
        if "]." in path:
            return (2 if _MEMBER_NIK_PATH.match(path) else 1, path)
        if value is None:
            index = re.match(r"^anggota\[(\d+)\]$", path)
            return (3, -int(index.group(1)) if index else 0, path)
        return (4, path)
    return dict(sorted(changes.items(), key=rank))


# --- the verified record ----------------------------------------------------------------------


def _copy_doc(doc: dict) -> dict:
    """A deep copy of a record; records are JSON, and a JSON round trip by orjson copies one
    ten times faster than ``copy.deepcopy``."""
    try:
        return orjson.loads(orjson.dumps(doc))
    except TypeError:
        return copy.deepcopy(doc)


@dataclasses.dataclass
class StagedVersion:
    """A new version of a verified record, worked out in memory; ``write_versions`` stores it."""

    household_id: str
    version: int
    source: str
    actor_id: int | None
    visit_uuid: str | None
    note: str | None
    registry_version: int | None
    doc: dict
    audit: list[tuple[str, object, object]]
    created_at: dt.datetime


def stage_changes(
    record: VerifiedRecord,
    changes: dict[str, object],
    *,
    source: str,
    actor_id: int | None,
    visit_uuid: str | None = None,
    note: str | None = None,
    always_version: bool = False,
    now: dt.datetime | None = None,
) -> StagedVersion | None:
    """Apply ``changes`` to ``record`` in memory (its doc, version and flags: an ORM record
    is flushed with the session, the worker writes its own) and return the version to write,
    or None when nothing changes (see ``apply_changes``)."""
    if not source:
        raise ChangeError("invalid_source", "a change needs a source")
    doc = _copy_doc(record.doc)
    audit = [entry for path, value in changes.items() if (entry := apply_path(doc, path, value))]
    if not audit and not always_version:
        return None
    now = now or utcnow()
    staged = StagedVersion(record.household_id, record.version + 1, source, actor_id,
                           visit_uuid, note, record.registry_version, doc, audit, now)
    record.doc = doc
    record.version = staged.version
    record.updated_at = now
    if audit and source != REGISTRY_SOURCE:
        record.local_changes = True  # (a version that changed nothing keeps following DTSEN)
    return staged


def write_versions(session: Session, staged: list[StagedVersion]) -> None:
    """Insert staged versions and their audit rows: two statements, however many versions."""
    if not staged:
        return
    conn = session.connection()
    versions, changes = VerifiedVersion.__table__, VerifiedChange.__table__
    ids = conn.execute(
        insert(versions).returning(versions.c.id, sort_by_parameter_order=True),
        [{"household_id": v.household_id, "version": v.version, "source": v.source,
          "actor_id": v.actor_id, "visit_uuid": v.visit_uuid, "note": v.note,
          "created_at": v.created_at, "registry_version": v.registry_version, "doc": v.doc}
         for v in staged]).scalars().all()
    rows = [{"version_id": vid, "household_id": v.household_id, "path": path,
             "old_value": old, "new_value": new, "created_at": v.created_at}
            for vid, v in zip(ids, staged, strict=True) for path, old, new in v.audit]
    if rows:
        conn.execute(insert(changes), rows)


def apply_changes(
    session: Session,
    household_id: str,
    changes: dict[str, object],
    *,
    source: str,
    actor_id: int | None,
    visit_uuid: str | None = None,
    note: str | None = None,
    expected_version: int | None = None,
    always_version: bool = False,
) -> int:
    """Apply field changes to a family's verified record as one new version; return its number.

    Paths are applied in order (see the module docstring). Values are typed like the extract;
    a change equal to the current value is skipped, and when nothing changes no version is
    written and the current version is returned. Any source but ``registry_import`` marks the
    record as locally changed, so later registry versions no longer overwrite it. Runs in the
    caller's transaction (wrap it in ``write_transaction``); the record is locked on PostgreSQL.
    ``expected_version``, when given, must be the current version (optimistic concurrency).
    ``always_version`` writes a version even when nothing changes (a decision that keeps the
    record still stands in its history, with its note). The reconciliation worker does the
    same for a batch of visits with ``stage_changes`` and ``write_versions``.
    Raises ChangeError (``household_not_found``, ``version_mismatch``, ``unknown_path``,
    ``invalid_value``, ``member_not_found``, ``member_ambiguous``, ``read_only``,
    ``invalid_source``).
    """
    record = session.scalars(
        select(VerifiedRecord)
        .where(VerifiedRecord.household_id == household_id)
        .with_for_update()
    ).one_or_none()
    if record is None:
        raise ChangeError("household_not_found", "no verified record for this household")
    if expected_version is not None and record.version != expected_version:
        raise ChangeError("version_mismatch", "the verified record has moved on")
    staged = stage_changes(record, changes, source=source, actor_id=actor_id,
                           visit_uuid=visit_uuid, note=note, always_version=always_version)
    if staged is None:
        return record.version
    write_versions(session, [staged])
    session.flush()
    # The assigned phone gets the new prefill at its next pull, committed with this change.
    feed.household_changed(session, [household_id])
    return staged.version


def household_history(session: Session, household_id: str) -> list[dict]:
    """Registry versions and verified versions of a family, oldest first.

    Each entry has ``at`` and ``layer`` (``registry`` or ``verified``). Registry entries carry
    ``version``, ``kind``, ``import_id``, ``import_label``, ``changed_fields`` and ``snapshot``;
    verified entries carry ``version``, ``source``, ``actor_id``, ``visit_uuid``, ``note``,
    ``import_id``, ``registry_version`` and ``changes`` (``path``, ``old``, ``new``).
    """
    events = []
    rows = session.execute(
        select(KeluargaVersion, Import.label)
        .join(Import, Import.id == KeluargaVersion.import_id)
        .where(KeluargaVersion.keluarga_id == household_id)
    )
    for v, label in rows:
        events.append({
            "at": v.created_at, "layer": "registry", "version": v.version, "kind": v.kind,
            "import_id": v.import_id, "import_label": label, "content_hash": v.content_hash,
            "changed_fields": v.changed_fields, "snapshot": v.snapshot,
        })
    changes: dict[int, list[dict]] = {}
    for c in session.scalars(
        select(VerifiedChange)
        .where(VerifiedChange.household_id == household_id)
        .order_by(VerifiedChange.id)
    ):
        changes.setdefault(c.version_id, []).append(
            {"path": c.path, "old": c.old_value, "new": c.new_value}
        )
    for v in session.scalars(
        select(VerifiedVersion).where(VerifiedVersion.household_id == household_id)
    ):
        events.append({
            "at": v.created_at, "layer": "verified", "version": v.version, "source": v.source,
            "actor_id": v.actor_id, "visit_uuid": v.visit_uuid, "note": v.note,
            "import_id": v.import_id, "registry_version": v.registry_version,
            "changes": changes.get(v.id, []),
        })
    # A registry version comes before the verified version it caused (same import, same time).
    events.sort(key=lambda e: (e["at"], e["layer"] != "registry", e["version"]))
    return events
