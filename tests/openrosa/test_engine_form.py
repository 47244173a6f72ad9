"""The real v1 XForm in ODK's form engine, with one enumerator's households.csv and
members.csv: the family's answers are prefilled and editable, the members repeat starts with the
family's members and still takes a new one, a constraint violation blocks the submission, and the
serialized submission maps back to a valid Tapak visit."""

from __future__ import annotations

import copy

import pytest

import forms
from forms.xform import prefill_csvs, submission_to_visit
from tests.forms.conftest import make_family

TODAY = "2026-01-05"


@pytest.fixture
def families():
    a, b = make_family(3, number=1), make_family(2, number=2)
    a["anggota"][0]["disabilitas"] = True
    return [
        {
            "household_id": a["id_keluarga"],
            "label": "Budi Santoso - Jl. Kamal Raya No. 12",
            "base_version": 4,
            "record": a,
            "revisit": True,
            "revisit_note": "Foto depan buram, ulangi.",
        },
        {
            "household_id": b["id_keluarga"],
            "label": "Keluarga kedua",
            "base_version": 1,
            "record": b,
            "visited": True,
        },
    ]


@pytest.fixture
def v1_engine(odk, v1, v1_xform, families):
    hh, mem = prefill_csvs(forms.get_form("verifikasi_keluarga", 1), families)
    odk.load("v1", v1_xform, {"households.csv": hh.decode(), "members.csv": mem.decode()})
    return odk


def consent(family_id: str) -> list[dict]:
    return [
        {"set": "/data/_keluarga", "value": family_id},
        {"set": "/data/hasil_kunjungan", "value": "2"},
        {"set": "/data/persetujuan", "value": "yes"},
    ]


def test_choosing_the_family_prefills_editable_answers(v1_engine, families):
    fam = families[0]
    rec = fam["record"]
    steps = consent(fam["household_id"]) + [{"set": "/data/alamat", "value": "Jl. Baru 1"}]
    nodes = v1_engine.run("v1", steps, today=TODAY)["by_ref"]
    assert nodes["/data/_base_version"]["value"] == "4"
    assert nodes["/data/no_kk"]["value"] == rec["no_kk"]
    assert nodes["/data/alamat"]["value"] == "Jl. Baru 1"  # edited, not recomputed
    assert nodes["/data/rt"]["value"] == rec["rt"]
    assert nodes["/data/rumah/lantai"]["value"] == str(rec["rumah"]["lantai"])
    assert nodes["/data/_kunjungan_ulang"]["relevant"] is True
    assert nodes["/data/_catatan_kunjungan_ulang"]["value"] == "Foto depan buram, ulangi."
    assert nodes["/data/meta/instanceName"]["value"].startswith(fam["household_id"])
    # the repeat starts with the family's three members, prefilled
    entries = [r for r in nodes if r.startswith("/data/anggota[") and r.count("/") == 2]
    assert len(entries) == 3
    for i, m in enumerate(rec["anggota"], start=1):
        assert nodes[f"/data/anggota[{i}]/nik"]["value"] == m["nik"]
        assert nodes[f"/data/anggota[{i}]/nama"]["value"] == m["nama"]
        assert nodes[f"/data/anggota[{i}]/tanggal_lahir"]["value"] == m["tanggal_lahir"]
        assert nodes[f"/data/anggota[{i}]/status_keberadaan"]["value"] in ("", None)
    assert nodes["/data/anggota[1]/disabilitas"]["value"] in ("", None)  # not relevant yet
    # the other family: not a revisit
    other = v1_engine.run("v1", consent(families[1]["household_id"]), today=TODAY)["by_ref"]
    assert other["/data/_kunjungan_ulang"]["relevant"] is False
    assert len([r for r in other if r.startswith("/data/anggota[") and r.count("/") == 2]) == 2


def test_a_new_member_can_be_added_and_edits_survive(v1_engine, families):
    fam = families[0]
    steps = consent(fam["household_id"]) + [
        {"set": "/data/anggota[1]/nama", "value": "Budi S."},
        {"set": "/data/_anggota_baru", "value": "1"},
        {"set": "/data/anggota[4]/nama", "value": "Bayi Baru"},
    ]
    nodes = v1_engine.run("v1", steps, today=TODAY)["by_ref"]
    assert nodes["/data/anggota_count"]["value"] == "4"
    assert nodes["/data/anggota[1]/nama"]["value"] == "Budi S."
    assert nodes["/data/anggota[4]/status_keberadaan"]["value"] == "5"  # a new member
    assert nodes["/data/anggota[4]/nik"]["value"] in ("", None)
    assert nodes["/data/anggota[4]/nama"]["value"] == "Bayi Baru"
    assert nodes["/data/anggota[3]/nik"]["value"] == fam["record"]["anggota"][2]["nik"]


def complete_steps(fam: dict, *, accuracy: str = "8") -> list[dict]:
    rec = fam["record"]
    steps = consent(fam["household_id"]) + [
        {"set": "/data/lokasi", "value": f"-6.1402 106.7361 10 {accuracy}"},
        {"set": "/data/foto_depan", "value": "depan.jpg", "base64": "/9j/4AAQ"},
        {"set": "/data/foto_dalam", "value": "dalam.jpg", "base64": "/9j/4AAQ"},
        {"set": "/data/nama_responden", "value": "Siti Aminah"},
    ]
    for i, _m in enumerate(rec["anggota"], start=1):
        base = f"/data/anggota[{i}]"
        steps += [
            {"set": f"{base}/status_keberadaan", "value": "1"},
            {"set": f"{base}/sekolah", "value": "2"},
            {"set": f"{base}/pekerjaan", "value": "0"},
            {"set": f"{base}/disabilitas", "value": "no"},
            {"set": f"{base}/penyakit_kronis", "value": "no"},
        ]
    steps.append({"set": "/data/anggota[2]/hamil", "value": "no"})
    for name in ("status_bangunan", "dinding", "atap", "bahan_bakar", "fasilitas_bab"):
        steps.append({"set": f"/data/rumah/{name}", "value": "1"})
    steps += [
        {"set": "/data/rumah/luas_lantai_m2", "value": "36.5"},
        {"set": "/data/rumah/lantai", "value": "2"},
        {"set": "/data/rumah/air_minum", "value": "3"},
        {"set": "/data/rumah/penerangan", "value": "1"},
        {"set": "/data/rumah/daya_va", "value": "900"},
        {"set": "/data/rumah/njop_di_atas_1m", "value": "no"},
        {"set": "/data/eksklusi/air_kemasan_bermerek", "value": "no"},
    ]
    for group, names in (
        ("aset", ("mobil", "sepeda_motor", "lemari_es", "ac", "emas_10g", "lahan", "rumah_lain")),
        ("program", ("pkh", "bpnt", "pbi_jk", "bansos_daerah")),
    ):
        steps += [{"set": f"/data/{group}/{n}", "value": "no"} for n in names]
    return steps


def test_a_constraint_violation_blocks_the_submission(v1_engine, families):
    fam = families[0]
    run = v1_engine.run("v1", complete_steps(fam, accuracy="150"), today=TODAY, payload=True)
    lokasi = run["by_ref"]["/data/lokasi"]
    assert lokasi["valid"] is False and lokasi["violation"] == "constraint"
    assert lokasi["message"].startswith("Akurasi GPS harus 100 m")
    assert run["payload"]["status"] != "ready"
    # two heads of family among present members: the repeat's constraint fires on hubungan
    steps = complete_steps(fam) + [{"set": "/data/anggota[2]/hubungan", "value": "1"}]
    run = v1_engine.run("v1", steps, today=TODAY, payload=True)
    assert run["by_ref"]["/data/anggota[2]/hubungan"]["violation"] == "constraint"
    assert run["payload"]["status"] != "ready"
    # branded bottled water needs the exclusion answered yes
    steps = complete_steps(fam) + [{"set": "/data/rumah/air_minum", "value": "1"}]
    run = v1_engine.run("v1", steps, today=TODAY, payload=True)
    assert run["by_ref"]["/data/eksklusi/air_kemasan_bermerek"]["violation"] == "constraint"


def test_serialized_submission_is_a_valid_visit(v1_engine, v1, families):
    fam = families[0]
    run = v1_engine.run("v1", complete_steps(fam), today=TODAY, payload=True)
    bad = [n["ref"] for n in run["nodes"] if not n["valid"]]
    assert bad == []
    assert run["payload"]["status"] == "ready", run["payload"]
    visit, problems = submission_to_visit(v1, run["payload"]["xml"])
    assert problems == []
    assert visit["household_id"] == fam["household_id"] and visit["base_version"] == 4
    assert visit["started_at"].startswith(TODAY)
    assert [p["field"] for p in visit["photos"]] == ["foto_depan", "foto_dalam"]
    for i, p in enumerate(visit["photos"]):
        p["sha256"] = f"{i:064x}"
    result = forms.validate_visit(forms.get_form("verifikasi_keluarga", 1), copy.deepcopy(visit))
    assert result.errors == []
    members = result.answers["anggota"]
    assert [m["nik"] for m in members] == [m["nik"] for m in fam["record"]["anggota"]]
    assert result.answers["rumah"]["luas_lantai_m2"] == 36.5
    assert result.answers["lokasi"]["accuracy_m"] == 8
