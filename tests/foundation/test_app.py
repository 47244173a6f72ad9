"""The factory, the settings and the health endpoint."""

import os

import config
from server import __version__, create_app


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/tapak")
    monkeypatch.setenv("TOKEN_TTL", "60")
    monkeypatch.setenv("MAX_PHOTO_BYTES", "1234")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    settings = config.from_environment(str(tmp_path))
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@db.example/tapak"
    assert settings["TOKEN_TTL"] == 60
    assert settings["MAX_PHOTO_BYTES"] == 1234
    assert settings["PHOTO_DIR"] == str(tmp_path / "photos")


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert config.from_environment(str(tmp_path))["DATABASE_URL"] == (
        f"sqlite:///{tmp_path / 'tapak.db'}")


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = config.from_environment(str(tmp_path))["SECRET_KEY"]
    second = config.from_environment(str(tmp_path))["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert oct(os.stat(tmp_path / "secret_key").st_mode & 0o777) == "0o600"
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert config.from_environment(str(tmp_path))["SECRET_KEY"] == "from-env"


def test_factory_builds_an_app_with_test_settings(tmp_path):
    app = create_app(config.for_testing(str(tmp_path), f"sqlite:///{tmp_path}/x.db",
                                        str(tmp_path / "p")))
    assert app.testing
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True
    assert "users" in app.cli.commands and "areas" in app.cli.commands


def test_health_reports_database_and_version(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "version": __version__}


def test_openapi_document_lists_the_api(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.get_json()["paths"]
    for path in ("/api/v1/auth/token", "/api/v1/me", "/api/v1/users", "/api/v1/health"):
        assert path in paths
