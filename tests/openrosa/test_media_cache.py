# ruff: noqa: F811  (pytest fixtures imported from tests/push, tests/worker, test_endpoints)
"""The cache of each enumerator's prefill CSVs (``openrosa_media``): an unchanged state is
served without building the CSVs again (a 304 for the manifest), and every change the CSVs are
built from (an assignment, a verified record, a visit received, a family returned with a note)
changes the md5 and the bytes at once: stale bytes are never served."""

from __future__ import annotations

import hashlib
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from server.openrosa import service
from sync.models.openrosa import OpenRosaMedia
from tests.openrosa.test_endpoints import MF, devices, submission  # noqa: F401
from tests.push.conftest import field  # noqa: F401
from tests.worker.conftest import extract, located, reconcile  # noqa: F401

MANIFEST = "forms/verifikasi_keluarga/1/manifest"
HOUSEHOLDS = "forms/verifikasi_keluarga/1/media/households.csv"
MEMBERS = "forms/verifikasi_keluarga/1/media/members.csv"


@pytest.fixture
def builds(monkeypatch):
    """How many times the CSVs were built (``service.build_media`` calls)."""
    count = {"n": 0}
    real = service.build_media

    def counting(*args, **kw):
        count["n"] += 1
        return real(*args, **kw)

    monkeypatch.setattr(service, "build_media", counting)
    return count


def md5s(device) -> dict[str, str]:
    response = device.get(MANIFEST)
    assert response.status_code == 200
    return {m.find(f"{MF}filename").text: m.find(f"{MF}hash").text.removeprefix("md5:")
            for m in ElementTree.fromstring(response.data).findall(f"{MF}mediaFile")}


def snapshot(device) -> dict:
    """The manifest's md5s and both files as downloaded, each checked against its md5."""
    hashes = md5s(device)
    files = {}
    for name, path in (("households.csv", HOUSEHOLDS), ("members.csv", MEMBERS)):
        data = device.get(path).data
        assert hashlib.md5(data).hexdigest() == hashes[name]  # the manifest tells the truth
        files[name] = data.decode()
    return {"md5": hashes, "files": files}


def test_an_unchanged_manifest_is_304_without_building_the_csvs(devices, builds, db):
    ani = devices["ani"]
    first = ani.get(MANIFEST)
    assert first.status_code == 200 and builds["n"] == 1
    for _ in range(3):
        again = ani.get(MANIFEST, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
    for path in (HOUSEHOLDS, MEMBERS):
        got = ani.get(path)
        assert got.status_code == 200
        assert ani.get(path, headers={"If-None-Match": got.headers["ETag"]}).status_code == 304
    assert ani.get(MANIFEST).data == first.data
    assert builds["n"] == 1  # built once, then served from openrosa_media
    db.commit()
    rows = db.scalars(select(OpenRosaMedia)).all()
    assert [(r.households_md5, r.members_md5) for r in rows] == [
        (hashlib.md5(r.households).hexdigest(), hashlib.md5(r.members).hexdigest())
        for r in rows]
    devices["budi"].get(MANIFEST)  # each enumerator has a row of their own
    assert builds["n"] == 2


def test_an_assignment_change_changes_the_md5_and_the_bytes(devices, field, client, builds):
    ani, budi = devices["ani"], devices["budi"]
    before_ani, before_budi = snapshot(ani), snapshot(budi)
    assert "KLG-A2" not in before_ani["files"]["households.csv"]
    response = client.post("/api/v1/assignments", headers=field.headers["spv"], json={
        "round_id": field.round_id, "enumerator": "ani", "household_ids": ["KLG-A2"]})
    assert response.status_code in (200, 201), response.get_json()
    after_ani, after_budi = snapshot(ani), snapshot(budi)
    for before, after in ((before_ani, after_ani), (before_budi, after_budi)):
        assert after["md5"]["households.csv"] != before["md5"]["households.csv"]
        assert after["files"]["households.csv"] != before["files"]["households.csv"]
        assert after["md5"]["members.csv"] != before["md5"]["members.csv"]
    assert "KLG-A2" in after_ani["files"]["households.csv"]
    assert "KLG-A2" in after_ani["files"]["members.csv"]
    assert "KLG-A2" not in after_budi["files"]["households.csv"]  # moved away from budi


def test_a_verified_record_change_changes_the_md5_and_the_bytes(devices, db, builds):
    from sync.db import write_transaction
    from sync.registry import apply_changes

    ani = devices["ani"]
    before = snapshot(ani)
    built = builds["n"]
    with write_transaction(db):  # as a supervisor's decision on a conflict writes it
        apply_changes(db, "KLG-A1", {"alamat": "Jl. Verifikasi Ulang 7"}, source="review",
                      actor_id=None)
    after = snapshot(ani)
    assert builds["n"] == built + 1
    assert after["md5"]["households.csv"] != before["md5"]["households.csv"]
    assert "Jl. Verifikasi Ulang 7" in after["files"]["households.csv"]
    assert "Jl. Verifikasi Ulang 7" not in before["files"]["households.csv"]
    assert ",2," in after["files"]["households.csv"].splitlines()[1]  # base_version 2


def test_a_visit_received_then_approved_changes_the_md5_and_the_bytes(devices, submission,
                                                                      reconcile, builds):
    ani = devices["ani"]
    before = snapshot(ani)
    assert "sudah dikunjungi" not in before["files"]["households.csv"]
    v, xml, files = submission()
    assert ani.send(xml, files)[-1].status_code == 201
    visited = snapshot(ani)  # the assignment is now "visited"
    assert visited["md5"]["households.csv"] != before["md5"]["households.csv"]
    assert "sudah dikunjungi" in visited["files"]["households.csv"]
    assert reconcile() == 1  # verified: the record is written, the assignment done
    approved = snapshot(ani)
    assert approved["md5"]["households.csv"] != visited["md5"]["households.csv"]
    assert approved["md5"]["members.csv"] != visited["md5"]["members.csv"]
    assert "KLG-A1" not in approved["files"]["households.csv"]


def test_a_returned_family_changes_the_md5_and_the_bytes(devices, field, db, builds):
    from sync.assignments import set_status
    from sync.db import write_transaction

    ani = devices["ani"]
    before = snapshot(ani)
    first = ani.get(MANIFEST)
    with write_transaction(db):
        set_status(db, field.round_id, "KLG-A1", "returned", note="Foto rumah buram, ulangi.")
    assert ani.get(MANIFEST, headers={"If-None-Match": first.headers["ETag"]}
                   ).status_code == 200
    after = snapshot(ani)
    assert after["md5"]["households.csv"] != before["md5"]["households.csv"]
    row = after["files"]["households.csv"]
    assert "kunjungan ulang" in row and "Foto rumah buram, ulangi." in row


def test_a_row_whose_state_is_not_current_is_never_served(devices, db, builds):
    ani = devices["ani"]
    good = snapshot(ani)
    db.commit()
    row = db.scalars(select(OpenRosaMedia)).one()
    row.state, row.households, row.households_md5 = row.state + "-old", b"stale", "0" * 32
    db.commit()
    assert snapshot(ani) == good


def test_a_rebuild_prefills_only_the_changed_families_and_gives_the_same_bytes(
        devices, field, client, db, monkeypatch):
    """Rows of unchanged families are reused from the previous build; the bytes are exactly
    those ``prefill_csvs`` gives for all the families at once (CSV quoting included)."""
    from server.models import User
    from sync.assignments import set_status
    from sync.db import write_transaction
    from sync.forms import compiled_form, get_form_version

    ani = devices["ani"]
    client.post("/api/v1/assignments", headers=field.headers["spv"], json={
        "round_id": field.round_id, "enumerator": "ani", "household_ids": ["KLG-A2"]})
    prefilled: list[list[str]] = []
    real = service.prefill_csvs

    def counting(form, families):
        prefilled.append([f["household_id"] for f in families])
        return real(form, families)

    monkeypatch.setattr(service, "prefill_csvs", counting)

    def reference() -> dict[str, str]:
        db.rollback()
        user = db.scalar(select(User).where(User.username == "ani"))
        form = compiled_form(get_form_version(db, "verifikasi_keluarga", 1))
        households, members = real(form, service.families(db, user))
        return {"households.csv": households.decode(), "members.csv": members.decode()}

    cold = snapshot(ani)
    assert [p for p in prefilled if p] == [["KLG-A1", "KLG-A2"]]
    assert cold["files"] == reference()
    prefilled.clear()
    note = 'Alamat beda, "RT 3"\nfoto ulang'  # a comma, quotes and a line break
    with write_transaction(db):
        set_status(db, field.round_id, "KLG-A2", "returned", note=note)
    warm = snapshot(ani)
    assert [p for p in prefilled if p] == [["KLG-A2"]]  # KLG-A1's rows were reused
    assert warm["files"] == reference()
    assert warm["md5"]["households.csv"] != cold["md5"]["households.csv"]
    assert '"Alamat beda, ""RT 3""\nfoto ulang"' in warm["files"]["households.csv"]
    prefilled.clear()
    with write_transaction(db):
        set_status(db, field.round_id, "KLG-A1", "returned", note="lagi")
    assert snapshot(ani)["files"] == reference()
    assert [p for p in prefilled if p] == [["KLG-A1"]]
