"""Every error the API answers comes in the contract's envelope with the right status."""

import pytest


def envelope(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_400_malformed_json(client):
    response = client.post("/api/v1/auth/token", data="{not json",
                           content_type="application/json")
    envelope(response, 400, "bad_request")


def test_401_and_403(client, make_user, login):
    envelope(client.get("/api/v1/users"), 401, "unauthorized")
    make_user("ani")
    envelope(client.get("/api/v1/users", headers=login("ani")), 403, "forbidden")


def test_404_unknown_path_and_unknown_user(client, make_user, login):
    envelope(client.get("/api/v1/nothing-here"), 404, "not_found")
    make_user("root", role="admin")
    error = envelope(client.get("/api/v1/users/ghost", headers=login("root")), 404, "not_found")
    assert "ghost" in error["message"]


def test_405_wrong_method(client):
    envelope(client.put("/api/v1/health", json={}), 405, "method_not_allowed")


def test_409_conflict(client, make_user, login):
    make_user("root", role="admin")
    response = client.post("/api/v1/users", headers=login("root"), json={
        "username": "root", "password": "password123", "role": "admin"})
    envelope(response, 409, "user_exists")


def test_413_request_too_large(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        response = client.post("/api/v1/auth/token", data="x" * 5000,
                               content_type="application/json")
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024
    envelope(response, 413, "payload_too_large")


def test_415_body_that_is_not_json(client):
    response = client.post("/api/v1/auth/token", data="username=a",
                           content_type="application/x-www-form-urlencoded")
    envelope(response, 415, "unsupported_media_type")


def test_422_validation_errors_carry_field_paths(client):
    response = client.post("/api/v1/auth/token", json={"username": "", "extra": 1})
    error = envelope(response, 422, "validation_failed")
    paths = {e["path"] for e in error["details"]["errors"]}
    assert paths == {"username", "password", "device_id", "extra"}
    assert all(e["location"] == "json" and e["message"] for e in error["details"]["errors"])


def test_422_nested_paths_are_flattened():
    from server.errors import flatten_messages

    flat = flatten_messages({"visits": {2: {"answers": {"anggota": {0: {"nik": ["bad"]}}}}}})
    assert flat == [{"path": "visits[2].answers.anggota[0].nik", "code": "invalid",
                     "message": "bad"}]


def test_429_rate_limited(client):
    attempt = {"username": "x", "password": "wrong-wrong", "device_id": "d"}
    for _ in range(5):
        client.post("/api/v1/auth/token", json=attempt)
    envelope(client.post("/api/v1/auth/token", json=attempt), 429, "rate_limited")


@pytest.mark.parametrize("secret", ["3173014508850003"])
def test_500_never_echoes_the_exception(client, make_user, login, monkeypatch, caplog, secret):
    make_user("root", role="admin")
    headers = login("root")

    def explode(*_args, **_kwargs):
        raise RuntimeError(f"boom {secret} Siti Aminah")

    monkeypatch.setattr("server.services.users.visible_users", explode)
    response = client.get("/api/v1/users", headers=headers)
    error = envelope(response, 500, "internal_error")
    assert secret not in response.get_data(as_text=True)
    assert "boom" not in error["message"]
    assert any(r.name == "tapak.errors" for r in caplog.records)
    assert secret not in caplog.text and "Siti Aminah" not in caplog.text
