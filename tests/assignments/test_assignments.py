"""Rounds and assignments: bulk assignment, scoping, reassignment, unassignment, rounds."""

from sqlalchemy import select

from sync.models.assignment import Assignment


def test_assign_by_ids_and_by_kelurahan_inside_the_supervisors_areas(client, team, round_id,
                                                                      assign):
    assert assign(round_id, "ani", household_ids=["KLG-A1", "KLG-B1", "KLG-X"]) == {
        "assigned": 1, "moved": 0, "unchanged": 0,
        "skipped": [{"household_id": "KLG-X", "reason": "not_found"},
                    {"household_id": "KLG-B1", "reason": "outside_your_areas"}]}
    assert assign(round_id, "budi", kelurahan="31.73.01.1002")["assigned"] == 1
    assert assign(round_id, "budi", kelurahan="31.73.01.1001", rt="003", rw="007") == {
        "assigned": 0, "moved": 1, "unchanged": 0, "skipped": []}
    listing = client.get(f"/api/v1/assignments?round_id={round_id}",
                         headers=team["spv"]).get_json()["items"]
    assert [(a["household_id"], a["enumerator"], a["status"]) for a in listing] == [
        ("KLG-A1", "budi", "pending"), ("KLG-A2", "budi", "pending")]
    assert listing[0]["no_kk"] == "317301********05"


def test_enumerators_cannot_assign_and_see_only_their_own(client, team, round_id, assign):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    assign(round_id, "budi", household_ids=["KLG-A2"])
    refused = client.post("/api/v1/assignments", headers=team["ani"], json={
        "round_id": round_id, "enumerator": "ani", "household_ids": ["KLG-A2"]})
    assert refused.status_code == 403
    mine = client.get("/api/v1/assignments", headers=team["ani"]).get_json()["items"]
    assert [a["household_id"] for a in mine] == ["KLG-A1"]


def test_an_enumerator_outside_the_area_or_a_non_enumerator_is_refused(client, team, round_id,
                                                                       assign):
    result = assign(round_id, "citra", who="root", household_ids=["KLG-A1"])
    assert result["skipped"] == [{"household_id": "KLG-A1", "reason": "outside_enumerator_areas"}]
    response = client.post("/api/v1/assignments", headers=team["spv"], json={
        "round_id": round_id, "enumerator": "spv", "household_ids": ["KLG-A1"]})
    assert response.status_code == 422
    response = client.post("/api/v1/assignments", headers=team["spv"], json={
        "round_id": round_id, "enumerator": "ani", "kelurahan": "31.72.01.1001"})
    assert response.status_code == 403
    both = client.post("/api/v1/assignments", headers=team["spv"], json={
        "round_id": round_id, "enumerator": "ani", "kelurahan": "31.73.01.1001",
        "household_ids": ["KLG-A1"]})
    assert both.status_code == 422


def test_unassign(client, team, round_id, assign, db):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    url = f"/api/v1/assignments/{round_id}/KLG-A1"
    assert client.delete(url, headers=team["ani"]).status_code == 403
    assert client.delete(url, headers=team["spv"]).status_code == 204
    assert client.delete(url, headers=team["spv"]).status_code == 404
    assert db.scalars(select(Assignment)).all() == []


def test_a_family_is_assigned_in_two_rounds_one_after_the_other_never_at_once(
        client, team, round_id, assign, db):
    second = client.post("/api/v1/rounds", headers=team["spv"], json={
        "name": "Groundcheck 2026-Q2", "starts_on": "2026-04-01", "ends_on": "2026-06-30"})
    second_id = second.get_json()["id"]
    assign(round_id, "ani", household_ids=["KLG-A1"])
    blocked = assign(second_id, "budi", household_ids=["KLG-A1"])
    assert blocked["skipped"] == [{"household_id": "KLG-A1", "reason": "open_in_another_round",
                                   "round_id": round_id}]
    row = db.scalar(select(Assignment).where(Assignment.round_id == round_id))
    row.status = "done"
    db.commit()
    assert assign(second_id, "budi", household_ids=["KLG-A1"])["assigned"] == 1
    rows = db.scalars(select(Assignment).order_by(Assignment.round_id)).all()
    assert [(r.round_id, r.status) for r in rows] == [(round_id, "done"), (second_id, "pending")]


def test_the_database_refuses_two_open_assignments_of_one_family(db, team, round_id):
    import datetime as dt

    import pytest
    from sqlalchemy.exc import IntegrityError

    from sync.models.assignment import Round

    other = Round(name="other", starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 2, 1))
    db.add(other)
    db.flush()
    db.add(Assignment(round_id=round_id, household_id="KLG-A1", enumerator_id=2))
    db.add(Assignment(round_id=other.id, household_id="KLG-A1", enumerator_id=3))
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()


def test_rounds_are_listed_and_validated(client, team, round_id):
    names = [r["name"] for r in client.get("/api/v1/rounds", headers=team["ani"]).get_json()]
    assert names == ["Groundcheck 2026-Q1 Prioritas"]
    again = client.post("/api/v1/rounds", headers=team["spv"], json={
        "name": "Groundcheck 2026-Q1 Prioritas", "starts_on": "2026-01-01",
        "ends_on": "2026-03-31"})
    assert again.status_code == 409
    backwards = client.post("/api/v1/rounds", headers=team["spv"], json={
        "name": "Backwards", "starts_on": "2026-03-01", "ends_on": "2026-01-01"})
    assert backwards.status_code == 422
    assert client.post("/api/v1/rounds", headers=team["ani"], json={
        "name": "Mine", "starts_on": "2026-03-01", "ends_on": "2026-04-01"}).status_code == 403


def test_status_moves_along_reaches_the_phone_and_filters_the_list(client, team, round_id,
                                                                  assign, pull, db):
    """pending -> visited -> returned (with a note) -> done; the phone sees each move."""
    import pytest

    from server.extensions import db as _db
    from sync.assignments import AssignmentError, set_status
    from sync.db import write_transaction

    assign(round_id, "ani", household_ids=["KLG-A1", "KLG-A2"])
    _, cursor = pull("ani")
    steps = (("visited", None, None), ("returned", "Foto rumah buram", "Foto rumah buram"),
             ("done", None, "Foto rumah buram"))  # a move without a note keeps the last one
    for status, note, kept in steps:
        with write_transaction(_db.session):
            set_status(_db.session, round_id, "KLG-A1", status, note=note)
        changes, cursor = pull("ani", cursor)
        assert [(c["type"], c["op"], c["data"]["status"]) for c in changes] == [
            ("assignment", "upsert", status)]
        assert changes[0]["data"]["note"] == kept
    listed = client.get(f"/api/v1/assignments?round_id={round_id}&status=done",
                        headers=team["spv"]).get_json()["items"]
    assert [(a["household_id"], a["status"]) for a in listed] == [("KLG-A1", "done")]
    pending = client.get("/api/v1/assignments?status=pending", headers=team["ani"]).get_json()
    assert [a["household_id"] for a in pending["items"]] == ["KLG-A2"]
    bad = client.get("/api/v1/assignments?status=lost", headers=team["spv"])
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "validation_failed"
    with pytest.raises(AssignmentError) as refused:
        set_status(_db.session, round_id, "KLG-A1", "lost")
    assert refused.value.status == 422
    with pytest.raises(AssignmentError) as missing:
        set_status(_db.session, round_id, "KLG-B1", "done")
    assert missing.value.status == 404
