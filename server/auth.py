"""Bearer-token authentication and role checks for the API.

Phones and sync clients send ``Authorization: Bearer <token>``; the review pages use a session
cookie of their own. ``g.user`` and ``g.token`` hold who is calling.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import abort, g, request

from server.api.openapi import mark_authenticated
from server.extensions import db
from server.models import ROLES, STAFF_ROLES, ApiToken, User

# Every role, ``pemantau`` included: operations that show nothing of a family (/me, logout,
# areas) say ``login_required(*ANY_ROLE)``.
ANY_ROLE = ROLES


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate() -> User:
    """Resolve the caller's token, or answer 401."""
    plain = _bearer_token()
    token = ApiToken.find_valid(db.session, plain) if plain else None
    if token is None:
        abort(401)
    g.user, g.token = token.user, token
    return token.user


def login_required(*roles: str) -> Callable:
    """Require a valid token and one of ``roles`` (else 403). Without ``roles``: one of the
    staff roles (enumerator, supervisor, admin), never ``pemantau``, who sees only what names
    the role."""
    roles = roles or STAFF_ROLES

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = authenticate()
            if user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        mark_authenticated(wrapped, roles)
        return wrapped

    return decorator


def current_user() -> User:
    return g.user


def require_area(area_code: str | None) -> None:
    """403 unless the caller may act in ``area_code``."""
    if not g.user.covers(area_code):
        abort(403)
