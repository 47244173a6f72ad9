"""What ``/api/v1/ready`` checks: the database, the photo store and the migrations' head.

Each check runs even when another failed, so a 503 names everything that is wrong at once.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache

from flask import current_app
from sqlalchemy import text

from server.extensions import db


def readiness() -> dict[str, str]:
    """Each check's state, ``ok`` or ``failed``; a failure of one never hides another's."""
    checks = {"database": "failed", "photos": "failed", "migrations": "failed"}
    revisions: set[str] | None = None
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
        revisions = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except Exception:  # noqa: BLE001 - unreachable, or no alembic_version table: not ready
        pass
    finally:
        db.session.rollback()
    if revisions is not None and revisions == _heads(current_app.extensions["migrate"].directory):
        checks["migrations"] = "ok"
    if _photo_store_writable():
        checks["photos"] = "ok"
    return checks


@lru_cache(maxsize=4)
def _heads(directory: str) -> set[str]:
    """The migrations' head revisions (read once per process: they change with a release)."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory(directory).get_heads())


def _photo_store_writable() -> bool:
    """A file can be made and removed where the app's photo store writes uploads (its
    ``temp_dir``, made as an upload would): a read-only volume or a wrong owner fails."""
    from server.services.photos import storage

    try:
        store = storage()
        fd, path = tempfile.mkstemp(dir=store.temp_dir, prefix=".ready-")
        os.close(fd)
        os.unlink(path)
        return True
    except OSError:
        return False
