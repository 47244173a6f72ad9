"""The migrations build an empty database that matches the models exactly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from server.extensions import db


def test_migrated_schema_matches_the_models(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_every_model_table_exists(app):
    tables = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_upgrade_on_an_empty_database_then_check(tmp_path, monkeypatch):
    """``flask db upgrade`` then ``flask db check`` on a brand-new SQLite file."""
    from flask_migrate import check, upgrade

    import config
    from server import create_app

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fresh = create_app(config.for_testing(str(tmp_path), url, str(tmp_path / "p")))
    with fresh.app_context():
        upgrade()
        check()  # raises when autogenerate would find a difference
        assert "users" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(app):
    if db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
