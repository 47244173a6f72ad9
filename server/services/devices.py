"""A lost phone: a supervisor revokes an enumerator's device and resets their password.

Supervisors act on the enumerators of their areas (an enumerator holding an area the
supervisor covers); admins on anyone. Anyone else, or a user outside, is a 404 (no oracle).
Resetting a password also revokes every token of the user: whoever holds the phone is out.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import ApiToken, User
from server.services import ServiceError
from sync.db import utcnow

MIN_PASSWORD = 8


def _require(viewer: User) -> None:
    if viewer.role not in ("supervisor", "admin"):
        raise ServiceError(403, "Only supervisors and admins manage devices.", code="forbidden")


def manages(viewer: User, user: User) -> bool:
    if viewer.role == "admin":
        return True
    return (viewer.role == "supervisor" and user.role == "enumerator"
            and any(viewer.covers(a) for a in user.areas))


def team(session: Session, viewer: User) -> list[User]:
    """The users the viewer may manage: admins everyone, supervisors their enumerators."""
    _require(viewer)
    users = session.scalars(select(User).order_by(User.username)).all()
    return [u for u in users if manages(viewer, u)]


def get_member(session: Session, viewer: User, username: str) -> User:
    _require(viewer)
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not manages(viewer, user):
        raise ServiceError(404, f"No user {username!r} that you manage.", code="not_found")
    return user


def devices(session: Session, user: User) -> list[dict]:
    """A user's devices with live tokens: id, how many, first and last login, expiry."""
    now = utcnow()
    rows = session.execute(
        select(ApiToken.device_id, func.count(), func.min(ApiToken.created_at),
               func.max(ApiToken.created_at), func.max(ApiToken.expires_at))
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
               ApiToken.expires_at > now)
        .group_by(ApiToken.device_id).order_by(func.max(ApiToken.created_at).desc())).all()
    return [{"device_id": d, "tokens": n, "first_login": first, "last_login": last,
             "expires_at": exp} for d, n, first, last, exp in rows]


def live_device_counts(session: Session, user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    return dict(session.execute(
        select(ApiToken.user_id, func.count(func.distinct(ApiToken.device_id)))
        .where(ApiToken.user_id.in_(user_ids), ApiToken.revoked_at.is_(None),
               ApiToken.expires_at > utcnow()).group_by(ApiToken.user_id)).all())


def revoke_device(session: Session, viewer: User, username: str, device_id: str) -> int:
    """Revoke every token of one of the user's devices; returns how many."""
    user = get_member(session, viewer, username)
    return ApiToken.revoke_where(session, user_id=user.id, device_id=device_id)


def reset_password(session: Session, viewer: User, username: str, password: str) -> int:
    """Set a new password and revoke every token of the user; returns the tokens revoked."""
    user = get_member(session, viewer, username)
    if len(password) < MIN_PASSWORD:
        raise ServiceError(422, "The password must have at least 8 characters.",
                           code="password_too_short")
    user.set_password(password)
    session.flush()
    return ApiToken.revoke_where(session, user_id=user.id)
