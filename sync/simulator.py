"""A field-work simulator for the detection benchmark: realistic visits with their ground truth.

``plan_visits`` turns verified records (a generated extract, imported) and the generator's answer
file into the visits a team of enumerators would push during a round: each enumerator walks a
route of families of one kecamatan, ``per_day`` a working day from about 08:00 WIB, travelling
between them at town speeds, so consecutive honest visits never look like impossible travel.
Every visit starts from ``forms.example_visit`` on the record (the family found and matching)
and is then changed by its scenario:

* honest, confirming the record (every family carrying a planted registry anomaly gets one: the
  anomaly must be found from the record itself);
* honest with real changes: a member died or moved away, a new baby, a better or worse roof, a
  corrected address (auto-accepted), the whole family moved away;
* fabricated: a photo of another family's earlier visit (the same bytes, or a resized and
  re-encoded copy), a GPS point in another kelurahan or far from the registered point, a visit
  too short to be an interview, a visit started minutes after one kilometres away.

Each ``SimVisit`` carries the conflict kinds it must raise (``expected``) and the check that
counts it as detected (``target``); ``score`` compares them with the stored conflicts. Photos are
real JPEGs, distinct for every honest visit (random smooth images, so their perceptual hashes are
far apart). Pure apart from ``run`` (ingest, upload, reconcile) and ``score`` (read conflicts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import math
import random
import uuid as uuidlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from PIL import Image, ImageDraw

import forms
from sync.generator import ANOMALY_CONFLICTS, PointSampler, load_samplers
from sync.reconcile.config import DEFAULT, Config
from sync.reconcile.rules import distance_outside_m, haversine_m

WIB = dt.timezone(dt.timedelta(hours=7))
START_DATE = dt.date(2026, 2, 2)

# Share of eligible families (no planted anomaly, not the other half of a planted duplicate)
# given each scenario; the rest confirm their record. Checked in this order.
SCENARIO_SHARES: dict[str, float] = {
    "fab_impossible_travel": 0.008,
    "fab_photo_same": 0.012,
    "fab_photo_similar": 0.012,
    "fab_gps_elsewhere": 0.012,
    "fab_gps_far": 0.012,
    "fab_too_short": 0.012,
    "fab_photo_cropped": 0.012,
    "change_died": 0.02,
    "change_moved": 0.02,
    "change_baby": 0.03,
    "change_roof_better": 0.015,
    "change_roof_worse": 0.015,
    "change_address": 0.03,
    "change_family_moved": 0.01,
}
FABRICATED = frozenset(k for k in SCENARIO_SHARES if k.startswith("fab_"))
# Reported but not a target: a copy cropped by 2% lands 4-8 bits away, where the worker's
# phash band lookup (exact 16-bit bands, sure only up to 3 bits) finds only some of them.
PROBES = frozenset({"fab_photo_cropped"})

# What counts as detecting each planted anomaly or scenario: (conflict kind, detail key, value).
TARGETS: dict[str, tuple[str, str | None, object]] = {
    "invalid_nik": ("invalid_identity", "codes", None),  # None: the answer entry's code
    "nik_sex_mismatch": ("invalid_identity", "codes", "nik_sex_mismatch"),
    "nik_birth_date_mismatch": ("invalid_identity", "codes", "nik_birth_date_mismatch"),
    "duplicate_nik": ("duplicate_identity", "code", "nik_other_family"),
    "duplicate_kk": ("duplicate_identity", "code", "kk_other_family"),
    "aid_with_car": ("inclusion_error", "reason", "car"),
    "aid_with_pns": ("inclusion_error", "reason", "pns"),
    "exclusion_no_aid": ("exclusion_error", "reason", "no_aid"),
    "fab_impossible_travel": ("impossible_travel", None, None),
    "fab_photo_same": ("photo_reused", "match", "sha256"),
    "fab_photo_similar": ("photo_reused", "match", "phash"),
    "fab_gps_elsewhere": ("location_outside_area", None, None),
    "fab_gps_far": ("location_far", None, None),
    "fab_too_short": ("visit_too_short", None, None),
    "fab_photo_cropped": ("photo_reused", "match", "phash"),
    "change_died": ("field_mismatch", None, None),
    "change_moved": ("field_mismatch", None, None),
    "change_baby": ("field_mismatch", None, None),
    "change_roof_better": ("field_mismatch", None, None),
    "change_roof_worse": ("exclusion_error", "reason", "housing_worse"),
    "change_address": ("applied", None, None),  # verified, the new address written back
    "change_family_moved": ("household_not_found", None, None),
}
PLANTED = tuple(ANOMALY_CONFLICTS)


@dataclasses.dataclass
class SimVisit:
    """One simulated visit: the push payload, its photos' bytes and its ground truth."""

    visit: dict
    images: dict[str, bytes]           # sha256 -> JPEG bytes, uploaded before the push
    enumerator: int
    day: int
    scenario: str                      # "confirm", a SCENARIO_SHARES key, or "planted"
    planted: str | None = None         # the family's planted anomaly kind
    planted_code: str | None = None    # the identity code the answer file expects
    expected: frozenset[str] = frozenset()
    duplicate_source: bool = False     # the earlier family of a planted duplicate pair

    @property
    def uuid(self) -> str:
        return self.visit["uuid"]

    @property
    def household_id(self) -> str:
        return self.visit["household_id"]

    @property
    def honest(self) -> bool:
        return self.scenario not in FABRICATED

    @property
    def clean(self) -> bool:
        """Honest, and the family carries no planted anomaly (the false-positive base)."""
        return self.honest and self.planted is None

    @property
    def kind(self) -> str | None:
        """The planted or scenario kind whose recall this visit counts towards."""
        return self.planted or (self.scenario if self.scenario in TARGETS else None)


@dataclasses.dataclass
class Plan:
    visits: list[SimVisit]
    routes: list[list[str]]            # enumerator index -> household ids in visit order
    kecamatan: list[str]               # enumerator index -> kecamatan code

    def days(self) -> list[int]:
        return sorted({v.day for v in self.visits})


# --- photos -------------------------------------------------------------------------------


def photo(seed: int | str, size: tuple[int, int] = (320, 240)) -> bytes:
    """A real JPEG of a random smooth scene with a few shapes; its perceptual hash is
    effectively random, so two seeds give photos far apart (dozens of bits of 64)."""
    rng = random.Random(f"photo:{seed}")
    small = Image.new("RGB", (8, 6))
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(48)])
    img = small.resize(size, Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle([x, y, x + rng.randrange(10, 80), y + rng.randrange(10, 60)],
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def near_copy(data: bytes, seed: int | str, crop: float = 0.0) -> bytes:
    """The same picture (less ``crop`` of each side) resized (60-90%) and re-encoded at a lower
    quality: other bytes, a perceptual hash a few bits away (0-2 uncropped)."""
    rng = random.Random(f"copy:{seed}")
    img = Image.open(io.BytesIO(data))
    if crop:
        w, h = img.size
        img = img.crop((int(w * crop), int(h * crop), int(w * (1 - crop)), int(h * (1 - crop))))
    f = rng.uniform(0.6, 0.9)
    img = img.resize((int(img.width * f), int(img.height * f)), Image.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=rng.randrange(55, 75))
    return out.getvalue()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --- geography ----------------------------------------------------------------------------


def _offset(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / 111_320
    dlon = metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _route(records: list[dict]) -> list[dict]:
    """Families of one kelurahan in nearest-neighbour order from the first by id."""
    left = sorted(records, key=lambda r: r["id_keluarga"])
    out = [left.pop(0)]
    while left:
        last = out[-1]
        i = min(range(len(left)), key=lambda j: haversine_m(last["lat"], last["lon"],
                                                            left[j]["lat"], left[j]["lon"]))
        out.append(left.pop(i))
    return out


# --- the plan -----------------------------------------------------------------------------


def _aid(record: dict, config: Config) -> bool:
    prog = record.get("program") or {}
    return any(prog.get(p) is True for p in config.aid_programs)


# Broken NIKs the form's pattern ([0-9]{16}) cannot hold: the visit carries the corrected one.
UNTYPEABLE_NIK = frozenset({"nik_wrong_length", "nik_not_digits"})


def _corrected_nik(bad: str, taken: set[str]) -> str:
    """The NIK as the family card would show it: the broken digit or the lost last digit
    replaced so the number is whole again (serial not zero, unique)."""
    digits = "".join(c if c.isdigit() else "_" for c in bad)[:16]
    for fill in "1234567890":
        nik = (digits.replace("_", fill) + fill)[:16]
        if nik not in taken and nik[12:] != "0000":
            taken.add(nik)
            return nik
    raise RuntimeError("no free NIK")


def _new_nik(record: dict, born: dt.date, sex: str, taken: set[str]) -> str:
    region = record["kode_kelurahan"][:8].replace(".", "")
    day = born.day + (40 if sex == "P" else 0)
    prefix = f"{region}{day:02d}{born.month:02d}{born.year % 100:02d}"
    for serial in range(9001, 10000):
        nik = f"{prefix}{serial:04d}"
        if nik not in taken:
            taken.add(nik)
            return nik
    raise RuntimeError("no free NIK serial")


class _Planner:
    def __init__(self, form, records: list[dict], anomalies: list[dict], seed: int,
                 config: Config):
        self.form, self.config = form, config
        self.rng = random.Random(f"{seed}:simulator")
        self.records = {r["id_keluarga"]: r for r in records}
        self.planted = {a["id_keluarga"]: a for a in anomalies}
        self.sources = {a["other_id_keluarga"] for a in anomalies if a.get("other_id_keluarga")}
        self.niks = {m.get("nik") for r in records for m in r.get("anggota") or ()}
        kels = {r["kode_kelurahan"] for r in records}
        self.samplers: dict[str, PointSampler] = load_samplers(kels)
        self.all_samplers: dict[str, PointSampler] | None = None
        self.photo_serial = 0

    def other_sampler(self, code: str) -> tuple[str, PointSampler]:
        if self.all_samplers is None:
            from sync.areas import read_areas

            codes = [a["code"] for a in read_areas() if a["level"] == "kelurahan"]
            self.all_samplers = load_samplers(codes)
        # another kelurahan of another kecamatan: clearly elsewhere
        choices = sorted(c for c in self.all_samplers if c[:8] != code[:8])
        c = self.rng.choice(choices)
        return c, self.all_samplers[c]


def plan_visits(form, records: Iterable[dict], anomalies: Iterable[dict], *, seed: int = 7,
                per_enumerator: int = 40, per_day: int = 8, start: dt.date = START_DATE,
                shares: dict[str, float] | None = None, config: Config = DEFAULT,
                versions: dict[str, int] | None = None) -> Plan:
    """The round's visits for ``records`` (verified docs), in push order, with ground truth.

    ``anomalies`` is the generator's answer file (``anomalies.jsonl`` entries); ``versions``
    maps a household to its verified version (default 1), the visits' ``base_version``.
    """
    records = list(records)
    p = _Planner(form, records, list(anomalies), seed, config)
    rng = p.rng
    shares = SCENARIO_SHARES if shares is None else shares

    # Routes: per kecamatan, kelurahan by kelurahan, cut into enumerators and days.
    by_kec: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_kec[r["kode_kelurahan"][:8]][r["kode_kelurahan"]].append(r)
    routes, kec_of = [], []
    slots = []  # (enumerator, day, position in day, record)
    for kec in sorted(by_kec):
        walk = [r for kel in sorted(by_kec[kec]) for r in _route(by_kec[kec][kel])]
        for i in range(0, len(walk), per_enumerator):
            e = len(routes)
            chunk = walk[i:i + per_enumerator]
            routes.append([r["id_keluarga"] for r in chunk])
            kec_of.append(kec)
            for n, r in enumerate(chunk):
                slots.append((e, n // per_day, n % per_day, r))

    # Scenarios.
    scenario: dict[str, str] = {}
    eligible = [s for s in slots if s[3]["id_keluarga"] not in p.planted
                and s[3]["id_keluarga"] not in p.sources]
    n_eligible = len(eligible)
    prev_of = {}
    for (e, d, _k, r), nxt in zip(slots, slots[1:], strict=False):
        if nxt[0] == e and nxt[1] == d:
            prev_of[nxt[3]["id_keluarga"]] = r
    ok_hids = {s[3]["id_keluarga"] for s in eligible}
    order = eligible[:]
    rng.shuffle(order)
    blocked: set[str] = set()  # predecessors of impossible-travel visits keep their true point
    for name, share in shares.items():
        want = int(share * n_eligible + 0.5)
        got = 0
        for _e, d, _k, r in order:
            if got >= want:
                break
            hid = r["id_keluarga"]
            if hid in scenario:
                continue
            if not _applies(name, r, d, prev_of.get(hid), ok_hids, scenario, blocked):
                continue
            scenario[hid] = name
            if name == "fab_impossible_travel":
                blocked.add(prev_of[hid]["id_keluarga"])
            got += 1

    # Visits, in route order, with times and points.
    visits: list[SimVisit] = []
    done_by_day: dict[int, list[SimVisit]] = defaultdict(list)  # photo sources
    last: dict[int, tuple[dt.datetime, tuple[float, float]]] = {}
    versions = versions or {}
    for e, d, k, r in slots:
        hid = r["id_keluarga"]
        name = scenario.get(hid, "planted" if hid in p.planted else "confirm")
        day = start + dt.timedelta(days=d)
        sv = _build(p, r, name, versions.get(hid, 1), day, e, d)
        point = (sv.visit["location"]["lat"], sv.visit["location"]["lon"])
        if k == 0 or e not in last:
            begin = dt.datetime.combine(day, dt.time(8, 0), WIB) + dt.timedelta(
                minutes=rng.randint(0, 40))
        else:
            prev_end, prev_point = last[e]
            km = haversine_m(*prev_point, *point) / 1000
            if name == "fab_impossible_travel":
                begin = prev_end + dt.timedelta(seconds=rng.randint(45, 90))
            else:
                speed = rng.uniform(10, 20)  # km/h: motorbike in Jakarta traffic, on foot
                begin = prev_end + dt.timedelta(hours=km / speed,
                                                minutes=rng.randint(3, 12))
        if name == "fab_too_short":
            seconds = rng.randint(60, 220)
        elif name == "change_family_moved":
            seconds = rng.randint(240, 600)
        else:
            seconds = rng.randint(12 * 60, 38 * 60)
        end = begin + dt.timedelta(seconds=seconds)
        sv.visit["started_at"] = begin.replace(microsecond=0).isoformat()
        sv.visit["ended_at"] = end.replace(microsecond=0).isoformat()
        last[e] = (end, point)
        if name in ("fab_photo_same", "fab_photo_similar", "fab_photo_cropped"):
            _reuse_photo(p, sv, [v for dd in range(d) for v in done_by_day[dd]
                                 if v.household_id != hid and v.images])
        visits.append(sv)
        if sv.honest:
            done_by_day[d].append(sv)
    visits.sort(key=lambda v: (v.day, v.enumerator, v.visit["started_at"]))
    return Plan(visits, routes, kec_of)


def _applies(name: str, r: dict, day: int, prev: dict | None, ok: set[str],
             scenario: dict[str, str], blocked: set[str]) -> bool:
    hid = r["id_keluarga"]
    members = r.get("anggota") or []
    atap = (r.get("rumah") or {}).get("atap")
    if name == "fab_impossible_travel":
        return (prev is not None and prev["id_keluarga"] in ok
                and prev["id_keluarga"] not in scenario and hid not in blocked
                and haversine_m(prev["lat"], prev["lon"], r["lat"], r["lon"]) >= 2500)
    if name in ("fab_gps_elsewhere", "fab_gps_far"):
        return hid not in blocked
    if name in ("fab_photo_same", "fab_photo_similar", "fab_photo_cropped"):
        return day >= 1  # the copied photo comes from a visit of an earlier day
    if name in ("change_died", "change_moved"):
        return len(members) >= 2
    if name == "change_roof_better":
        return atap in (3, 4)
    if name == "change_roof_worse":
        return atap in (1, 2)
    return True


def _build(p: _Planner, record: dict, name: str, version: int, day: dt.date, e: int,
           d: int) -> SimVisit:
    """The visit for one family: example_visit on the record, then the scenario's change."""
    rng, config = p.rng, p.config
    hid = record["id_keluarga"]
    rec = json.loads(json.dumps(record))
    baby = None
    if name == "change_baby":
        sex = "L" if rng.random() < 0.51 else "P"
        born = day - dt.timedelta(days=rng.randint(20, 300))
        first = rng.choice(("Muhammad Rafa", "Aisyah Putri", "Alif", "Nabila", "Rizky",
                            "Zahra", "Arka", "Kirana"))
        baby = {"nik": _new_nik(record, born, sex, p.niks), "nama": first,
                "jenis_kelamin": sex, "tanggal_lahir": born.isoformat(), "hubungan": 3,
                "status_kawin": 1, "pekerjaan": 0, "sekolah": 0, "disabilitas": False,
                "penyakit_kronis": False}
        rec["anggota"].append(baby)
    visit = forms.example_visit(p.form, rec, uuid=str(uuidlib.UUID(int=rng.getrandbits(128))),
                                started_at=f"{day.isoformat()}T08:00:00+07:00")
    visit["household_id"] = hid
    visit["base_version"] = visit["trunk_version"] = version
    visit["branch_id"] = str(uuidlib.UUID(int=rng.getrandbits(128)))
    answers = visit["answers"]
    members = answers.get("anggota") or []
    aid = _aid(record, config)
    expected: set[str] = set()
    entry = p.planted.get(hid)
    if entry is not None:
        expected.add(entry["conflict_kind"])
    source = hid in p.sources
    if source:
        expected.add("duplicate_identity")

    if entry is not None and entry.get("code") in UNTYPEABLE_NIK:
        # The form takes 16 digits only: the enumerator types the NIK from the family card,
        # which proposes the correction (a field_mismatch on that member's NIK).
        m = members[entry["member_index"]]
        m["nik"] = _corrected_nik(record["anggota"][entry["member_index"]]["nik"], p.niks)
        expected = {"field_mismatch"}
    if name == "change_baby":
        members[-1]["status_keberadaan"] = 5
        expected.add("field_mismatch")
    elif name in ("change_died", "change_moved"):
        i = rng.randrange(1, len(members))
        members[i]["status_keberadaan"] = 2 if name == "change_died" else rng.choice((3, 3, 4))
        expected.add("field_mismatch")
        if aid:
            expected.add("deceased_receiving_aid" if name == "change_died"
                         else "moved_receiving_aid")
    elif name in ("change_roof_better", "change_roof_worse"):
        answers["rumah"]["atap"] = 2 if name == "change_roof_better" else rng.choice((3, 4))
        expected.add("field_mismatch")
        if name == "change_roof_worse":
            expected.add("exclusion_error")
    elif name == "change_address":
        answers["alamat"] = f"{answers.get('alamat') or 'Jl. Baru'} (Blok {rng.choice('ABCD')})"
        answers["rt"] = f"{(int(answers.get('rt') or 1) % 15) + 1:03d}"
    elif name == "change_family_moved":
        answers["hasil_kunjungan"] = rng.choice((4, 4, 5))
        expected.add("household_not_found")
        if aid:
            expected.add("moved_receiving_aid")

    # The GPS point: near the registered point (within the reported accuracy), or elsewhere.
    # Phones report accuracy as a 68% radius: 4-15 m outdoors, 15-45 m under roofs (a fifth).
    acc = round(rng.uniform(4, 15) if rng.random() < 0.8 else rng.uniform(15, 45), 1)
    lat, lon = record["lat"], record["lon"]
    if name == "fab_gps_elsewhere":
        _code, sampler = p.other_sampler(record["kode_kelurahan"])
        lat, lon = sampler.sample(rng)
        expected |= {"location_outside_area", "location_far"}
    elif name == "fab_gps_far":
        sampler = p.samplers[record["kode_kelurahan"]]
        best = None
        for _ in range(200):
            y, x = sampler.sample(rng)
            dist = haversine_m(lat, lon, y, x)
            if dist >= config.far_distance_m + acc + 150 and \
                    distance_outside_m(record["kode_kelurahan"], y, x) == 0.0:
                best = (y, x)
                break
        if best is None:  # a small kelurahan: just across its edge, far enough
            y, x = _offset(lat, lon, config.far_distance_m + acc + 250, rng.uniform(0, 6.28))
            best = (y, x)
            if (distance_outside_m(record["kode_kelurahan"], y, x) or 0) > \
                    acc + config.area_margin_m:
                expected.add("location_outside_area")
        lat, lon = best
        expected.add("location_far")
    else:  # the error of a 2-D Gaussian fix (Rayleigh radius), 68% of them within acc
        sigma = acc / 1.51
        error = sigma * math.sqrt(-2 * math.log(1 - rng.random()))
        lat, lon = _offset(lat, lon, error, rng.uniform(0, 6.28))
    loc = {"lat": lat, "lon": lon, "accuracy_m": acc}
    visit["location"] = loc
    if "lokasi" in answers:
        answers["lokasi"] = dict(loc)

    if name == "fab_impossible_travel":
        expected.add("impossible_travel")
    elif name == "fab_too_short":
        expected.add("visit_too_short")
    elif name in ("fab_photo_same", "fab_photo_similar", "fab_photo_cropped"):
        expected.add("photo_reused")

    # Photos: a new picture for every photo question (ingest drops those not relevant).
    images = {}
    for ph in visit["photos"]:
        p.photo_serial += 1
        data = photo(f"{hid}:{ph['field']}:{p.photo_serial}")
        ph["sha256"] = _sha(data)
        images[ph["sha256"]] = data
    sv = SimVisit(visit=visit, images=images, enumerator=e, day=d, scenario=name,
                  planted=entry["kind"] if entry else None,
                  planted_code=entry.get("code") if entry else None,
                  expected=frozenset(expected), duplicate_source=source)
    return sv


def _reuse_photo(p: _Planner, sv: SimVisit, sources: list[SimVisit]) -> None:
    """Replace the front photo by another family's (same bytes or a near copy)."""
    if not sources:
        raise RuntimeError("no earlier visit to copy a photo from")
    src = p.rng.choice(sources)
    src_photo = next(ph for ph in src.visit["photos"] if ph["field"] == "foto_depan")
    data = src.images[src_photo["sha256"]]
    if sv.scenario == "fab_photo_similar":
        data = near_copy(data, sv.uuid)
    elif sv.scenario == "fab_photo_cropped":
        data = near_copy(data, sv.uuid, crop=0.02)
    mine = next(ph for ph in sv.visit["photos"] if ph["field"] == "foto_depan")
    sv.images.pop(mine["sha256"], None)
    mine["sha256"] = _sha(data)
    sv.images[mine["sha256"]] = data


# --- running it ---------------------------------------------------------------------------


@dataclasses.dataclass
class RunStats:
    pushed: int = 0
    statuses: Counter = dataclasses.field(default_factory=Counter)  # ingest results
    photos: int = 0
    reconciled: int = 0
    seconds: dict = dataclasses.field(default_factory=lambda: defaultdict(float))


def run(session, plan: Plan, *, users: list[int], upload: Callable[[bytes, int], None],
        config: Config = DEFAULT, worker: str = "detect", batch: int = 25,
        clock: Callable[[], float] | None = None) -> RunStats:
    """Play the round day by day: each enumerator uploads the day's photos and pushes the
    day's visits through ``sync.ingest.ingest_batch``; then the worker drains the queue (as
    a scheduler would overnight), so a photo copied from an earlier day's visit meets a
    visit already reconciled. ``users[e]`` is enumerator ``e``'s user id; ``upload(data,
    user_id)`` stores a photo through the real photo store."""
    import time

    from sync.ingest import ingest_batch
    from sync.reconcile.worker import drain

    clock = clock or time.perf_counter
    stats = RunStats()
    by_day: dict[int, dict[int, list[SimVisit]]] = defaultdict(lambda: defaultdict(list))
    for v in plan.visits:
        by_day[v.day][v.enumerator].append(v)
    for day in sorted(by_day):
        for e, visits in sorted(by_day[day].items()):
            uid = users[e]
            t0 = clock()
            for v in visits:
                for data in v.images.values():
                    upload(data, uid)
                    stats.photos += 1
            t1 = clock()
            for i in range(0, len(visits), batch):
                chunk = [v.visit for v in visits[i:i + batch]]
                body = json.dumps({"visits": chunk}).encode()
                results = ingest_batch(session, user_id=uid, device_id=f"sim-{e}",
                                       batch_id=str(uuidlib.uuid4()), raw_body=body,
                                       visits=chunk)
                stats.pushed += len(chunk)
                stats.statuses.update(r.status for r in results)
            t2 = clock()
            stats.seconds["upload"] += t1 - t0
            stats.seconds["ingest"] += t2 - t1
        t3 = clock()
        stats.reconciled += drain(session, worker=worker, config=config)
        stats.seconds["reconcile"] += clock() - t3
    return stats


# --- scoring ------------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    rows: list[dict]            # per planted/fabricated/change kind
    precision: list[dict]       # per conflict kind
    clean: int
    clean_flagged: int
    unexpected: Counter         # conflict kind -> clean visits that got it unexpectedly
    statuses: Counter           # visit status after reconciliation
    examples: list[dict]        # a few unexpected findings (uuid, household, kinds)

    @property
    def false_positive_rate(self) -> float:
        return self.clean_flagged / self.clean if self.clean else 0.0


def _detected(v: SimVisit, found: list[dict], status: str, applied: dict) -> bool:
    kind = v.kind
    want, key, value = TARGETS[kind]
    if want == "applied":
        return status == "verified" and "alamat" in (applied or {})
    if kind == "invalid_nik":
        value = v.planted_code
        if value in UNTYPEABLE_NIK:  # detected as the proposed correction of that NIK
            return any(c["kind"] == "field_mismatch" and (c.get("field") or "").endswith(".nik")
                       for c in found)
    for c in found:
        if c["kind"] != want:
            continue
        if key is None:
            return True
        got = (c.get("detail") or {}).get(key)
        if got == value or (isinstance(got, list) and value in got):
            return True
    return False


def score(session, plan: Plan) -> Report:
    """Compare the stored conflicts of the plan's visits with their ground truth."""
    from sqlalchemy import select

    from sync.models.conflict import Conflict
    from sync.models.visit import Visit

    uuids = [v.uuid for v in plan.visits]
    found: dict[str, list[dict]] = defaultdict(list)
    status: dict[str, tuple[str, dict]] = {}
    for i in range(0, len(uuids), 500):
        chunk = uuids[i:i + 500]
        for uuid, kind, field, detail in session.execute(
                select(Conflict.visit_uuid, Conflict.kind, Conflict.field, Conflict.detail)
                .where(Conflict.visit_uuid.in_(chunk))):
            found[uuid].append({"kind": kind, "field": field, "detail": detail or {}})
        for uuid, st, comparison in session.execute(
                select(Visit.uuid, Visit.status, Visit.comparison).where(Visit.uuid.in_(chunk))):
            comp = comparison if isinstance(comparison, dict) else json.loads(comparison or "{}")
            status[uuid] = (st, comp.get("applied") or {})

    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    raised: Counter = Counter()
    right: Counter = Counter()
    unexpected: Counter = Counter()
    clean = flagged = 0
    examples = []
    for v in plan.visits:
        got = {c["kind"] for c in found.get(v.uuid, ())}
        st, applied = status.get(v.uuid, ("missing", {}))
        if v.kind is not None:
            per_kind[v.kind][0] += 1
            per_kind[v.kind][1] += _detected(v, found.get(v.uuid, []), st, applied)
        for k in got:
            raised[k] += 1
            right[k] += k in v.expected
        extra = got - v.expected
        if v.clean:
            clean += 1
            if extra:
                flagged += 1
                unexpected.update(extra)
        if extra and len(examples) < 20:
            examples.append({"uuid": v.uuid, "household_id": v.household_id,
                             "scenario": v.scenario, "planted": v.planted,
                             "unexpected": sorted(extra), "expected": sorted(v.expected)})
    order = [*PLANTED, *[k for k in SCENARIO_SHARES if k in FABRICATED],
             *[k for k in SCENARIO_SHARES if k not in FABRICATED]]
    rows = []
    for kind in order:
        n, hit = per_kind.get(kind, (0, 0))
        group = "planted" if kind in PLANTED else "probe" if kind in PROBES \
            else "fabricated" if kind in FABRICATED else "change"
        rows.append({"kind": kind, "group": group, "target": TARGETS[kind][0], "planted": n,
                     "detected": hit, "recall": hit / n if n else None})
    precision = [{"kind": k, "raised": raised[k], "expected": right[k],
                  "precision": right[k] / raised[k]} for k in sorted(raised)]
    statuses = Counter(st for st, _ in status.values())
    return Report(rows, precision, clean, flagged, unexpected, statuses, examples)


RECALL_TARGET = 0.95
FP_TARGET = 0.02


def passed(report: Report) -> dict[str, bool]:
    """PASS/FAIL per target: recall of every planted and fabricated kind, the clean rate."""
    out = {f"recall {r['kind']}": r["recall"] is not None and r["recall"] >= RECALL_TARGET
           for r in report.rows if r["group"] in ("planted", "fabricated")}
    out["false positives on clean visits"] = report.false_positive_rate <= FP_TARGET
    return out


def format_report(report: Report) -> str:
    lines = [f"{'kind':<26} {'group':<10} {'conflict':<22} {'planted':>7} {'detected':>8} "
             f"{'recall':>7}  target"]
    for r in report.rows:
        recall = "-" if r["recall"] is None else f"{r['recall']:.3f}"
        verdict = ""
        if r["group"] in ("planted", "fabricated"):
            verdict = "PASS" if r["recall"] is not None and r["recall"] >= RECALL_TARGET \
                else "FAIL"
        lines.append(f"{r['kind']:<26} {r['group']:<10} {r['target']:<22} {r['planted']:>7} "
                     f"{r['detected']:>8} {recall:>7}  {verdict}")
    fp = report.false_positive_rate
    lines += ["", f"clean visits: {report.clean}, with an unexpected conflict: "
              f"{report.clean_flagged} ({fp:.2%})  target <= {FP_TARGET:.0%}: "
              f"{'PASS' if fp <= FP_TARGET else 'FAIL'}"]
    if report.unexpected:
        lines.append("  unexpected on clean visits: " + ", ".join(
            f"{k} {n}" for k, n in report.unexpected.most_common()))
    lines += ["", f"{'conflict kind':<24} {'visits':>7} {'expected':>8} {'precision':>9}"]
    for r in report.precision:
        lines.append(f"{r['kind']:<24} {r['raised']:>7} {r['expected']:>8} "
                     f"{r['precision']:>9.3f}")
    lines.append("")
    lines.append("visit outcomes: " + ", ".join(f"{k} {n}" for k, n in
                                                 sorted(report.statuses.items())))
    return "\n".join(lines)
