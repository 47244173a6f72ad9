"""Hardening: security headers on every response, session cookie flags, login that does the
same work whether the user exists or not, and tokens that a leaked database cannot replay."""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import text

import server.models
from server.security import CONTENT_SECURITY_POLICY

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

# One of each kind of response: a page, a page's 404, the login page, the API, the API's 401
# and 404, a 404 outside both, a 405, and a static file.
PATHS = ["/review/masuk", "/review/antrean", "/review/konflik/999999", "/api/v1/health",
         "/api/v1/me", "/api/v1/nope", "/nope", "/static/tapak.css", "/static/nope.css",
         "/api/openapi.json"]


def _page_login(client, username, password="password123", *, https=False):
    """Log in on the login page as a browser does: GET the form, POST it with its token."""
    kw = {"base_url": "https://localhost"} if https else {}
    page = client.get("/review/masuk", **kw).get_data(as_text=True)
    headers = {"Referer": "https://localhost/review/masuk"} if https else {}
    return client.post("/review/masuk", data={
        "username": username, "password": password,
        "csrf_token": _TOKEN.search(page).group(1)}, headers=headers, **kw)


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_the_security_headers(client, make_user, path):
    make_user("spv", role="supervisor")
    if path.startswith("/review/") and path != "/review/masuk":
        assert _page_login(client, "spv").status_code == 303
    response = client.get(path)
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    # HSTS only once the app is known to be behind TLS (SESSION_COOKIE_SECURE).
    assert "Strict-Transport-Security" not in headers


def test_the_policy_forbids_inline_styles_and_scripts_and_other_hosts():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["style-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"


def test_error_pages_carry_the_headers_too(client):
    for response in (client.get("/nope"), client.post("/api/v1/health"),
                     client.get("/review/konflik/not-a-number")):
        assert response.status_code >= 400
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Frame-Options"] == "DENY"


def test_hsts_only_when_the_session_cookie_is_secure(app, client, monkeypatch):
    assert "Strict-Transport-Security" not in client.get("/api/v1/health").headers
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    for path in ("/api/v1/health", "/review/masuk", "/static/tapak.css", "/nope"):
        headers = client.get(path, base_url="https://localhost").headers
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_a_view_may_set_its_own_value(app):
    from server.security import add_security_headers

    with app.test_request_context("/"):
        response = app.make_response(("x", 200, {"X-Frame-Options": "SAMEORIGIN"}))
        add_security_headers(response)
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_html_pages_are_never_cached(client):
    assert client.get("/review/masuk").headers["Cache-Control"] == "no-store"


# --------------------------------------------------------------------------- session cookie


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_the_page_session_cookie_is_httponly_and_samesite_lax(client, make_user):
    make_user("spv", role="supervisor")
    response = _page_login(client, "spv")
    assert response.status_code == 303
    cookie = _session_cookie(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # SESSION_COOKIE_SECURE is off in tests (plain HTTP)
    # A page session lasts 12 hours (docs/pages.md), not Flask's default of 31 days.
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert expires <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=12, minutes=1)


def test_the_page_session_cookie_is_secure_when_configured(app, client, make_user,
                                                           monkeypatch):
    make_user("spv", role="supervisor")
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    response = _page_login(client, "spv", https=True)
    assert response.status_code == 303, response.get_data(as_text=True)
    cookie = _session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "Strict-Transport-Security" in response.headers


def test_secure_cookies_follow_the_environment(tmp_path, monkeypatch):
    import config
    from server import create_app

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    app = create_app(config.for_testing(str(tmp_path), f"sqlite:///{tmp_path / 't.db'}",
                                        str(tmp_path / "photos")))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


# --------------------------------------------------------------------------- login work


@pytest.fixture
def hash_checks(monkeypatch):
    """Every call of werkzeug's check_password_hash, where the app looks it up."""
    calls = []
    real = server.models.check_password_hash

    def counting(pwhash, password):
        calls.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(server.models, "check_password_hash", counting)
    return calls


@pytest.fixture
def people(db, make_user):
    make_user("ani")
    make_user("spv", role="supervisor")
    gone = make_user("gone")
    gone_spv = make_user("gone-spv", role="supervisor")
    gone.active = gone_spv.active = False
    db.commit()


API_CASES = [("nobody", "password123", 401), ("gone", "password123", 401),
             ("ani", "wrong-password", 401), ("ani", "password123", 201)]
PAGE_CASES = [("nobody", "password123", 401), ("gone-spv", "password123", 401),
              ("spv", "wrong-password", 401), ("spv", "password123", 303)]


@pytest.mark.parametrize("username,password,status", API_CASES)
def test_api_login_checks_one_password_hash_on_every_path(client, people, hash_checks,
                                                          username, password, status):
    response = client.post("/api/v1/auth/token", json={
        "username": username, "password": password, "device_id": "d"})
    assert response.status_code == status
    assert len(hash_checks) == 1


@pytest.mark.parametrize("username,password,status", PAGE_CASES)
def test_page_login_checks_one_password_hash_on_every_path(client, people, hash_checks,
                                                           username, password, status):
    response = _page_login(client, username, password)
    assert response.status_code == status
    assert len(hash_checks) == 1


def test_a_missing_user_is_checked_against_a_hash_of_the_configured_method(
        app, client, people, hash_checks):
    for _ in range(2):
        client.post("/api/v1/auth/token", json={
            "username": "nobody", "password": "password123", "device_id": "d"})
    method = app.config["PASSWORD_HASH_METHOD"]
    assert len(hash_checks) == 2
    assert hash_checks[0] == hash_checks[1]  # made once, then reused
    assert hash_checks[0].startswith(method + "$")


# --------------------------------------------------------------------------- stored tokens


def test_a_leaked_token_table_gives_no_working_token(client, db, make_user, login):
    make_user("ani")
    headers = login("ani", device_id="hp-ani")
    plain = headers["Authorization"].removeprefix("Bearer ")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    db.commit()
    result = db.execute(text("SELECT * FROM api_tokens"))
    columns = list(result.keys())
    rows = [dict(zip(columns, row, strict=True)) for row in result]
    assert len(rows) == 1 and "token_hash" in columns
    stored = [str(v) for v in rows[0].values() if v is not None]
    assert all(plain not in value for value in stored)
    assert all(value not in plain for value in stored if len(value) >= 8)
    for value in stored:
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {value}"})
        assert response.status_code == 401, (value, response.get_json())
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_a_deactivated_user_loses_every_token_at_once(client, db, make_user, login):
    """A lost phone whose owner is deactivated: none of their devices' tokens works."""
    user = make_user("ani")
    phone, tablet = login("ani", device_id="phone"), login("ani", device_id="tablet")
    user.active = False
    db.commit()
    for headers in (phone, tablet):
        assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_the_api_never_accepts_the_page_session_cookie(client, make_user):
    """The API authenticates by bearer token only, so another site cannot ride the cookie."""
    make_user("spv", role="supervisor")
    assert _page_login(client, "spv").status_code == 303
    assert client.get("/review/antrean").status_code == 200  # the cookie works on pages
    assert client.get("/api/v1/me").status_code == 401
