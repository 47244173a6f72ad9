"""Plain-dict fixtures for reconciliation: a family record, its form, a visit built on it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from sync.registry import normalize_family

FORM_PATH = Path(__file__).resolve().parents[2] / "forms" / "verifikasi_keluarga" / "v1.json"

HEAD_NIK = "3173010201800001"   # man, 1980-01-02, Cengkareng
WIFE_NIK = "3173014508850003"   # woman, 1985-08-05
CHILD_NIK = "3173011506100002"  # man, 2010-06-15
KK = "3173011203150005"


def family(**over) -> dict:
    rec = {
        "id_keluarga": "KLG-3173010000123", "no_kk": KK, "kode_kelurahan": "31.73.01.1001",
        "alamat": "Jl. Kamal Raya No. 12", "rt": "003", "rw": "007",
        "lat": -6.136144, "lon": 106.72342, "desil": 2,  # inside 31.73.01.1001
        "rumah": {"status_bangunan": 1, "luas_lantai_m2": 36, "lantai": 6, "dinding": 1,
                  "atap": 2, "air_minum": 3, "penerangan": 1, "daya_va": 900,
                  "bahan_bakar": 4, "fasilitas_bab": 1, "njop_di_atas_1m": False},
        "aset": {"mobil": False, "sepeda_motor": True, "lemari_es": True, "ac": False,
                 "emas_10g": False, "lahan": False, "rumah_lain": False},
        "program": {"pkh": True, "bpnt": True, "pbi_jk": True, "bansos_daerah": False},
        "anggota": [
            {"nik": HEAD_NIK, "nama": "Budi Santoso", "jenis_kelamin": "L",
             "tanggal_lahir": "1980-01-02", "hubungan": 1, "status_kawin": 2, "pekerjaan": 7,
             "sekolah": 2, "disabilitas": False, "penyakit_kronis": False},
            {"nik": WIFE_NIK, "nama": "Siti Aminah", "jenis_kelamin": "P",
             "tanggal_lahir": "1985-08-05", "hubungan": 2, "status_kawin": 2, "pekerjaan": 0,
             "sekolah": 2, "disabilitas": False, "penyakit_kronis": False},
            {"nik": CHILD_NIK, "nama": "Andi Pratama", "jenis_kelamin": "L",
             "tanggal_lahir": "2010-06-15", "hubungan": 3, "status_kawin": 1, "pekerjaan": 0,
             "sekolah": 1, "disabilitas": False, "penyakit_kronis": False},
        ],
    }
    for key, value in over.items():
        rec[key] = value
    return normalize_family(rec)


def answers_from(record: dict) -> dict:
    """The answers of a visit that finds the family exactly as recorded."""
    a = {"hasil_kunjungan": 1, "persetujuan": True, "nama_responden": "Siti",
         "lokasi": {"lat": record["lat"], "lon": record["lon"], "accuracy_m": 8}}
    for key in ("no_kk", "alamat", "rt", "rw"):
        a[key] = record[key]
    for group in ("rumah", "aset", "program"):
        a[group] = {k: v for k, v in record[group].items() if v is not None}
    a["anggota"] = [dict({k: v for k, v in m.items() if v is not None}, status_keberadaan=1)
                    for m in record["anggota"]]
    a["eksklusi"] = {"air_kemasan_bermerek": record["rumah"]["air_minum"] == 1}
    return a


def visit_from(record: dict, **over) -> dict:
    v = {"uuid": "11111111-1111-4111-8111-111111111111", "household_id": record["id_keluarga"],
         "base_version": 1, "started_at": "2026-01-05T09:00:00+07:00",
         "ended_at": "2026-01-05T09:25:00+07:00",
         "location": {"lat": record["lat"], "lon": record["lon"], "accuracy_m": 8},
         "answers": answers_from(record), "photos": []}
    v.update(over)
    return v


@pytest.fixture(scope="session")
def form() -> dict:
    return json.loads(FORM_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def record() -> dict:
    return family()


@pytest.fixture
def answers(record) -> dict:
    return copy.deepcopy(answers_from(record))
