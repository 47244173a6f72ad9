"""Tapak's Flask application: ``flask --app server ...`` finds ``create_app`` here."""

from __future__ import annotations

import os

from flask import Flask

__version__ = "0.1.0"


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints, error handlers, logging and CLI."""
    from server.jsonutil import TapakJSONProvider

    app = Flask(__name__, instance_path=os.environ.get("TAPAK_INSTANCE") or None,
                instance_relative_config=True)
    app.json = TapakJSONProvider(app)
    os.makedirs(app.instance_path, exist_ok=True)
    register_config(app, test_config)
    register_logging(app)
    register_models(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_security(app)
    register_metrics(app)
    register_cli(app)
    return app


def register_config(app: Flask, test_config: dict | None) -> None:
    import config
    from sync.db import ENGINE_OPTIONS

    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=app.config["DATABASE_URL"],
        # Parameters can hold NIKs and names: keep them out of exception messages and logs.
        SQLALCHEMY_ENGINE_OPTIONS={**ENGINE_OPTIONS, "hide_parameters": True,
                                   "pool_pre_ping": True},
        API_TITLE="Tapak API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        # Phones pay for every byte: gzip JSON, CSV and pages when the client accepts it.
        COMPRESS_ALGORITHM=["gzip", "br"],
        COMPRESS_MIMETYPES=["application/json", "text/csv", "text/html", "image/svg+xml",
                            "text/css", "text/javascript", "application/javascript",
                            "application/manifest+json"],
        COMPRESS_MIN_SIZE=512,
        COMPRESS_LEVEL=6,
    )


def register_models(app: Flask) -> None:
    import server.models

    server.models.PASSWORD_HASH_METHOD = app.config["PASSWORD_HASH_METHOD"]


def register_logging(app: Flask) -> None:
    from server.logging import configure_logging

    configure_logging(app)


def register_extensions(app: Flask) -> None:
    from server import params
    from server.extensions import api, compress, db, limiter, migrate
    from sync.db import configure_engine

    params.init_app(app)  # before the blueprints: URL rules take their converters when added
    db.init_app(app)
    migrations = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")
    migrate.init_app(app, db, directory=migrations, render_as_batch=True)
    limiter.init_app(app)
    compress.init_app(app)
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "Opaque token"}
    )
    with app.app_context():
        configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"],
                         app.config["SQLITE_CACHE_MB"], app.config["SQLITE_MMAP_MB"],
                         app.config["SQLITE_WAL_AUTOCHECKPOINT"])


def register_blueprints(app: Flask) -> None:
    from server.api import register_blueprints as register_api
    from server.openrosa import init_app as register_openrosa
    from server.web import init_app as register_pages

    register_api(app)
    register_openrosa(app)  # XML for ODK Collect, Kobo, Enketo; not in the OpenAPI document
    register_pages(app)  # after the API: its blueprints are exempted from CSRF checks


def register_error_handlers(app: Flask) -> None:
    from server.errors import register_error_handlers as register

    register(app)


def register_security(app: Flask) -> None:
    from server.security import register_security_headers

    register_security_headers(app)


def register_metrics(app: Flask) -> None:
    from server.metrics import init_app

    init_app(app)  # after Flask-Compress: it counts and reads responses before compression


def register_cli(app: Flask) -> None:
    from server.cli import register_commands

    register_commands(app)
