"""Closing a round: its open assignments end (status ``closed``), the phones drop them, the
next round may assign the same families, and nothing more is assigned in the closed one."""

from sqlalchemy import select

from sync.models.assignment import Assignment, Round
from sync.progress import differences


def test_closing_a_round_ends_its_open_assignments(client, db, team, round_id, assign, pull):
    assign(round_id, "ani", household_ids=["KLG-A1", "KLG-A2"])
    pull("ani")
    listed = client.get("/api/v1/rounds", headers=team["spv"]).get_json()
    assert listed[0]["state"] == "open" and listed[0]["closed_at"] is None
    # only admins close
    response = client.post(f"/api/v1/rounds/{round_id}/close", headers=team["spv"])
    assert response.status_code == 403
    response = client.post(f"/api/v1/rounds/{round_id}/close", headers=team["root"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["state"] == "closed" and body["ended"] == 2 and body["closed_at"]
    db.expire_all()
    statuses = db.scalars(select(Assignment.status).where(Assignment.round_id == round_id))
    assert sorted(statuses) == ["closed", "closed"]
    changes, _ = pull("ani")
    assert {(c["type"], c["op"]) for c in changes} == {("assignment", "delete"),
                                                       ("household", "delete")}
    assert not differences(db)
    # a second close, an assignment or an unassignment in the closed round: 409
    response = client.post(f"/api/v1/rounds/{round_id}/close", headers=team["root"])
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "round_closed"
    response = client.post("/api/v1/assignments", headers=team["spv"], json={
        "round_id": round_id, "enumerator": "ani", "household_ids": ["KLG-A1"]})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "round_closed"
    response = client.delete(f"/api/v1/assignments/{round_id}/KLG-A1", headers=team["spv"])
    assert response.status_code == 409
    # the next round assigns the same families
    response = client.post("/api/v1/rounds", headers=team["spv"], json={
        "name": "Groundcheck 2026-Q2", "starts_on": "2026-04-01", "ends_on": "2026-06-30"})
    second = response.get_json()["id"]
    result = assign(second, "budi", household_ids=["KLG-A1", "KLG-A2"])
    assert result["assigned"] == 2 and result["skipped"] == []
    assert client.post(f"/api/v1/rounds/{second}/close",
                       headers=team["root"]).get_json()["ended"] == 2
    assert not differences(db)


def test_a_push_for_a_closed_round_is_refused(client, db, team, round_id, assign):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    assert client.post(f"/api/v1/rounds/{round_id}/close",
                       headers=team["root"]).status_code == 200
    response = client.get("/api/v1/households", headers=team["ani"])
    assert response.get_json()["items"] == []


def test_round_close_from_the_command_line(runner, db, team, round_id, assign):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    result = runner.invoke(args=["assignments", "round-close", str(round_id)])
    assert result.exit_code == 0, result.output
    assert "1 open assignments ended" in result.output
    assert "closed" in runner.invoke(args=["assignments", "rounds"]).output
    result = runner.invoke(args=["assignments", "round-close", str(round_id)])
    assert result.exit_code != 0 and "already closed" in result.output
    db.expire_all()
    assert db.get(Round, round_id).state == "closed"
