"""/api/v1/ready: the database, the photo store and the migrations' head, each checked for real."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import config
from server import create_app
from server.api.openapi import error_codes
from server.extensions import db


def test_ready_when_everything_is_in_place(client):
    response = client.get("/api/v1/ready")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "photos": "ok", "migrations": "ok"}


def test_not_ready_when_the_schema_is_behind_the_migrations(client, app):
    """A release deployed before its ``db upgrade``: the database still says 0018."""
    with db.engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0018'"))
    try:
        response = client.get("/api/v1/ready")
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "not_ready"
    assert error["details"]["failed"] == ["migrations"]
    assert error["details"]["checks"] == {"database": "ok", "photos": "ok",
                                          "migrations": "failed"}
    assert client.get("/api/v1/ready").status_code == 200  # and ready again once upgraded


def test_not_ready_when_the_photo_store_cannot_be_written(client, app, tmp_path, monkeypatch):
    """PHOTO_DIR below a regular file: nothing can be created there (root or not)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the photo volume should be")
    monkeypatch.setitem(app.config, "PHOTO_DIR", str(blocker / "photos"))
    response = client.get("/api/v1/ready")
    assert response.status_code == 503
    details = response.get_json()["error"]["details"]
    assert details["failed"] == ["photos"]
    # /health stays the cheap check: it does not look at the photo store
    assert client.get("/api/v1/health").status_code == 200


def test_not_ready_when_the_database_cannot_be_reached(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'tapak.db'}"
    app = create_app(config.for_testing(str(tmp_path), url, str(tmp_path / "photos")))
    with app.app_context():
        response = app.test_client().get("/api/v1/ready")
        db.engine.dispose()
    assert response.status_code == 503
    details = response.get_json()["error"]["details"]
    assert details["failed"] == ["database", "migrations"]
    assert details["checks"]["photos"] == "ok"


def test_ready_is_in_the_openapi_document(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/ready"]["get"]
    assert operation["operationId"] == "getReady"
    assert operation["security"] == []
    assert error_codes(spec, "/api/v1/ready", "get", 503) == ["not_ready"]
    assert "/metrics" not in spec["paths"]


@pytest.mark.parametrize("path", ["/api/v1/ready", "/api/v1/health"])
def test_no_login_is_needed(client, path):
    assert client.get(path).status_code == 200
