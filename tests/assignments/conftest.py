import pytest


@pytest.fixture
def team(make_user, login, imported):
    """A supervisor of Cengkareng, two enumerators there and one in Penjaringan, logged in."""
    make_user("spv", role="supervisor", areas=("31.73.01",))
    make_user("ani", areas=("31.73.01",))
    make_user("budi", areas=("31.73.01",))
    make_user("citra", areas=("31.72.01",))
    make_user("root", role="admin")
    return {name: login(name, device_id=f"{name}-phone")
            for name in ("spv", "ani", "budi", "citra", "root")}


@pytest.fixture
def round_id(client, team):
    response = client.post("/api/v1/rounds", headers=team["spv"], json={
        "name": "Groundcheck 2026-Q1 Prioritas", "starts_on": "2026-01-01",
        "ends_on": "2026-03-31"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def assign(client, team):
    def do(round_id, enumerator, who="spv", **selector):
        response = client.post("/api/v1/assignments", headers=team[who],
                               json={"round_id": round_id, "enumerator": enumerator, **selector})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return do


@pytest.fixture
def pull(client, team):
    """Pull every page for a user; return (changes, final cursor)."""

    def do(who, cursor=None, limit=500):
        changes = []
        while True:
            url = f"/api/v1/sync/pull?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            response = client.get(url, headers=team[who])
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            changes += body["changes"]
            cursor = body["next_cursor"]
            if not body["more"]:
                return changes, cursor

    return do
