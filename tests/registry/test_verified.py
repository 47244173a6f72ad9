"""apply_changes: one version and one audit entry per changed field; paths; refusals; diffs."""

import copy

import pytest
from sqlalchemy import select

from sync.db import write_transaction
from sync.importer import import_extract
from sync.models import VerifiedChange, VerifiedRecord, VerifiedVersion
from sync.registry import ChangeError, apply_changes, diff_records, household_history
from tests.registry.conftest import count, write_jsonl

VISIT = "5f0c2a8e-3b1d-4c7e-9a51-2d7e4f1b6c90"


@pytest.fixture
def family(db, tmp_path, families):
    """One imported family with at least three members, its extract record returned."""
    record = next(f for f in families if len(f["anggota"]) >= 3)
    import_extract(db, write_jsonl(tmp_path / "x.jsonl", [record]),
                   rejects=tmp_path / "r.jsonl")
    return record


def audit(db, household_id, version):
    rows = db.execute(
        select(VerifiedChange.path, VerifiedChange.old_value, VerifiedChange.new_value)
        .join(VerifiedVersion, VerifiedVersion.id == VerifiedChange.version_id)
        .where(VerifiedVersion.household_id == household_id, VerifiedVersion.version == version)
        .order_by(VerifiedChange.id)
    ).all()
    return [tuple(r) for r in rows]


def test_apply_changes_writes_a_version_and_an_audit_entry_per_field(db, family, make_user):
    fid = family["id_keluarga"]
    head, second = family["anggota"][0], family["anggota"][1]
    user = make_user("supervisor1", role="supervisor")
    with write_transaction(db):
        version = apply_changes(
            db, fid,
            {"rumah.lantai": 8, "aset.mobil": True, f"anggota[NIK={head['nik']}].pekerjaan": 5,
             "anggota[1].status_kawin": 4, "desil": family["desil"]},  # desil: no change
            source="visit", actor_id=user.id, visit_uuid=VISIT, note="checked on site")
    assert version == 2
    record = db.get(VerifiedRecord, fid)
    assert (record.version, record.local_changes) == (2, True)
    assert record.doc["rumah"]["lantai"] == 8 and record.doc["aset"]["mobil"] is True
    assert record.doc["anggota"][0]["pekerjaan"] == 5
    assert audit(db, fid, 2) == [
        ("rumah.lantai", family["rumah"]["lantai"], 8),
        ("aset.mobil", family["aset"]["mobil"], True),
        (f"anggota[NIK={head['nik']}].pekerjaan", head["pekerjaan"], 5),
        (f"anggota[NIK={second['nik']}].status_kawin", second["status_kawin"], 4),
    ]
    v = db.scalar(select(VerifiedVersion).where(VerifiedVersion.household_id == fid,
                                                VerifiedVersion.version == 2))
    assert (v.source, v.actor_id, v.visit_uuid, v.note, v.registry_version) == (
        "visit", user.id, VISIT, "checked on site", 1)
    history = household_history(db, fid)
    assert [(h["layer"], h["version"]) for h in history] == [
        ("registry", 1), ("verified", 1), ("verified", 2)]
    assert history[-1]["changes"][0] == {"path": "rumah.lantai",
                                         "old": family["rumah"]["lantai"], "new": 8}


def test_members_can_be_added_replaced_and_removed(db, family):
    fid = family["id_keluarga"]
    baby = {"nik": "3173014101250001", "nama": "Bayi", "jenis_kelamin": "P",
            "tanggal_lahir": "2025-01-01", "hubungan": 3}
    last = family["anggota"][-1]
    with write_transaction(db):
        assert apply_changes(db, fid, {"anggota[+]": baby}, source="visit", actor_id=None) == 2
        assert apply_changes(db, fid, {f"anggota[NIK={last['nik']}]": None},
                             source="supervisor", actor_id=None) == 3
    doc = db.get(VerifiedRecord, fid).doc
    assert len(doc["anggota"]) == len(family["anggota"])
    assert doc["anggota"][-1]["nama"] == "Bayi" and doc["anggota"][-1]["pekerjaan"] is None
    assert all(m["nik"] != last["nik"] for m in doc["anggota"])
    [(path, old, new)] = audit(db, fid, 2)
    assert (path, old, new["nama"]) == ("anggota[NIK=3173014101250001]", None, "Bayi")
    assert audit(db, fid, 3) == [(f"anggota[NIK={last['nik']}]", last, None)]


def test_nothing_to_change_writes_no_version(db, family):
    with write_transaction(db):
        version = apply_changes(db, family["id_keluarga"], {"desil": family["desil"]},
                                source="visit", actor_id=None)
    assert version == 1 and count(db, VerifiedChange) == 0
    assert db.get(VerifiedRecord, family["id_keluarga"]).local_changes is False


@pytest.mark.parametrize("changes, code", [
    ({"rumah.kolam_renang": True}, "unknown_path"),
    ({"anggota[0].hobi": "catur"}, "unknown_path"),
    ({"id_keluarga": "KLG-X"}, "read_only"),
    ({"desil": "tinggi"}, "invalid_value"),
    ({"anggota[0].tanggal_lahir": "1985-02-30"}, "invalid_value"),
    ({"anggota[+]": {"nik": "1", "warna": "biru"}}, "invalid_value"),
    ({"anggota[99].pekerjaan": 1}, "member_not_found"),
    ({"anggota[NIK=0000000000000000].pekerjaan": 1}, "member_not_found"),
])
def test_bad_changes_are_refused_and_change_nothing(db, family, changes, code):
    fid = family["id_keluarga"]
    with pytest.raises(ChangeError) as err, write_transaction(db):
        apply_changes(db, fid, {"rumah.lantai": 1, **changes}, source="visit", actor_id=None)
    assert err.value.code == code
    assert "NIK=" not in str(err.value)  # messages may be logged: no path, no NIK
    record = db.get(VerifiedRecord, fid)
    assert record.version == 1 and record.doc["rumah"]["lantai"] == family["rumah"]["lantai"]


def test_a_nik_shared_by_two_members_must_be_addressed_by_position(db, tmp_path, families):
    record = copy.deepcopy(next(f for f in families if len(f["anggota"]) >= 2))
    record["anggota"][1]["nik"] = record["anggota"][0]["nik"]
    import_extract(db, write_jsonl(tmp_path / "x.jsonl", [record]), rejects=tmp_path / "r")
    fid, nik = record["id_keluarga"], record["anggota"][0]["nik"]
    with pytest.raises(ChangeError) as err, write_transaction(db):
        apply_changes(db, fid, {f"anggota[NIK={nik}].pekerjaan": 1}, source="visit",
                      actor_id=None)
    assert err.value.code == "member_ambiguous"
    with write_transaction(db):
        apply_changes(db, fid, {"anggota[1].nik": "3173010101900001"}, source="visit",
                      actor_id=None)
    assert audit(db, fid, 2) == [("anggota[1].nik", nik, "3173010101900001")]


def test_unknown_household_and_stale_version(db, family):
    with pytest.raises(ChangeError) as err:
        apply_changes(db, "KLG-NONE", {"desil": 1}, source="visit", actor_id=None)
    assert err.value.code == "household_not_found"
    db.rollback()
    with pytest.raises(ChangeError) as err:
        apply_changes(db, family["id_keluarga"], {"desil": 1}, source="visit", actor_id=None,
                      expected_version=7)
    assert err.value.code == "version_mismatch"


def test_diff_matches_members_by_nik_and_notices_a_new_order(families):
    old = families[0] if len(families[0]["anggota"]) > 1 else families[1]
    new = copy.deepcopy(old)
    new["anggota"][0]["pekerjaan"] = 99
    new["alamat"] = "Jl. Baru No. 1"
    nik = old["anggota"][0]["nik"]
    assert diff_records(old, new) == {
        "alamat": (old["alamat"], "Jl. Baru No. 1"),
        f"anggota[NIK={nik}].pekerjaan": (old["anggota"][0]["pekerjaan"], 99),
    }
    reordered = copy.deepcopy(old)
    reordered["anggota"].reverse()
    assert diff_records(old, reordered) == {"anggota": (old["anggota"], reordered["anggota"])}
    assert diff_records(old, copy.deepcopy(old)) == {}


def test_a_version_that_changes_nothing_is_written_only_when_asked(db, imported):
    record = db.get(VerifiedRecord, "KLG-A1")
    same = {"alamat": record.doc["alamat"]}
    assert apply_changes(db, "KLG-A1", same, source="review", actor_id=None) == 1
    v = apply_changes(db, "KLG-A1", same, source="review", actor_id=None, note="kept",
                      always_version=True)
    db.commit()
    record = db.get(VerifiedRecord, "KLG-A1")
    row = db.query(VerifiedVersion).filter_by(household_id="KLG-A1", version=2).one()
    assert v == record.version == 2 and row.note == "kept" and row.doc == record.doc
    assert not record.local_changes  # nothing changed: the record still follows DTSEN
