"""Benchmark: validating pushed visits of verifikasi_keluarga v1 (target 5,000 visits/s, 1 core).

Builds realistic visits (families of 1-9 members from ``sync.generator`` when it is importable,
else from a small generator here; about 1/3 with changes: a death, a newborn, a new head,
housing and asset changes; a few not found or refused), then times ``forms.validate_visit`` on
all of them in one process, and shows where the time goes with cProfile.

    .venv/bin/python -m bench.forms_validate [--visits 10000] [--repeat 3] [--seed 7]
    python bench/forms_validate.py --no-profile
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import platform
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import forms  # noqa: E402

START = "2026-01-05T09:12:00+07:00"
TARGET = 5000

_NAMES = ["Budi", "Siti", "Agus", "Dewi", "Rizki", "Nur", "Yusuf", "Ratna", "Joko", "Wati"]


def fallback_families(count: int, seed: int):
    """Registry records of the extract's shape, for when sync.generator is not there."""
    rng = random.Random(seed)
    for n in range(count):
        size = rng.randint(1, 9)
        members = []
        for i in range(size):
            year = rng.randint(1950, 2024) if i else rng.randint(1955, 2000)
            sex = rng.choice("LP")
            day = rng.randint(1, 28)
            members.append(
                {
                    "nik": f"3173{day + (40 if sex == 'P' else 0):02d}{rng.randint(1, 12):02d}"
                    f"{year % 100:02d}{rng.randint(1, 9999):04d}",
                    "nama": f"{rng.choice(_NAMES)} {rng.choice(_NAMES)}",
                    "jenis_kelamin": sex,
                    "tanggal_lahir": f"{year}-{rng.randint(1, 12):02d}-{day:02d}",
                    "hubungan": 1 if i == 0 else rng.choice([2, 3, 3, 3, 5, 6]),
                    "status_kawin": rng.randint(1, 4),
                    "pekerjaan": rng.randint(0, 8),
                }
            )
        yield {
            "id_keluarga": f"KLG-3173010{n:06d}",
            "no_kk": f"3173011203{n:06d}",
            "kode_kelurahan": "31.73.01.1001",
            "alamat": f"Jl. Kamal Raya No. {n % 200 + 1}",
            "rt": f"{rng.randint(1, 20):03d}",
            "rw": f"{rng.randint(1, 12):03d}",
            "lat": -6.14 + rng.random() / 100,
            "lon": 106.73 + rng.random() / 100,
            "desil": rng.randint(1, 10),
            "rumah": {
                "status_bangunan": rng.randint(1, 5),
                "luas_lantai_m2": rng.randint(12, 150),
                "lantai": rng.randint(1, 9),
                "dinding": rng.randint(1, 7),
                "atap": rng.randint(1, 8),
                "air_minum": rng.randint(1, 11),
                "penerangan": 1,
                "daya_va": rng.choice([450, 900, 1300, 2200]),
                "bahan_bakar": rng.randint(0, 11),
                "fasilitas_bab": rng.randint(1, 6),
            },
            "aset": {k: rng.random() < 0.3 for k in ("mobil", "sepeda_motor", "lemari_es", "ac")}
            | {"emas_10g": False},
            "program": {k: rng.random() < 0.5 for k in ("pkh", "bpnt", "pbi_jk")},
            "anggota": members,
        }


def families(count: int, seed: int) -> tuple[list[dict], str]:
    try:
        from sync.generator import iter_families
    except ImportError:
        return list(fallback_families(count, seed)), "bench fallback generator"
    out = []
    for fam in iter_families(count, seed):
        fam["anggota"] = fam["anggota"][:9]  # the brief's 1-9 members
        out.append(fam)
    return out, "sync.generator.iter_families"


def change(visit: dict, rng: random.Random) -> None:
    """Turn a found-and-matching visit into a found-with-changes one, still valid."""
    a = visit["answers"]
    a["hasil_kunjungan"] = 2
    members = a["anggota"]
    r = rng.random()
    if r < 0.35 and len(members) > 1:
        gone = members[-1]
        gone["status_keberadaan"] = rng.choice([2, 3, 4])
        for key in ("sekolah", "pekerjaan", "disabilitas", "penyakit_kronis", "hamil"):
            gone.pop(key, None)
    elif r < 0.7 and len(members) < 9:
        members.append(
            {
                "status_keberadaan": 5,
                "nik": f"31730141{rng.randint(1, 12):02d}25{rng.randint(1, 9999):04d}",
                "nama": "Bayi Baru",
                "jenis_kelamin": "P",
                "tanggal_lahir": "2025-06-01",
                "hubungan": 3,
                "status_kawin": 1,
                "sekolah": 0,
                "pekerjaan": 0,
                "disabilitas": False,
                "penyakit_kronis": False,
            }
        )
    rumah = a["rumah"]
    rumah["lantai"] = rng.choice([2, 4, 6])
    rumah["luas_lantai_m2"] = rumah.get("luas_lantai_m2", 30) + rng.randint(1, 10)
    a["aset"]["sepeda_motor"] = not a["aset"]["sepeda_motor"]
    a["program"]["bansos_daerah"] = rng.random() < 0.3


def not_found(visit: dict, rng: random.Random) -> None:
    a = visit["answers"]
    visit["answers"] = {
        "hasil_kunjungan": rng.choice([3, 4, 6, 7, 8, 10]),
        "lokasi": a["lokasi"],
        "foto_depan": a["foto_depan"],
    }
    visit["photos"] = visit["photos"][:1]


def build_visits(count: int, seed: int) -> tuple[list[dict], dict]:
    form = forms.get_form("verifikasi_keluarga", 1)
    fams, source = families(count, seed)
    rng = random.Random(seed)
    visits, mix = [], {"matching": 0, "changed": 0, "not found/refused": 0}
    for fam in fams:
        visit = forms.example_visit(form, fam, uuid=f"bench-{len(visits)}", started_at=START)
        r = rng.random()
        if r < 1 / 3:
            change(visit, rng)
            mix["changed"] += 1
        elif r < 0.4:
            not_found(visit, rng)
            mix["not found/refused"] += 1
        else:
            mix["matching"] += 1
        visits.append(visit)
    sizes = [len(f["anggota"]) for f in fams]
    info = {
        "source": source,
        "mix": mix,
        "members": f"{min(sizes)}-{max(sizes)}, mean {statistics.mean(sizes):.2f}",
    }
    return visits, info


def run(form, visits: list[dict]) -> tuple[float, int]:
    validate = forms.validate_visit
    bad = 0
    t0 = time.perf_counter()
    for visit in visits:
        if validate(form, visit).errors:
            bad += 1
    return time.perf_counter() - t0, bad


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


_MODULES = {
    "jsonlogic.py": "JsonLogic rules (forms/jsonlogic.py)",
    "engine.py": "walk and type checks (forms/engine.py)",
}


def profile(form, visits: list[dict]) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for visit in visits:
        forms.validate_visit(form, visit)
    prof.disable()
    stats = pstats.Stats(prof)
    by_module: dict[str, float] = {}
    for (filename, _line, _func), row in stats.stats.items():  # type: ignore[attr-defined]
        tottime = row[2]
        name = Path(filename).name if filename.startswith(("/", ".")) else "builtins"
        key = _MODULES.get(name, "builtins/other")
        by_module[key] = by_module.get(key, 0.0) + tottime
    total = sum(by_module.values()) or 1.0
    out = io.StringIO()
    out.write("where the time goes (cProfile tottime, profiler overhead included):\n")
    for key, t in sorted(by_module.items(), key=lambda kv: -kv[1]):
        out.write(f"  {t / total:6.1%}  {key}\n")
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(10)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the median is kept")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    visits, info = build_visits(args.visits, args.seed)
    form = forms.get_form("verifikasi_keluarga", 1)
    print(f"built {len(visits):,} visits in {time.perf_counter() - t0:.1f} s from {info['source']}")
    print(f"  mix: {info['mix']}; members per family {info['members']}")
    run(form, visits[:500])  # warm caches
    times, bad = [], 0
    for _ in range(args.repeat):
        elapsed, bad = run(form, copy.copy(visits))
        times.append(elapsed)
    best, median = min(times), statistics.median(times)
    rate = len(visits) / median
    print(f"machine: {cpu_model()}, Python {platform.python_version()}, one core")
    print(
        f"validated {len(visits):,} visits: median {median:.3f} s, best {best:.3f} s "
        f"-> {rate:,.0f} visits/s (median), {len(visits) / best:,.0f} visits/s (best); "
        f"{bad} with errors"
    )
    print(f"target {TARGET:,} visits/s: {'met' if rate >= TARGET else 'NOT met'}")
    if not args.no_profile:
        print(profile(form, visits[: min(len(visits), 3000)]))
    return 0 if rate >= TARGET and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
