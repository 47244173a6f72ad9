"""Fixtures after Flask's tutorial: ``app``, ``client``, ``runner``, plus ``db`` and users.

The schema is built once per test session by running the real migrations, on SQLite (a
temporary file) or on PostgreSQL when ``TEST_DATABASE_URL`` is set, in a database created for
this run so that parallel runs never meet. After each test that used the app every table but
the reference areas is emptied, which keeps tests independent and the suite fast.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import text

import config
from server import create_app
from server.extensions import db as _db
from server.extensions import limiter

KEEP_TABLES = {"areas", "alembic_version"}


def scratch_test_database(prefix: str) -> tuple[str, Callable[[], None]]:
    """(url, drop) of a new database beside TEST_DATABASE_URL's, named for this run.

    A server that cannot be used stops the run with a clear message (a failure on CI).
    """
    from sync.db import scratch_postgres

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        return scratch_postgres(os.environ["TEST_DATABASE_URL"], name)
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI") == "true":
            raise
        raise pytest.UsageError(f"PostgreSQL at TEST_DATABASE_URL is not usable: {exc}") from exc


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """The database of this test run: SQLite by default, PostgreSQL with TEST_DATABASE_URL."""
    pg = os.environ.get("TEST_DATABASE_URL")
    if not pg:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    url, drop = scratch_test_database("tapak_test")
    yield url
    drop()


@pytest.fixture(scope="session")
def _app(database_url, tmp_path_factory):
    from flask_migrate import upgrade

    from sync.areas import load_areas

    instance = tmp_path_factory.mktemp("instance")
    app = create_app(config.for_testing(str(instance), database_url,
                                        str(tmp_path_factory.mktemp("photos"))))
    app.instance_path = str(instance)
    with app.app_context():
        upgrade()
        load_areas(_db.session)
        _db.session.commit()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def _empty_tables() -> None:
    tables = [t for t in reversed(_db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def app(_app):
    """The app in an application context; afterwards every table but areas, and the photo
    folder, are emptied."""
    with _app.app_context():
        yield _app
        _db.session.remove()
        _empty_tables()
        limiter.reset()
        for folder in ("originals", "thumbs"):
            shutil.rmtree(os.path.join(_app.config["PHOTO_DIR"], folder), ignore_errors=True)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """The SQLAlchemy session of the app."""
    return _db.session


@pytest.fixture
def make_user(db):
    """Create a user (committed) and return it; password defaults to ``password123``."""
    from server.services.users import create_user

    def make(username, role="enumerator", areas=None, password="password123", **kw):
        if areas is None:
            areas = () if role == "admin" else ("31.73.01",)
        user = create_user(db, username, role, password, areas=areas, **kw)
        db.commit()
        return user

    return make


@pytest.fixture
def login(client):
    """Log a user in and return headers carrying their bearer token."""

    def do(username, password="password123", device_id="device-1"):
        response = client.post("/api/v1/auth/token", json={
            "username": username, "password": password, "device_id": device_id})
        assert response.status_code == 201, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['token']}"}

    return do


# --- a tiny extract: three families in two kecamatan, imported through the real importer ------

FAMILIES = [
    {"id_keluarga": "KLG-A1", "no_kk": "3173011203150005", "kode_kelurahan": "31.73.01.1001",
     "alamat": "Jl. Kamal Raya No. 12", "rt": "003", "rw": "007", "lat": -6.1402,
     "lon": 106.7361, "desil": 2,
     "rumah": {"status_bangunan": 1, "luas_lantai_m2": 36, "lantai": 6, "dinding": 1, "atap": 2,
               "air_minum": 3, "penerangan": 1, "daya_va": 900, "bahan_bakar": 4,
               "fasilitas_bab": 1},
     "aset": {"mobil": False, "sepeda_motor": True, "lemari_es": True, "ac": False,
              "emas_10g": False},
     "program": {"pkh": True, "bpnt": True, "pbi_jk": True},
     "anggota": [{"nik": "3173014508850003", "nama": "Siti Aminah", "jenis_kelamin": "P",
                  "tanggal_lahir": "1985-08-05", "hubungan": 1, "status_kawin": 2,
                  "pekerjaan": 4}]},
    {"id_keluarga": "KLG-A2", "no_kk": "3173011203150006", "kode_kelurahan": "31.73.01.1002",
     "alamat": "Jl. Lain No. 1", "rt": "001", "rw": "002", "lat": -6.15, "lon": 106.73,
     "desil": 4, "rumah": {}, "aset": {}, "program": {},
     "anggota": [{"nik": "3173010101800001", "nama": "Budi Santoso", "jenis_kelamin": "L",
                  "tanggal_lahir": "1980-01-01", "hubungan": 1, "status_kawin": 2,
                  "pekerjaan": 1}]},
    {"id_keluarga": "KLG-B1", "no_kk": "3172011203150007", "kode_kelurahan": "31.72.01.1001",
     "alamat": "Jl. Utara No. 9", "rt": "010", "rw": "004", "lat": -6.11, "lon": 106.78,
     "desil": 1, "rumah": {}, "aset": {}, "program": {},
     "anggota": [{"nik": "3172015506900002", "nama": "Dewi Lestari", "jenis_kelamin": "P",
                  "tanggal_lahir": "1990-06-15", "hubungan": 1, "status_kawin": 1,
                  "pekerjaan": 2}]},
]


@pytest.fixture
def extract(tmp_path):
    path = tmp_path / "extract.jsonl"
    path.write_text("\n".join(json.dumps(f) for f in FAMILIES) + "\n")
    return path


@pytest.fixture
def imported(db, extract, tmp_path):
    from sync.importer import import_extract

    summary = import_extract(db, extract, label="test", rejects=tmp_path / "rejects.jsonl")
    assert summary.inserted == 3
    return summary
