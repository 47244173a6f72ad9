"""Creating users, checking passwords and issuing or revoking tokens."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import models
from server.models import ROLES, ApiToken, User, UserArea
from server.services import ServiceError
from sync.models import Area


def create_user(session: Session, username: str, role: str, password: str, *,
                areas: list[str] | tuple[str, ...] = (), full_name: str | None = None) -> User:
    """Create a user; every role but admin needs at least one known area."""
    if role not in ROLES:
        raise ServiceError(422, f"Unknown role {role!r}; use one of {', '.join(ROLES)}.",
                           details={"errors": [{"path": "role", "code": "invalid",
                                                "message": "unknown role"}]})
    if len(password) < 8:
        raise ServiceError(422, "The password must have at least 8 characters.",
                           details={"errors": [{"path": "password", "code": "too_short",
                                                "message": "at least 8 characters"}]})
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ServiceError(409, f"A user named {username!r} already exists.", code="user_exists")
    codes = sorted(set(areas))
    if codes:
        known = set(session.scalars(select(Area.code).where(Area.code.in_(codes))))
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise ServiceError(422, f"Unknown area codes: {', '.join(unknown)}.",
                               details={"errors": [{"path": "areas", "code": "unknown_area",
                                                    "message": ", ".join(unknown)}]})
    elif role != "admin":
        raise ServiceError(422, "An enumerator, supervisor or pemantau needs at least one area.",
                           details={"errors": [{"path": "areas", "code": "required",
                                                "message": "at least one area"}]})
    user = User(username=username, role=role, full_name=full_name)
    user.set_password(password)
    user.area_links = [UserArea(area_code=c) for c in codes]
    session.add(user)
    session.flush()
    return user


_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash of a random password, made once per method, checked when the user is missing."""
    method = models.PASSWORD_HASH_METHOD
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = models.generate_password_hash(secrets.token_urlsafe(16),
                                                              method=method)
    return _DUMMY_HASHES[method]


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this password, or None.

    Exactly one password-hash check on every path (unknown user, inactive user, wrong or
    right password), so that the time a login takes does not tell whether a username exists.
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        models.check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    return user


def login(session: Session, username: str, password: str, device_id: str,
          ttl_seconds: int) -> tuple[str, ApiToken]:
    """Check the password and issue a token for this device; 401 for any mismatch alike."""
    user = authenticate(session, username, password)
    if user is None:
        raise ServiceError(401, "Wrong username or password.", code="invalid_credentials")
    return ApiToken.issue(session, user, device_id, ttl_seconds)


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ServiceError(404, f"No user named {username!r}.")
    return user


def visible_users(session: Session, viewer: User) -> list[User]:
    """Admins see everyone; supervisors see the users who share one of their areas."""
    users = session.scalars(select(User).order_by(User.username)).all()
    if viewer.role == "admin":
        return list(users)
    return [u for u in users if u.id == viewer.id
            or (u.role == "enumerator" and any(viewer.covers(a) for a in u.areas))]


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id)))


def revoke_tokens(session: Session, *, username: str | None = None,
                  device_id: str | None = None) -> int:
    """Revoke every token of a user, of a device, or of one user's device."""
    if username is None and device_id is None:
        raise ServiceError(422, "Give a username, a device_id, or both.")
    user_id = get_user(session, username).id if username is not None else None
    return ApiToken.revoke_where(session, user_id=user_id, device_id=device_id)
