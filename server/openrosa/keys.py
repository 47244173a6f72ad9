"""Device keys: an enumerator's credential in Collect's server URL (``/openrosa/key/<token>``).

Like ODK Central's app users: Collect cannot log in again, so a key does not expire; only its
SHA-256 is stored; making a new key revokes the user's old ones; a bad or revoked key gets 403.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.models import User
from sync.db import utcnow, write_transaction
from sync.models.openrosa import OpenRosaKey

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key(session: Session, user: User, created_by: int | None = None) -> str:
    """A new key for ``user`` (returned once, in clear); the user's earlier keys are revoked."""
    if user.role != "enumerator":
        raise ValueError("only enumerators get a device key")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with write_transaction(session):
        session.execute(update(OpenRosaKey).where(OpenRosaKey.user_id == user.id,
                                                  OpenRosaKey.revoked_at.is_(None))
                        .values(revoked_at=now))
        session.add(OpenRosaKey(user_id=user.id, token_hash=hash_key(token), created_at=now,
                                created_by=created_by))
    return token


def revoke_keys(session: Session, user: User) -> int:
    """Revoke every live key of ``user``; return how many."""
    with write_transaction(session):
        result = session.execute(update(OpenRosaKey).where(
            OpenRosaKey.user_id == user.id, OpenRosaKey.revoked_at.is_(None))
            .values(revoked_at=utcnow()))
    return result.rowcount or 0


def user_of(session: Session, token: str) -> User | None:
    """The active enumerator a live key belongs to, or None."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        return None
    user = session.scalar(select(User).join(OpenRosaKey, OpenRosaKey.user_id == User.id).where(
        OpenRosaKey.token_hash == hash_key(token), OpenRosaKey.revoked_at.is_(None)))
    if user is None or not user.active or user.role != "enumerator":
        return None
    return user
