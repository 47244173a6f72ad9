"""GET /households and /households/{id}: area scoping, filters, masking, pagination, detail."""

from sync.db import write_transaction
from sync.registry import apply_changes


def ids(response):
    return [h["household_id"] for h in response.get_json()["items"]]


def test_supervisor_sees_only_their_areas_with_masked_numbers(client, make_user, login,
                                                              imported):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    headers = login("spv")
    response = client.get("/api/v1/households", headers=headers)
    assert response.status_code == 200
    assert ids(response) == ["KLG-A1", "KLG-A2"]
    first = response.get_json()["items"][0]
    assert first["no_kk"] == "317301********05"
    assert "3173011203150005" not in response.get_data(as_text=True)
    assert "Siti" not in response.get_data(as_text=True)
    assert first["kode_kecamatan"] == "31.73.01" and first["members"] == 1
    assert first["version"] == 1


def test_admin_sees_everything_and_filters_work(client, make_user, login, imported):
    make_user("root", role="admin")
    headers = login("root")
    assert ids(client.get("/api/v1/households", headers=headers)) == [
        "KLG-A1", "KLG-A2", "KLG-B1"]
    by_kec = client.get("/api/v1/households?kecamatan=31.72.01", headers=headers)
    assert ids(by_kec) == ["KLG-B1"]
    by_kel = client.get("/api/v1/households?kelurahan=31.73.01.1002", headers=headers)
    assert ids(by_kel) == ["KLG-A2"]
    by_kk = client.get("/api/v1/households?q=3173011203150005", headers=headers)
    assert ids(by_kk) == ["KLG-A1"]
    by_prefix = client.get("/api/v1/households?q=KLG-A", headers=headers)
    assert ids(by_prefix) == ["KLG-A1", "KLG-A2"]
    bad = client.get("/api/v1/households?kecamatan=31.72", headers=headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["details"]["errors"][0][
        "path"] == "kecamatan"


def test_cursor_pagination_walks_every_row_once(client, make_user, login, imported):
    make_user("root", role="admin")
    headers = login("root")
    seen, cursor = [], None
    while True:
        url = "/api/v1/households?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=headers).get_json()
        seen += [h["household_id"] for h in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["KLG-A1", "KLG-A2", "KLG-B1"]
    forged = client.get("/api/v1/households?cursor=KLG-A1", headers=headers)
    assert forged.status_code == 400 and forged.get_json()["error"]["code"] == "invalid_cursor"


def test_detail_has_both_layers_and_history(client, db, make_user, login, imported):
    make_user("root", role="admin")
    with write_transaction(db):
        apply_changes(db, "KLG-A1", {"rumah.lantai": 2}, source="test", actor_id=None)
    body = client.get("/api/v1/households/KLG-A1", headers=login("root")).get_json()
    assert body["registry"]["record"]["rumah"]["lantai"] == 6
    assert body["verified"]["record"]["rumah"]["lantai"] == 2
    assert body["version"] == 2
    assert body["registry"]["record"]["anggota"][0]["nik"] == "3173014508850003"
    layers = [(e["layer"], e["version"]) for e in body["history"]]
    assert ("registry", 1) in layers and ("verified", 2) in layers
    change = [e for e in body["history"] if e["layer"] == "verified" and e["version"] == 2][0]
    assert change["changes"] == [{"path": "rumah.lantai", "old": 6, "new": 2}]
    assert body["history"][0]["at"].endswith("+00:00")


def test_detail_outside_the_callers_areas_is_not_found(client, make_user, login, imported):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    make_user("ani", areas=("31.72.01",))
    for who, household in (("spv", "KLG-B1"), ("ani", "KLG-A1")):
        response = client.get(f"/api/v1/households/{household}", headers=login(who))
        assert response.status_code == 404
    assert client.get("/api/v1/households/KLG-NONE", headers=login("spv")).status_code == 404
    assert client.get("/api/v1/households/KLG-A1").status_code == 401
