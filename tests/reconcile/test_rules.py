"""Every rule, positive and negative; RULES and run_rules."""

from __future__ import annotations

import copy

import pytest

from sync.reconcile import RULES, Config, Context, run_rules
from sync.reconcile import rules as r
from tests.reconcile.conftest import CHILD_NIK, HEAD_NIK, KK, family, visit_from


def ctx_for(rec=None, **kw) -> Context:
    rec = rec or family()
    visit = kw.pop("visit", None) or visit_from(rec)
    return Context(visit=visit, record=rec, **kw)


def kinds(drafts):
    return [d["kind"] for d in drafts]


def test_a_clean_visit_raises_nothing():
    assert run_rules(ctx_for()) == []


def test_drafts_have_the_contract_keys():
    rec = family()
    v = visit_from(rec)
    v["answers"]["hasil_kunjungan"] = 3
    [d] = run_rules(ctx_for(rec, visit=v), rules=["household_not_found"])
    assert set(d) == {"kind", "severity", "field", "registry_value", "visit_value",
                      "base_value", "message", "detail"}


def test_run_rules_selects_and_refuses_unknown():
    assert set(RULES) == {
        "invalid_identity", "duplicate_identity", "deceased_receiving_aid",
        "moved_receiving_aid", "inclusion_error", "exclusion_error", "location_outside_area",
        "location_far", "photo_reused", "photo_mismatch", "visit_too_short",
        "impossible_travel", "duplicate_visit", "household_not_found", "upstream_changed"}
    with pytest.raises(ValueError):
        run_rules(ctx_for(), rules=["nope"])
    v = visit_from(family())
    v["answers"]["hasil_kunjungan"] = 3
    assert run_rules(ctx_for(visit=v), Config(enabled_rules=frozenset({"duplicate_visit"}))) == []


# --- identity -------------------------------------------------------------------------------


def test_invalid_identity_structural_is_hard():
    rec = family()
    rec["anggota"][1]["nik"] = "317301450885000"  # 15 digits
    [d] = r.invalid_identity(ctx_for(rec), Config())
    assert (d["kind"], d["severity"], d["detail"]["codes"]) == \
        ("invalid_identity", "hard", ["nik_wrong_length"])
    assert "317301" not in d["message"]


def test_invalid_identity_sex_mismatch_is_soft_and_visit_fix_clears_it():
    rec = family()
    rec["anggota"][0]["jenis_kelamin"] = "P"
    v = visit_from(rec)
    [d] = r.invalid_identity(ctx_for(rec, visit=v))
    assert (d["severity"], d["detail"]["codes"]) == ("soft", ["nik_sex_mismatch"])
    assert d["field"] == f"anggota[NIK={HEAD_NIK}].nik"
    v["answers"]["anggota"][0]["jenis_kelamin"] = "L"  # the enumerator corrected it
    assert r.invalid_identity(ctx_for(rec, visit=v)) == []


def test_invalid_identity_birth_date_and_kk():
    rec = family(no_kk="3173010000000000")
    rec["anggota"][2]["tanggal_lahir"] = "2010-06-16"
    v = visit_from(rec)
    codes = sorted(c for d in r.invalid_identity(ctx_for(rec, visit=v))
                   for c in d["detail"]["codes"])
    assert "nik_birth_date_mismatch" in codes and "kk_serial_zero" in codes


def test_duplicate_identity_nik_and_kk():
    rec = family()
    hid = rec["id_keluarga"]
    niks = {CHILD_NIK: {hid, "KLG-OTHER"}, HEAD_NIK: {hid}}
    ds = r.duplicate_identity(ctx_for(rec, nik_households=niks,
                                      kk_households=lambda kk: {hid, "KLG-X", "KLG-Y"}))
    assert [(d["field"], d["registry_value"]) for d in ds] == [
        (f"anggota[NIK={CHILD_NIK}].nik", ["KLG-OTHER"]), ("no_kk", ["KLG-X", "KLG-Y"])]
    assert r.duplicate_identity(ctx_for(rec, nik_households={CHILD_NIK: {hid}},
                                        kk_households={KK: [hid]})) == []


def test_duplicate_identity_within_the_family():
    rec = family()
    rec["anggota"][2]["nik"] = rec["anggota"][1]["nik"]
    [d] = r.duplicate_identity(ctx_for(rec))
    assert d["detail"]["code"] == "nik_duplicate_in_family"


# --- members and aid ------------------------------------------------------------------------


def test_deceased_receiving_aid():
    rec = family()
    v = visit_from(rec)
    v["answers"]["anggota"][0]["status_keberadaan"] = 2
    [d] = r.deceased_receiving_aid(ctx_for(rec, visit=v))
    assert d["field"] == f"anggota[NIK={HEAD_NIK}]" and d["severity"] == "hard"
    assert d["registry_value"] == ["pkh", "bpnt", "pbi_jk"]
    no_aid = family(program={"pkh": False, "bpnt": False, "pbi_jk": False})
    v = visit_from(no_aid)
    v["answers"]["anggota"][0]["status_keberadaan"] = 2
    assert r.deceased_receiving_aid(ctx_for(no_aid, visit=v)) == []


def test_moved_receiving_aid_member_and_family():
    rec = family()
    v = visit_from(rec)
    v["answers"]["anggota"][2]["status_keberadaan"] = 4
    [d] = r.moved_receiving_aid(ctx_for(rec, visit=v))
    assert d["field"] == f"anggota[NIK={CHILD_NIK}]"
    v = visit_from(rec)
    v["answers"] = {"hasil_kunjungan": 4}
    [d] = r.moved_receiving_aid(ctx_for(rec, visit=v))
    assert d["field"] is None
    assert r.moved_receiving_aid(ctx_for(rec)) == []


def test_inclusion_error_by_desil():
    rec = family(desil=6)
    reasons = {(d["detail"]["reason"], d["detail"].get("program"))
               for d in r.inclusion_error(ctx_for(rec))}
    assert reasons == {("desil", "pkh"), ("desil", "bpnt"), ("desil", "pbi_jk")}
    rec = family(desil=5)
    assert [d["field"] for d in r.inclusion_error(ctx_for(rec))] == ["program.pkh"]
    assert r.inclusion_error(ctx_for(rec), Config(pkh_max_desil=5)) == []
    assert r.inclusion_error(ctx_for(family(desil=4))) == []


@pytest.mark.parametrize(("change", "reason"), [
    (lambda a: a["aset"].update(mobil=True), "car"),
    (lambda a: a["anggota"][0].update(pekerjaan=5), "pns"),
    (lambda a: a["rumah"].update(air_minum=1), "bottled_water"),
    (lambda a: a["eksklusi"].update(air_kemasan_bermerek=True), "bottled_water"),
    (lambda a: a["rumah"].update(njop_di_atas_1m=True), "njop"),
])
def test_inclusion_error_jakarta_exclusions(change, reason):
    rec = family()
    v = visit_from(rec)
    change(v["answers"])
    assert [d["detail"]["reason"] for d in r.inclusion_error(ctx_for(rec, visit=v))] == [reason]
    v["answers"]["program"] = {"pkh": False, "bpnt": False, "pbi_jk": False,
                               "bansos_daerah": False}
    assert r.inclusion_error(ctx_for(rec, visit=v)) == []


def test_inclusion_error_ignores_a_pns_member_who_left():
    rec = family()
    v = visit_from(rec)
    v["answers"]["anggota"][0].update(pekerjaan=5, status_keberadaan=3)
    assert r.inclusion_error(ctx_for(rec, visit=v)) == []


def test_exclusion_error_no_aid():
    rec = family(program={"pkh": False, "bpnt": False, "pbi_jk": False, "bansos_daerah": False})
    [d] = r.exclusion_error(ctx_for(rec))
    assert d["detail"]["reason"] == "no_aid"
    assert r.exclusion_error(ctx_for(family(desil=5, program={}))) == []
    assert r.exclusion_error(ctx_for(family())) == []


def test_exclusion_error_housing_worse():
    rec = family()
    v = visit_from(rec)
    v["answers"]["rumah"].update(lantai=8, atap=1, fasilitas_bab=6)  # floor, toilet worse
    ds = r.exclusion_error(ctx_for(rec, visit=v))
    assert [(d["field"], d["registry_value"], d["visit_value"]) for d in ds] == [
        ("rumah.lantai", 6, 8), ("rumah.fasilitas_bab", 1, 6)]
    v["answers"]["rumah"].update(lantai=2, fasilitas_bab=1, dinding=7)  # better / unranked
    assert r.exclusion_error(ctx_for(rec, visit=v)) == []
    v["answers"]["rumah"]["lantai"] = 5  # 6 -> 5: same rank
    assert r.exclusion_error(ctx_for(rec, visit=v)) == []
    for path, ranks in r.HOUSING_RANK.items():
        assert ranks, path


# --- location and time ----------------------------------------------------------------------


def test_location_outside_area_uses_accuracy():
    rec = family()
    assert r.location_outside_area(ctx_for(rec)) == []
    v = visit_from(rec, location={"lat": -6.1402, "lon": 106.7361, "accuracy_m": 10})
    [d] = r.location_outside_area(ctx_for(rec, visit=v))
    assert 600 < d["detail"]["distance_m"] < 800
    v["location"]["accuracy_m"] = 900  # could be inside
    assert r.location_outside_area(ctx_for(rec, visit=v)) == []
    unknown = family(kode_kelurahan="31.99.99.9999")
    assert r.location_outside_area(ctx_for(unknown, visit=v)) == []


def test_location_far():
    rec = family()
    assert r.location_far(ctx_for(rec)) == []
    v = visit_from(rec, location={"lat": rec["lat"] + 0.005, "lon": rec["lon"],
                                  "accuracy_m": 5})  # ~556 m north
    [d] = r.location_far(ctx_for(rec, visit=v))
    assert 540 < d["detail"]["distance_m"] < 570
    assert r.location_far(ctx_for(rec, visit=v), Config(far_distance_m=600)) == []
    v = visit_from(rec, location=None)
    v["answers"]["lokasi"] = {"lat": rec["lat"] + 0.005, "lon": rec["lon"]}
    assert len(r.location_far(ctx_for(rec, visit=v))) == 1


def test_haversine():
    assert r.haversine_m(-6.2, 106.8, -6.2, 106.8) == 0
    assert 111_000 < r.haversine_m(0, 0, 1, 0) < 111_400


def test_photo_reused_exact_and_similar():
    rec = family()
    hid = rec["id_keluarga"]
    v = visit_from(rec, photos=[{"field": "foto_depan", "sha256": "a" * 64,
                                 "phash": "ffff000000000000"}])
    seen = [{"sha256": "a" * 64, "household_id": "KLG-1", "visit_uuid": "u1"},
            {"sha256": "b" * 64, "phash": "ffff000000000003", "household_id": "KLG-2"},
            {"sha256": "c" * 64, "phash": "0000ffffffff0000", "household_id": "KLG-3"},
            {"sha256": "a" * 64, "household_id": hid}]
    ds = r.photo_reused(ctx_for(rec, visit=v, photo_lookup=lambda sha, ph: seen))
    assert [(d["severity"], d["registry_value"], d["detail"]["match"]) for d in ds] == [
        ("hard", ["KLG-1"], "sha256"), ("soft", ["KLG-2"], "phash")]
    assert ds[1]["detail"]["distance"] == 2
    only_self = [seen[3]]
    assert r.photo_reused(ctx_for(rec, visit=v, photo_lookup=lambda s, p: only_self)) == []
    assert r.photo_reused(ctx_for(rec, visit=v)) == []
    tight = Config(phash_max_distance=1)
    ds = r.photo_reused(ctx_for(rec, visit=v, photo_lookup=lambda s, p: seen), tight)
    assert [d["detail"]["match"] for d in ds] == ["sha256"]


def test_visit_too_short():
    rec = family()
    v = visit_from(rec, ended_at="2026-01-05T09:03:00+07:00")
    [d] = r.visit_too_short(ctx_for(rec, visit=v))
    assert d["detail"]["seconds"] == 180
    assert r.visit_too_short(ctx_for(rec, visit=v), Config(min_interview_seconds=120)) == []
    v["answers"] = {"hasil_kunjungan": 3}  # no interview: 30 s is enough
    assert r.visit_too_short(ctx_for(rec, visit=v)) == []
    v["ended_at"] = "2026-01-05T08:59:00+07:00"  # ends before it starts
    assert len(r.visit_too_short(ctx_for(rec, visit=v))) == 1
    assert r.visit_too_short(ctx_for(rec)) == []


def test_impossible_travel():
    rec = family()
    prev = {"uuid": "p", "ended_at": "2026-01-05T08:50:00+07:00",
            "location": {"lat": rec["lat"] + 0.2, "lon": rec["lon"], "accuracy_m": 10}}
    [d] = r.impossible_travel(ctx_for(rec, previous_visit=prev))  # 22 km in 10 min
    assert d["detail"]["speed_kmh"] > 100 and d["visit_value"] == "p"
    prev["ended_at"] = "2026-01-05T08:00:00+07:00"  # an hour: 22 km/h
    assert r.impossible_travel(ctx_for(rec, previous_visit=prev)) == []
    near = {"uuid": "n", "ended_at": "2026-01-05T09:00:00+07:00",
            "location": {"lat": rec["lat"] + 0.003, "lon": rec["lon"]}}
    assert r.impossible_travel(ctx_for(rec, previous_visit=near)) == []
    assert r.impossible_travel(ctx_for(rec)) == []
    overlap = dict(prev, ended_at="2026-01-05T09:10:00+07:00")  # ends after this one began
    [d] = r.impossible_travel(ctx_for(rec, previous_visit=overlap))
    assert d["detail"]["speed_kmh"] is None


def test_duplicate_visit():
    rec = family()
    ctx = ctx_for(rec)
    assert r.duplicate_visit(ctx) == []
    ctx.round_visits = [{"uuid": ctx.visit["uuid"]}]
    assert r.duplicate_visit(ctx) == []
    ctx.round_visits = [{"uuid": ctx.visit["uuid"]}, {"uuid": "other"}]
    [d] = r.duplicate_visit(ctx)
    assert d["registry_value"] == ["other"]


@pytest.mark.parametrize(("code", "flagged"), [
    (1, False), (2, False), (3, True), (4, True), (5, True), (6, True), (7, False),
    (8, False), (9, False), (10, True)])
def test_household_not_found(code, flagged):
    rec = family()
    v = visit_from(rec)
    v["answers"] = {"hasil_kunjungan": code}
    ds = r.household_not_found(ctx_for(rec, visit=v))
    assert bool(ds) is flagged
    if flagged:
        assert ds[0]["visit_value"] == code and ds[0]["severity"] == "hard"


def test_upstream_changed():
    rec = family()
    nik_path = f"anggota[NIK={HEAD_NIK}].pekerjaan"
    ctx = ctx_for(rec, upstream_changed={"rumah.lantai": 2, "desil": 3},
                  proposed_changes={"rumah.lantai": 8, nik_path: 5})
    [d] = r.upstream_changed(ctx)
    assert (d["field"], d["registry_value"], d["visit_value"]) == ("rumah.lantai", 2, 8)
    ctx.upstream_changed = [f"anggota[NIK={HEAD_NIK}]"]  # the member replaced upstream
    assert [d["field"] for d in r.upstream_changed(ctx)] == [nik_path]
    ctx.upstream_changed = ["anggota"]  # reordered: positional paths are hit
    ctx.proposed_changes = ["anggota[1].nama"]
    assert len(r.upstream_changed(ctx)) == 1
    ctx.upstream_changed = ["aset.mobil"]
    assert r.upstream_changed(ctx) == []


def test_rules_do_not_mutate_their_inputs():
    rec = family(desil=7)
    v = visit_from(rec)
    v["answers"]["anggota"][0]["status_keberadaan"] = 2
    snapshot = copy.deepcopy((rec, v))
    first = run_rules(ctx_for(rec, visit=v))
    assert run_rules(ctx_for(rec, visit=v)) == first
    assert (rec, v) == snapshot


_ODD_ANSWERS = [None, "", "  ", " 3173014506900002 ", 3173014506900002, "P ", " L", 1, 0, True,
                2.0, "5", " 5 ", "x", [], {}, "1990-06-05", " 1990-06-05 "]


@pytest.mark.parametrize("key", ["nik", "jenis_kelamin", "tanggal_lahir", "pekerjaan"])
def test_the_rules_view_of_members_is_effective_members_at_its_keys(key):
    # _effective_people overlays only the fields the rules read (overlaid_value); it must
    # agree with effective_members (overlay_member over every field) whatever the answer.
    for val in _ODD_ANSWERS:
        rec = family()
        v = visit_from(rec)
        entries = v["answers"]["anggota"]
        entries[0][key] = val
        entries[-1].pop(key, None)
        v["answers"]["anggota"].append({"nik": "3173010101900009", "nama": "Baru", key: val,
                                        "status_keberadaan": 1})
        ctx = ctx_for(rec, visit=v)
        members = r.effective_members(ctx, Config())
        people = r._effective_people(ctx, Config(), ctx.answers)
        expected = [(m.get("nik"), m.get("jenis_kelamin"), m.get("tanggal_lahir"),
                     m.get("pekerjaan"), m["_status"], m["_selector"]) for m in members]
        assert repr(expected) == repr([tuple(p) for p in people]), (key, val)  # types too
