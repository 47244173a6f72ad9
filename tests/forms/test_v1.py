"""The household verification form, version 1, against valid and broken visits."""

from __future__ import annotations

import copy
import hashlib

import pytest

import forms
from tests.forms.conftest import VISIT_START, codes, make_family


def check(v1, visit):
    return forms.validate_visit(v1, visit)


@pytest.mark.parametrize("size", range(1, 10))
def test_example_visits_of_families_of_one_to_nine_are_valid(v1, size):
    family = make_family(size, number=size)
    visit = forms.example_visit(v1, family, started_at=VISIT_START)
    result = check(v1, visit)
    assert result.errors == []
    answers = result.answers
    assert answers["hasil_kunjungan"] == 1 and answers["persetujuan"] is True
    assert len(answers["anggota"]) == size
    # Found and matching: every prefilled registry value comes back unchanged.
    for key in ("no_kk", "alamat", "rt", "rw"):
        assert answers[key] == family[key]
    assert {k: answers["rumah"][k] for k in family["rumah"]} == family["rumah"]
    for member, entry in zip(family["anggota"], answers["anggota"], strict=True):
        assert {k: entry[k] for k in member} == member
        assert entry["status_keberadaan"] == 1
    assert visit["household_id"] == family["id_keluarga"]
    assert visit["form_id"] == "verifikasi_keluarga" and visit["form_version"] == 1


def test_example_visit_envelope_and_placeholder_photos(v1, visit):
    assert visit["uuid"] == "00000000-0000-4000-8000-000000000001"
    assert visit["started_at"] == VISIT_START and visit["ended_at"] > VISIT_START
    assert visit["location"] == {"lat": -6.1402, "lon": 106.7361, "accuracy_m": 8}
    by_field = {p["field"]: p["sha256"] for p in visit["photos"]}
    assert by_field == {
        name: hashlib.sha256(name.encode()).hexdigest()
        for name in ("foto_depan", "foto_dalam", "foto_kk")
    }
    cleaned = check(v1, visit).answers
    assert cleaned["foto_depan"] == by_field["foto_depan"]
    assert list(visit["answers"])[0] == "hasil_kunjungan"  # answers follow the form's order


def test_prefill_copies_registry_values_by_path(v1):
    family = make_family(2)
    family["rumah"]["daya_va"] = 1234  # not a code of the list: left for the enumerator
    family["anggota"][1]["nik"] = "12345"  # fails the pattern: left blank
    answers = forms.prefill(v1, family)
    assert answers["no_kk"] == family["no_kk"] and answers["rw"] == "007"
    assert answers["rumah"]["lantai"] == 6 and "daya_va" not in answers["rumah"]
    assert answers["aset"] == family["aset"] and answers["program"] == family["program"]
    assert answers["anggota"][0] == family["anggota"][0]
    assert "nik" not in answers["anggota"][1]
    assert "hasil_kunjungan" not in answers
    assert forms.prefill(v1, {"id_keluarga": "X"}) == {}


def test_example_visit_repairs_registry_values_the_form_rejects(v1):
    family = make_family(3)
    family["anggota"][2]["nik"] = "12345"
    family["anggota"][1]["tanggal_lahir"] = "2027-01-01"  # after the visit
    visit = forms.example_visit(v1, family, started_at=VISIT_START)
    assert check(v1, visit).errors == []


def test_pregnancy_asked_of_the_woman_of_thirty_not_the_man(v1, visit):
    members = visit["answers"]["anggota"]
    assert members[0]["nama"] == "Budi Santoso" and "hamil" not in members[0]
    assert members[1]["nama"] == "Siti Aminah" and members[1]["hamil"] is False
    broken = copy.deepcopy(visit)
    del broken["answers"]["anggota"][1]["hamil"]
    broken["answers"]["anggota"][0]["hamil"] = True  # a man: not relevant, dropped
    result = check(v1, broken)
    assert codes(result) == {("answers.anggota[1].hamil", "required")}
    assert "hamil" not in result.answers["anggota"][0]
    # A girl of 10 years 11 months (Dewi, born 2012-12-31) is asked too.
    assert visit["answers"]["anggota"][3]["hamil"] is False


def test_installed_power_only_with_pln_lighting(v1, visit):
    no_pln = copy.deepcopy(visit)
    no_pln["answers"]["rumah"]["penerangan"] = 3
    result = check(v1, no_pln)
    assert result.errors == [] and "daya_va" not in result.answers["rumah"]
    missing = copy.deepcopy(visit)
    del missing["answers"]["rumah"]["daya_va"]
    assert codes(check(v1, missing)) == {("answers.rumah.daya_va", "required")}


@pytest.mark.parametrize("hasil", [3, 4, 5, 6, 7, 8, 10])
def test_not_found_visits_need_only_the_result_location_and_front_photo(v1, visit, hasil):
    answers = visit["answers"]
    short = {
        "hasil_kunjungan": hasil,
        "lokasi": answers["lokasi"],
        "foto_depan": answers["foto_depan"],
    }
    minimal = {**visit, "answers": short, "photos": visit["photos"][:1]}
    assert check(v1, minimal).errors == []
    # Whatever else is sent is dropped, not rejected: nothing but the result before consent.
    result = check(v1, {**visit, "answers": {**answers, "hasil_kunjungan": hasil}})
    assert result.errors == []
    assert set(result.answers) == {"hasil_kunjungan", "lokasi", "foto_depan"}


def test_refused_consent_ends_the_interview(v1, visit):
    answers = {**visit["answers"], "persetujuan": False}
    result = check(v1, {**visit, "answers": answers})
    assert result.errors == []
    assert set(result.answers) == {"hasil_kunjungan", "lokasi", "foto_depan", "persetujuan"}
    del answers["persetujuan"]
    assert codes(check(v1, {**visit, "answers": answers})) == {("answers.persetujuan", "required")}


def test_a_changed_family_is_valid(v1, visit):
    changed = copy.deepcopy(visit)
    a = changed["answers"]
    a["hasil_kunjungan"] = 2
    a["anggota"][0]["status_keberadaan"] = 2  # the head died
    for key in ("sekolah", "pekerjaan", "disabilitas", "penyakit_kronis"):
        del a["anggota"][0][key]
    a["anggota"][1]["hubungan"] = 1  # the wife is the new head
    a["anggota"][1]["hamil"] = True
    a["anggota"].append(
        {
            "status_keberadaan": 5,
            "nik": "3173010101260001",
            "nama": "Bayi Baru",
            "jenis_kelamin": "P",
            "tanggal_lahir": "2025-12-01",
            "hubungan": 3,
            "status_kawin": 1,
            "sekolah": 1,
            "pekerjaan": 0,
            "disabilitas": False,
            "penyakit_kronis": False,
        }
    )
    a["rumah"]["lantai"] = 2
    a["aset"]["sepeda_motor"] = False
    assert check(v1, changed).errors == []


def test_broken_visits_report_each_break_at_its_path_all_at_once(v1, visit):
    broken = copy.deepcopy(visit)
    a = broken["answers"]
    a["no_kk"] = "31730112"
    a["rt"] = "3"
    a["anggota"][2]["nik"] = "317301"
    a["anggota"][1]["jenis_kelamin"] = "W"
    a["anggota"][3]["tanggal_lahir"] = "2026-02-01"
    del a["anggota"][0]["nama"]
    a["anggota"][2]["hubungan"] = 1  # a second head of family
    a["rumah"]["luas_lantai_m2"] = 0
    a["rumah"]["lantai"] = "6"
    a["aset"]["mobil"] = "tidak"
    a["lokasi"]["accuracy_m"] = 250
    a["eksklusi"]["air_kemasan_bermerek"] = False
    a["rumah"]["air_minum"] = 1
    a["program"]["bantuan_lain"] = True
    broken["photos"] = [p for p in broken["photos"] if p["field"] != "foto_dalam"]
    result = check(v1, broken)
    assert codes(result) == {
        ("answers.no_kk", "pattern"),
        ("answers.rt", "pattern"),
        ("answers.anggota[2].nik", "pattern"),
        ("answers.anggota[1].jenis_kelamin", "choice"),
        ("answers.anggota[3].tanggal_lahir", "constraint"),
        ("answers.anggota[0].nama", "required"),
        ("answers.anggota", "constraint"),
        ("answers.rumah.luas_lantai_m2", "min"),
        ("answers.rumah.lantai", "choice"),
        ("answers.aset.mobil", "type"),
        ("answers.lokasi", "constraint"),
        ("answers.eksklusi.air_kemasan_bermerek", "constraint"),
        ("answers.program.bantuan_lain", "unknown_field"),
        ("answers.foto_dalam", "required"),
    }
    for error in result.errors:
        assert set(error) == {"path", "code", "message"} and error["message"]


def test_every_registry_question_says_what_it_verifies(v1):
    def walk(nodes, inside_repeat):
        for node in nodes:
            f = node.field
            if "verifies" in f and node.kind == 0:
                if inside_repeat:
                    assert f["verifies"] == node.name
                else:
                    assert f["verifies"].split(".")[-1] == node.name
                assert f.get("prefill") == f["verifies"]
            walk(node.children, inside_repeat or node.type == "repeat")

    walk(v1.nodes, False)
    answer_paths = {"no_kk", "alamat", "rt", "rw", "rumah.lantai", "aset.mobil", "program.pkh"}
    verified = set()

    def collect(nodes, prefix):
        for node in nodes:
            if "verifies" in node.field and node.kind == 0 and "[]" not in prefix:
                verified.add(prefix + node.name)
            if node.type == "group":
                collect(node.children, prefix + node.name + ".")

    collect(v1.nodes, "")
    assert answer_paths <= verified
