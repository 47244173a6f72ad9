"""The reconciliation rules: one small named function each, pure, returning conflict drafts.

A rule is ``rule(ctx: Context, config: Config) -> list[dict]``; ``RULES`` maps its name (the
conflict kind it raises) to it and ``run_rules`` runs the enabled ones in that order. A draft is
``{"kind", "severity", "field", "registry_value", "visit_value", "base_value", "message",
"detail"}``: the conflict of the wire contract without its bookkeeping, plus ``detail`` (machine
readable extras: identity codes, distances, other household ids). Messages never hold NIKs,
KK numbers or names. Lookups that need the database (NIKs and KK numbers of other families,
photos of other visits) are injected as callables or mappings, so everything here is pure.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import shapely
from shapely import prepared
from shapely.geometry import Point, shape
from shapely.ops import nearest_points

from sync.areas import KELURAHAN_GEOJSON
from sync.identity import check_kk, check_nik
from sync.models.registry import PEKERJAAN_PNS
from sync.photos import phash_distance
from sync.reconcile.compare import (
    MEMBERS,
    _match,  # match_members and member_selectors given the NIKs, which _effective_members
    _nik,  # reads once for both
    _selectors,
    generic_path,
    overlaid_value,
    overlay_member,
    to_record_value,
)
from sync.reconcile.config import DEFAULT, Config

Lookup = Callable[[str], Iterable[str]] | Mapping[str, Iterable[str]]

# Housing "badness" per Regsosek code: higher is worse; codes absent ("lainnya") are not
# ranked and never compared. Observed worse than recorded = a higher rank.
HOUSING_RANK: dict[str, dict[int, int]] = {
    # marmer/granit, keramik, parket/vinil = 0; ubin/tegel 1; kayu/papan, semen/bata 2;
    # bambu 3; tanah 4.
    "rumah.lantai": {1: 0, 2: 0, 3: 0, 4: 1, 5: 2, 6: 2, 7: 3, 8: 4},
    # tembok 0; plesteran anyaman bambu/kawat, kayu/papan/gypsum 1; batang kayu 2;
    # anyaman bambu, bambu 3.
    "rumah.dinding": {1: 0, 2: 1, 3: 1, 5: 2, 4: 3, 6: 3},
    # beton, genteng 0; seng, asbes 1; kayu/sirap 2; bambu, jerami/ijuk/daun 3.
    "rumah.atap": {1: 0, 2: 0, 3: 1, 4: 1, 6: 2, 5: 3, 7: 3},
    # bottled, refill, piped 0; bore well, protected well or spring 1; unprotected well or
    # spring, rain water 2; surface water 3.
    "rumah.air_minum": {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 7: 1, 6: 2, 8: 2, 10: 2, 9: 3},
    # PLN with meter 0, PLN without meter 1, non-PLN 2, not electric 3.
    "rumah.penerangan": {1: 0, 2: 1, 3: 2, 4: 3},
    # own 0; shared with certain households 1; communal or public MCK 2; unused or none 3.
    "rumah.fasilitas_bab": {1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3},
}

_NIK_MISMATCH = {"nik_sex_mismatch", "nik_birth_date_mismatch"}


def _is_mapping(x) -> bool:
    """``isinstance(x, Mapping)``, without the ABC machinery for dicts (and their subclasses)."""
    return isinstance(x, dict) or isinstance(x, Mapping)


@dataclass
class Context:
    """Everything the rules read, loaded by the caller.

    ``visit``: the pushed visit (``uuid``, ``household_id``, ``answers`` (cleaned),
    ``location`` ``{lat, lon, accuracy_m}``, ``started_at``, ``ended_at`` (ISO strings or
    datetimes), ``photos`` ``[{field, sha256, phash?}]``, each optionally with its EXIF
    (``exif_taken_at``, ``exif_taken_at_local``, ``exif_lat``, ``exif_lon``) and the app's
    claims of its ``photos[]`` entry (``taken_at``, ``location``)). ``record``: the current verified
    record. ``registry``: the registry record's typed facts (``desil``, ``lat``, ``lon``,
    ``kode_kelurahan``, ``program``...); defaults to ``record``.
    """

    visit: Mapping
    record: Mapping
    registry: Mapping | None = None
    # NIK -> ids of families holding it; KK number -> ids of families holding it.
    nik_households: Lookup | None = None
    kk_households: Lookup | None = None
    # (sha256, phash or None) -> photos seen elsewhere: [{"sha256", "phash", "household_id",
    # "visit_uuid"}]; the rule keeps those of other families.
    photo_lookup: Callable[[str, str | None], Iterable[Mapping]] | None = None
    # sha256 -> phash of this visit's photos, when not in visit["photos"].
    photo_phashes: Mapping[str, str] = field(default_factory=dict)
    # The same enumerator's previous visit: {"uuid", "started_at", "ended_at", "location"}.
    previous_visit: Mapping | None = None
    # Other visits of this family in this round: [{"uuid", "enumerator"?, ...}].
    round_visits: Sequence[Mapping] = ()
    # Fields a newer registry import changed ({path: new value} or paths), and the fields the
    # visit (or an approved local change) proposes to change ({path: value} or paths).
    upstream_changed: Mapping[str, Any] | Collection[str] = ()
    proposed_changes: Mapping[str, Any] | Collection[str] = ()
    today: dt.date | None = None

    @property
    def facts(self) -> Mapping:
        return self.registry if self.registry is not None else self.record

    @property
    def answers(self) -> Mapping:
        a = self.visit.get("answers")
        return a if _is_mapping(a) else {}

    @property
    def household_id(self) -> str | None:
        return self.visit.get("household_id") or self.record.get("id_keluarga")


# --- helpers ------------------------------------------------------------------------------


def draft(kind: str, config: Config, message: str, *, field: str | None = None,
          registry_value=None, visit_value=None, base_value=None, severity: str | None = None,
          **detail) -> dict:
    return {"kind": kind, "severity": severity or config.severity.get(kind, "soft"),
            "field": field, "registry_value": registry_value, "visit_value": visit_value,
            "base_value": base_value, "message": message, "detail": detail}


def _others(source: Lookup | None, key: str, hid) -> list[str]:
    """The other families than ``hid`` holding ``key`` (``source`` maps it, or is called
    with it, to the ids of the families holding it), sorted."""
    if source is None or not key:
        return []
    found = source.get(key, ()) if _is_mapping(source) else source(key)
    if not found:
        return []
    if type(found) in (list, set, tuple, frozenset) and len(found) == 1 and hid in found:
        return []  # the usual case: only this family holds it
    found = set(found)
    found.discard(hid)
    return sorted(found)


def _timestamp(v) -> dt.datetime | None:
    if type(v) is dt.datetime or isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if isinstance(v, str) and v:
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return None


def _point(loc) -> tuple[float, float, float | None] | None:
    if not _is_mapping(loc):
        return None
    lat, lon = loc.get("lat"), loc.get("lon")
    if not (type(lat) is float or isinstance(lat, int | float)) \
            or not (type(lon) is float or isinstance(lon, int | float)):
        return None
    acc = loc.get("accuracy_m")
    return float(lat), float(lon), (float(acc) if isinstance(acc, int | float) else None)


def visit_point(visit: Mapping) -> tuple[float, float, float | None] | None:
    """(lat, lon, accuracy_m) of the visit: its ``location``, else the ``lokasi`` answer."""
    p = _point(visit.get("location"))
    if p is None and isinstance(visit.get("answers"), Mapping):
        p = _point(visit["answers"].get("lokasi"))
    return p


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (mean Earth radius 6,371,008.8 m)."""
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))


def effective_members(ctx: Context, config: Config) -> list[dict]:
    """The family's members as the visit leaves them: record members overlaid with the
    matched visit entry's answers, visit-only entries, and record members the visit does not
    list; each with ``_status`` (item 404, None when unknown) and ``_selector`` (a path).
    The rules read the fields they need of it (``_Person``), worked out once a run."""
    return _effective_members(ctx, config, _derived(ctx, config).answers)


class _Person(NamedTuple):
    """What the rules read of a member as the visit leaves it: its ``effective_members`` dict
    at ``nik``, ``jenis_kelamin``, ``tanggal_lahir``, ``pekerjaan``, ``_status`` and
    ``_selector``, without copying and overlaying every field (a rule reading another field
    adds it here)."""

    nik: Any
    sex: Any
    birth: Any
    job: Any
    status: Any
    selector: str


_UNSET = object()


class _Derived:
    """What several rules read of one context, worked out once: ``run_rules`` keeps one for
    its run (the rules only read it, and the context does not change meanwhile); a rule called
    on its own makes its own. Cheap values are read at once, the others when first asked."""

    __slots__ = ("ctx", "config", "answers", "facts", "household_id", "result", "_values",
                 "_people", "_aid", "_registry_aid", "_point", "_today")

    def __init__(self, ctx: Context, config: Config):
        self.ctx, self.config = ctx, config
        a = ctx.visit.get("answers")
        self.answers = a if _is_mapping(a) else {}  # ctx.answers
        self.facts = ctx.registry if ctx.registry is not None else ctx.record  # ctx.facts
        self.household_id = ctx.visit.get("household_id") or ctx.record.get("id_keluarga")
        r = self.answers.get("hasil_kunjungan")
        # the visit's result code (hasil_kunjungan), None unless an int
        self.result = r if isinstance(r, int) and not isinstance(r, bool) else None
        self._values: dict[str, Any] = {}
        self._people = self._aid = self._registry_aid = self._point = self._today = _UNSET

    def value(self, path: str):
        """The visit's answer at ``path`` when it gave one, else the current record's."""
        v = self._values.get(path, _UNSET)
        if v is _UNSET:
            v = self._values[path] = _family_value_in(self.answers, self.ctx.record, path)
        return v

    def people(self) -> list[_Person]:
        """``effective_members`` as the rules read them (not to be changed: every rule of
        the run reads it)."""
        if self._people is _UNSET:
            self._people = _effective_people(self.ctx, self.config, self.answers)
        return self._people

    def aid(self) -> list[str]:
        """``active_aid`` (not to be changed)."""
        if self._aid is _UNSET:
            # value(f"program.{p}") of each program, the two program mappings read once
            answered = _dig(self.answers, ("program",))
            answered = answered if _is_mapping(answered) else {}
            recorded = _dig(self.ctx.record, ("program",))
            recorded = recorded if _is_mapping(recorded) else {}
            aid = []
            for p in self.config.aid_programs:
                v = answered.get(p)
                if v is not None and v != "":
                    if type(v) is not bool:  # a bool is typed already
                        v = to_record_value(f"program.{p}", v)
                else:
                    v = recorded.get(p)
                if v is True:
                    aid.append(p)
            self._aid = aid
        return self._aid

    def registry_aid(self) -> list[str]:
        """Aid programs the record says the family gets, or the visit (not to be changed)."""
        if self._registry_aid is _UNSET:
            prog = self.ctx.record.get("program") or {}
            visit_prog = self.answers.get("program")
            if not isinstance(visit_prog, Mapping):
                visit_prog = {}
            self._registry_aid = [p for p in self.config.aid_programs
                                  if prog.get(p) is True or visit_prog.get(p) is True]
        return self._registry_aid

    def point(self) -> tuple[float, float, float | None] | None:
        """``visit_point(ctx.visit)``."""
        if self._point is _UNSET:
            self._point = visit_point(self.ctx.visit)
        return self._point

    def today(self) -> dt.date:
        """``_today(ctx)``."""
        if self._today is _UNSET:
            self._today = _today(self.ctx)
        return self._today


def _derived(ctx: Context, config: Config) -> _Derived:
    """The run's ``_Derived`` when ``run_rules`` runs with this config, else a new one."""
    d = ctx.__dict__.get("_derived")
    if d is not None and d.config is config:
        return d
    return _Derived(ctx, config)


def _pairing(ctx: Context, config: Config, answers: Mapping) -> tuple:
    """(record members, visit entries, match_members' pairs, the record members' selectors
    or None when the record has no members) of ``effective_members``."""
    record = [m for m in (ctx.record.get(MEMBERS) or []) if type(m) is dict or _is_mapping(m)]
    entries = answers.get(MEMBERS)  # the visit's entries, answers being ctx.answers
    entries = ([e for e in entries if type(e) is dict or _is_mapping(e)]
               if isinstance(entries, list) else [])
    # match_members, reading the NIKs once (_nik; a text NIK, the usual one, stripped here)
    record_niks = [(n.strip() or None) if type(n := m.get("nik")) is str else _nik(m)
                   for m in record]
    entry_niks = [(n.strip() or None) if type(n := e.get("nik")) is str else _nik(e)
                  for e in entries]
    pairs = _match(record, record_niks, entries, entry_niks, config)
    # member_selectors(record)
    selectors = _selectors(record_niks) if record else None
    return record, entries, pairs, selectors


def _visit_selector(nik) -> str:
    """The selector of a member only the visit lists, by its (overlaid) NIK."""
    return f"{MEMBERS}[NIK={nik}]" if nik else f"{MEMBERS}[+]"


def _effective_members(ctx: Context, config: Config, answers: Mapping) -> list[dict]:
    record, entries, pairs, selectors = _pairing(ctx, config, answers)
    out = []
    for ri, vi in pairs:
        m = dict(record[ri]) if ri is not None else {}
        status = None
        if vi is not None:
            entry = entries[vi]
            overlay_member(m, entry)
            status = entry.get("status_keberadaan")
        m["_status"] = status
        m["_selector"] = selectors[ri] if ri is not None else _visit_selector(m.get("nik"))
        out.append(m)
    return out


_NO_MEMBER: Mapping = {}  # the record side of a member only the visit lists


def _effective_people(ctx: Context, config: Config, answers: Mapping) -> list[_Person]:
    """``_effective_members`` at the keys of ``_Person``: each of them overlaid as
    ``overlay_member`` overlays it (``overlaid_value``), the other fields not read."""
    record, entries, pairs, selectors = _pairing(ctx, config, answers)
    out = []
    for ri, vi in pairs:
        rec = record[ri] if ri is not None else _NO_MEMBER
        nik, sex = rec.get("nik"), rec.get("jenis_kelamin")
        birth, job = rec.get("tanggal_lahir"), rec.get("pekerjaan")
        status = None
        if vi is not None:
            entry = entries[vi]
            if (v := entry.get("nik", _UNSET)) is not _UNSET:
                nik = overlaid_value("nik", v, nik)
            if (v := entry.get("jenis_kelamin", _UNSET)) is not _UNSET:
                sex = overlaid_value("jenis_kelamin", v, sex)
            if (v := entry.get("tanggal_lahir", _UNSET)) is not _UNSET:
                birth = overlaid_value("tanggal_lahir", v, birth)
            if (v := entry.get("pekerjaan", _UNSET)) is not _UNSET:
                job = overlaid_value("pekerjaan", v, job)
            status = entry.get("status_keberadaan")
        out.append(_Person(nik, sex, birth, job, status,
                           selectors[ri] if ri is not None else _visit_selector(nik)))
    return out


@functools.cache
def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _dig(cur, parts: tuple[str, ...]):
    for part in parts:
        cur = cur.get(part) if type(cur) is dict or _is_mapping(cur) else None
    return cur


def _family_value_in(answers: Mapping, record: Mapping, path: str):
    """``answers``' value at ``path`` when given (typed for the record), else ``record``'s."""
    parts = _split(path)
    cur = _dig(answers, parts)
    if cur is not None and cur != "":
        return to_record_value(path, cur)
    return _dig(record, parts)


def active_aid(ctx: Context, config: Config) -> list[str]:
    """Aid programs active for the family: true in the visit's answers or, unanswered, in the
    current record."""
    return list(_derived(ctx, config).aid())


def _today(ctx: Context) -> dt.date:
    if ctx.today is not None:
        return ctx.today
    t = _timestamp(ctx.visit.get("started_at"))
    return t.date() if t else dt.date.today()


# --- rules --------------------------------------------------------------------------------


def invalid_identity(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A member's NIK or the KK number fails ``sync.identity``; sex or birth date disagree
    with the NIK (soft, ``severity["invalid_identity_mismatch"]``). Checked on the family as
    the visit leaves it (visit answers over the record)."""
    d = _derived(ctx, config)
    today = d.today()
    out = []
    for m in d.people():
        birth = m.birth
        try:
            issues = check_nik(m.nik, sex=m.sex,
                               birth_date=birth if isinstance(birth, str) and birth else None,
                               today=today)
        except ValueError:  # a birth date that is no date
            issues = check_nik(m.nik, sex=m.sex, today=today)
        if not issues:
            continue
        codes = [i.code for i in issues]
        mismatch_only = set(codes) <= _NIK_MISMATCH
        sev = config.severity.get("invalid_identity_mismatch" if mismatch_only
                                  else "invalid_identity", "hard")
        out.append(draft("invalid_identity", config,
                         "; ".join(i.message for i in issues), severity=sev,
                         field=f"{m.selector}.nik", visit_value=m.nik, codes=codes))
    kk = d.value("no_kk")
    issues = check_kk(kk, today=today)
    if issues:
        out.append(draft("invalid_identity", config, "; ".join(i.message for i in issues),
                         field="no_kk", visit_value=kk, codes=[i.code for i in issues]))
    return out


def duplicate_identity(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A NIK held by another family (or twice in this one), a KK number on other families."""
    d = _derived(ctx, config)
    hid = d.household_id
    out = []
    seen: dict[str, int] = {}
    members = d.people()
    for m in members:
        if m.nik:
            seen[m.nik] = seen.get(m.nik, 0) + 1
    reported = set()
    for m in members:
        nik = m.nik
        if not nik or nik in reported:
            continue
        reported.add(nik)
        others = _others(ctx.nik_households, nik, hid)
        if others:
            out.append(draft("duplicate_identity", config,
                             f"the NIK is also registered in {len(others)} other families",
                             field=f"{m.selector}.nik", visit_value=nik,
                             registry_value=others, other_household_ids=others,
                             code="nik_other_family"))
        if seen[nik] > 1:
            out.append(draft("duplicate_identity", config,
                             f"the same NIK is on {seen[nik]} members of this family",
                             field=f"{m.selector}.nik", visit_value=nik,
                             code="nik_duplicate_in_family"))
    kk = d.value("no_kk")
    if kk:
        others = _others(ctx.kk_households, str(kk), hid)
        if others:
            out.append(draft("duplicate_identity", config,
                             f"the KK number is also on {len(others)} other families",
                             field="no_kk", visit_value=kk, registry_value=others,
                             other_household_ids=others, code="kk_other_family"))
    return out


def _members_with_status(ctx: Context, codes: Collection[int], config: Config):
    return [m for m in _derived(ctx, config).people() if m.status in codes]


def deceased_receiving_aid(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A member recorded as died (item 404 code 2) while the family's aid flags are active
    (in the record or the visit)."""
    d = _derived(ctx, config)
    aid = d.registry_aid()
    if not aid:
        return []
    return [draft("deceased_receiving_aid", config,
                  f"a member died while the family receives {', '.join(aid)}",
                  field=m.selector, visit_value=m.status, registry_value=aid,
                  programs=aid)
            for m in _members_with_status(ctx, config.member_died_codes, config)]


def moved_receiving_aid(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A member moved away (item 404 codes 3, 4), or the whole family (hasil_kunjungan 4, 5),
    while the family's aid flags are active."""
    d = _derived(ctx, config)
    aid = d.registry_aid()
    if not aid:
        return []
    out = [draft("moved_receiving_aid", config,
                 f"a member moved away while the family receives {', '.join(aid)}",
                 field=m.selector, visit_value=m.status, registry_value=aid,
                 programs=aid)
           for m in _members_with_status(ctx, config.member_moved_codes, config)]
    if d.result in config.family_moved_codes:
        out.append(draft("moved_receiving_aid", config,
                         f"the family moved away while it receives {', '.join(aid)}",
                         field=None, visit_value=d.result, registry_value=aid,
                         programs=aid))
    return out


def _present(m: _Person, config: Config) -> bool:
    return m.status not in config.member_gone_codes


def inclusion_error(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """Aid the family should not get: PKH above ``pkh_max_desil``, BPNT/Sembako above
    ``bpnt_max_desil``, PBI-JK above ``pbi_max_desil``; or any aid with one of Jakarta's
    exclusions: a car, a present member working as PNS/TNI/Polri/BUMN (item 418 code 5),
    branded bottled water (``rumah.air_minum`` 1 or ``eksklusi.air_kemasan_bermerek``), NJOP
    above Rp 1 billion. One draft per reason."""
    d = _derived(ctx, config)
    aid = d.aid()
    if not aid:
        return []
    out = []
    desil = d.facts.get("desil")
    if isinstance(desil, int):
        for program, limit in (("pkh", config.pkh_max_desil), ("bpnt", config.bpnt_max_desil),
                               ("pbi_jk", config.pbi_max_desil)):
            if program in aid and desil > limit:
                out.append(draft("inclusion_error", config,
                                 f"{program} goes to a desil {desil} family (limit {limit})",
                                 field=f"program.{program}", registry_value=desil,
                                 visit_value=True, reason="desil", program=program))
    msg = f"the family receives {', '.join(aid)} but "
    if d.value("aset.mobil") is True:
        out.append(draft("inclusion_error", config, msg + "owns a car", field="aset.mobil",
                         visit_value=True, registry_value=ctx.record.get("aset", {}).get("mobil"),
                         reason="car", programs=aid))
    for m in d.people():
        if _present(m, config) and m.job == PEKERJAAN_PNS:
            out.append(draft("inclusion_error", config,
                             msg + "a member works as PNS/TNI/Polri/BUMN/BUMD",
                             field=f"{m.selector}.pekerjaan", visit_value=PEKERJAAN_PNS,
                             reason="pns", programs=aid))
    bottled = d.value("rumah.air_minum") == 1
    eks = d.answers.get("eksklusi")
    if bottled or (_is_mapping(eks) and eks.get("air_kemasan_bermerek") is True):
        out.append(draft("inclusion_error", config, msg + "drinks branded bottled water",
                         field="rumah.air_minum", visit_value=1 if bottled else None,
                         reason="bottled_water", programs=aid))
    if d.value("rumah.njop_di_atas_1m") is True:
        out.append(draft("inclusion_error", config, msg + "has an NJOP above Rp 1 billion",
                         field="rumah.njop_di_atas_1m", visit_value=True, reason="njop",
                         programs=aid))
    return out


def exclusion_error(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A family at or below ``exclusion_max_desil`` with no aid at all; or housing observed
    worse than recorded (``HOUSING_RANK``, by at least ``housing_worse_min_steps``)."""
    d = _derived(ctx, config)
    out = []
    desil = d.facts.get("desil")
    if isinstance(desil, int) and desil <= config.exclusion_max_desil \
            and not d.aid() and d.result not in config.not_found_codes:
        out.append(draft("exclusion_error", config,
                         f"a desil {desil} family receives no aid", field="program",
                         registry_value=desil, reason="no_aid"))
    rumah = d.answers.get("rumah")
    recorded = ctx.record.get("rumah") or {}
    if _is_mapping(rumah):
        for path, key, ranks in _HOUSING:
            seen, had = rumah.get(key), recorded.get(key)
            if type(seen) is not int:  # an int is typed already
                seen = to_record_value(path, seen)
            if seen in ranks and had in ranks \
                    and ranks[seen] - ranks[had] >= config.housing_worse_min_steps:
                out.append(draft("exclusion_error", config,
                                 f"{path} observed worse than recorded", field=path,
                                 registry_value=had, visit_value=seen, reason="housing_worse"))
    return out


# (path, key in "rumah", ranks) of HOUSING_RANK.
_HOUSING = tuple((path, path.split(".", 1)[1], ranks) for path, ranks in HOUSING_RANK.items())


@functools.cache
def area_index(path: str | Path = KELURAHAN_GEOJSON) -> dict[str, Any]:
    """Kelurahan code -> (geometry, prepared geometry), loaded once per path."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    out = {}
    for feat in data["features"]:
        geom = shape(feat["geometry"])
        shapely.prepare(geom)  # for _contains_xy, which does not prepare it
        out[feat["properties"]["kode_kemendagri"]] = (geom, prepared.prep(geom))
    return out


_contains_xy = shapely.lib.contains_xy  # shapely.contains_xy without its Python wrapper


def distance_outside_m(code: str, lat: float, lon: float,
                       path: str | Path = KELURAHAN_GEOJSON) -> float | None:
    """Metres from the point to the kelurahan polygon (0 inside); None for an unknown code."""
    entry = area_index(path).get(code)
    if entry is None:
        return None
    geom, prep = entry
    # Inside, off the edge: covered (no Point made). The ufunc itself: shapely.contains_xy's
    # wrapper (prepare the geometry, threading flags) costs twice the test, and area_index
    # prepares the geometries once.
    if _contains_xy(geom, lon, lat):
        return 0.0
    pt = Point(lon, lat)
    if prep.covers(pt):
        return 0.0
    near = nearest_points(geom, pt)[0]
    return haversine_m(lat, lon, near.y, near.x)


def location_outside_area(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """The GPS point lies outside the registered kelurahan by more than its accuracy plus
    ``area_margin_m``. Unknown kelurahan codes and visits without a point are skipped."""
    d = _derived(ctx, config)
    p, code = d.point(), d.facts.get("kode_kelurahan")
    if p is None or not code:
        return []
    lat, lon, acc = p
    dist = distance_outside_m(code, lat, lon)
    slack = (acc if acc is not None else config.default_accuracy_m) + config.area_margin_m
    if dist is None or dist <= slack:
        return []
    return [draft("location_outside_area", config,
                  f"the visit's GPS point is {dist:.0f} m outside the registered kelurahan",
                  field="kode_kelurahan", registry_value=code,
                  visit_value={"lat": lat, "lon": lon, "accuracy_m": acc},
                  distance_m=round(dist, 1))]


def location_far(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """The GPS point is farther than ``far_distance_m`` plus its accuracy from the registered
    point (haversine)."""
    d = _derived(ctx, config)
    p = d.point()
    lat0, lon0 = d.facts.get("lat"), d.facts.get("lon")
    if p is None or not isinstance(lat0, int | float) or not isinstance(lon0, int | float):
        return []
    lat, lon, acc = p
    dist = haversine_m(lat0, lon0, lat, lon)
    if dist <= config.far_distance_m + (acc if acc is not None else config.default_accuracy_m):
        return []
    return [draft("location_far", config,
                  f"the visit's GPS point is {dist:.0f} m from the registered point",
                  field="lat", registry_value={"lat": lat0, "lon": lon0},
                  visit_value={"lat": lat, "lon": lon, "accuracy_m": acc},
                  distance_m=round(dist, 1))]


def photo_reused(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A photo of this visit was taken at another family: the same SHA-256 (hard), or a
    perceptual hash within ``phash_max_distance`` (``severity["photo_reused_similar"]``)."""
    if ctx.photo_lookup is None:
        return []
    hid, uuid = _derived(ctx, config).household_id, ctx.visit.get("uuid")
    out = []
    for photo in ctx.visit.get("photos") or ():
        sha = photo.get("sha256") if type(photo) is dict or _is_mapping(photo) else None
        if not sha:
            continue
        ph = photo.get("phash") or ctx.photo_phashes.get(sha)
        found = ctx.photo_lookup(sha, ph)
        if not found:
            continue
        exact, similar = set(), {}
        for other in found:
            if other.get("household_id") == hid or (uuid and other.get("visit_uuid") == uuid):
                continue
            if other.get("sha256") == sha:
                exact.add(other.get("household_id"))
            elif ph and other.get("phash"):
                try:
                    d = phash_distance(ph, other["phash"])
                except ValueError:
                    continue
                if d <= config.phash_max_distance:
                    oh = other.get("household_id")
                    similar[oh] = min(d, similar.get(oh, d))
        if not exact and not similar:  # the usual photo: seen at this family only
            continue
        similar = {h: d for h, d in similar.items() if h not in exact}
        if exact:
            ids = sorted(exact, key=str)
            out.append(draft("photo_reused", config,
                             f"the same photo was taken at {len(ids)} other families",
                             field=photo.get("field"), visit_value=sha, registry_value=ids,
                             other_household_ids=ids, match="sha256"))
        if similar:
            ids = sorted(similar, key=str)
            out.append(draft("photo_reused", config,
                             f"a near-identical photo was taken at {len(ids)} other families",
                             severity=config.severity.get("photo_reused_similar", "soft"),
                             field=photo.get("field"), visit_value=sha, registry_value=ids,
                             other_household_ids=ids, match="phash",
                             distance=min(similar.values())))
    return out


def photo_time(photo: Mapping, config: Config = DEFAULT) -> tuple[dt.datetime, str] | None:
    """When a photo was taken, and whose word it is: the camera's EXIF (``exif_taken_at``,
    aware; else ``exif_taken_at_local``, the camera's wall clock, read at
    ``photo_naive_utc_offset_hours``) wins over the app's claim (``taken_at``, the push's
    ``photos[]`` entry). EXIF is written by the camera with the picture; the claim is what
    the app says of it, and an app re-encoding its photos sends no EXIF at all."""
    t = _timestamp(photo.get("exif_taken_at"))
    if t is not None:
        return t, "exif"
    local = photo.get("exif_taken_at_local")
    if isinstance(local, str) and local:
        try:
            t = dt.datetime.fromisoformat(local)
        except ValueError:
            t = None
        if t is not None:
            zone = dt.timezone(dt.timedelta(hours=config.photo_naive_utc_offset_hours))
            return (t if t.tzinfo else t.replace(tzinfo=zone)), "exif"
    t = _timestamp(photo.get("taken_at"))
    return (t, "app") if t is not None else None


def photo_point(photo: Mapping) -> tuple[float, float, float | None, str] | None:
    """Where a photo was taken (lat, lon, accuracy_m, whose word): EXIF GPS
    (``exif_lat``/``exif_lon``, no accuracy) wins over the app's claim (``location``), for
    the reason ``photo_time`` gives."""
    lat, lon = photo.get("exif_lat"), photo.get("exif_lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon), None, "exif"
    p = _point(photo.get("location"))
    return (*p, "app") if p is not None else None


def photo_mismatch(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A photo of this visit was taken more than ``photo_time_slack_seconds`` before the
    visit started or after it ended (``taken_before`` / ``taken_after``), or farther than
    ``far_distance_m`` plus its accuracy from the registered point (else the visit's point;
    ``taken_far``). Its time and place come from EXIF, else from its ``photos[]`` entry
    (``detail.source`` says which): the same finding either way."""
    photos = ctx.visit.get("photos") or ()
    if not photos:
        return []
    start, end = _timestamp(ctx.visit.get("started_at")), _timestamp(ctx.visit.get("ended_at"))
    end = end if end is not None and start is not None and end >= start else start
    facts = ctx.facts
    lat0, lon0 = facts.get("lat"), facts.get("lon")
    if isinstance(lat0, int | float) and isinstance(lon0, int | float):
        ref, ref_name = (float(lat0), float(lon0)), "registered"
    else:
        p = _derived(ctx, config).point()
        ref, ref_name = ((p[0], p[1]), "visit") if p is not None else (None, None)
    slack = dt.timedelta(seconds=config.photo_time_slack_seconds)
    out = []
    for photo in photos:
        if not _is_mapping(photo):
            continue
        sha, fld = photo.get("sha256"), photo.get("field")
        when = photo_time(photo, config)
        if when is not None and start is not None:
            t, source = when
            reason = ("taken_before" if t < start - slack else
                      "taken_after" if t > end + slack else None)
            if reason:
                gap = (start - t if reason == "taken_before" else t - end).total_seconds()
                words = "before the visit started" if reason == "taken_before" \
                    else "after the visit ended"
                out.append(draft("photo_mismatch", config,
                                 f"the photo was taken {_span(gap)} {words} "
                                 f"({'EXIF' if source == 'exif' else 'as the app says'})",
                                 field=fld, visit_value=t.isoformat(),
                                 registry_value=(start if reason == "taken_before"
                                                 else end).isoformat(),
                                 reason=reason, source=source, sha256=sha,
                                 seconds=round(gap)))
        where = photo_point(photo)
        if where is not None and ref is not None:
            lat, lon, acc, source = where
            dist = haversine_m(ref[0], ref[1], lat, lon)
            limit = config.far_distance_m + (acc if acc is not None
                                             else config.default_accuracy_m)
            if dist > limit:
                out.append(draft("photo_mismatch", config,
                                 f"the photo was taken {dist:.0f} m from the {ref_name} point "
                                 f"({'EXIF' if source == 'exif' else 'as the app says'})",
                                 field=fld, registry_value={"lat": ref[0], "lon": ref[1]},
                                 visit_value={"lat": lat, "lon": lon, "accuracy_m": acc},
                                 reason="taken_far", source=source, sha256=sha,
                                 distance_m=round(dist, 1), reference=ref_name))
    return out


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / 3600:.0f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def visit_too_short(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """An interview shorter than ``min_interview_seconds`` (other visits:
    ``min_visit_seconds``), or one that ends before it starts."""
    start, end = _timestamp(ctx.visit.get("started_at")), _timestamp(ctx.visit.get("ended_at"))
    if start is None or end is None:
        return []
    seconds = (end - start).total_seconds()
    d = _derived(ctx, config)
    interviewed = d.result in config.found_codes and d.answers.get("persetujuan") is True
    limit = config.min_interview_seconds if interviewed else config.min_visit_seconds
    if seconds >= limit:
        return []
    return [draft("visit_too_short", config,
                  f"the visit took {seconds:.0f} s, less than {limit:.0f} s",
                  visit_value=seconds, seconds=seconds, limit=limit)]


def impossible_travel(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """The enumerator's previous visit ended too far away too shortly before this one began:
    the distance (less both accuracies) over the gap exceeds ``max_speed_kmh``. Distances under
    ``travel_min_distance_m`` are not checked."""
    prev = ctx.previous_visit
    if not prev:
        return []
    here, there = _derived(ctx, config).point(), visit_point(prev)
    start = _timestamp(ctx.visit.get("started_at"))
    prev_end = _timestamp(prev.get("ended_at") or prev.get("started_at"))
    if here is None or there is None or start is None or prev_end is None:
        return []
    dist = haversine_m(here[0], here[1], there[0], there[1])
    slack = sum(a if a is not None else config.default_accuracy_m for a in (here[2], there[2]))
    dist_eff = max(0.0, dist - slack)
    if dist_eff < config.travel_min_distance_m:
        return []
    hours = (start - prev_end).total_seconds() / 3600
    speed = math.inf if hours <= 0 else dist_eff / 1000 / hours
    if speed <= config.max_speed_kmh:
        return []
    return [draft("impossible_travel", config,
                  f"{dist / 1000:.1f} km from the previous visit in "
                  f"{max(hours, 0) * 60:.0f} min", visit_value=prev.get("uuid"),
                  previous_visit_uuid=prev.get("uuid"), distance_m=round(dist, 1),
                  speed_kmh=None if math.isinf(speed) else round(speed, 1))]


def duplicate_visit(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """Another visit of this family in the same round."""
    uuid = ctx.visit.get("uuid")
    others = sorted({str(v.get("uuid")) for v in ctx.round_visits
                     if v.get("uuid") and v.get("uuid") != uuid})
    if not others:
        return []
    return [draft("duplicate_visit", config,
                  f"{len(others)} other visits of this family in this round",
                  visit_value=uuid, registry_value=others, other_visit_uuids=others)]


_NOT_FOUND_MESSAGES = {
    3: "the family was not found", 4: "the family moved elsewhere in Indonesia",
    5: "the family moved abroad", 6: "the building no longer exists",
    10: "the record is a duplicate",
}


def household_not_found(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """The visit result (``hasil_kunjungan``) is one of ``not_found_codes``: 3 not found, 4/5
    moved, 6 building gone, 10 duplicate record. 7 (refused) and 8 (no respondent) are not
    flagged: the family is there and needs another visit."""
    code = _derived(ctx, config).result
    if code not in config.not_found_codes:
        return []
    return [draft("household_not_found", config,
                  _NOT_FOUND_MESSAGES.get(code, "the family was not found at the address"),
                  field="hasil_kunjungan", visit_value=code)]


def _touches(a: str, b: str) -> bool:
    if a == b or a.startswith(b + ".") or b.startswith(a + "."):
        return True
    # the whole list (reordered) touches every positional member path
    return (a == MEMBERS and b.startswith(MEMBERS + "[")) or \
        (b == MEMBERS and a.startswith(MEMBERS + "["))


def upstream_changed(ctx: Context, config: Config = DEFAULT) -> list[dict]:
    """A newer registry import changed a field the visit (or a pending or approved local
    change) also changes: one hard draft per local path touched."""
    upstream, local = ctx.upstream_changed, ctx.proposed_changes
    if not upstream or not local:
        return []
    out = []
    for path in sorted(local):
        hits = sorted(u for u in upstream if _touches(path, u))
        if not hits:
            continue
        out.append(draft("upstream_changed", config,
                         f"a newer registry import also changed {generic_path(path)}",
                         field=path,
                         registry_value=(upstream.get(hits[0]) if isinstance(upstream, Mapping)
                                         and len(hits) == 1 else None),
                         visit_value=local.get(path) if isinstance(local, Mapping) else None,
                         upstream_paths=hits))
    return out


RULES: dict[str, Callable[[Context, Config], list[dict]]] = {
    "invalid_identity": invalid_identity,
    "duplicate_identity": duplicate_identity,
    "deceased_receiving_aid": deceased_receiving_aid,
    "moved_receiving_aid": moved_receiving_aid,
    "inclusion_error": inclusion_error,
    "exclusion_error": exclusion_error,
    "location_outside_area": location_outside_area,
    "location_far": location_far,
    "photo_reused": photo_reused,
    "photo_mismatch": photo_mismatch,
    "visit_too_short": visit_too_short,
    "impossible_travel": impossible_travel,
    "duplicate_visit": duplicate_visit,
    "household_not_found": household_not_found,
    "upstream_changed": upstream_changed,
}


def run_rules(ctx: Context, config: Config = DEFAULT,
              rules: Iterable[str] | None = None) -> list[dict]:
    """Run the named rules (default: ``config.enabled_rules``, else all of ``RULES``) in
    ``RULES`` order and return their drafts, in that order."""
    wanted = set(rules) if rules is not None else config.enabled_rules
    unknown = (wanted or set()) - RULES.keys()
    if unknown:
        raise ValueError(f"unknown rules: {', '.join(sorted(unknown))}")
    out: list[dict] = []
    # What several rules read (members, aid, the visit's point...) is worked out once.
    ctx.__dict__["_derived"] = _Derived(ctx, config)
    try:
        for name, rule in RULES.items():
            if wanted is None or name in wanted:
                out.extend(rule(ctx, config))
    finally:
        ctx.__dict__.pop("_derived", None)
    return out
