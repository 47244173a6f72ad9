"""Login, tokens, expiry, revocation and the login rate limit."""

import datetime as dt

from sqlalchemy import select

from server.models import ApiToken, hash_token


def test_login_returns_an_opaque_token_stored_only_as_a_hash(client, db, make_user):
    make_user("ani", areas=("31.73.01",))
    response = client.post("/api/v1/auth/token", json={
        "username": "ani", "password": "password123", "device_id": "hp-1"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["user"] == {"username": "ani", "role": "enumerator", "areas": ["31.73.01"],
                            "full_name": None, "active": True}
    stored = db.scalars(select(ApiToken)).one()
    assert stored.token_hash == hash_token(body["token"]) != body["token"]
    assert stored.device_id == "hp-1"
    assert dt.datetime.fromisoformat(body["expires_at"]) > dt.datetime.now(dt.UTC)


def test_me_with_and_without_a_token(client, make_user, login):
    make_user("budi", role="supervisor", areas=("31.73.01", "31.72.01"))
    headers = login("budi")
    assert client.get("/api/v1/me", headers=headers).get_json()["areas"] == [
        "31.72.01", "31.73.01"]
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


def test_wrong_password_and_unknown_user_answer_alike(client, make_user):
    make_user("ani")
    wrong = client.post("/api/v1/auth/token", json={
        "username": "ani", "password": "nope-nope", "device_id": "d"})
    unknown = client.post("/api/v1/auth/token", json={
        "username": "nobody", "password": "nope-nope", "device_id": "d"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["code"] == "invalid_credentials"


def test_expired_token_is_refused(client, db, make_user, login):
    make_user("ani")
    headers = login("ani")
    token = db.scalars(select(ApiToken)).one()
    token.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_logout_revokes_only_the_token_used(client, make_user, login):
    make_user("ani")
    phone, tablet = login("ani", device_id="phone"), login("ani", device_id="tablet")
    assert client.delete("/api/v1/auth/token", headers=phone).status_code == 204
    assert client.get("/api/v1/me", headers=phone).status_code == 401
    assert client.get("/api/v1/me", headers=tablet).status_code == 200


def test_admin_revokes_a_device_or_a_user(client, make_user, login):
    make_user("root", role="admin")
    make_user("ani")
    make_user("budi")
    admin = login("root", device_id="laptop")
    lost = login("ani", device_id="lost-phone")
    other = login("ani", device_id="new-phone")
    budi = login("budi", device_id="lost-phone")
    response = client.post("/api/v1/auth/revoke", json={"device_id": "lost-phone"},
                           headers=admin)
    assert response.status_code == 200 and response.get_json() == {"revoked": 2}
    assert client.get("/api/v1/me", headers=lost).status_code == 401
    assert client.get("/api/v1/me", headers=budi).status_code == 401
    assert client.get("/api/v1/me", headers=other).status_code == 200
    response = client.post("/api/v1/auth/revoke", json={"username": "ani"}, headers=admin)
    assert response.get_json() == {"revoked": 1}
    assert client.get("/api/v1/me", headers=other).status_code == 401


def test_only_admins_revoke_other_tokens(client, make_user, login):
    make_user("spv", role="supervisor")
    make_user("ani")
    response = client.post("/api/v1/auth/revoke", json={"username": "ani"},
                           headers=login("spv"))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_login_attempts_are_rate_limited(client, make_user):
    make_user("ani")
    attempt = {"username": "ani", "password": "wrong-wrong", "device_id": "d"}
    statuses = [client.post("/api/v1/auth/token", json=attempt).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    response = client.post("/api/v1/auth/token", json=attempt)
    assert response.status_code == 429
    body = response.get_json()["error"]
    assert body["code"] == "rate_limited" and "5 per 1 minute" in body["message"]
    # Another username from the same address is counted apart.
    other = client.post("/api/v1/auth/token", json={**attempt, "username": "budi"})
    assert other.status_code == 401
