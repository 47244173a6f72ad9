"""Fixtures for the form engine tests: hand-made registry families and small forms."""

from __future__ import annotations

import copy

import pytest

import forms

VISIT_START = "2026-01-05T09:12:00+07:00"

# (nama, jenis_kelamin, tanggal_lahir, hubungan, status_kawin, pekerjaan); ages on 2026-01-05.
PEOPLE = [
    ("Budi Santoso", "L", "1995-03-10", 1, 2, 4),  # man aged 30
    ("Siti Aminah", "P", "1995-06-15", 2, 2, 0),  # woman aged 30
    ("Rizki Pratama", "L", "2015-02-01", 3, 1, 0),
    ("Dewi Lestari", "P", "2012-12-31", 3, 1, 0),
    ("Sumarni", "P", "1950-04-21", 6, 4, 0),  # widow aged 75
    ("Agus Salim", "L", "2000-01-05", 3, 1, 7),  # 26 today
    ("Nur Aini", "P", "2016-01-06", 3, 1, 0),  # 9, turns 10 tomorrow
    ("Yusuf Hakim", "L", "2024-07-01", 5, 1, 0),
    ("Ratna Sari", "P", "1971-01-05", 7, 3, 8),  # 55 today
]


def make_family(size: int, *, number: int = 1) -> dict:
    """A registry record of ``size`` members (1-9) in the shape of the registry extract."""
    anggota = []
    for i, (nama, jk, lahir, hub, kawin, kerja) in enumerate(PEOPLE[:size]):
        anggota.append(
            {
                "nik": f"3173{number:02d}{i:02d}0101{number:04d}"[:16].ljust(16, "0"),
                "nama": nama,
                "jenis_kelamin": jk,
                "tanggal_lahir": lahir,
                "hubungan": hub,
                "status_kawin": kawin,
                "pekerjaan": kerja,
            }
        )
    return {
        "id_keluarga": f"KLG-31730100{number:05d}",
        "no_kk": f"317301120315{number:04d}",
        "kode_kelurahan": "31.73.01.1001",
        "alamat": "Jl. Kamal Raya No. 12",
        "rt": "003",
        "rw": "007",
        "lat": -6.1402,
        "lon": 106.7361,
        "desil": 2,
        "rumah": {
            "status_bangunan": 1,
            "luas_lantai_m2": 36,
            "lantai": 6,
            "dinding": 1,
            "atap": 2,
            "air_minum": 3,
            "penerangan": 1,
            "daya_va": 900,
            "bahan_bakar": 4,
            "fasilitas_bab": 1,
        },
        "aset": {
            "mobil": False,
            "sepeda_motor": True,
            "lemari_es": True,
            "ac": False,
            "emas_10g": False,
        },
        "program": {"pkh": True, "bpnt": True, "pbi_jk": True},
        "anggota": anggota,
    }


@pytest.fixture(scope="session")
def v1() -> forms.Form:
    return forms.get_form("verifikasi_keluarga", 1)


@pytest.fixture
def family() -> dict:
    return make_family(4)


@pytest.fixture
def visit(v1, family) -> dict:
    """A valid example visit of a family of four (copy freely: it is made per test)."""
    return forms.example_visit(
        v1, family, uuid="00000000-0000-4000-8000-000000000001", started_at=VISIT_START
    )


def mini_form(fields: list, choices: dict | None = None, **extra) -> dict:
    """A small definition around ``fields`` for type and rule tests."""
    definition = {
        "form_id": "uji",
        "version": 1,
        "title": {"id": "Formulir uji", "en": "Test form"},
        "choices": choices
        or {
            "warna": [
                {"value": 1, "label": "Merah"},
                {"value": 2, "label": "Hijau"},
                {"value": 3, "label": "Biru"},
            ],
            "jk": [{"value": "L", "label": "Laki-laki"}, {"value": "P", "label": "Perempuan"}],
        },
        "fields": fields,
    }
    definition.update(extra)
    return definition


def mini_visit(answers: dict, photos: list | None = None, **extra) -> dict:
    visit = {
        "uuid": "00000000-0000-4000-8000-000000000002",
        "form_id": "uji",
        "form_version": 1,
        "household_id": "KLG-1",
        "started_at": VISIT_START,
        "answers": copy.deepcopy(answers),
        "photos": photos or [],
    }
    visit.update(extra)
    return visit


def codes(result) -> set[tuple[str, str]]:
    """The (path, code) pairs of a validation result, for compact assertions."""
    return {(e["path"], e["code"]) for e in result.errors}
