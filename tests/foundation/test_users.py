"""Role and area enforcement on /me and the users endpoints, and the users CLI."""

from sqlalchemy import select

from server.models import ApiToken, User


def test_admin_creates_users_with_areas(client, make_user, login):
    make_user("root", role="admin")
    response = client.post("/api/v1/users", headers=login("root"), json={
        "username": "citra", "password": "password123", "role": "enumerator",
        "areas": ["31.73.01.1001"]})
    assert response.status_code == 201
    assert response.get_json()["areas"] == ["31.73.01.1001"]
    assert "password" not in response.get_json()


def test_creating_a_user_is_refused_with_reasons(client, make_user, login):
    make_user("root", role="admin")
    headers = login("root")
    unknown_area = client.post("/api/v1/users", headers=headers, json={
        "username": "citra", "password": "password123", "role": "enumerator",
        "areas": ["99.99"]})
    assert unknown_area.status_code == 422
    assert unknown_area.get_json()["error"]["details"]["errors"][0]["path"] == "areas"
    no_area = client.post("/api/v1/users", headers=headers, json={
        "username": "citra", "password": "password123", "role": "supervisor"})
    assert no_area.status_code == 422
    duplicate = client.post("/api/v1/users", headers=headers, json={
        "username": "root", "password": "password123", "role": "admin"})
    assert duplicate.status_code == 409


def test_enumerators_and_supervisors_cannot_create_users(client, make_user, login):
    make_user("spv", role="supervisor")
    make_user("ani")
    payload = {"username": "x1", "password": "password123", "role": "admin"}
    for who in ("spv", "ani"):
        assert client.post("/api/v1/users", json=payload, headers=login(who)).status_code == 403


def test_supervisor_sees_only_enumerators_of_their_areas(client, make_user, login):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    make_user("inside", areas=("31.73.01.1001",))
    make_user("outside", areas=("31.72.01",))
    make_user("root", role="admin")
    headers = login("spv")
    names = [u["username"] for u in client.get("/api/v1/users", headers=headers).get_json()]
    assert names == ["inside", "spv"]
    assert client.get("/api/v1/users/inside", headers=headers).status_code == 200
    assert client.get("/api/v1/users/outside", headers=headers).status_code == 404
    assert client.get("/api/v1/users", headers=login("inside")).status_code == 403
    everyone = client.get("/api/v1/users", headers=login("root")).get_json()
    assert len(everyone) == 4


def test_user_covers_areas_below_its_own():
    user = User(username="s", role="supervisor", password_hash="x")
    from server.models import UserArea

    user.area_links = [UserArea(area_code="31.73.01")]
    assert user.covers("31.73.01") and user.covers("31.73.01.1001")
    assert not user.covers("31.73.010") and not user.covers("31.73") and not user.covers(None)


def test_cli_creates_lists_and_revokes(runner, db, client, login):
    result = runner.invoke(args=["users", "create", "dewi", "--role", "supervisor",
                                 "--area", "31.73.01", "--password", "password123"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["users", "create", "eko", "--role", "enumerator",
                                 "--area", "31.73.01"], input="password123\npassword123\n")
    assert result.exit_code == 0, result.output
    listing = runner.invoke(args=["users", "list"]).output
    assert "dewi" in listing and "supervisor" in listing and "eko" in listing
    headers = login("eko", device_id="phone-a")
    login("eko", device_id="phone-b")
    result = runner.invoke(args=["users", "revoke", "eko", "--device", "phone-a"])
    assert "revoked 1 token" in result.output
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    db.expire_all()
    live = db.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None))).all()
    assert [t.device_id for t in live] == ["phone-b"]
    refused = runner.invoke(args=["users", "create", "x", "--role", "enumerator",
                                  "--area", "00.00", "--password", "password123"])
    assert refused.exit_code != 0 and "Unknown area" in refused.output


def test_bootstrap_creates_demo_data_once(runner, db, app):
    from sqlalchemy import func

    from sync.models import Assignment, FormVersion, Keluarga

    first = runner.invoke(args=["bootstrap", "--households", "300"])
    assert first.exit_code == 0, first.output
    assert "created 32 demo users" in first.output and "spv-cengkareng" in first.output
    assert "pemantau-bappeda" in first.output
    assert "300 families imported" in first.output
    assert "verifikasi_keluarga v1 published" in first.output
    assigned = db.scalar(select(func.count()).select_from(Assignment))
    assert assigned == db.scalar(select(func.count()).select_from(Keluarga)) == 300
    # Every family sits with an enumerator of its own kecamatan.
    rows = db.execute(select(Keluarga.kode_kelurahan, User.id)
                      .join(Assignment, Assignment.household_id == Keluarga.id)
                      .join(User, User.id == Assignment.enumerator_id)).all()
    users = {u.id: u for u in db.scalars(select(User))}
    assert all(users[uid].covers(kelurahan) for kelurahan, uid in rows)
    # A few days of demo field work, reconciled: the review queue has something to show.
    from sync.models import Conflict, Visit

    visits = dict(db.execute(select(Visit.status, func.count()).group_by(Visit.status)).all())
    assert "demo field work" in first.output and sum(visits.values()) > 0
    assert set(visits) <= {"verified", "needs_review"} and visits.get("needs_review", 0) > 0
    assert db.scalar(select(func.count()).select_from(Conflict)) > 0
    second = runner.invoke(args=["bootstrap", "--households", "300"])
    assert second.exit_code == 0, second.output
    assert "created" not in second.output and "imported" not in second.output
    assert "demo field work" not in second.output
    assert "already published, unchanged" in second.output
    assert db.scalar(select(func.count()).select_from(FormVersion)) == 1
    assert db.scalar(select(User).where(User.username == "spv-johar-baru")).areas == ["31.71.08"]
