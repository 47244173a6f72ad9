"""Comparing a visit with the verified record: values, members, and the three-way outcome.

Pure functions on plain dicts (records in the extract's shape, see ``sync.registry``; visit
answers as ``forms.validate_visit`` cleans them). Nothing here touches a database.

* ``values_equal(path, a, b, config)``: equality with per-path numeric tolerances, normalised
  text, fuzzy names;
* ``match_members(record_members, visit_members, config)``: NIK first, then name + birth date;
* ``verifies_map(form)``: answer path -> record path, read from a form definition;
* ``three_way(base, current, visit_answers, verifies, config)``: per field, confirmed /
  filled / proposed / concurrent_update (hard or soft), with change paths
  ``sync.registry.apply_path`` accepts, and ``changes_to_apply`` for the fills and the
  auto-accept fields.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

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
FILLED = "filled"  # the record holds the field blank (at the base too), the visit gives a value
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
    if v is None:
        return True
    t = type(v)
    if t is str:
        return not v.strip()
    if t is int or t is bool or t is float:  # the common cases, without the == [] / {} tests
        return False
    return (isinstance(v, str) and not v.strip()) or v == [] or v == {}


def normalise_text(s: str) -> str:
    """NFKC, case-folded, whitespace collapsed and stripped."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", s).casefold()).strip()


def normalise_name(s: str) -> str:
    """Letters and digits only: diacritics removed, case folded, no spaces or punctuation."""
    return "".join(name_tokens(s))


def name_tokens(s: str) -> list[str]:
    s = str(s)
    if s.isascii():  # NFKD leaves ASCII alone and it has no combining marks
        plain = s.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", s)
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
    return _normalise(generic_path(path), v, config)


def _normalise(g: str, v, config: Config):
    """``normalise_value`` for a path already generic."""
    if _blank(v):
        return None
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


_PLAIN = frozenset({str, int, bool, float})


def values_equal(path: str, a, b, config: Config = DEFAULT) -> bool:
    """Whether two values of the field at ``path`` are the same, as reconciliation sees it.

    Blanks (None, "", []) are equal to each other only. Numbers use the path's tolerance
    (``config.numeric_tolerance``), names (``config.name_paths``) rapidfuzz similarity against
    ``config.name_threshold`` ignoring case, spaces and diacritics, text is compared
    normalised (NFKC, case-folded, spaces collapsed; zero-padded for ``numeric_text_paths``),
    booleans and codes by value (``"2"`` is ``2``).
    """
    t = type(a)
    if t is type(b) and t in _PLAIN and a == b:
        return True  # the same plain value (not NaN) compares equal on every path
    return _values_equal(generic_path(path), a, b, config)


def _values_equal(g: str, a, b, config: Config) -> bool:
    """``values_equal`` for a path already generic (three_way knows it: no regex per call)."""
    t = type(a)
    if t is type(b) and t in _PLAIN and a == b:
        return True
    if g in config.name_paths and not _blank(a) and not _blank(b):
        return name_similarity(a, b) >= config.name_threshold
    x, y = _normalise(g, a, config), _normalise(g, b, config)
    if x is None or y is None:
        return x is None and y is None
    nx, ny = _number(x), _number(y)
    if nx is not None and ny is not None and not isinstance(x, str) and not isinstance(y, str):
        rel, absolute = config.numeric_tolerance.get(g, (0.0, 0.0))
        return abs(nx - ny) <= max(rel * max(abs(nx), abs(ny)), absolute)
    return x == y


# Typing a (non-blank) visit value for the record, one function per field type; the exact
# plain type returns at once (``int(round(3))`` is ``3``, ``float(2.5)`` is ``2.5``).
def _as_int(v):
    if type(v) is int:
        return v
    n = _number(v)
    return int(round(n)) if n is not None else v


def _as_float(v):
    if type(v) is float:
        return v
    n = _number(v)
    return float(n) if n is not None else v


def _as_bool(v):
    if type(v) is bool:
        return v
    b = _boolean(v)
    return v if b is None else b


def _as_str(v):
    return v.strip() if isinstance(v, str) else v


def _as_is(v):
    return v


_TYPED: dict[type, Callable[[Any], Any]] = {int: _as_int, float: _as_float, bool: _as_bool,
                                           str: _as_str}
# Generic path -> the function typing a non-blank visit value for that record field.
RECORD_TYPERS: dict[str, Callable[[Any], Any]] = {
    g: _TYPED.get(typ, _as_is) for g, typ in FIELD_TYPES.items()
}


def record_typer(generic: str) -> Callable[[Any], Any]:
    """The function ``to_record_value`` applies to a non-blank value at a generic path."""
    return RECORD_TYPERS.get(generic, _as_is)


def to_record_value(path: str, v):
    """A visit value typed for the record field at ``path`` (what ``apply_path`` is given)."""
    if _blank(v):
        return None
    return RECORD_TYPERS.get(generic_path(path), _as_is)(v)


_PARTS: dict[str, tuple[str, ...]] = {}


def _parts(dotted: str) -> tuple[str, ...]:
    parts = _PARTS.get(dotted)
    if parts is None:
        parts = _PARTS[dotted] = tuple(dotted.split("."))
    return parts


def _node(d, parts: tuple[str, ...]):
    """The value at ``parts`` of nested mappings, blank or not; ``_MISSING`` when absent."""
    cur = d
    for part in parts:
        if type(cur) is dict:
            cur = cur.get(part, _MISSING)
            if cur is _MISSING:
                return _MISSING
        elif isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _leaf(node, key: str):
    """``node[key]`` when ``node`` is a mapping holding a non-blank value there, else
    ``_MISSING``."""
    if type(node) is dict:
        v = node.get(key)
    elif isinstance(node, Mapping) and key in node:
        v = node[key]
    else:
        return _MISSING
    if v is None:
        return _MISSING
    t = type(v)
    if t is int or t is bool or t is float:
        return v
    return _MISSING if _blank(v) else v


_NUMBERS = frozenset({int, bool, float})  # never blank


def _leaves(node, keys: tuple[str, ...]) -> list:
    """``[_leaf(node, k) for k in keys]``, one call for a run of fields."""
    if type(node) is not dict:
        return [_leaf(node, k) for k in keys]
    out = []
    for k in keys:
        v = node.get(k)
        if v is None or (type(v) not in _NUMBERS and _blank(v)):
            v = _MISSING
        out.append(v)
    return out


def _get(d, parts: tuple[str, ...]):
    """The value at ``parts`` (``_parts`` of a dotted path) of nested mappings; ``_MISSING``
    when absent or blank."""
    return _leaf(_node(d, parts[:-1]), parts[-1])


_MEMBER_TYPERS: dict[str, Callable[[Any], Any]] = {
    key: RECORD_TYPERS.get(f"{PRESENCE}.{key}", _as_is) for key in MEMBER_KEYS
}


_MEMBER_TEXT = frozenset(k for k, _col, typ in MEMBER_FIELDS if typ is str)
# Member key -> its type when a number (values of exactly that type are typed already).
_MEMBER_EXACT = {k: typ for k, _col, typ in MEMBER_FIELDS if typ in (int, float, bool)}
# Member key -> the type of answers set as they are (text: stripped), what most answers are.
_MEMBER_KEEP = {**_MEMBER_EXACT, **dict.fromkeys(_MEMBER_TEXT, str)}


def overlay_member(member: dict, entry: Mapping) -> dict:
    """``member`` with each answer of a visit entry that is not None or "" set over it,
    typed as ``to_record_value`` types it (other keys kept as they are); returns ``member``."""
    for k, val in entry.items():
        v = overlaid_value(k, val, _MISSING)
        if v is not _MISSING:
            member[k] = v
    return member


def overlaid_value(key: str, val, default):
    """What ``overlay_member`` leaves at ``key`` of a member given the entry's answer ``val``
    there; ``default`` (the member's own value) when it leaves the member's."""
    t = type(val)
    if t is _MEMBER_KEEP.get(key):  # already of the field's type: the typer would keep it
        if t is str:
            return (val.strip() or None) if val else default
        return val
    if t is str:  # blank when it strips to nothing
        if not val:
            return default
        if key in _MEMBER_TEXT:
            return val.strip() or None
        return _MEMBER_TYPERS.get(key, _as_is)(val) if val.strip() else None
    if t in _NUMBERS:  # never blank; kept as is when already of the field's type
        typed = _MEMBER_TYPERS.get(key)
        return val if typed is None or t is _MEMBER_EXACT.get(key) else typed(val)
    if val is not None and val != "":
        return None if _blank(val) else _MEMBER_TYPERS.get(key, _as_is)(val)
    return default


def member_for_record(entry: Mapping, member_fields: Mapping[str, str]) -> dict:
    """A visit member entry as a record member: only record fields, typed."""
    return _member_for_record(entry, _member_spec(member_fields))


def _member_spec(member_fields: Mapping[str, str]) -> tuple:
    """(parent parts, last part, record key, typer, exact type) of each answer key naming a
    member field; the exact type (int, float, bool, str or None) is the one whose values the
    typer keeps (text: stripped)."""
    spec = []
    for answer_key, key in member_fields.items():
        if key in MEMBER_ORDER:
            parts = _parts(answer_key)
            spec.append((parts[:-1], parts[-1], key, _MEMBER_TYPERS[key],
                         _EXACT.get(FIELD_TYPES[f"{PRESENCE}.{key}"])))
    return tuple(spec)


# A field's type -> itself when its typer keeps such values as they are (text: stripped).
_EXACT: dict[type, type] = {int: int, float: float, bool: bool, str: str}


def _member_for_record(entry: Mapping, spec: tuple) -> dict:
    out = {}
    plain = type(entry) is dict
    for parent, last, key, typed, exact in spec:
        if plain and not parent:
            value = entry.get(last)
            if value is None:
                continue
            t = type(value)
            if t is exact:  # already of the field's type: the typer would keep it
                if t is str:
                    value = value.strip()
                    if not value:
                        continue
                out[key] = value
                continue
            if t not in _NUMBERS and _blank(value):
                continue
        else:
            value = _leaf(_node(entry, parent) if parent else entry, last)
            if value is _MISSING:
                continue
        out[key] = typed(value)  # blanks are left out: no _blank test again
    return out


# --- members ------------------------------------------------------------------------------


def _nik(m: Mapping) -> str | None:
    v = m.get("nik") if type(m) is dict or isinstance(m, Mapping) else None
    if type(v) is str:  # the usual case: _blank and str() are a strip
        return v.strip() or None
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
       ``config.member_name_threshold`` similar (``name_similarity``), best score first and,
       among equal scores, a visit member with the record member's NIK first, then one not
       gone (``config.member_gone_codes``).
    Returns ``(record_index, visit_index)`` pairs, then ``(record_index, None)`` for record
    members the visit does not list, ordered by record index, then ``(None, visit_index)`` for
    new members by visit index. The pairing does not depend on the visit members' order.
    """
    return _match(record_members, [_nik(m) for m in record_members], visit_members,
                  [_nik(m) for m in visit_members], config)


def _entry_status(m: Mapping):
    """Item 404 of a visit member: ``_status`` as three_way carries it, or the answer."""
    return m.get("_status", m.get("status_keberadaan"))


def _pairs_by_nik(rec_niks, vis_niks) -> list[tuple[int, int]] | None:
    """``_match``'s pairs when every member on both sides has a NIK of their own, the same
    ones (the usual family: step 1 pairs them all and step 2 has nobody left); else None."""
    n_rec = len(rec_niks)
    if rec_niks == vis_niks:  # the same members in the same order, most often
        if None not in rec_niks and len(set(rec_niks)) == n_rec:
            return [(i, i) for i in range(n_rec)]
        return None
    if n_rec == len(vis_niks) and None not in rec_niks and None not in vis_niks:
        pos = {n: j for j, n in enumerate(vis_niks)}
        if len(pos) == n_rec and len(set(rec_niks)) == n_rec and pos.keys() == set(rec_niks):
            return [(i, pos[n]) for i, n in enumerate(rec_niks)]
    return None


def _match(record_members, rec_niks, visit_members, vis_niks, config):
    """``match_members`` given both sides' NIKs (``_nik``), which callers often have."""
    pairs = _pairs_by_nik(rec_niks, vis_niks)
    if pairs is not None:
        return pairs
    rec_by_nik: dict[str, list[int]] = {}
    vis_by_nik: dict[str, list[int]] = {}
    for i, n in enumerate(rec_niks):
        if n is not None:
            rec_by_nik.setdefault(n, []).append(i)
    for j, n in enumerate(vis_niks):
        if n is not None:
            vis_by_nik.setdefault(n, []).append(j)
    pairs: dict[int, int] = {}
    for nik, rs in rec_by_nik.items():
        vs = vis_by_nik.get(nik)
        if vs is not None and len(rs) == 1 and len(vs) == 1:
            pairs[rs[0]] = vs[0]
    used_v = set(pairs.values())
    n_rec, n_vis = len(record_members), len(visit_members)
    if len(pairs) < n_rec and len(used_v) < n_vis:  # else nobody is left to pair by name
        births = [_birth(vm) for vm in visit_members]
        candidates = []
        for i, rm in enumerate(record_members):
            if i in pairs or (birth := _birth(rm)) is None:
                continue
            for j, vm in enumerate(visit_members):
                if j in used_v or births[j] != birth:
                    continue
                score = name_similarity(rm.get("nama") or "", vm.get("nama") or "")
                if score >= config.member_name_threshold:
                    # Among equally good names, one with this member's NIK first (a NIK a
                    # visit lists twice pairs nobody in step 1), then one still present, so
                    # that a visit listing a member both as gone and as present keeps it.
                    other_nik = rec_niks[i] is None or rec_niks[i] != vis_niks[j]
                    gone = _entry_status(vm) in config.member_gone_codes
                    candidates.append((-score, other_nik, gone, i, _content_key(vm), j))
        candidates.sort(key=lambda c: c[:5])
        for _s, _o, _g, i, _k, j in candidates:
            if i not in pairs and j not in used_v:
                pairs[i] = j
                used_v.add(j)
    out: list[tuple[int | None, int | None]] = [(i, pairs.get(i)) for i in range(n_rec)]
    if len(used_v) < n_vis:
        out += [(None, j) for j in range(n_vis) if j not in used_v]
    return out


def member_selector(members: Sequence[Mapping], i: int) -> str:
    """``anggota[NIK=...]`` when the member's NIK is unique there, else ``anggota[i]``."""
    nik = _nik(members[i])
    if nik and "]" not in nik and sum(1 for m in members if _nik(m) == nik) == 1:
        return f"{MEMBERS}[NIK={nik}]"
    return f"{MEMBERS}[{i}]"


def member_selectors(members: Sequence[Mapping]) -> list[str]:
    """``member_selector`` of every member, counting the NIKs once."""
    return _selectors([_nik(m) for m in members])


def _selectors(niks: Sequence[str | None]) -> list[str]:
    """``member_selectors`` given the members' NIKs (``_nik``)."""
    if len(set(niks)) == len(niks):  # each NIK (or None) once: no count needed
        return [f"{MEMBERS}[NIK={n}]" if n and "]" not in n else f"{MEMBERS}[{i}]"
                for i, n in enumerate(niks)]
    counts: dict[str | None, int] = {}
    for n in niks:
        counts[n] = counts.get(n, 0) + 1
    return [f"{MEMBERS}[NIK={n}]" if n and "]" not in n and counts[n] == 1 else f"{MEMBERS}[{i}]"
            for i, n in enumerate(niks)]



# --- the verifies map ---------------------------------------------------------------------


def verifies_map(form: Mapping) -> Mapping[str, str]:
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
    return MappingProxyType(out)  # read-only: three_way finds its plan by the map itself


# --- three-way ----------------------------------------------------------------------------


class FieldOutcome(NamedTuple):
    """One compared field. ``path`` is a change path ``apply_path`` accepts (a member's
    presence is ``anggota[NIK=...]`` with a member dict or None); ``field`` its generic path.

    A named tuple (immutable, like the frozen dataclass it was): ``three_way`` makes dozens a
    visit, and a frozen dataclass's ``__init__`` costs several times a tuple's."""

    path: str
    field: str
    outcome: str                      # confirmed | filled | proposed | concurrent_update
    severity: str | None              # hard | soft for concurrent_update, else None
    base_value: Any
    current_value: Any
    visit_value: Any                  # typed for the record (what would be applied)
    auto_accept: bool = False


_tuple_new = tuple.__new__


def _outcome(path: str, g: str, decision: tuple[str, str | None], b, c, v,
             auto_accept: frozenset[str]) -> FieldOutcome:
    outcome, severity = decision
    return _tuple_new(FieldOutcome, (path, g, outcome, severity, b, c, v,
                                     outcome == PROPOSED and g in auto_accept))


@dataclass(frozen=True)
class Comparison:
    """``entries`` are the outcomes in order, each field confirmed at once as a plain tuple
    (path, field, base, current, visit), the others as ``FieldOutcome``: a visit confirms
    about 70 fields, and a ``FieldOutcome`` each cost a fifth of ``three_way``. ``outcomes``
    makes them all ``FieldOutcome``s when asked."""

    entries: tuple
    changes_to_apply: dict[str, Any]
    skipped: tuple[str, ...] = field(default=())  # verifies targets the record does not have

    @property
    def outcomes(self) -> tuple[FieldOutcome, ...]:
        made = self.__dict__.get("_outcomes")
        if made is None:
            made = tuple(_tuple_new(FieldOutcome, (e[0], e[1], CONFIRMED, None, e[2], e[3],
                                                   e[4], False)) if type(e) is tuple else e
                         for e in self.entries)
            object.__setattr__(self, "_outcomes", made)
        return made

    @property
    def confirmed_paths(self) -> list[str]:
        """The paths of the confirmed outcomes, in order (the worker's comparison record)."""
        return [e[0] for e in self.entries if type(e) is tuple or e.outcome == CONFIRMED]

    def by_outcome(self, outcome: str) -> list[FieldOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    def _unconfirmed(self) -> list[FieldOutcome]:
        """The outcomes not confirmed, in order: most are confirmed, and the worker reads
        ``changed_fields`` and ``drafts`` of each comparison (the outcomes never change)."""
        u = self.__dict__.get("_unconfirmed_outcomes")
        if u is None:
            u = [e for e in self.entries if type(e) is not tuple and e.outcome != CONFIRMED]
            object.__setattr__(self, "_unconfirmed_outcomes", u)
        return u

    @property
    def proposed_changes(self) -> dict[str, Any]:
        """Every change the visit proposes (auto-accepted or not), path -> value."""
        return {o.path: o.visit_value for o in self._unconfirmed() if o.outcome == PROPOSED}

    @property
    def filled_values(self) -> dict[str, Any]:
        """The visit's value of each field the record holds blank (``filled``), path -> value;
        applied as ``changes_to_apply`` when the visit is verified, or on approval."""
        return {o.path: o.visit_value for o in self._unconfirmed() if o.outcome == FILLED}

    @property
    def concurrent_values(self) -> dict[str, Any]:
        """The visit's value of each field that changed on the record since its base."""
        return {o.path: o.visit_value for o in self._unconfirmed() if o.outcome == CONCURRENT}

    @property
    def changed_fields(self) -> list[str]:
        """Paths the visit would change: filled, proposed and concurrent (for
        ``upstream_changed``)."""
        return [o.path for o in self._unconfirmed()]

    def drafts(self, config: Config = DEFAULT) -> list[dict]:
        """Conflict drafts: proposed changes not auto-accepted (``field_mismatch``) and
        ``concurrent_update``s; fills raise none. Messages hold no values (they may be names or
        NIKs)."""
        out = []
        for o in self._unconfirmed():
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


_CONFIRMED = (CONFIRMED, None)
_FILLED = (FILLED, None)
_PROPOSED = (PROPOSED, None)


def _decide(g: str, b, c, v, config: Config) -> tuple[str, str | None]:
    t = type(v)
    if t is type(c) and t in _PLAIN and v == c:
        return _CONFIRMED  # most fields: the visit confirms the record as it is
    if _values_equal(g, v, c, config):
        return _CONFIRMED
    if _values_equal(g, b, c, config):
        # Unchanged since the base. Blank there (``v`` never is): new information, not a
        # disagreement, unless the path's fills are to be reviewed.
        if _blank(c) and g not in config.review_fills:
            return _FILLED
        return _PROPOSED
    return CONCURRENT, ("soft" if _values_equal(g, v, b, config) else "hard")


def _members_equal(a: Mapping, b: Mapping, member_keys, config: Config) -> bool:
    return all(_values_equal(g, a.get(k), b.get(k), config) for k, g in member_keys)


class _Plan(NamedTuple):
    """What ``three_way`` reads of a verifies map."""

    # Family fields in the record's order, in runs sharing the answers' and the record's parent
    # (``rumah.*``...): (answer parent parts, record parent parts, answer keys, record keys,
    # ((record path, typer), ...), ((answer key, record key, record path, typer, exact type),
    # ...)); the exact type as in ``_member_spec``.
    family: tuple
    repeat_key: str | None
    member_spec: tuple   # ``_member_spec`` of the member fields (empty: members not compared)
    member_keys: tuple   # (record key, generic path) of the member fields, in MEMBER_ORDER
    skipped: tuple[str, ...]
    # When each member field is one answer key of the entry itself (no group) and the NIK
    # is one of them: ((answer key, record key, generic path, typer, exact type), ...) in
    # MEMBER_ORDER, and the NIK's answer key; _members then types a matched member's answers
    # as it compares them, without _member_for_record's dict. Else ((), None).
    member_direct: tuple = ()
    nik_answer: str | None = None


_PLANS: dict[tuple, _Plan] = {}
_BY_MAP: dict[int, tuple[Mapping, _Plan]] = {}  # id -> (read-only map, its plan)


def _plan(verifies: Mapping) -> _Plan:
    """The plan of a verifies map, worked out once per map rather than once a visit (every
    visit of a form has the same map). Keyed by the map's items, so a changed map is a new
    plan; a read-only map (``verifies_map``'s) by itself, without making the key."""
    if type(verifies) is MappingProxyType:
        known = _BY_MAP.get(id(verifies))
        if known is not None and known[0] is verifies:
            return known[1]
        if len(_BY_MAP) >= 64:
            _BY_MAP.clear()
        plan = _plan(dict(verifies))
        _BY_MAP[id(verifies)] = (verifies, plan)  # held here, so its id is not reused
        return plan
    try:
        key = tuple(verifies.items())
        plan = _PLANS.get(key)
    except TypeError:  # unhashable values: no caching
        return _make_plan(verifies)
    if plan is None:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        plan = _PLANS[key] = _make_plan(verifies)
    return plan


def _make_plan(verifies: Mapping) -> _Plan:
    family = []
    member_fields: dict[str, str] = {}
    repeat_key = None
    skipped: list[str] = []
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
    runs: list[tuple] = []
    for _o, path, answer_path in sorted(family):
        aparts, rparts = _parts(answer_path), _parts(path)
        if not (runs and runs[-1][0] == aparts[:-1] and runs[-1][1] == rparts[:-1]):
            runs.append((aparts[:-1], rparts[:-1], [], [], []))
        runs[-1][2].append(aparts[-1])
        runs[-1][3].append(rparts[-1])
        runs[-1][4].append((path, record_typer(path)))
    keys = sorted(set(member_fields.values()), key=MEMBER_ORDER.__getitem__)
    by_key = {key: answer_key for answer_key, key in member_fields.items()}
    direct: tuple = ()
    if (len(by_key) == len(member_fields) and "nik" in by_key
            and all(len(_parts(a)) == 1 for a in member_fields)):
        direct = tuple((by_key[k], k, f"{PRESENCE}.{k}", _MEMBER_TYPERS[k],
                        _EXACT.get(FIELD_TYPES[f"{PRESENCE}.{k}"])) for k in keys)
    family = []
    for aparent, rparent, akeys, rkeys, fields in runs:
        flat = tuple((ak, rk, path, typed, _EXACT.get(FIELD_TYPES[path]))
                     for ak, rk, (path, typed) in zip(akeys, rkeys, fields, strict=True))
        family.append((aparent, rparent, tuple(akeys), tuple(rkeys), tuple(fields), flat))
    return _Plan(
        family=tuple(family),
        repeat_key=repeat_key,
        member_spec=_member_spec(member_fields),
        member_keys=tuple((k, f"{PRESENCE}.{k}") for k in keys),
        skipped=tuple(sorted(set(skipped))),
        member_direct=direct,
        nik_answer=by_key["nik"] if direct else None,
    )


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
    plan = _plan(verifies)
    auto = config.auto_accept
    outcomes: list = []  # FieldOutcome, or a confirmed field's tuple (see Comparison)

    # Family fields, in the record's order. ``mixed``: an outcome was decided by _decide (it
    # may not be confirmed); without any, every outcome is confirmed and none is scanned.
    mixed = False
    same_base = base is current
    append = outcomes.append
    plain, numbers = _PLAIN, _NUMBERS  # locals in the loop below
    for answer_parent, record_parent, answer_keys, keys, fields, flat in plan.family:
        answers = _node(visit_answers, answer_parent)
        if answers is _MISSING:
            continue
        cnode = _node(current, record_parent)
        bnode = cnode if same_base else _node(base, record_parent)
        if type(answers) is dict and type(cnode) is dict and type(bnode) is dict:
            # Plain dicts (always, from the worker): the loop below with _leaves inlined.
            # Its typing of an answer is repeated in _members (direct): a call per field
            # would cost more than the comparison; change both together.
            for akey, key, path, typed, exact in flat:
                v = answers.get(akey)
                if v is None:
                    continue
                t = type(v)
                if t is exact:  # already of the field's type: the typer would keep it
                    if t is str:
                        v = v.strip()
                        if not v:
                            continue
                elif t is int or t is bool or t is float:  # never blank
                    v = typed(v)
                elif _blank(v):
                    continue
                else:
                    v = typed(v)
                c = cnode.get(key)
                if c is None or type(c) in numbers:
                    pass
                elif type(c) is str:  # _blank of text, without the call
                    if not c.strip():
                        c = None
                elif _blank(c):
                    c = None
                if same_base:
                    b = c
                else:
                    b = bnode.get(key)
                    if b is not None and type(b) not in numbers and _blank(b):
                        b = None
                t = type(v)
                if t is type(c) and t in plain and v == c:  # _decide's first case
                    append((path, path, b, c, v))  # confirmed (see Comparison)
                else:
                    append(_outcome(path, path, _decide(path, b, c, v, config), b, c, v, auto))
                    mixed = True
            continue
        cs = _leaves(cnode, keys)
        bs = cs if same_base else _leaves(bnode, keys)
        for (path, typed), v, c, b in zip(fields, _leaves(answers, answer_keys), cs, bs,
                                          strict=True):
            if v is _MISSING:
                continue
            b = None if b is _MISSING else b
            c = None if c is _MISSING else c
            v = typed(v)  # blanks are left out: to_record_value without its _blank test
            if type(v) is type(c) and type(v) in _PLAIN and v == c:  # _decide's first case
                append((path, path, b, c, v))  # confirmed (see Comparison)
            else:
                append(_outcome(path, path, _decide(path, b, c, v, config), b, c, v, auto))
                mixed = True

    entries = visit_answers.get(plan.repeat_key) if plan.repeat_key else None
    if isinstance(entries, list) and plan.member_spec:
        mixed |= _members(base, current, [e if type(e) is dict or isinstance(e, Mapping)
                                          else {} for e in entries], plan, config, outcomes)

    unconfirmed = ([o for o in outcomes if type(o) is not tuple and o.outcome != CONFIRMED]
                   if mixed else [])
    changes = {}
    for o in unconfirmed:  # only proposed outcomes are auto-accepted; fills are applied too
        if (o.auto_accept or o.outcome == FILLED) and o.path not in changes:
            changes[o.path] = o.visit_value
    comparison = Comparison(tuple(outcomes), changes, plan.skipped)
    object.__setattr__(comparison, "_unconfirmed_outcomes", unconfirmed)  # its _unconfirmed()
    return comparison


class _WithStatus(Sequence):
    """The visit's members, each as ``dict(member, _status=status)``, made when first read."""

    __slots__ = ("_members", "_status", "_made")

    def __init__(self, members: list[dict], status: list):
        self._members, self._status, self._made = members, status, {}

    def __len__(self) -> int:
        return len(self._members)

    def __getitem__(self, j: int) -> dict:
        m = self._made.get(j)
        if m is None:
            m = self._made[j] = dict(self._members[j], _status=self._status[j])
        return m


_SELF = object()  # _members' pairing of current with base members when each is itself


def _entry_nik(entry: dict, answer_key: str, spec: tuple) -> str | None:
    """``_nik(_member_for_record(entry, spec))``, the entry's NIK as a record member's, when
    the NIK is the entry's own ``answer_key``: a text one without making the member."""
    n = entry.get(answer_key)
    if type(n) is str:
        return n.strip() or None
    return None if n is None else _nik(_member_for_record(entry, spec))


def _members(base, current, entries, plan: _Plan, config, out: list) -> bool:
    """Append the members' outcomes to ``out``; whether any was decided by _decide (it may
    not be confirmed)."""
    cm = [m for m in (current.get(MEMBERS) or []) if type(m) is dict or isinstance(m, Mapping)]
    bm = cm if base is current else [m for m in (base.get(MEMBERS) or [])
                                     if type(m) is dict or isinstance(m, Mapping)]
    spec = plan.member_spec
    status = [e.get("status_keberadaan") for e in entries]
    # _nik of each (a text NIK stripped; the visit's are stripped already).
    cm_niks = [(n.strip() or None) if type(n := m.get("nik")) is str else _nik(m) for m in cm]
    direct = plan.member_direct
    cv_pairs = None
    if direct and all(type(e) is dict for e in entries):
        # The usual family, every member on both sides with a NIK of their own, the same ones,
        # is paired from the NIKs alone, and its members' answers are typed as they are
        # compared (below): the visit's members (vm) are not made, and no entry is left
        # unpaired to need them.
        nik_key = plan.nik_answer
        vm_niks = [_entry_nik(e, nik_key, spec) for e in entries]
        cv_pairs = _pairs_by_nik(cm_niks, vm_niks)
    if cv_pairs is None:
        direct = ()
        vm = [_member_for_record(e, spec) for e in entries]
        vm_niks = [n if type(n := m.get("nik")) is str else _nik(m) for m in vm]
        # Matched with their status, so that two entries alike but for it pair in a fixed way
        # (only pairing by name reads more than the NIKs: the copies are made when needed).
        vm_status = _WithStatus(vm, status)
        cv_pairs = _match(cm, cm_niks, vm_status, vm_niks, config)

    if bm == cm and None not in cm_niks and len(set(cm_niks)) == len(cm_niks):
        c_to_b = _SELF  # each pairs with itself by its own NIK
    else:
        c_to_b = {c: b for b, c in _match(bm, [_nik(m) for m in bm], cm, cm_niks, config)
                  if b is not None and c is not None}
    c_to_v = {c: v for c, v in cv_pairs if c is not None}
    visit_only = [v for c, v in cv_pairs if c is None]
    v_to_b = {}
    if visit_only:
        matched_b = set(range(len(cm))) if c_to_b is _SELF else set(c_to_b.values())
        base_only = [b for b in range(len(bm)) if b not in matched_b]
        if base_only:
            for bi, vi in match_members([bm[i] for i in base_only],
                                        [vm_status[j] for j in visit_only], config):
                if bi is not None and vi is not None:
                    v_to_b[visit_only[vi]] = base_only[bi]

    gone_codes = config.member_gone_codes
    auto = config.auto_accept
    removals, additions = [], []
    mixed = False
    append = out.append
    member_keys = plan.member_keys
    plain, missing = _PLAIN, _MISSING  # locals in the loop below
    selectors = _selectors(cm_niks)
    for ci, c in enumerate(cm):
        sel = selectors[ci]
        if c_to_b is _SELF:
            b = bm[ci]
        else:
            b = bm[c_to_b[ci]] if ci in c_to_b else None
        vj = c_to_v.get(ci)
        if vj is None or status[vj] in gone_codes:
            # The visit removes the member; base had it: proposed, else concurrent (soft: the
            # visit did not list a member added after its base).
            decision = _PROPOSED if b is not None else (CONCURRENT, "soft")
            removals.append((0 if sel.startswith(f"{MEMBERS}[NIK=") else 1, -ci,
                             _outcome(sel, PRESENCE, decision, b, dict(c), None, auto)))
            continue
        prefix = sel + "."
        same = b is c  # the visit's base is the current record: base values are current ones
        if direct:  # the entry's answers typed as _member_for_record types them
            # (the same typing as three_way's family loop, inlined in both)
            e = entries[vj]
            for akey, key, g, typed, exact in direct:
                vv = e.get(akey)
                if vv is None:
                    continue
                t = type(vv)
                if t is exact:  # already of the field's type: the typer would keep it
                    if t is str:
                        vv = vv.strip()
                        if not vv:
                            continue
                elif t is int or t is bool or t is float:  # never blank
                    vv = typed(vv)
                    t = type(vv)
                elif _blank(vv):
                    continue
                else:
                    vv = typed(vv)
                    t = type(vv)
                # as in the loop below
                cv = c.get(key)
                bv = cv if same else (b.get(key) if b is not None else None)
                if t is type(cv) and t in plain and vv == cv:  # _decide's first case
                    append((prefix + key, g, bv, cv, vv))  # confirmed (see Comparison)
                else:
                    append(_outcome(prefix + key, g, _decide(g, bv, cv, vv, config), bv, cv,
                                    vv, auto))
                    mixed = True
            continue
        v = vm[vj]
        for key, g in member_keys:
            vv = v.get(key, missing)
            if vv is missing:
                continue
            cv = c.get(key)
            bv = cv if same else (b.get(key) if b is not None else None)
            t = type(vv)
            if t is type(cv) and t in plain and vv == cv:  # _decide's first case
                append((prefix + key, g, bv, cv, vv))  # confirmed (see Comparison)
            else:
                append(_outcome(prefix + key, g, _decide(g, bv, cv, vv, config), bv, cv, vv,
                                auto))
                mixed = True
    seen_niks = set(cm_niks)
    for vj in visit_only:
        v = vm[vj]
        b = bm[v_to_b[vj]] if vj in v_to_b else None
        nik = vm_niks[vj]
        sel = (f"{MEMBERS}[NIK={nik}]" if nik and "]" not in nik and nik not in seen_niks
               else f"{MEMBERS}[+]")
        if status[vj] in gone_codes:
            # Not in the record now and gone per the visit: they agree.
            additions.append(_outcome(sel, PRESENCE, _CONFIRMED, b and dict(b), None, None,
                                      auto))
            continue
        if b is None:
            decision = _PROPOSED
        else:  # removed from the record since the base, kept by the visit
            decision = (CONCURRENT,
                        "soft" if _members_equal(v, b, plan.member_keys, config) else "hard")
        additions.append(_outcome(sel, PRESENCE, decision, b and dict(b), None, dict(v), auto))
    additions.sort(key=lambda o: (o.path, _content_key(o.visit_value)))
    removals.sort(key=lambda r: r[:2])
    out += [r[2] for r in removals]
    out += additions
    return mixed or bool(removals or additions)
