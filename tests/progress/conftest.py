"""The push suite's field (form, supervisor, two enumerators, two assigned families), plus
helpers that write families and conflicts the way bulk writers do (Core statements)."""

import datetime as dt

import pytest
from sqlalchemy import insert, select

from server.models import User
from sync.db import utcnow
from sync.models.conflict import Conflict
from sync.models.registry import Import, Keluarga
from sync.progress import differences
from tests.push.conftest import field as _push_field

push_field = _push_field  # the push suite's fixture, under another name


@pytest.fixture
def field(push_field, db):  # noqa: F811
    """The push field, with the enumerators' ids by name."""
    push_field.users = {u.username: u.id for u in db.scalars(
        select(User).where(User.role == "enumerator"))}
    return push_field


@pytest.fixture
def add_families(db, imported):
    """Insert bare families with one Core statement (as a bulk writer would)."""

    def add(ids_and_kelurahan):
        imp = db.scalar(select(Import.id).limit(1))
        now = utcnow()
        db.execute(insert(Keluarga), [
            {"id": fid, "kode_kelurahan": kel, "content_hash": "x" * 16,
             "first_import_id": imp, "last_import_id": imp, "last_seen_import_id": imp,
             "created_at": now} for fid, kel in ids_and_kelurahan])
        db.commit()

    return add


@pytest.fixture
def add_conflicts(db):
    """Insert open conflicts with one Core statement, like the reconciliation worker."""
    counter = {"n": 0}

    def add(rows, age_days=0):
        created = utcnow() - dt.timedelta(days=age_days)
        values = []
        for household_id, kelurahan, kind, round_id in rows:
            counter["n"] += 1
            values.append({"household_id": household_id, "visit_uuid": None,
                           "round_id": round_id, "kecamatan": kelurahan.rsplit(".", 1)[0],
                           "kelurahan": kelurahan, "key": f"k{counter['n']}", "kind": kind,
                           "severity": "soft", "message": "", "status": "open",
                           "created_at": created, "updated_at": created})
        db.execute(insert(Conflict), values)
        db.commit()

    return add


@pytest.fixture
def consistent(db):
    """Assert that the counters equal a full recount."""

    def check():
        db.commit()
        assert differences(db) == {}

    return check
