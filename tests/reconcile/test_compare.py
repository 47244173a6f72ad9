"""values_equal, match_members, verifies_map and three_way on hand-made cases."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from sync.reconcile import Config, match_members, three_way, values_equal, verifies_map
from sync.reconcile.compare import CONCURRENT, CONFIRMED, PROPOSED, name_similarity
from sync.registry import apply_path
from tests.reconcile.conftest import CHILD_NIK, HEAD_NIK, WIFE_NIK

# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "equal"), [
    (36, 39, True),       # 3 m² is within 10% of 39
    (36, 41, False),      # 5 m² is more than 10% of 41 and more than 2 m²
    (10, 12, True),       # 2 m² absolute
    (10, 12.5, False),
    (36, 36.4, True),     # a decimal answer against an integer record
    (None, 36, False),
    (None, None, True),
])
def test_floor_area_tolerance(a, b, equal):
    assert values_equal("rumah.luas_lantai_m2", a, b) is equal
    assert values_equal("rumah.luas_lantai_m2", b, a) is equal


def test_tolerance_is_configurable_per_path():
    strict = replace(Config(), numeric_tolerance={"rumah.luas_lantai_m2": (0.0, 0.0)})
    assert not values_equal("rumah.luas_lantai_m2", 36, 37, strict)
    loose = replace(Config(), numeric_tolerance={"rumah.daya_va": (0.0, 500)})
    assert values_equal("rumah.daya_va", 900, 1300, loose)
    assert not values_equal("rumah.daya_va", 900, 1300)


def test_codes_booleans_text_and_blanks():
    assert values_equal("rumah.lantai", 2, "2")
    assert not values_equal("rumah.lantai", 2, 3)
    assert values_equal("aset.mobil", True, "ya")
    assert not values_equal("aset.mobil", True, False)
    assert not values_equal("aset.mobil", False, None)
    assert values_equal("alamat", "Jl.  Kamal Raya ", "jl. kamal raya")
    assert not values_equal("alamat", "Jl. Kamal Raya 12", "Jl. Kamal Raya 21")
    assert values_equal("rt", "3", "003")
    assert values_equal("alamat", "", None)
    assert values_equal("anggota[NIK=1].tanggal_lahir", "1985-08-05", "1985-08-05")
    assert not values_equal("anggota[0].tanggal_lahir", "1985-08-05", "1985-08-06")
    assert values_equal("anggota[0].jenis_kelamin", "p", "P")


def test_names_ignore_case_spaces_and_diacritics():
    p = "anggota[NIK=3173014508850003].nama"
    assert values_equal(p, "Siti Aminah", "SITI  AMINAH")
    assert values_equal(p, "Siti Aminah", "SitiAminah")
    assert values_equal(p, "Séti Āminah", "Seti Aminah")
    assert values_equal(p, "Muhammad Rizki", "Muhamad Rizki")
    assert values_equal(p, "Aminah Siti", "Siti Aminah")  # word order
    assert not values_equal(p, "Siti Aminah", "Budi Santoso")
    strict = replace(Config(), name_threshold=100)
    assert not values_equal(p, "Muhammad Rizki", "Muhamad Rizki", strict)
    assert name_similarity("", "") == 100


# --- members --------------------------------------------------------------------------------


def test_members_match_by_nik_whatever_the_order(record):
    visit = list(reversed(copy.deepcopy(record["anggota"])))
    visit[0]["nama"] = "Someone Else"  # the NIK wins over the name
    assert match_members(record["anggota"], visit) == [(0, 2), (1, 1), (2, 0)]


def test_members_match_by_name_and_birth_date(record):
    visit = copy.deepcopy(record["anggota"])
    visit[1]["nik"] = "3173014508850009"  # a corrected NIK
    visit[1]["nama"] = "  SITI  āminah "
    visit[2]["nik"] = None
    assert match_members(record["anggota"], visit) == [(0, 0), (1, 1), (2, 2)]


def test_members_unmatched_on_other_birth_date_or_name(record):
    visit = copy.deepcopy(record["anggota"][1:])
    visit[0]["nik"] = "3173014508850009"
    visit[0]["tanggal_lahir"] = "1985-08-06"
    visit[1]["nik"] = "3173011506100009"
    visit[1]["nama"] = "Rina Wati"
    assert match_members(record["anggota"], visit) == [(0, None), (1, None), (2, None),
                                                       (None, 0), (None, 1)]


def test_members_with_a_shared_nik_fall_back_to_name(record):
    rec = copy.deepcopy(record["anggota"])
    rec[2]["nik"] = rec[1]["nik"]  # a registry error: the same NIK twice
    visit = [rec[2], rec[1]]
    assert match_members(rec, visit) == [(0, None), (1, 1), (2, 0)]


def test_member_threshold_is_configurable(record):
    visit = copy.deepcopy(record["anggota"][:1])
    visit[0]["nik"] = None
    visit[0]["nama"] = "Budi S"
    assert match_members(record["anggota"][:1], visit) == [(0, None), (None, 0)]
    loose = replace(Config(), member_name_threshold=50)
    assert match_members(record["anggota"][:1], visit, loose) == [(0, 0)]


# --- verifies map ---------------------------------------------------------------------------


def test_verifies_map_walks_groups_and_the_member_repeat(form):
    vm = verifies_map(form)
    assert vm["no_kk"] == "no_kk"
    assert vm["rumah.lantai"] == "rumah.lantai"
    assert vm["program.pkh"] == "program.pkh"
    assert vm["anggota"] == "anggota"
    assert vm["anggota[].pekerjaan"] == "anggota[].pekerjaan"
    assert "hasil_kunjungan" not in vm and "lokasi" not in vm
    assert "eksklusi.air_kemasan_bermerek" not in vm


# --- three-way ------------------------------------------------------------------------------


def outcome(cmp, path):
    return next(o for o in cmp.outcomes if o.path == path)


def test_visit_equal_to_current_confirms_everything(record, answers, form):
    cmp = three_way(record, record, answers, form)
    assert {o.outcome for o in cmp.outcomes} == {CONFIRMED}
    assert cmp.changes_to_apply == {} and cmp.drafts() == []
    # hamil is asked by the form but is no registry field
    assert cmp.skipped == ("anggota[].hamil",)


def test_proposed_change_becomes_a_soft_field_mismatch(record, answers, form):
    answers["rumah"]["lantai"] = 8
    cmp = three_way(record, record, answers, form)
    o = outcome(cmp, "rumah.lantai")
    assert (o.outcome, o.current_value, o.visit_value) == (PROPOSED, 6, 8)
    [d] = cmp.drafts()
    assert d == {"kind": "field_mismatch", "severity": "soft", "field": "rumah.lantai",
                 "registry_value": 6, "visit_value": 8, "base_value": 6,
                 "message": d["message"], "detail": {}}
    assert cmp.changes_to_apply == {}


def test_auto_accept_fields_become_changes(record, answers, form):
    answers["alamat"] = "Jl. Kamal Raya No. 14"
    answers["anggota"][2]["sekolah"] = 2
    cmp = three_way(record, record, answers, form)
    assert cmp.changes_to_apply == {"alamat": "Jl. Kamal Raya No. 14",
                                    f"anggota[NIK={CHILD_NIK}].sekolah": 2}
    assert cmp.drafts() == []
    cfg = Config(auto_accept=frozenset())
    assert len(three_way(record, record, answers, form, cfg).drafts()) == 2


def test_concurrent_update_hard_when_both_sides_changed(record, answers, form):
    current = copy.deepcopy(record)
    current["rumah"]["lantai"] = 2
    answers["rumah"]["lantai"] = 8
    o = outcome(three_way(record, current, answers, form), "rumah.lantai")
    assert (o.outcome, o.severity, o.base_value, o.current_value, o.visit_value) == \
        (CONCURRENT, "hard", 6, 2, 8)


def test_concurrent_update_soft_when_only_the_record_changed(record, answers, form):
    current = copy.deepcopy(record)
    current["rumah"]["lantai"] = 2
    cmp = three_way(record, current, answers, form)
    o = outcome(cmp, "rumah.lantai")
    assert (o.outcome, o.severity) == (CONCURRENT, "soft")
    [d] = cmp.drafts()
    assert (d["kind"], d["severity"]) == ("concurrent_update", "soft")


def test_visit_agreeing_with_a_newer_record_is_confirmed(record, answers, form):
    current = copy.deepcopy(record)
    current["rumah"]["lantai"] = 2
    answers["rumah"]["lantai"] = 2
    assert outcome(three_way(record, current, answers, form), "rumah.lantai").outcome == \
        CONFIRMED


def test_unanswered_questions_are_not_compared(record, form):
    cmp = three_way(record, record, {"hasil_kunjungan": 3}, form)
    assert cmp.outcomes == ()
    answers = {"rumah": {"penerangan": 2}}  # daya_va not asked without a meter
    [o] = three_way(record, record, answers, form).outcomes
    assert o.path == "rumah.penerangan"


def test_member_field_paths_are_change_paths(record, answers, form):
    answers["anggota"][0]["pekerjaan"] = 5
    answers["anggota"][1]["nik"] = "3173014508850009"
    answers["anggota"][1]["nama"] = "Siti Aminah"
    cmp = three_way(record, record, answers, form)
    proposed = cmp.proposed_changes
    assert proposed == {f"anggota[NIK={HEAD_NIK}].pekerjaan": 5,
                        f"anggota[NIK={WIFE_NIK}].nik": "3173014508850009"}
    doc = copy.deepcopy(record)
    for path, value in proposed.items():
        assert apply_path(doc, path, value) is not None
    assert doc["anggota"][1]["nik"] == "3173014508850009"


def test_member_nik_changes_come_last(record, answers, form):
    answers["anggota"][1]["nik"] = "3173014508850009"
    answers["anggota"][1]["pekerjaan"] = 4
    cfg = Config(auto_accept=frozenset({"anggota[].nik", "anggota[].pekerjaan"}))
    changes = three_way(record, record, answers, form, cfg).changes_to_apply
    assert list(changes) == [f"anggota[NIK={WIFE_NIK}].pekerjaan", f"anggota[NIK={WIFE_NIK}].nik"]
    doc = copy.deepcopy(record)
    for path, value in changes.items():
        apply_path(doc, path, value)
    assert doc["anggota"][1]["pekerjaan"] == 4


def test_member_died_or_unlisted_is_a_proposed_removal(record, answers, form):
    answers["anggota"][2]["status_keberadaan"] = 2
    del answers["anggota"][1]
    cmp = three_way(record, record, answers, form)
    removals = [o for o in cmp.outcomes if o.field == "anggota[]"]
    assert [(o.path, o.outcome, o.visit_value) for o in removals] == [
        (f"anggota[NIK={CHILD_NIK}]", PROPOSED, None),
        (f"anggota[NIK={WIFE_NIK}]", PROPOSED, None),
    ]
    doc = copy.deepcopy(record)
    for o in removals:
        apply_path(doc, o.path, o.visit_value)
    assert [m["nik"] for m in doc["anggota"]] == [HEAD_NIK]


def test_member_listed_both_gone_and_present_is_kept(record, answers, form):
    # A visit that lists the child twice under one NIK, once as died and once as a new member
    # (Hypothesis found it): the record member pairs with the present entry, so the visit
    # proposes no removal it would propose again once applied.
    twin = dict(answers["anggota"][2], status_keberadaan=5)
    answers["anggota"][2]["status_keberadaan"] = 2
    answers["anggota"].append(twin)
    cmp = three_way(record, record, answers, form)
    assert not [o for o in cmp.outcomes if o.field == "anggota[]" and o.outcome != CONFIRMED]
    assert [m["nik"] for m in record["anggota"]] == [HEAD_NIK, WIFE_NIK, CHILD_NIK]


def test_new_member_is_a_proposed_addition(record, answers, form):
    baby = {"status_keberadaan": 5, "nik": "3173011505250001", "nama": "Bayi",
            "jenis_kelamin": "L", "tanggal_lahir": "2025-05-15", "hubungan": 3,
            "status_kawin": 1, "sekolah": 0, "pekerjaan": 0, "disabilitas": False,
            "penyakit_kronis": False, "hamil": False}
    answers["anggota"].append(baby)
    cmp = three_way(record, record, answers, form)
    [o] = [o for o in cmp.outcomes if o.outcome != CONFIRMED]
    assert o.path == "anggota[NIK=3173011505250001]" and o.outcome == PROPOSED
    assert "status_keberadaan" not in o.visit_value and "hamil" not in o.visit_value
    doc = copy.deepcopy(record)
    apply_path(doc, o.path, o.visit_value)
    assert len(doc["anggota"]) == 4


def test_member_removed_since_base_but_kept_by_visit_is_concurrent(record, answers, form):
    current = copy.deepcopy(record)
    del current["anggota"][2]
    o = next(o for o in three_way(record, current, answers, form).outcomes
             if o.outcome != CONFIRMED)
    assert (o.path, o.outcome, o.severity) == (f"anggota[NIK={CHILD_NIK}]", CONCURRENT, "soft")
    answers["anggota"][2]["pekerjaan"] = 4
    o = next(o for o in three_way(record, current, answers, form).outcomes
             if o.outcome != CONFIRMED)
    assert (o.outcome, o.severity) == (CONCURRENT, "hard")


def test_member_added_since_base_and_not_in_visit_is_soft_concurrent(record, answers, form):
    base = copy.deepcopy(record)
    del base["anggota"][2]
    del answers["anggota"][2]
    o = next(o for o in three_way(base, record, answers, form).outcomes
             if o.outcome != CONFIRMED)
    assert (o.path, o.outcome, o.severity) == (f"anggota[NIK={CHILD_NIK}]", CONCURRENT, "soft")


def test_base_none_means_the_current_version(record, answers, form):
    answers["rumah"]["atap"] = 3
    assert three_way(None, record, answers, form) == three_way(record, record, answers, form)


def test_plain_verifies_map_is_accepted(record, answers, form):
    answers["rumah"]["atap"] = 3
    cmp = three_way(record, record, answers, {"rumah.atap": "rumah.atap"})
    assert [(o.path, o.outcome) for o in cmp.outcomes] == [("rumah.atap", PROPOSED)]


_ODD = [None, "", "  ", " Budi ", "3", 3, 3.0, True, 1, [], "1980-01-02 ", " 3173010201800001 "]


@pytest.mark.parametrize("key", ["nik", "nama", "tanggal_lahir", "hubungan", "disabilitas"])
def test_members_paired_by_nik_compare_as_the_member_dicts_do(record, answers, form, key,
                                                              monkeypatch):
    # A family whose members all pair by NIK is compared from the entries themselves (the
    # plan's member_direct); without it, from _member_for_record's dicts. The same outcomes.
    from sync.reconcile import compare

    for val in _ODD:
        visit = copy.deepcopy(answers)
        visit["anggota"][0][key] = val
        base = copy.deepcopy(record)
        base["anggota"][1]["nama"] = "Someone Else"
        for b in (None, base):
            direct = three_way(b, record, visit, form)
            with monkeypatch.context() as m:
                plan = compare._plan(verifies_map(form))
                m.setattr(compare, "_plan", lambda _v, p=plan: p._replace(member_direct=()))
                dicts = three_way(b, record, visit, form)
            assert repr(direct.outcomes) == repr(dicts.outcomes), (key, val)
            assert direct.changes_to_apply == dicts.changes_to_apply
            assert direct.changed_fields == dicts.changed_fields
