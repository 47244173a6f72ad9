"""Synthetic DTSEN extracts for the priority kecamatan, with planted anomalies and their answers.

``iter_families(count, seed)`` yields families in the extract's shape (the canonical record of
``sync.registry``: every field of ``sync.models.registry`` present), sorted by ``id_keluarga`` so
the CSV files can be streamed in step. The same seed gives the same families: every draw comes
from one seeded ``random.Random`` and ages are counted from a fixed extract date (``AS_OF``), not
from today.

What the base data looks like (documented in docs/registry.md): family sizes 1-10 with mean
about 4.5; NIKs that agree with sex and birth date, from the family's kecamatan (85%), another
Jakarta kecamatan (7%) or another province (8%), unique; unique KK numbers; points uniformly
inside the kelurahan polygon; desil skewed low; Regsosek codes drawn by desil; aid following
desil. The base obeys the rules reconciliation checks (desil 1-4 always receive some aid, PKH only
up to desil 4 and BPNT/PBI-JK only up to desil 5, no aid goes to a family with a car or a
PNS/TNI/Polri/BUMN member), so every breach in the output is
one of the planted anomalies listed in ``ANOMALY_SHARES`` and written to the answer file.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import json
import random
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import shapely
from shapely.geometry import shape

from sync.areas import KELURAHAN_GEOJSON, PRIORITY_KECAMATAN, read_areas
from sync.models.registry import PEKERJAAN_PNS
from sync.registry import FAMILY_PATHS, GROUP_FIELDS, MEMBER_KEYS, TOP_FIELDS

# The extract's date: ages and KK entry dates are counted from here, so output never drifts.
AS_OF = dt.date(2025, 6, 30)

# Share of families carrying each planted anomaly (exact: round(share * count) families, at
# most one anomaly a family, never the first family), and the conflict kind it should raise.
ANOMALY_SHARES: dict[str, float] = {
    "invalid_nik": 0.010,
    "nik_sex_mismatch": 0.005,
    "nik_birth_date_mismatch": 0.005,
    "duplicate_nik": 0.004,
    "duplicate_kk": 0.003,
    "aid_with_car": 0.005,
    "aid_with_pns": 0.005,
    "exclusion_no_aid": 0.010,
}
ANOMALY_CONFLICTS = {
    "invalid_nik": "invalid_identity",
    "nik_sex_mismatch": "invalid_identity",
    "nik_birth_date_mismatch": "invalid_identity",
    "duplicate_nik": "duplicate_identity",
    "duplicate_kk": "duplicate_identity",
    "aid_with_car": "inclusion_error",
    "aid_with_pns": "inclusion_error",
    "exclusion_no_aid": "exclusion_error",
}
# How an invalid NIK is broken, and the identity reason it must raise.
INVALID_NIK_CODES = {
    "bad_date": "nik_birth_date_invalid",
    "wrong_length": "nik_wrong_length",
    "serial_zero": "nik_serial_zero",
    "unknown_region": "nik_region_unknown",
    "not_digits": "nik_not_digits",
}

# Rough share of the priority kecamatan's registry families (others get the mean).
KECAMATAN_WEIGHTS = {
    "31.73.01": 16, "31.73.06": 13, "31.73.04": 8, "31.74.09": 11, "31.71.08": 4,
    "31.75.03": 9, "31.72.01": 10, "31.72.05": 5, "31.72.02": 13, "31.01.02": 1,
}
SIZE_WEIGHTS = [5, 9, 16, 22, 20, 13, 8, 4, 2, 1]  # sizes 1..10, mean about 4.5
DESIL_WEIGHTS = [22, 18, 15, 12, 10, 8, 6, 4, 3, 2]  # desil 1..10, skewed low
# Provinces that send people to Jakarta, for NIKs registered elsewhere.
ORIGIN_PROVINCES = ["32", "33", "36", "35", "12", "16", "18", "34", "13", "73", "21", "61"]

MALE = ("Ahmad Agus Andi Anton Ari Arief Bambang Budi Dani Darmawan Dedi Deni Dimas Eko Fajar "
        "Faisal Hadi Hendra Heru Ilham Imam Indra Irfan Joko Kurniawan Lukman Muhammad Nur "
        "Rahmat Rizki Rudi Sigit Slamet Sugeng Supriyadi Suryadi Taufik Teguh Wahyu Yusuf "
        "Zainal Hasan Ridwan Bayu Aditya Rendi Farhan Rafi Alif").split()
FEMALE = ("Siti Sri Dewi Ani Ayu Dian Endang Fitri Indah Intan Kartika Lestari Lina Maya Mega "
          "Nur Nurul Putri Ratna Rina Rini Rosita Sari Suharti Sumiati Tuti Wati Wulan Yanti "
          "Yuli Yuni Aisyah Annisa Citra Dinda Eka Fatimah Halimah Khadijah Nabila Salsabila "
          "Zahra Aminah Kurniasih Mulyani Suryani Rohmah Anisa").split()
SURNAMES = ("Santoso Wijaya Saputra Setiawan Hidayat Pratama Nugroho Kusuma Lestari Rahayu "
            "Susanti Hakim Siregar Nasution Simanjuntak Harahap Lubis Sihombing Gunawan "
            "Firmansyah Ramadhan Hasibuan Wibowo Purnomo Hartono Utomo Sutrisno Suhendra "
            "Maulana Fauzi Aminah Rohman Syahputra Permana Hermawan Iskandar").split()
STREETS = ("Kamal Raya|Daan Mogot|Peta Selatan|Utama|Masjid|Kapuk Raya|Bangun Nusa|Semanan Raya"
           "|Tegal Alur|Pedongkelan|Angke|Jembatan Lima|Pekojan|Tanah Sereal|Moh. Kahfi"
           "|Lenteng Agung|Srengseng Sawah|Johar Baru|Tanah Tinggi|Kampung Melayu|Bekasi Timur"
           "|Cipinang Jaya|Muara Baru|Pluit Karang|Pademangan Raya|Ancol Selatan|Enggano"
           "|Sungai Bambu|Warakas|Papanggo|Mawar|Melati|Kenanga|Anggrek|Kelapa Gading"
           "|Pulau Tidung|Pulau Pari|Swadaya|Kebon Pala|Haji Ung").split("|")
ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"]


def _weighted(pairs: dict):
    """(values, cumulative weights) for ``random.choices``-style draws with bisect."""
    values = list(pairs)
    cum, total = [], 0.0
    for v in values:
        total += pairs[v]
        cum.append(total)
    return values, cum, total


def _draw(rng: random.Random, table) -> object:
    values, cum, total = table
    return values[bisect.bisect_right(cum, rng.random() * total)]


SIZES = _weighted({i + 1: w for i, w in enumerate(SIZE_WEIGHTS)})
DESILS = _weighted({i + 1: w for i, w in enumerate(DESIL_WEIGHTS)})
STATUS_BANGUNAN = _weighted({1: 45, 2: 38, 3: 13, 4: 1, 5: 3})
LANTAI_POOR = _weighted({6: 35, 4: 20, 2: 40, 5: 3, 8: 2})
LANTAI_RICH = _weighted({2: 75, 1: 10, 4: 10, 3: 5})
DINDING = _weighted({1: 90, 3: 7, 2: 2, 4: 1})
ATAP = _weighted({3: 35, 2: 35, 4: 20, 1: 10})
AIR_AID = _weighted({2: 60, 3: 25, 4: 15})
AIR_NO_AID = _weighted({2: 50, 3: 25, 4: 10, 1: 15})
PENERANGAN = _weighted({1: 95, 2: 5})
DAYA_POOR = _weighted({450: 45, 900: 50, 1300: 5})
DAYA_RICH = _weighted({900: 30, 1300: 40, 2200: 20, 3500: 10})
BAHAN_POOR = _weighted({4: 90, 7: 3, 1: 2, 0: 5})
BAHAN_RICH = _weighted({4: 50, 3: 30, 2: 10, 1: 10})
BAB = _weighted({1: 70, 2: 15, 3: 8, 4: 7})
PEKERJAAN = _weighted({0: 30, 1: 18, 2: 3, 3: 1, 4: 33, 6: 1, 7: 12, 8: 2})
HEAD_AGE = _weighted({(22, 29): 10, (30, 39): 25, (40, 49): 27, (50, 59): 20, (60, 69): 12,
                      (70, 85): 6})
ORIGIN = _weighted({p: 12 - i for i, p in enumerate(ORIGIN_PROVINCES)})
# Program receipt by desil: (pkh, bpnt, pbi_jk, bansos_daerah) probabilities. They respect the
# targeting thresholds reconciliation checks (sync.reconcile.config): PKH only up to desil 4,
# BPNT/Sembako and PBI-JK only up to desil 5; above that only the province's own aid.
PROGRAMS = {1: (0.55, 0.75, 0.92, 0.35), 2: (0.55, 0.75, 0.92, 0.35),
            3: (0.30, 0.55, 0.80, 0.20), 4: (0.30, 0.55, 0.80, 0.20),
            5: (0.0, 0.15, 0.35, 0.05), 6: (0.0, 0.0, 0.0, 0.05)}
NO_PROGRAMS = (0.0, 0.0, 0.0, 0.0)  # desil 7-10


def _band(desil: int) -> int:
    return 1 if desil <= 2 else 2 if desil <= 4 else 3 if desil <= 6 else 4


class PointSampler:
    """Uniform points inside one kelurahan: pick a polygon part by area, then draw within its
    bounds until a (rounded) point falls inside. Parts are prepared once."""

    def __init__(self, geometry):
        parts = list(getattr(geometry, "geoms", [geometry]))
        self.parts = []
        for part in parts:
            shapely.prepare(part)
            minx, miny, maxx, maxy = part.bounds
            self.parts.append((part, minx, miny, maxx - minx, maxy - miny))
        self.table = _weighted({i: p.area for i, p in enumerate(parts)})
        self.fallback = geometry.representative_point()

    def sample(self, rng: random.Random) -> tuple[float, float]:
        """(lat, lon) rounded to 6 decimals (about 0.1 m), inside the polygon."""
        part, minx, miny, w, h = self.parts[_draw(rng, self.table)]
        for _ in range(1000):
            x = round(minx + rng.random() * w, 6)
            y = round(miny + rng.random() * h, 6)
            if shapely.contains_xy(part, x, y):
                return y, x
        return round(self.fallback.y, 6), round(self.fallback.x, 6)


def load_samplers(codes: Iterable[str], path: Path = KELURAHAN_GEOJSON) -> dict[str, PointSampler]:
    """A point sampler per kelurahan code asked for."""
    wanted = set(codes)
    with open(path, encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    return {
        f["properties"]["kode_kemendagri"]: PointSampler(shape(f["geometry"]))
        for f in features
        if f["properties"]["kode_kemendagri"] in wanted
    }


def _allocate(count: int, kecamatan: list[str]) -> dict[str, int]:
    """Families per kecamatan by weight, largest remainder, deterministic."""
    mean = sum(KECAMATAN_WEIGHTS.values()) / len(KECAMATAN_WEIGHTS)
    weights = {k: KECAMATAN_WEIGHTS.get(k, mean) for k in kecamatan}
    total = sum(weights.values())
    exact = {k: count * w / total for k, w in weights.items()}
    alloc = {k: int(v) for k, v in exact.items()}
    rest = sorted(kecamatan, key=lambda k: (alloc[k] - exact[k], k))
    for k in rest[: count - sum(alloc.values())]:
        alloc[k] += 1
    return alloc


def plan_anomalies(count: int, seed: int) -> dict[int, str]:
    """Which family index carries which anomaly: exact counts, never index 0."""
    counts = {kind: int(share * count + 0.5) for kind, share in ANOMALY_SHARES.items()}
    total = min(sum(counts.values()), max(count - 1, 0))
    rng = random.Random(f"{seed}:anomalies")
    indices = rng.sample(range(1, count), total) if total else []
    plan, pos = {}, 0
    for kind, n in counts.items():
        for index in indices[pos:pos + n]:
            plan[index] = kind
        pos += n
    return plan


class _Families:
    """The state of one generation run: counters that keep NIK and KK numbers unique."""

    def __init__(self, seed: int, as_of: dt.date):
        self.rng = random.Random(seed)
        self.as_of = as_of
        self.as_of_ord = as_of.toordinal()
        self.serials: dict[int, int] = {}  # first 12 digits -> last serial used
        self.jakarta = sorted(
            a["code"].replace(".", "") for a in read_areas() if a["level"] == "kecamatan"
        )

    def number(self, region: str, day: int, date: dt.date) -> str:
        """region + DDMMYY + a serial unique for those 12 digits."""
        prefix = f"{region}{day:02d}{date.month:02d}{date.year % 100:02d}"
        key = int(prefix)
        serial = self.serials.get(key, 0) + 1
        self.serials[key] = serial
        return f"{prefix}{serial:04d}"

    def birth(self, age_min: int, age_max: int) -> dt.date:
        rng = self.rng
        age = age_min + rng.random() * (age_max - age_min + 1)
        return dt.date.fromordinal(self.as_of_ord - int(age * 365.2425) - 1)

    def age(self, born: dt.date) -> int:
        a = self.as_of
        return a.year - born.year - ((a.month, a.day) < (born.month, born.day))

    def nik_region(self, kec6: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.85:
            return kec6
        if r < 0.92:
            return rng.choice(self.jakarta)
        return f"{_draw(rng, ORIGIN)}{rng.randint(1, 20):02d}{rng.randint(1, 30):02d}"

    def member(self, kec6: str, sex: str, born: dt.date, hubungan: int, kawin: int) -> dict:
        rng = self.rng
        age = self.age(born)
        first = rng.choice(MALE if sex == "L" else FEMALE)
        nama = first if rng.random() < 0.3 else f"{first} {rng.choice(SURNAMES)}"
        if age < 5:
            sekolah = 0
        elif age < 7:
            sekolah = 1 if rng.random() < 0.5 else 0
        elif age <= 18:
            sekolah = 1 if rng.random() < 0.95 else 2
        elif age <= 22:
            sekolah = 1 if rng.random() < 0.3 else 2
        else:
            sekolah = 2 if rng.random() < 0.92 else 0
        pekerjaan = 0 if age < 15 or sekolah == 1 or age > 75 else _draw(rng, PEKERJAAN)
        day = born.day + (40 if sex == "P" else 0)
        return {
            "nik": self.number(self.nik_region(kec6), day, born),
            "nama": nama,
            "jenis_kelamin": sex,
            "tanggal_lahir": born.isoformat(),
            "hubungan": hubungan,
            "status_kawin": kawin,
            "pekerjaan": pekerjaan,
            "sekolah": sekolah,
            "disabilitas": rng.random() < 0.025,
            "penyakit_kronis": rng.random() < (0.25 if age >= 50 else 0.04),
        }

    def members(self, kec6: str, size: int, pns: bool) -> list[dict]:
        rng = self.rng
        lo, hi = _draw(rng, HEAD_AGE)
        head_born = self.birth(lo, hi)
        head_age = self.age(head_born)
        head_sex = "L" if rng.random() < 0.82 else "P"
        spouse = size >= 2 and (head_sex == "L" or rng.random() < 0.3) and rng.random() < 0.9
        kawin = 2 if spouse else rng.choice((1, 3, 4, 4))
        out = [self.member(kec6, head_sex, head_born, 1, kawin)]
        if pns:
            out[0]["pekerjaan"] = PEKERJAAN_PNS
        if spouse:
            gap = rng.randint(-8, 2) if head_sex == "L" else rng.randint(-2, 8)
            s_age = max(18, head_age + gap)
            out.append(self.member(kec6, "P" if head_sex == "L" else "L",
                                   self.birth(s_age, s_age), 2, 2))
        while len(out) < size:
            r = rng.random()
            sex = "L" if rng.random() < 0.51 else "P"
            if r < 0.80 or head_age < 40:
                top = max(0, min(head_age - 18, 32))
                born = self.birth(0, top)
                kawin = 2 if self.age(born) >= 20 and rng.random() < 0.3 else 1
                out.append(self.member(kec6, sex, born, 3, kawin))
            elif r < 0.88:
                out.append(self.member(kec6, sex, self.birth(0, 12), 5, 1))
            elif r < 0.95:
                p_age = min(head_age + rng.randint(20, 30), 95)
                out.append(self.member(kec6, sex, self.birth(p_age, p_age), 6,
                                       rng.choice((2, 4, 4))))
            else:
                out.append(self.member(kec6, sex, self.birth(18, 40), rng.choice((4, 7, 8)),
                                       rng.choice((1, 2))))
        return out

    def family(self, fid: str, kec: str, kel: str, point, anomaly: str | None) -> dict:
        rng = self.rng
        kec6 = kec.replace(".", "")
        desil = rng.randint(1, 4) if anomaly == "exclusion_no_aid" else _draw(rng, DESILS)
        band = _band(desil)
        car = band >= 3 and rng.random() < (0.06 if band == 3 else 0.25)
        pns = band >= 3 and rng.random() < (0.04 if band == 3 else 0.12)
        members = self.members(kec6, _draw(rng, SIZES), pns)
        if car or pns or anomaly == "exclusion_no_aid":
            programs = [False, False, False, False]
        else:
            programs = [rng.random() < p for p in PROGRAMS.get(desil, NO_PROGRAMS)]
            if band <= 2 and not any(programs):
                programs[2] = True  # desil 1-4 always get something: at least PBI-JK
        aid = any(programs)
        p = (desil - 1) / 9
        poor = desil <= 4
        penerangan = _draw(rng, PENERANGAN)
        head = members[0]
        head_born = dt.date.fromisoformat(head["tanggal_lahir"])
        kk_from = max(dt.date(2000, 1, 1).toordinal(),
                      head_born.toordinal() + 17 * 366, self.as_of_ord - 9000)
        kk_date = dt.date.fromordinal(rng.randint(min(kk_from, self.as_of_ord), self.as_of_ord))
        lat, lon = point
        rec = {
            "id_keluarga": fid,
            "no_kk": self.number(kec6, kk_date.day, kk_date),
            "kode_kelurahan": kel,
            "alamat": (f"{'Jl.' if rng.random() < 0.7 else 'Gg.'} {rng.choice(STREETS)}"
                       f"{' ' + rng.choice(ROMAN) if rng.random() < 0.2 else ''}"
                       f" No. {rng.randint(1, 150)}"),
            "rt": f"{rng.randint(1, 15):03d}",
            "rw": f"{rng.randint(1, 12):03d}",
            "lat": lat,
            "lon": lon,
            "desil": desil,
            "rumah": {
                "status_bangunan": _draw(rng, STATUS_BANGUNAN),
                "luas_lantai_m2": int(12 + rng.random() * (36 + p * 110)),
                "lantai": _draw(rng, LANTAI_POOR if poor else LANTAI_RICH),
                "dinding": _draw(rng, DINDING),
                "atap": _draw(rng, ATAP),
                "air_minum": _draw(rng, AIR_AID if aid else AIR_NO_AID),
                "penerangan": penerangan,
                "daya_va": _draw(rng, DAYA_POOR if poor else DAYA_RICH)
                if penerangan == 1 else None,
                "bahan_bakar": _draw(rng, BAHAN_POOR if poor else BAHAN_RICH),
                "fasilitas_bab": _draw(rng, BAB),
                "njop_di_atas_1m": (not aid) and desil >= 8 and rng.random() < 0.15,
            },
            "aset": {
                "mobil": car,
                "sepeda_motor": rng.random() < 0.45 + 0.4 * p,
                "lemari_es": rng.random() < 0.5 + 0.45 * p,
                "ac": rng.random() < 0.03 + 0.57 * p,
                "emas_10g": rng.random() < 0.02 + 0.28 * p,
                "lahan": rng.random() < 0.02 + 0.13 * p,
                "rumah_lain": rng.random() < 0.01 + 0.19 * p,
            },
            "program": dict(zip(("pkh", "bpnt", "pbi_jk", "bansos_daerah"), programs,
                                strict=True)),
            "anggota": members,
        }
        return rec


def _plant(gen: _Families, rec: dict, kind: str, clean: deque) -> dict:
    """Break one family in the way ``kind`` names; return its answer-file entry."""
    rng = gen.rng
    entry = {"id_keluarga": rec["id_keluarga"], "kind": kind,
             "conflict_kind": ANOMALY_CONFLICTS[kind]}
    members = rec["anggota"]
    index = rng.randrange(len(members))
    m = members[index]
    if kind == "invalid_nik":
        how = rng.choice(sorted(INVALID_NIK_CODES))
        nik = m["nik"]
        if how == "bad_date":
            nik = f"{nik[:6]}{rng.randint(32, 40)}{nik[8:]}"
        elif how == "wrong_length":
            nik = nik[:15]
        elif how == "serial_zero":
            nik = f"{nik[:12]}0000"
        elif how == "unknown_region":
            nik = f"{rng.choice(('317901', '990101'))}{nik[6:]}"
        else:
            nik = f"{nik[:13]}O{nik[14:]}"
        m["nik"] = nik
        entry.update(member_index=index, detail=how, code=INVALID_NIK_CODES[how])
    elif kind == "nik_sex_mismatch":
        m["jenis_kelamin"] = "P" if m["jenis_kelamin"] == "L" else "L"
        entry.update(member_index=index, code="nik_sex_mismatch")
    elif kind == "nik_birth_date_mismatch":
        born = dt.date.fromisoformat(m["tanggal_lahir"])
        shift = rng.choice((-1, 1)) * rng.randint(1, 400)
        m["tanggal_lahir"] = min(born + dt.timedelta(days=shift), gen.as_of).isoformat()
        if m["tanggal_lahir"] == born.isoformat():
            m["tanggal_lahir"] = (born - dt.timedelta(days=1)).isoformat()
        entry.update(member_index=index, code="nik_birth_date_mismatch")
    elif kind == "duplicate_nik":
        source = rng.choice(clean)
        # Not a PNS/TNI/Polri/BUMN member: in a family with aid that would be a second anomaly.
        people = [m for m in source["anggota"] if m["pekerjaan"] != PEKERJAAN_PNS] \
            or source["anggota"]
        copy = dict(rng.choice(people), hubungan=8)
        if copy["pekerjaan"] == PEKERJAAN_PNS:
            copy["pekerjaan"] = 4
        members.append(copy)
        entry.update(member_index=len(members) - 1, other_id_keluarga=source["id_keluarga"])
    elif kind == "duplicate_kk":
        source = rng.choice(clean)
        rec["no_kk"] = source["no_kk"]
        entry.update(other_id_keluarga=source["id_keluarga"])
    elif kind in ("aid_with_car", "aid_with_pns"):
        # One reason a family: a car or a PNS member, never both.
        if kind == "aid_with_car":
            rec["aset"]["mobil"] = True
            for member in members:
                if member["pekerjaan"] == PEKERJAAN_PNS:
                    member["pekerjaan"] = 4
        else:
            rec["aset"]["mobil"] = False
            members[0]["pekerjaan"] = PEKERJAAN_PNS
            entry.update(member_index=0)
        rec["program"]["pkh"] = rec["program"]["pbi_jk"] = True
        if rec["rumah"]["air_minum"] == 1:
            rec["rumah"]["air_minum"] = 2
        rec["rumah"]["njop_di_atas_1m"] = False
    return entry


def iter_families(
    count: int,
    seed: int,
    kecamatan: Iterable[str] = PRIORITY_KECAMATAN,
    *,
    anomalies: list | None = None,
    as_of: dt.date = AS_OF,
) -> Iterator[dict]:
    """Yield ``count`` families in the extract's shape, sorted by id_keluarga.

    When ``anomalies`` is a list, an answer entry is appended to it for every planted anomaly
    (``id_keluarga``, ``kind``, ``conflict_kind``, and where it applies ``member_index``,
    ``code``, ``detail``, ``other_id_keluarga``) as its family is yielded.
    """
    kecamatan = sorted(set(kecamatan))
    gen = _Families(seed, as_of)
    kelurahan: dict[str, list[str]] = {}
    for area in read_areas():
        if area["level"] == "kelurahan" and area["parent_code"] in kecamatan:
            kelurahan.setdefault(area["parent_code"], []).append(area["code"])
    unknown = set(kecamatan) - set(kelurahan)
    if unknown:
        raise ValueError(f"not Jakarta kecamatan codes: {', '.join(sorted(unknown))}")
    samplers = load_samplers(code for codes in kelurahan.values() for code in codes)
    plan = plan_anomalies(count, seed)
    clean: deque = deque(maxlen=64)
    index = 0
    for kec, n in _allocate(count, kecamatan).items():
        prefix = f"KLG-{kec.replace('.', '')}"
        for seq in range(1, n + 1):
            kel = gen.rng.choice(kelurahan[kec])
            kind = plan.get(index)
            rec = gen.family(f"{prefix}{seq:07d}", kec, kel, samplers[kel].sample(gen.rng), kind)
            if kind is None:
                clean.append(rec)
            else:
                entry = _plant(gen, rec, kind, clean)
                if anomalies is not None:
                    anomalies.append(entry)
            index += 1
            yield rec


# --- writers ----------------------------------------------------------------------------------

KELUARGA_HEADER = FAMILY_PATHS
ANGGOTA_HEADER = ["id_keluarga", *MEMBER_KEYS]


def _cell(value) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def flatten(rec: dict) -> tuple[list[str], list[list[str]]]:
    """A family as its keluarga.csv row and its anggota.csv rows."""
    row = [_cell(rec[key]) for key, _ in TOP_FIELDS]
    for group, fields in GROUP_FIELDS.items():
        sub = rec[group]
        row.extend(_cell(sub[key]) for key, _ in fields)
    fid = rec["id_keluarga"]
    members = [[fid, *(_cell(m[key]) for key in MEMBER_KEYS)] for m in rec["anggota"]]
    return row, members


def write_extract(families: Iterable[dict], out: str | Path, fmt: str = "jsonl",
                  progress=None) -> dict[str, str]:
    """Write families as ``keluarga.jsonl`` and/or ``keluarga.csv`` + ``anggota.csv``.

    ``fmt`` is ``jsonl``, ``csv`` or ``both``; returns the paths written by name.
    """
    if fmt not in ("jsonl", "csv", "both"):
        raise ValueError(f"unknown format {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    files = []
    jsonl = kel_w = ang_w = None
    try:
        if fmt in ("jsonl", "both"):
            jsonl = open(out / "keluarga.jsonl", "w", encoding="utf-8")
            files.append(jsonl)
            paths["jsonl"] = str(out / "keluarga.jsonl")
        if fmt in ("csv", "both"):
            kf = open(out / "keluarga.csv", "w", newline="", encoding="utf-8")
            af = open(out / "anggota.csv", "w", newline="", encoding="utf-8")
            files += [kf, af]
            kel_w, ang_w = csv.writer(kf), csv.writer(af)
            kel_w.writerow(KELUARGA_HEADER)
            ang_w.writerow(ANGGOTA_HEADER)
            paths["keluarga_csv"], paths["anggota_csv"] = str(kf.name), str(af.name)
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        for rec in families:
            if jsonl is not None:
                jsonl.write(dumps(rec))
                jsonl.write("\n")
            if kel_w is not None:
                row, members = flatten(rec)
                kel_w.writerow(row)
                ang_w.writerows(members)
            if progress is not None:
                progress.update(1)
    finally:
        for fh in files:
            fh.close()
    return paths


def write_anomalies(anomalies: Iterable[dict], path: str | Path) -> str:
    """The answer file: one planted anomaly a line (no NIKs or names, only ids and kinds)."""
    with open(path, "w", encoding="utf-8") as fh:
        for entry in anomalies:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return str(path)


def generate(out: str | Path, households: int, seed: int, fmt: str = "jsonl",
             kecamatan: Iterable[str] = PRIORITY_KECAMATAN, progress=None) -> dict:
    """Write an extract and its answer file ``anomalies.jsonl`` into ``out``."""
    anomalies: list[dict] = []
    paths = write_extract(iter_families(households, seed, kecamatan, anomalies=anomalies),
                          out, fmt, progress)
    paths["anomalies"] = write_anomalies(anomalies, Path(out) / "anomalies.jsonl")
    return {"households": households, "anomalies": len(anomalies), "paths": paths}
