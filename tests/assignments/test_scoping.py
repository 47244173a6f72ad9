"""Scoping is a security property: every path tried with another user's ids (IDOR)."""

import pytest


@pytest.fixture
def held(team, round_id, assign):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    assign(round_id, "budi", household_ids=["KLG-A2"])
    return round_id


def test_an_enumerator_lists_only_assigned_families(client, team, held):
    body = client.get("/api/v1/households", headers=team["ani"]).get_json()
    assert [h["household_id"] for h in body["items"]] == ["KLG-A1"]
    for query in ("q=KLG-A2", "kelurahan=31.73.01.1002", "q=3173011203150006",
                  "kecamatan=31.72.01"):
        body = client.get(f"/api/v1/households?{query}", headers=team["ani"]).get_json()
        assert body["items"] == []


@pytest.mark.parametrize("path", [
    "/api/v1/households/{hid}",
    "/api/v1/households/{hid}/prefill?form_id=verifikasi_keluarga",
])
def test_an_enumerator_cannot_read_a_neighbours_family(client, runner, team, held, path):
    from server.cli.forms import FORMS_DIR

    runner.invoke(args=["forms", "publish", str(FORMS_DIR / "verifikasi_keluarga" / "v1.json")])
    own = client.get(path.format(hid="KLG-A1"), headers=team["ani"])
    assert own.status_code == 200
    for other in ("KLG-A2", "KLG-B1", "KLG-NOPE"):
        response = client.get(path.format(hid=other), headers=team["ani"])
        assert response.status_code == 404, (other, response.get_json())
        assert "3173" not in response.get_data(as_text=True)


def test_an_enumerator_cannot_touch_assignments(client, team, held):
    assert client.delete(f"/api/v1/assignments/{held}/KLG-A2",
                         headers=team["ani"]).status_code == 403
    mine = client.get("/api/v1/assignments?enumerator=budi", headers=team["ani"]).get_json()
    assert mine["items"] == []
    assert client.post("/api/v1/rounds", headers=team["ani"], json={
        "name": "x-round", "starts_on": "2026-01-01", "ends_on": "2026-01-02"}).status_code == 403


def test_a_family_leaves_the_enumerators_reach_when_reassigned(client, team, held, assign):
    assign(held, "budi", household_ids=["KLG-A1"])
    assert client.get("/api/v1/households/KLG-A1", headers=team["ani"]).status_code == 404
    assert client.get("/api/v1/households/KLG-A1", headers=team["budi"]).status_code == 200


def test_photos_of_another_enumerators_visit_are_not_found(client, team, held, db):
    """Photos are checked through the visit's household (covered in tests/push as well)."""
    from sync.models.visit import Photo

    db.add(Photo(sha256="a" * 64, size_bytes=1, mime_type="image/jpeg", width=1, height=1,
                 uploaded_by=None))
    db.commit()
    for who in ("ani", "budi", "spv"):
        response = client.get(f"/api/v1/photos/{'a' * 64}", headers=team[who])
        assert response.status_code == 404


def test_a_supervisor_never_sees_outside_their_areas(client, team, held, make_user, login,
                                                     round_id):
    make_user("spv-utara", role="supervisor", areas=("31.72.01",))
    other = login("spv-utara")
    assert client.get("/api/v1/households/KLG-A1", headers=other).status_code == 404
    assert client.get("/api/v1/assignments", headers=other).get_json()["items"] == []
    assert client.delete(f"/api/v1/assignments/{held}/KLG-A1",
                         headers=other).status_code == 404
    response = client.post("/api/v1/assignments", headers=other, json={
        "round_id": round_id, "enumerator": "citra", "household_ids": ["KLG-A1"]})
    assert response.get_json()["skipped"][0]["reason"] == "outside_your_areas"
    listing = client.get("/api/v1/households", headers=other).get_json()["items"]
    assert [h["household_id"] for h in listing] == ["KLG-B1"]
