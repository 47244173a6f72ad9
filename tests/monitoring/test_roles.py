"""A pemantau reaches aggregates only: every route of the API and of the pages is tried with a
pemantau's token or session, and nothing but the monitoring, progress (workflow counts, no
conflict kinds) and account paths answers with data (docs/monitoring.md, "Who sees what")."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from server.models import ROLES
from sync.models import Conflict, Keluarga, Photo, Round, Visit
from tests.monitoring.conftest import csrf_of, page_login

# (method, rule) a pemantau may use, and what it answers.
API_ALLOWED = {
    ("GET", "/api/v1/me"): 200,
    ("GET", "/api/v1/health"): 200,
    ("GET", "/api/v1/ready"): 200,
    ("GET", "/api/v1/areas"): 200,
    ("GET", "/api/v1/progress"): 200,
    ("GET", "/api/v1/monitoring"): 200,
    ("GET", "/api/v1/exports/monitoring.csv"): 200,
    ("POST", "/api/v1/auth/token"): 422,   # login itself (an empty body here)
    ("DELETE", "/api/v1/auth/token"): 204,  # logout
    ("GET", "/api/openapi.json"): 200,      # the public document
}
# Public by design, signed: without the signature it is refused to everyone.
API_PUBLIC_SIGNED = {"/api/v1/media/<sha256:sha256>"}
PAGES_ALLOWED = {"pages.login", "pages.monitoring", "pages.monitoring_csv", "pages.home",
                 "pages.logout"}

NIK_LIKE = re.compile(r"(?<!\d)\d{16}(?!\d)")


def _values(db) -> dict:
    visit = db.scalar(select(Visit).order_by(Visit.uuid).limit(1))
    photo = db.scalar(select(Photo.sha256).limit(1))
    return {
        "household_id": db.scalar(select(Keluarga.id).order_by(Keluarga.id).limit(1)),
        "conflict_id": db.scalar(select(Conflict.id).order_by(Conflict.id).limit(1)),
        "round_id": db.scalar(select(Round.id).limit(1)),
        "uuid": visit.uuid, "sha256": photo, "name": photo, "username": "admin",
        "form_id": "verifikasi_keluarga", "version": 1,
    }


def _rules(app, prefix: str):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(prefix):
            continue
        for method in sorted(rule.methods - {"OPTIONS"}):
            yield rule, method


def _build(app, rule, values) -> str:
    adapter = app.url_map.bind("localhost")
    return adapter.build(rule.endpoint, {k: values[k] for k in rule.arguments},
                         method=None)


def test_pemantau_is_a_role_created_like_a_supervisor(runner, app, db):
    assert "pemantau" in ROLES
    result = runner.invoke(args=["users", "create", "pantau-dinsos", "--role", "pemantau",
                                 "--area", "31.73.01", "--password", "password123"])
    assert result.exit_code == 0, result.output
    assert "pantau-dinsos (pemantau) areas: 31.73.01" in result.output
    # like a supervisor, a pemantau needs an area
    result = runner.invoke(args=["users", "create", "pantau-2", "--role", "pemantau",
                                 "--password", "password123"])
    assert result.exit_code != 0


def test_every_api_route_refuses_a_pemantau_but_the_aggregates(demo, app, db, client,
                                                               token):
    headers = token("pemantau-bappeda")
    values = _values(db)
    seen = set()
    for rule, method in _rules(app, "/api/"):
        if rule.rule in API_PUBLIC_SIGNED:
            continue
        url = _build(app, rule, values)
        key = (method, rule.rule)
        if key == ("DELETE", "/api/v1/auth/token"):
            continue  # last: it revokes the token
        response = client.open(url, method=method, headers=headers)
        seen.add(key)
        if key in API_ALLOWED or (method == "HEAD" and ("GET", rule.rule) in API_ALLOWED):
            expected = API_ALLOWED.get(key, 200)
            assert response.status_code == expected, (method, url, response.status_code)
            if rule.rule == "/api/openapi.json":
                continue  # the document describes fields; it holds no data
            text = response.get_data(as_text=True)
            assert not NIK_LIKE.search(text), (method, url)
            for word in ('"nik"', '"nama"', '"no_kk"', '"household_id"', '"visit_uuid"'):
                assert word not in text, (method, url, word)
            continue
        assert response.status_code == 403, (method, url, response.status_code)
        if method != "HEAD":
            assert response.get_json()["error"]["code"] == "forbidden", (method, url)
    assert len(seen) > 40  # every operation of the document was tried
    response = client.delete("/api/v1/auth/token", headers=headers)
    assert response.status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_the_signed_media_route_refuses_a_pemantau_without_a_signature(demo, db, client,
                                                                       token):
    sha = _values(db)["sha256"]
    headers = token("pemantau-bappeda")
    response = client.get(f"/api/v1/media/{sha}", headers=headers)
    assert response.status_code == 422  # exp and sig are required
    response = client.get(f"/api/v1/media/{sha}?size=full&exp=9999999999&sig={'0' * 64}",
                          headers=headers)
    assert response.status_code == 403


def test_every_page_refuses_a_pemantau_but_monitoring(demo, app, db, client):
    response = page_login(client, "pemantau-bappeda")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/review/pemantauan")
    values = _values(db)
    values.update({"household_id": values["household_id"], "conflict_id": values["conflict_id"],
                   "uuid": values["uuid"], "round_id": values["round_id"]})
    token = csrf_of(client)
    tried = 0
    for rule, method in _rules(app, "/review"):
        if rule.endpoint == "pages.logout":
            continue
        url = _build(app, rule, values)
        data = {"csrf_token": token} if method == "POST" else None
        response = client.open(url, method=method, data=data)
        tried += 1
        if rule.endpoint in PAGES_ALLOWED:
            # the login form answers 422 to a POST (or HEAD) without username and password
            ok = (200, 302, 303, 422) if rule.endpoint == "pages.login" else (200, 302, 303)
            assert response.status_code in ok, (method, url, response.status_code)
            if rule.endpoint == "pages.home":
                assert response.headers["Location"].endswith("/review/pemantauan")
            text = response.get_data(as_text=True)
            assert not NIK_LIKE.search(text), (method, url)
            continue
        assert response.status_code == 403, (method, url, response.status_code)
        if method == "GET":
            assert "Pemantau melihat halaman Pemantauan" in response.get_data(as_text=True)
    assert tried > 10
    page = client.get("/review/pemantauan").get_data(as_text=True)
    # the navigation offers the monitoring page only
    assert 'href="/review/antrean"' not in page and 'href="/review/dasbor"' not in page
    response = client.post("/review/keluar", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 303
    assert client.get("/review/pemantauan").status_code == 302


@pytest.mark.parametrize("username", ["admin", "spv-cengkareng"])
def test_supervisors_and_admins_see_monitoring_too(demo, client, token, username):
    body = client.get("/api/v1/monitoring", headers=token(username)).get_json()
    assert body["areas"]
    page_login(client, username)
    assert client.get("/review/pemantauan").status_code == 200


def test_enumerators_are_refused_monitoring(demo, db, client, token):
    from sync.db import write_transaction
    from tests.monitoring.conftest import _user

    with write_transaction(db):
        _user(db, "enum-cengkareng-1").set_password("password123")
    headers = token("enum-cengkareng-1")
    for path in ("/api/v1/monitoring", "/api/v1/exports/monitoring.csv", "/api/v1/progress"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403, path
        assert json.loads(response.data)["error"]["code"] == "forbidden"


def test_operations_without_roles_are_the_staffs(app):
    """``login_required()`` without roles means the staff roles: the document says so."""
    doc = app.test_client().get("/api/openapi.json").get_json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "head", "post", "put", "patch", "delete"):
                continue
            roles = op.get("x-roles")
            if op.get("security"):
                assert roles, (method, path)
            if roles and "pemantau" in roles:
                assert (method.upper(), path) in {
                    ("GET", "/api/v1/me"), ("GET", "/api/v1/areas"),
                    ("GET", "/api/v1/progress"), ("GET", "/api/v1/monitoring"),
                    ("GET", "/api/v1/exports/monitoring.csv"),
                    ("DELETE", "/api/v1/auth/token")}, (method, path)


def test_a_pemantau_sees_progress_without_conflict_kinds(demo, db, client, token):
    """The contract gives a pemantau progress; its open conflicts by kind would be the
    monitoring view's targeting errors unsuppressed, so they come as a total only."""
    from server.services.review import reopen_conflict
    from tests.monitoring.conftest import _user

    closed = db.scalar(select(Conflict).where(Conflict.status == "resolved")
                       .order_by(Conflict.id))
    reopen_conflict(db, _user(db, "admin"), closed.id, note="dibuka lagi")
    staff = client.get("/api/v1/progress?priority=1", headers=token("admin")).get_json()
    assert staff["totals"]["conflicts_open"]
    body = client.get("/api/v1/progress?priority=1", headers=token("pemantau-bappeda"))
    assert body.status_code == 200
    body = body.get_json()
    assert body["totals"]["conflicts_open_total"] == staff["totals"]["conflicts_open_total"]
    assert body["totals"]["conflicts_open"] == {}
    assert all(a["conflicts_open"] == {} for a in body["areas"])
