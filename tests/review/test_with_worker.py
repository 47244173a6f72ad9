"""End to end: a pushed visit with a change, the real reconciliation worker, then review."""

import pytest

from sync.models.assignment import Assignment
from sync.models.registry import VerifiedRecord
from tests.review.conftest import NIK, body
from tests.review.test_decisions import resolve, review

worker = pytest.importorskip("sync.reconcile.worker")


def test_a_reconciled_change_is_resolved_and_the_visit_approved(rv, client, db):
    visit, images = rv.visit()
    visit["answers"]["rumah"]["lantai"] = 2
    for data in images.values():
        rv.upload(data)
    assert body(rv.push([visit]))["results"][0]["status"] == "accepted"
    assert worker.run_once(db) == {visit["uuid"]: "needs_review"}
    spv = rv.headers["spv"]
    page = body(client.get(f"/api/v1/conflicts?visit_uuid={visit['uuid']}&limit=500",
                           headers=spv))
    [lantai] = [c for c in page["items"] if c["field"] == "rumah.lantai"]
    assert (lantai["kind"], lantai["registry_value"], lantai["visit_value"]) == (
        "field_mismatch", 6, 2)
    detail = body(client.get(f"/api/v1/conflicts/{lantai['id']}", headers=spv))
    assert detail["visit"]["status"] == "needs_review" and detail["photos"]
    version = db.get(VerifiedRecord, "KLG-A1").version
    out = body(resolve(client, spv, lantai["id"], "accept_visit", note="lantai keramik"))
    assert out["verified_version"] == version + 1
    db.expire_all()
    assert db.get(VerifiedRecord, "KLG-A1").doc["rumah"]["lantai"] == 2
    history = body(client.get("/api/v1/households/KLG-A1", headers=spv))["history"]
    assert history[-1]["source"] == "review" and history[-1]["changes"] == [
        {"path": "rumah.lantai", "old": 6, "new": 2}]
    rest = [c["id"] for c in page["items"] if c["id"] != lantai["id"]]
    report = body(client.post("/api/v1/conflicts/resolve", headers=spv, json={
        "ids": rest, "decision": "keep_registry", "note": "tidak diubah"}))
    assert report["status"] == "OK"
    approved = body(review(client, spv, visit["uuid"], "approve"))
    assert approved["status"] == "approved"
    # The auto-accept proposal that waited for review (a member's school) is applied now.
    assert f"anggota[NIK={NIK}].sekolah" in approved["applied"]
    db.expire_all()
    a = db.query(Assignment).filter_by(household_id="KLG-A1").one()
    assert (a.status, a.review_state) == ("done", "verified")
    # Reprocessing the visit creates nothing new and leaves the decisions alone.
    assert worker.run_once(db) == {}
    from sync.progress import differences

    assert differences(db) == {}
