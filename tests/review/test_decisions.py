"""Decisions: resolve, 409 on a stale view, bulk, reopen, visit review, audit and versions."""

from sqlalchemy import select

from sync.models.assignment import Assignment
from sync.models.conflict import Conflict
from sync.models.registry import VerifiedChange, VerifiedRecord, VerifiedVersion
from sync.models.review import ReviewDecision
from sync.models.visit import Visit
from tests.review.conftest import NIK, body
from tests.review.test_conflicts import NAME_PATH, scenario


def resolve(client, headers, cid, decision, **kw):
    return client.post(f"/api/v1/conflicts/{cid}/resolve", headers=headers,
                       json={"decision": decision, **kw})


def record(db, hid="KLG-A1"):
    db.expire_all()
    return db.get(VerifiedRecord, hid)


def test_accept_visit_writes_a_version_audit_and_feed(rv, client, db):
    visit, ids = scenario(rv)
    before = record(db).version
    response = resolve(client, rv.headers["spv"], ids[0], "accept_visit", note="dilihat")
    assert response.status_code == 200, body(response)
    out = body(response)
    assert out["status"] == "resolved" and out["resolution"] == "accept_visit"
    assert out["verified_version"] == before + 1 and out["resolved_by"] == "spv"
    assert out["visit"] == {"uuid": visit["uuid"], "status": "needs_review",
                            "open_conflicts": 2}
    rec = record(db)
    assert rec.version == before + 1 and rec.doc["rumah"]["lantai"] == 2
    version = db.scalar(select(VerifiedVersion).where(VerifiedVersion.household_id == "KLG-A1",
                                                      VerifiedVersion.version == before + 1))
    assert version.source == "review" and version.note == "dilihat"
    assert version.visit_uuid == visit["uuid"]
    change = db.scalar(select(VerifiedChange).where(VerifiedChange.version_id == version.id))
    assert (change.path, change.old_value, change.new_value) == ("rumah.lantai", 6, 2)
    [audit] = db.scalars(select(ReviewDecision)).all()
    assert (audit.action, audit.decision, audit.conflict_id, audit.note,
            audit.verified_version) == ("resolve", "accept_visit", ids[0], "dilihat", before + 1)
    # The assigned phone hears of the new record version at its next pull.
    pull = body(client.get("/api/v1/sync/pull", headers=rv.headers["ani"]))
    households = [c for c in pull["changes"] if c["type"] == "household"]
    assert households[-1]["data"]["base_version"] == before + 1


def test_a_second_decision_on_the_same_conflict_gets_409(rv, client, db):
    _visit, ids = scenario(rv)
    assert resolve(client, rv.headers["spv"], ids[0], "keep_registry").status_code == 200
    again = resolve(client, rv.headers["admin"], ids[0], "accept_visit")
    assert again.status_code == 409
    error = body(again)["error"]
    assert error["code"] == "already_decided"
    assert error["details"]["resolved_by"] == "spv"
    assert error["details"]["resolution"] == "keep_registry"
    assert record(db).doc["rumah"]["lantai"] == 6


def test_keep_registry_and_set_value(rv, client, db):
    _visit, ids = scenario(rv)
    before = record(db).version
    kept = body(resolve(client, rv.headers["spv"], ids[0], "keep_registry", note="tetap"))
    assert kept["verified_version"] == before + 1 and kept["applied"] == []
    version = db.scalar(select(VerifiedVersion).where(VerifiedVersion.version == before + 1))
    assert version.source == "review" and version.note == "tetap"
    assert db.scalars(select(VerifiedChange).where(
        VerifiedChange.version_id == version.id)).all() == []
    assert record(db).doc["rumah"]["lantai"] == 6
    named = body(resolve(client, rv.headers["spv"], ids[1], "set_value", value="Siti Aminah P."))
    assert named["resolution_value"] == "Siti Aminah P." and named["applied"] == [NAME_PATH]
    assert record(db).doc["anggota"][0]["nama"] == "Siti Aminah P."
    # A rule finding has no field to set; a value that does not fit is 422.
    no_field = resolve(client, rv.headers["spv"], ids[2], "set_value", value=1)
    assert no_field.status_code == 422 and body(no_field)["error"]["code"] == "no_field"
    unknown = resolve(client, rv.headers["spv"], ids[2], "overrule")
    assert unknown.status_code == 422
    assert set(body(unknown)["error"]) == {"code", "message", "details"}
    accepted = body(resolve(client, rv.headers["spv"], ids[2], "accept_visit"))
    assert accepted["applied"] == [] and accepted["visit"]["open_conflicts"] == 0
    # The last decision leaves the visit for its own review (as ODK Central and SurveyCTO).
    db.expire_all()
    assert db.get(Visit, accepted["visit_uuid"]).status == "needs_review"


def test_an_invalid_value_changes_nothing(rv, client, db):
    _visit, ids = scenario(rv)
    before = record(db).version
    bad = resolve(client, rv.headers["spv"], ids[0], "set_value", value="not a code")
    assert bad.status_code == 422 and body(bad)["error"]["code"] == "invalid_value"
    assert NIK not in bad.get_data(as_text=True)
    assert record(db).version == before
    db.expire_all()
    assert db.get(Conflict, ids[0]).status == "open"
    assert db.scalars(select(ReviewDecision)).all() == []


def test_other_areas_get_404_and_enumerators_403(rv, client, db):
    _visit, ids = scenario(rv)
    other = resolve(client, rv.headers["spv-utara"], ids[0], "accept_visit")
    assert other.status_code == 404
    assert resolve(client, rv.headers["ani"], ids[0], "accept_visit").status_code == 403
    assert client.post(f"/api/v1/conflicts/{ids[0]}/reopen", headers=rv.headers["spv-utara"],
                       json={}).status_code == 404
    db.expire_all()
    assert db.get(Conflict, ids[0]).status == "open"


def test_bulk_reports_each_id_on_its_own(rv, client, db):
    _visit, ids = scenario(rv)
    b = rv.pushed("KLG-A2", who="budi")
    [theirs] = rv.under_review(b["uuid"], [{"field": "rumah.atap", "visit_value": 3}])
    resolve(client, rv.headers["spv"], ids[1], "keep_registry")
    response = client.post("/api/v1/conflicts/resolve", headers=rv.headers["spv"], json={
        "ids": [ids[0], ids[1], 999999, ids[2], theirs], "decision": "accept_visit",
        "note": "massal"})
    assert response.status_code == 200
    report = body(response)
    assert report["status"] == "WARNING"
    assert report["stats"] == {"resolved": 3, "failed": 2, "total": 5}
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id[ids[0]]["status"] == "resolved" and by_id[ids[2]]["status"] == "resolved"
    assert by_id[ids[1]]["error"]["code"] == "already_decided"
    assert by_id[ids[1]]["error"]["http_status"] == 409
    assert by_id[999999]["error"]["http_status"] == 404
    assert by_id[theirs]["status"] == "resolved"
    # Another kecamatan's supervisor cannot reach these ids: every one is 404 in the report.
    outside = body(client.post("/api/v1/conflicts/resolve", headers=rv.headers["spv-utara"],
                               json={"ids": [ids[0]], "decision": "keep_registry"}))
    assert outside["status"] == "ERROR"
    assert outside["results"][0]["error"]["http_status"] == 404
    refused = client.post("/api/v1/conflicts/resolve", headers=rv.headers["spv"],
                          json={"ids": [ids[0]], "decision": "set_value"})
    assert refused.status_code == 422
    assert client.post("/api/v1/conflicts/resolve", headers=rv.headers["spv"],
                       json={"ids": [], "decision": "keep_registry"}).status_code == 422
    assert record(db).doc["rumah"]["lantai"] == 2


def test_reopen_then_resolve_again(rv, client, db):
    _visit, ids = scenario(rv)
    first = body(resolve(client, rv.headers["spv"], ids[0], "accept_visit"))
    not_decided = client.post(f"/api/v1/conflicts/{ids[1]}/reopen", headers=rv.headers["spv"],
                              json={"note": "x"})
    assert not_decided.status_code == 409
    assert body(not_decided)["error"]["code"] == "already_open"
    reopened = client.post(f"/api/v1/conflicts/{ids[0]}/reopen", headers=rv.headers["spv"],
                           json={"note": "salah pilih"})
    assert reopened.status_code == 200
    out = body(reopened)
    assert out["status"] == "open" and out["resolution"] is None
    assert out["reopened_from"] == {"status": "resolved", "resolution": "accept_visit"}
    # Reopening does not undo the applied version; deciding again writes a new one.
    assert record(db).doc["rumah"]["lantai"] == 2
    again = body(resolve(client, rv.headers["spv"], ids[0], "set_value", value=6))
    assert again["verified_version"] == first["verified_version"] + 1
    assert record(db).doc["rumah"]["lantai"] == 6
    actions = [(d.action, d.note) for d in db.scalars(
        select(ReviewDecision).where(ReviewDecision.conflict_id == ids[0])
        .order_by(ReviewDecision.id))]
    assert actions == [("resolve", None), ("reopen", "salah pilih"), ("resolve", None)]
    detail = body(client.get(f"/api/v1/conflicts/{ids[0]}", headers=rv.headers["spv"]))
    assert [d["action"] for d in detail["decisions"]] == ["resolve", "reopen", "resolve"]
    review_entries = [e for e in detail["history"] if e.get("source") == "review"]
    assert [e["decision"]["decision"] for e in review_entries] == ["accept_visit", "set_value"]


def review(client, headers, uuid, decision, note=None):
    return client.post(f"/api/v1/visits/{uuid}/review", headers=headers,
                       json={"decision": decision, "note": note})


def test_approve_applies_what_was_not_decided_otherwise(rv, client, db):
    visit, ids = scenario(rv)
    uuid = visit["uuid"]
    blocked = review(client, rv.headers["spv"], uuid, "approve")
    assert blocked.status_code == 409
    assert body(blocked)["error"]["code"] == "hard_conflicts_open"
    assert body(blocked)["error"]["details"]["conflict_ids"] == [ids[2]]
    resolve(client, rv.headers["spv"], ids[2], "accept_visit")
    resolve(client, rv.headers["spv"], ids[0], "keep_registry")
    before = record(db).version
    response = review(client, rv.headers["spv"], uuid, "approve", note="oke")
    assert response.status_code == 200, body(response)
    out = body(response)
    assert out["status"] == "approved" and out["resolved"] == [ids[1]]
    assert out["applied"] == ["rt", NAME_PATH]  # lantai was kept by a decision
    assert out["verified_version"] == before + 1
    assert out["assignment"]["status"] == "done"
    assert out["assignment"]["review_state"] == "verified"
    rec = record(db)
    assert rec.doc["rt"] == "004" and rec.doc["anggota"][0]["nama"] == "Siti Aminah Putri"
    assert rec.doc["rumah"]["lantai"] == 6
    db.expire_all()
    stored = db.get(Visit, uuid)
    assert stored.status == "approved" and stored.review_note == "oke"
    assert db.get(Conflict, ids[1]).resolution == "accept_visit"
    a = db.scalar(select(Assignment).where(Assignment.household_id == "KLG-A1"))
    assert (a.status, a.review_state) == ("done", "verified")
    stale = review(client, rv.headers["admin"], uuid, "return", note="telat")
    assert stale.status_code == 409 and body(stale)["error"]["code"] == "stale_review"
    assert body(stale)["error"]["details"] == {"status": "approved"}
    actions = [d.action for d in db.scalars(select(ReviewDecision).order_by(ReviewDecision.id))]
    assert actions[-2:] == ["resolve", "approve"]
    # Reopening a conflict of an approved visit takes it back to review.
    client.post(f"/api/v1/conflicts/{ids[1]}/reopen", headers=rv.headers["spv"], json={})
    db.expire_all()
    assert db.get(Visit, uuid).status == "needs_review"
    a = db.scalar(select(Assignment).where(Assignment.household_id == "KLG-A1"))
    assert a.review_state == "needs_review"


def test_reject_dismisses_and_applies_nothing(rv, client, db):
    visit, ids = scenario(rv)
    doc = record(db).doc
    out = body(review(client, rv.headers["spv"], visit["uuid"], "reject", note="palsu"))
    assert out["status"] == "rejected" and out["dismissed"] == ids
    assert out["assignment"]["review_state"] == "rejected"
    assert out["assignment"]["status"] == "visited"
    assert record(db).doc == doc
    db.expire_all()
    assert {db.get(Conflict, i).status for i in ids} == {"dismissed"}
    reopened = client.post(f"/api/v1/conflicts/{ids[0]}/reopen", headers=rv.headers["spv"],
                           json={})
    assert reopened.status_code == 409 and body(reopened)["error"]["code"] == "visit_closed"
    assert review(client, rv.headers["spv"], visit["uuid"], "approve").status_code == 409
    from sync.progress import differences

    assert differences(db) == {}  # the progress counters followed every change


def test_return_reaches_the_enumerators_next_pull(rv, client, db):
    visit, ids = scenario(rv)
    first = body(client.get("/api/v1/sync/pull", headers=rv.headers["ani"]))
    cursor = first["next_cursor"]
    note = "Foto rumah buram, mohon kunjungi ulang"
    other = review(client, rv.headers["spv-utara"], visit["uuid"], "return", note=note)
    assert other.status_code == 404
    assert review(client, rv.headers["ani"], visit["uuid"], "return").status_code == 403
    out = body(review(client, rv.headers["spv"], visit["uuid"], "return", note=note))
    assert out["status"] == "returned" and out["dismissed"] == ids
    assert out["assignment"] == {"round_id": rv.round_id, "status": "returned",
                                 "review_state": None, "note": note}
    pull = body(client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=rv.headers["ani"]))
    upserts = [c for c in pull["changes"] if c["type"] == "assignment" and c["op"] == "upsert"]
    assert upserts and upserts[-1]["data"]["household_id"] == "KLG-A1"
    assert upserts[-1]["data"]["status"] == "returned" and upserts[-1]["data"]["note"] == note
    budi = body(client.get("/api/v1/sync/pull", headers=rv.headers["budi"]))
    assert all(c["data"].get("household_id") != "KLG-A1" for c in budi["changes"]
               if c["type"] == "assignment")
    assert review(client, rv.headers["spv"], visit["uuid"], "return").status_code == 409
    from sync.progress import differences

    assert differences(db) == {}


def test_visit_review_validates_its_body(rv, client):
    visit, _ids = scenario(rv)
    bad = review(client, rv.headers["spv"], visit["uuid"], "bless")
    assert bad.status_code == 422 and body(bad)["error"]["code"] == "validation_failed"
    assert review(client, rv.headers["spv"], "no-such-visit", "approve").status_code == 404


def test_dismiss_closes_the_finding_as_dismissed_and_changes_nothing(rv, client, db):
    _visit, ids = scenario(rv)
    before = record(db).doc
    out = body(resolve(client, rv.headers["spv"], ids[2], "dismiss", note="foto sah"))
    assert (out["status"], out["resolution"], out["applied"]) == ("dismissed", "dismiss", [])
    assert record(db).doc == before
    [audit] = db.scalars(select(ReviewDecision)).all()
    assert (audit.action, audit.decision) == ("dismiss", "dismiss")
    # A dismissed conflict can be opened again, as a resolved one.
    reopened = client.post(f"/api/v1/conflicts/{ids[2]}/reopen", headers=rv.headers["spv"],
                           json={"note": "dicek lagi"})
    assert reopened.status_code == 200 and body(reopened)["status"] == "open"


def test_a_review_does_not_deadlock_with_a_push_of_the_same_enumerator(rv, client, db, app):
    """A push updates the enumerator's assignment (its trigger locks the enumerator_load rows),
    then emits to the feed (the feed_state row). A review must take the two in that order too:
    it took feed_state first, and the soak (bench/soak.py) saw deadlocks answered with 500."""
    import threading
    import time

    import pytest
    from sqlalchemy import create_engine, text

    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite takes one writer at a time: no row locks to order")
    visit, ids = scenario(rv)
    moved = client.post("/api/v1/assignments", headers=rv.headers["spv"], json={
        "round_id": rv.round_id, "enumerator": "ani", "household_ids": ["KLG-A2"]})
    assert moved.status_code in (200, 201), body(moved)
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    answer = {}
    try:
        with engine.connect() as push:  # ani's push of KLG-A2, half done
            tx = push.begin()
            push.execute(text("UPDATE assignments SET status = 'visited' "
                              "WHERE household_id = 'KLG-A2' AND round_id = :r"),
                         {"r": rv.round_id})
            reviewer = app.test_client()
            thread = threading.Thread(target=lambda: answer.update(
                r=review(reviewer, rv.headers["spv"], visit["uuid"], "return", note="ulang")))
            thread.start()
            time.sleep(1.5)  # the review now waits for the enumerator_load rows the push holds
            assert thread.is_alive()
            # the push's emit: raised "deadlock detected" when the review held feed_state
            push.execute(text("UPDATE feed_state SET last_seq = last_seq + 1 WHERE id = 1"))
            tx.commit()
        thread.join(30)
    finally:
        engine.dispose()
    assert answer["r"].status_code == 200, body(answer["r"])
    assert body(answer["r"])["assignment"]["status"] == "returned"
