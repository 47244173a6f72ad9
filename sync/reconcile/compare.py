"""Comparing a visit with the verified record: values, members, and the three-way outcome.

Pure functions on plain dicts (records in the extract's shape, see ``sync.registry``; visit
answers as ``forms.validate_visit`` cleans them). Nothing here touches a database.

* ``values_equal(path, a, b, config)``: equality with per-path numeric tolerances, normalised
  text, fuzzy names;
* ``match_members(record_members, visit_members, config)``: NIK first, then name + birth date;
* ``verifies_map(form)``: answer path -> record path, read from a form definition;
* ``three_way(base, current, visit_answers, verifies, config)``: per field, confirmed /
  proposed / concurrent_update (hard or soft), with change paths ``sync.registry.apply_path``
  accepts, and ``changes_to_apply`` for the auto-accept fields.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from sync.models.registry import FAMILY_FIELDS, MEMBER_FIELDS
from sync.reconcile.config import DEFAULT, Config

MEMBERS = "anggota"
PRESENCE = "anggota[]"  # generic path of a member's presence (added / removed)

# Python type of every record field, by generic path (``anggota[].nama`` for members).
FIELD_TYPES: dict[str, type] = {path: typ for path, _col, typ in FAMILY_FIELDS}
FIELD_TYPES.update({f"{MEMBERS}[].{key}": typ for key, _col, typ in MEMBER_FIELDS})
FAMILY_ORDER: dict[str, int] = {path: i for i, (path, _c, _t) in enumerate(FAMILY_FIELDS)}
MEMBER_KEYS: list[str] = [key for key, _col, _typ in MEMBER_FIELDS]
# A member's NIK is changed last, so that earlier paths naming it by NIK still find it.
MEMBER_ORDER: dict[str, int] = {
    key: (len(MEMBER_KEYS) if key == "nik" else i) for i, key in enumerate(MEMBER_KEYS)
}
READ_ONLY = frozenset({"id_keluarga"})

CONFIRMED = "confirmed"
PROPOSED = "proposed"
CONCURRENT = "concurrent_update"

_MEMBER_SEL = re.compile(r"^anggota\[[^\]]*\]")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_MISSING = object()


def generic_path(path: str) -> str:
    """``anggota[NIK=3173...].nama`` and ``anggota[2].nama`` -> ``anggota[].nama``."""
    if "[" not in path:
        return path
    return _MEMBER_SEL.sub("anggota[]", path)


# --- values -------------------------------------------------------------------------------


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or v == [] or v == {}


def normalise_text(s: str) -> str:
    """NFKC, case-folded, whitespace collapsed and stripped."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", s).casefold()).strip()


def normalise_name(s: str) -> str:
    """Letters and digits only: diacritics removed, case folded, no spaces or punctuation."""
    return "".join(name_tokens(s))


def name_tokens(s: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", str(s))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return [t for t in _NOT_ALNUM.split(plain) if t]


def name_similarity(a, b) -> float:
    """0-100: the better of the ratio without spaces and the token-sort ratio (word order)."""
    ta, tb = name_tokens(a), name_tokens(b)
    if not ta or not tb:
        return 100.0 if ta == tb else 0.0
    joined = fuzz.ratio("".join(ta), "".join(tb))
    return max(joined, fuzz.token_sort_ratio(" ".join(ta), " ".join(tb)))


def _number(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
        return int(f) if f.is_integer() else f
    return None


_TRUE = {"true", "1", "ya", "y", "yes", "t"}
_FALSE = {"false", "0", "tidak", "n", "no", "f"}


def _boolean(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        low = v.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return None


def normalise_value(path: str, v, config: Config = DEFAULT):
    """The comparable form of a value at ``path`` (generic or concrete); blanks become None."""
    if _blank(v):
        return None
    g = generic_path(path)
    typ = FIELD_TYPES.get(g)
    if typ is bool:
        b = _boolean(v)
        return v if b is None else b
    if typ in (int, float):
        n = _number(v)
        return normalise_text(v) if n is None and isinstance(v, str) else (v if n is None else n)
    if typ is not None and typ.__name__ == "date":
        return str(v).strip()[:10]
    if isinstance(v, str | int) and not isinstance(v, bool) and typ is str:
        text = normalise_text(str(v))
        if g in config.numeric_text_paths and text.isdigit():
            return int(text)
        return text
    if isinstance(v, str):
        return normalise_text(v)
    return v


def values_equal(path: str, a, b, config: Config = DEFAULT) -> bool:
    """Whether two values of the field at ``path`` are the same, as reconciliation sees it.

    Blanks (None, "", []) are equal to each other only. Numbers use the path's tolerance
    (``config.numeric_tolerance``), names (``config.name_paths``) rapidfuzz similarity against
    ``config.name_threshold`` ignoring case, spaces and diacritics, text is compared
    normalised (NFKC, case-folded, spaces collapsed; zero-padded for ``numeric_text_paths``),
    booleans and codes by value (``"2"`` is ``2``).
    """
    t = type(a)
    if t is type(b) and (t is str or t is int or t is bool or t is float) and a == b:
        return True  # the same plain value (not NaN) compares equal on every path
    g = generic_path(path)
    if g in config.name_paths and not _blank(a) and not _blank(b):
        return name_similarity(a, b) >= config.name_threshold
    x, y = normalise_value(g, a, config), normalise_value(g, b, config)
    if x is None or y is None:
        return x is None and y is None
    nx, ny = _number(x), _number(y)
    if nx is not None and ny is not None and not isinstance(x, str) and not isinstance(y, str):
        rel, absolute = config.numeric_tolerance.get(g, (0.0, 0.0))
        return abs(nx - ny) <= max(rel * max(abs(nx), abs(ny)), absolute)
    return x == y


def to_record_value(path: str, v):
    """A visit value typed for the record field at ``path`` (what ``apply_path`` is given)."""
    if _blank(v):
        return None
    typ = FIELD_TYPES.get(generic_path(path))
    if typ is int:
        n = _number(v)
        return int(round(n)) if n is not None else v
    if typ is float:
        n = _number(v)
        return float(n) if n is not None else v
    if typ is bool:
        b = _boolean(v)
        return v if b is None else b
    if typ is str and isinstance(v, str):
        return v.strip()
    return v


def member_for_record(entry: Mapping, member_fields: Mapping[str, str]) -> dict:
    """A visit member entry as a record member: only record fields, typed."""
    out = {}
    for answer_key, key in member_fields.items():
        value = _get(entry, answer_key)
        if value is not _MISSING and key in MEMBER_ORDER:
            out[key] = to_record_value(f"{PRESENCE}.{key}", value)
    return out


# --- members ------------------------------------------------------------------------------


def _nik(m: Mapping) -> str | None:
    v = m.get("nik") if isinstance(m, Mapping) else None
    if _blank(v):
        return None
    return str(v).strip()


def _birth(m: Mapping) -> str | None:
    v = m.get("tanggal_lahir") if isinstance(m, Mapping) else None
    return None if _blank(v) else str(v).strip()[:10]


def _content_key(m) -> str:
    return json.dumps(m, sort_keys=True, ensure_ascii=False, default=str)


def match_members(
    record_members: Sequence[Mapping],
    visit_members: Sequence[Mapping],
    config: Config = DEFAULT,
) -> list[tuple[int | None, int | None]]:
    """Pair record members with visit members: by NIK, then by name and birth date.

    1. A NIK held by exactly one record member and exactly one visit member pairs them.
    2. The rest pair when their birth dates are equal and their names are at least
       ``config.member_name_threshold`` similar (``name_similarity``), best score first.
    Returns ``(record_index, visit_index)`` pairs, then ``(record_index, None)`` for record
    members the visit does not list, ordered by record index, then ``(None, visit_index)`` for
    new members by visit index. The pairing does not depend on the visit members' order.
    """
    rec_by_nik: dict[str, list[int]] = {}
    vis_by_nik: dict[str, list[int]] = {}
    for i, m in enumerate(record_members):
        if (n := _nik(m)) is not None:
            rec_by_nik.setdefault(n, []).append(i)
    for j, m in enumerate(visit_members):
        if (n := _nik(m)) is not None:
            vis_by_nik.setdefault(n, []).append(j)
    pairs: dict[int, int] = {}
    for nik, rs in rec_by_nik.items():
        vs = vis_by_nik.get(nik, [])
        if len(rs) == 1 and len(vs) == 1:
            pairs[rs[0]] = vs[0]
    used_v = set(pairs.values())
    candidates = []
    for i, rm in enumerate(record_members):
        if i in pairs or (birth := _birth(rm)) is None:
            continue
        for j, vm in enumerate(visit_members):
            if j in used_v or _birth(vm) != birth:
                continue
            score = name_similarity(rm.get("nama") or "", vm.get("nama") or "")
            if score >= config.member_name_threshold:
                candidates.append((-score, i, _content_key(vm), j))
    candidates.sort(key=lambda c: c[:3])
    for _s, i, _k, j in candidates:
        if i not in pairs and j not in used_v:
            pairs[i] = j
            used_v.add(j)
    out: list[tuple[int | None, int | None]] = [
        (i, pairs.get(i)) for i in range(len(record_members))
    ]
    out += [(None, j) for j in range(len(visit_members)) if j not in used_v]
    return out


def member_selector(members: Sequence[Mapping], i: int) -> str:
    """``anggota[NIK=...]`` when the member's NIK is unique there, else ``anggota[i]``."""
    nik = _nik(members[i])
    if nik and "]" not in nik and sum(1 for m in members if _nik(m) == nik) == 1:
        return f"{MEMBERS}[NIK={nik}]"
    return f"{MEMBERS}[{i}]"


def member_selectors(members: Sequence[Mapping]) -> list[str]:
    """``member_selector`` of every member, counting the NIKs once."""
    niks = [_nik(m) for m in members]
    counts: dict[str | None, int] = {}
    for n in niks:
        counts[n] = counts.get(n, 0) + 1
    return [f"{MEMBERS}[NIK={n}]" if n and "]" not in n and counts[n] == 1 else f"{MEMBERS}[{i}]"
            for i, n in enumerate(niks)]


def _self_pairs(members: Sequence[Mapping]) -> dict[int, int] | None:
    """``match_members(members, members)`` when every member has a NIK of its own (each pairs
    with itself by NIK); None otherwise."""
    niks = [_nik(m) for m in members]
    if None in niks or len(set(niks)) != len(niks):
        return None
    return {i: i for i in range(len(members))}


# --- the verifies map ---------------------------------------------------------------------


def verifies_map(form: Mapping) -> dict[str, str]:
    """Answer path -> record path of every question that ``verifies`` a record field.

    Groups add their name (``rumah.lantai``); the repeat that verifies ``anggota`` maps to
    ``anggota`` and its questions to ``anggota[].<answer path>`` -> ``anggota[].<verifies>``.
    Other repeats are skipped (the record has no other list).
    """
    out: dict[str, str] = {}

    def walk(fields, prefix: str, record_prefix: str | None):
        for f in fields or ():
            name = f.get("name")
            ftype = f.get("type")
            path = f"{prefix}{name}"
            target = f.get("verifies")
            if ftype == "group":
                walk(f.get("fields"), f"{path}.", record_prefix)
            elif ftype == "repeat":
                if record_prefix is None and target == MEMBERS:
                    out[path] = MEMBERS
                    walk(f.get("fields"), f"{path}[].", f"{MEMBERS}[].")
            elif target:
                out[path] = f"{record_prefix or ''}{target}"

    walk(form.get("fields"), "", None)
    return out


# --- three-way ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldOutcome:
    """One compared field. ``path`` is a change path ``apply_path`` accepts (a member's
    presence is ``anggota[NIK=...]`` with a member dict or None); ``field`` its generic path."""

    path: str
    field: str
    outcome: str                      # confirmed | proposed | concurrent_update
    severity: str | None              # hard | soft for concurrent_update, else None
    base_value: Any
    current_value: Any
    visit_value: Any                  # typed for the record (what would be applied)
    auto_accept: bool = False


@dataclass(frozen=True)
class Comparison:
    outcomes: tuple[FieldOutcome, ...]
    changes_to_apply: dict[str, Any]
    skipped: tuple[str, ...] = field(default=())  # verifies targets the record does not have

    def by_outcome(self, outcome: str) -> list[FieldOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    @property
    def proposed_changes(self) -> dict[str, Any]:
        """Every change the visit proposes (auto-accepted or not), path -> value."""
        return {o.path: o.visit_value for o in self.outcomes if o.outcome == PROPOSED}

    @property
    def changed_fields(self) -> list[str]:
        """Paths the visit would change: proposed and concurrent (for ``upstream_changed``)."""
        return [o.path for o in self.outcomes if o.outcome != CONFIRMED]

    def drafts(self, config: Config = DEFAULT) -> list[dict]:
        """Conflict drafts: proposed changes not auto-accepted (``field_mismatch``) and
        ``concurrent_update``s. Messages hold no values (they may be names or NIKs)."""
        out = []
        for o in self.outcomes:
            if o.outcome == PROPOSED and not o.auto_accept:
                kind, severity = "field_mismatch", config.severity.get("field_mismatch", "soft")
                message = f"the visit differs from the verified record at {o.field}"
            elif o.outcome == CONCURRENT:
                kind, severity = CONCURRENT, o.severity
                message = (f"{o.field} changed since the visit's base version and the visit "
                           + ("changed it too" if o.severity == "hard" else "did not see it"))
            else:
                continue
            out.append({"kind": kind, "severity": severity, "field": o.path,
                        "registry_value": o.current_value, "visit_value": o.visit_value,
                        "base_value": o.base_value, "message": message, "detail": {}})
        return out


_PARTS: dict[str, tuple[str, ...]] = {}


def _get(d, dotted: str):
    parts = _PARTS.get(dotted)
    if parts is None:
        parts = _PARTS[dotted] = tuple(dotted.split("."))
    cur = d
    for part in parts:
        if type(cur) is not dict and not isinstance(cur, Mapping) or part not in cur:
            return _MISSING
        cur = cur[part]
    return _MISSING if _blank(cur) else cur


def _decide(g: str, b, c, v, config: Config) -> tuple[str, str | None]:
    if values_equal(g, v, c, config):
        return CONFIRMED, None
    if values_equal(g, b, c, config):
        return PROPOSED, None
    return CONCURRENT, ("soft" if values_equal(g, v, b, config) else "hard")


def _members_equal(a: Mapping, b: Mapping, keys, config: Config) -> bool:
    return all(values_equal(f"{PRESENCE}.{k}", a.get(k), b.get(k), config) for k in keys)


def three_way(
    base: Mapping | None,
    current: Mapping,
    visit_answers: Mapping,
    verifies: Mapping,
    config: Config = DEFAULT,
) -> Comparison:
    """Compare a visit with the verified record at its base version and now.

    ``verifies`` is a map answer path -> record path (``verifies_map``) or a form definition.
    ``base`` None means the visit was made on the current version. Per field: visit equal to
    current is *confirmed*; base equal to current and the visit different is *proposed*;
    otherwise *concurrent_update*, hard when both sides changed the field (visit != base),
    soft when only the record did. Questions the visit did not answer (not relevant, family not
    found) are not compared. Members are matched with ``match_members``; a member the visit
    marks gone (``config.member_gone_codes``) or does not list is a proposed removal
    (``anggota[...]`` = None), one unknown to the record a proposed addition.
    """
    if isinstance(verifies.get("fields"), list):
        verifies = verifies_map(verifies)
    if base is None:
        base = current
    outcomes: list[FieldOutcome] = []
    skipped: list[str] = []

    def add(path, g, b, c, v, decision):
        outcome, severity = decision
        outcomes.append(FieldOutcome(path, g, outcome, severity, b, c, v,
                                     outcome == PROPOSED and g in config.auto_accept))

    # Family fields, in the record's order.
    family = []
    member_fields: dict[str, str] = {}
    repeat_key = None
    for answer_path, record_path in verifies.items():
        if record_path == MEMBERS:
            repeat_key = answer_path
        elif record_path.startswith(f"{MEMBERS}[]."):
            key = record_path[len(MEMBERS) + 3:]
            sub = answer_path.split("[].", 1)[1] if "[]." in answer_path else answer_path
            if key in MEMBER_ORDER:
                member_fields[sub] = key
            else:
                skipped.append(record_path)
        elif record_path in FAMILY_ORDER and record_path not in READ_ONLY:
            family.append((FAMILY_ORDER[record_path], record_path, answer_path))
        else:
            skipped.append(record_path)
    for _o, path, answer_path in sorted(family):
        v = _get(visit_answers, answer_path)
        if v is _MISSING:
            continue
        c = _get(current, path)
        b = c if base is current else _get(base, path)
        b = None if b is _MISSING else b
        c = None if c is _MISSING else c
        v = to_record_value(path, v)
        add(path, path, b, c, v, _decide(path, b, c, v, config))

    entries = visit_answers.get(repeat_key) if repeat_key else None
    if isinstance(entries, list) and member_fields:
        outcomes += _members(base, current, [e if isinstance(e, Mapping) else {}
                                             for e in entries], member_fields, config)

    changes = {}
    for o in outcomes:
        if o.auto_accept and o.path not in changes:
            changes[o.path] = o.visit_value
    return Comparison(tuple(outcomes), changes, tuple(sorted(set(skipped))))


def _members(base, current, entries, member_fields, config) -> list[FieldOutcome]:
    bm = [m for m in (base.get(MEMBERS) or []) if isinstance(m, Mapping)]
    cm = [m for m in (current.get(MEMBERS) or []) if isinstance(m, Mapping)]
    vm = [member_for_record(e, member_fields) for e in entries]
    status = [e.get("status_keberadaan") for e in entries]
    # Matched with their status, so that two entries alike but for it pair in a fixed way.
    vm_status = [dict(m, _status=s) for m, s in zip(vm, status, strict=True)]
    keys = sorted(set(member_fields.values()), key=MEMBER_ORDER.__getitem__)

    c_to_b = _self_pairs(cm) if bm == cm else None
    if c_to_b is None:
        c_to_b = {c: b for b, c in match_members(bm, cm, config)
                  if b is not None and c is not None}
    cv_pairs = match_members(cm, vm_status, config)
    c_to_v = {c: v for c, v in cv_pairs if c is not None}
    visit_only = [v for c, v in cv_pairs if c is None]
    base_only = [b for b in range(len(bm)) if b not in c_to_b.values()]
    v_to_b = {}
    if visit_only and base_only:
        for bi, vi in match_members([bm[i] for i in base_only], [vm_status[j] for j in visit_only],
                                    config):
            if bi is not None and vi is not None:
                v_to_b[visit_only[vi]] = base_only[bi]

    def gone(j):
        return status[j] in config.member_gone_codes

    def mk(path, g, b, c, v, decision):
        outcome, severity = decision
        return FieldOutcome(path, g, outcome, severity, b, c, v,
                            outcome == PROPOSED and g in config.auto_accept)

    fields_out, removals, additions = [], [], []
    selectors = member_selectors(cm)
    for ci, c in enumerate(cm):
        sel = selectors[ci]
        b = bm[c_to_b[ci]] if ci in c_to_b else None
        vj = c_to_v.get(ci)
        if vj is None or gone(vj):
            # The visit removes the member; base had it: proposed, else concurrent (soft: the
            # visit did not list a member added after its base).
            decision = (PROPOSED, None) if b is not None else (CONCURRENT, "soft")
            removals.append((0 if sel.startswith(f"{MEMBERS}[NIK=") else 1, -ci,
                             mk(sel, PRESENCE, b, dict(c), None, decision)))
            continue
        v = vm[vj]
        for key in keys:
            if key not in v:
                continue
            g = f"{PRESENCE}.{key}"
            bv = b.get(key) if b is not None else None
            fields_out.append(mk(f"{sel}.{key}", g, bv, c.get(key), v[key],
                                 _decide(g, bv, c.get(key), v[key], config)))
    seen_niks = {_nik(m) for m in cm}
    for vj in visit_only:
        v = vm[vj]
        b = bm[v_to_b[vj]] if vj in v_to_b else None
        nik = _nik(v)
        sel = (f"{MEMBERS}[NIK={nik}]" if nik and "]" not in nik and nik not in seen_niks
               else f"{MEMBERS}[+]")
        if gone(vj):
            # Not in the record now and gone per the visit: they agree.
            additions.append(mk(sel, PRESENCE, b and dict(b), None, None, (CONFIRMED, None)))
            continue
        if b is None:
            decision = (PROPOSED, None)
        else:  # removed from the record since the base, kept by the visit
            decision = (CONCURRENT, "soft" if _members_equal(v, b, keys, config) else "hard")
        additions.append(mk(sel, PRESENCE, b and dict(b), None, dict(v), decision))
    additions.sort(key=lambda o: (o.path, _content_key(o.visit_value)))
    removals.sort(key=lambda r: r[:2])
    return fields_out + [r[2] for r in removals] + additions
