"""An extract that lacks optional fields, and a clean visit that fills them: outcomes ``filled``,
no ``field_mismatch``, applied when the visit is verified or approved, listed by the visit's
API and page; a path in ``REVIEW_FILLS`` is still reviewed."""


import pytest
from sqlalchemy import select

from config import from_environment
from sync.models import Conflict, VerifiedRecord, Visit
from sync.reconcile import Config
from tests.pages.conftest import Web
from tests.reconcile.test_filled import OPTIONAL_FAMILY, OPTIONAL_MEMBER, without_optional
from tests.worker.conftest import worker_families, write_extract


@pytest.fixture
def extract(tmp_path):
    """The worker's three families, each without the optional fields above."""
    return write_extract(tmp_path / "extract.jsonl",
                         [without_optional(rec) for rec in worker_families()])


def record(db) -> VerifiedRecord:
    db.commit()
    return db.get(VerifiedRecord, "KLG-A1")


def filled_paths(rec: dict) -> list[str]:
    return (["rumah.njop_di_atas_1m", "aset.lahan", "aset.rumah_lain"]
            + [f"anggota[NIK={m['nik']}].{k}" for m in rec["anggota"] for k in OPTIONAL_MEMBER])


def clean_visit(located):
    """What the phone sends for the family as it is: every optional question answered."""
    v, images = located()
    for group, keys in OPTIONAL_FAMILY.items():
        for key in keys:
            v["answers"][group][key] = False
    for m in v["answers"]["anggota"]:
        for key in OPTIONAL_MEMBER:
            m[key] = False
    return v, images


def test_a_clean_visit_filling_blank_fields_is_verified_and_applied(db, located, deliver,
                                                                  reconcile, field, client):
    before = record(db)
    assert before.doc["aset"].get("lahan") is None and before.version == 1
    paths = filled_paths(before.doc)
    v, images = clean_visit(located)
    deliver((v, images))
    assert reconcile() == 1
    db.commit()
    row = db.get(Visit, v["uuid"])
    kinds = [(c.kind, c.field) for c in db.scalars(select(Conflict))]
    assert not [k for k in kinds if k[0] == "field_mismatch"], kinds
    assert row.status == "verified", kinds
    assert sorted(row.comparison["filled"]) == sorted(paths)
    assert row.comparison["applied"] == row.comparison["filled"] == dict.fromkeys(paths, False)
    assert row.comparison["proposed"] == {}
    after = record(db)
    assert after.version == 2 == row.result_version
    assert after.doc["aset"]["lahan"] is False and after.doc["rumah"]["njop_di_atas_1m"] is False
    assert all(m["disabilitas"] is False for m in after.doc["anggota"])

    # The visit's detail lists them: whole for a supervisor, masked for its enumerator.
    spv = client.get(f"/api/v1/visits/{v['uuid']}", headers=field.headers["spv"]).get_json()
    assert spv["filled"] == [{"path": p, "value": False} for p in
                             row.comparison["filled"]]
    mine = client.get(f"/api/v1/visits/{v['uuid']}", headers=field.headers["ani"]).get_json()
    nik = after.doc["anggota"][0]["nik"]
    assert len(mine["filled"]) == len(paths)
    assert not any(nik in f["path"] for f in mine["filled"])
    assert {"path": "aset.lahan", "value": False} in mine["filled"]

    # And the visit page, in one block.
    web = Web(client)
    assert web.login("spv").status_code in (302, 303)
    html = web.get(f"/review/kunjungan/{v['uuid']}").get_data(as_text=True)
    assert 'id="filled"' in html
    block = html.split('id="filled"', 1)[1].split("</div>", 1)[0]
    assert "aset.lahan" in block and f"anggota[NIK={nik}].disabilitas" in block
    assert block.count("<tr>") == len(paths) and "Tidak" in block


def test_a_visit_not_reconciled_yet_lists_no_fills(db, located, deliver, field, client):
    v, images = clean_visit(located)
    deliver((v, images))
    db.commit()
    assert db.get(Visit, v["uuid"]).comparison is None
    assert client.get(f"/api/v1/visits/{v['uuid']}",
                      headers=field.headers["spv"]).get_json()["filled"] == []
    web = Web(client)
    web.login("spv")
    page = web.get(f"/review/kunjungan/{v['uuid']}")
    assert page.status_code == 200 and 'id="filled"' not in page.get_data(as_text=True)


def test_a_path_under_review_raises_a_conflict_and_fills_apply_on_approval(
        db, located, deliver, reconcile, field, client):
    paths = filled_paths(record(db).doc)
    v, images = clean_visit(located)
    deliver((v, images))
    assert reconcile(config=Config(review_fills=frozenset({"aset.lahan"}))) == 1
    db.commit()
    row = db.get(Visit, v["uuid"])
    mismatches = [c for c in db.scalars(select(Conflict)) if c.kind == "field_mismatch"]
    assert [(c.field, c.registry_value, c.visit_value) for c in mismatches] == [
        ("aset.lahan", None, False)]
    assert row.status == "needs_review"
    assert row.comparison["proposed"] == {"aset.lahan": False}
    assert sorted(row.comparison["filled"]) == sorted(set(paths) - {"aset.lahan"})
    assert row.comparison["applied"] == {} and record(db).version == 1  # nothing written yet

    out = client.post(f"/api/v1/visits/{v['uuid']}/review", headers=field.headers["spv"],
                      json={"decision": "approve", "note": None})
    assert out.status_code == 200, out.get_json()
    assert sorted(out.get_json()["applied"]) == sorted(paths)
    after = record(db)
    assert after.doc["aset"]["lahan"] is False and after.doc["aset"]["rumah_lain"] is False
    assert all(m["penyakit_kronis"] is False for m in after.doc["anggota"])


def test_review_fills_comes_from_the_environment_to_the_worker(db, located, deliver, app,
                                                               runner, monkeypatch, tmp_path):
    monkeypatch.setenv("REVIEW_FILLS", "aset.lahan, anggota[].disabilitas")
    assert from_environment(str(tmp_path))["REVIEW_FILLS"] == ("aset.lahan",
                                                               "anggota[].disabilitas")
    monkeypatch.delenv("REVIEW_FILLS")
    assert from_environment(str(tmp_path))["REVIEW_FILLS"] == ()

    v, images = clean_visit(located)
    deliver((v, images))
    monkeypatch.setitem(app.config, "REVIEW_FILLS", ("anggota[].disabilitas",))
    result = runner.invoke(args=["reconcile", "run", "--once"])
    assert result.exit_code == 0, result.output
    db.commit()
    fields = sorted(c.field for c in db.scalars(select(Conflict))
                    if c.kind == "field_mismatch")
    assert len(fields) == 3 and all(f.endswith(".disabilitas") for f in fields)
    assert db.get(Visit, v["uuid"]).status == "needs_review"
