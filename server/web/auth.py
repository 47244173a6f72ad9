"""Session login for the review pages: a signed cookie, separate from the phones' tokens.

The cookie holds the user's id and a fingerprint of their password hash, so that changing a
password (or deactivating the user) ends every page session at its next request. Supervisors
and admins use the review pages; a ``pemantau`` logs in too, but only to the monitoring page
(``page_login_required(roles=MONITOR_ROLES)``): every other page refuses them (403).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for

from server.extensions import db
from server.models import User
from server.services.users import authenticate

# Who may log in to the pages; who may use the review pages (everything but monitoring).
PAGE_ROLES = ("supervisor", "admin", "pemantau")
REVIEW_ROLES = ("supervisor", "admin")
MONITOR_ROLES = ("supervisor", "admin", "pemantau")
SESSION_KEY = "tapak_user"


class PageRefused(Exception):
    """A page refused to this person: rendered as an Indonesian message with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def check_credentials(username: str, password: str) -> User | None:
    """The active user with this password, or None; the same answer, and the same one
    password-hash check, for every mismatch (the API's login does the same)."""
    return authenticate(db.session, username, password)


def _clear() -> None:
    session.clear()
    # Flask-WTF caches the request's CSRF token in ``g``; it belonged to the old session.
    g.pop("csrf_token", None)


def start_session(user: User) -> None:
    # A fresh session on login: nothing from before survives (no fixation).
    _clear()
    session.permanent = True
    session[SESSION_KEY] = {"id": user.id, "fp": _fingerprint(user)}


def end_session() -> None:
    _clear()


def session_user() -> User | None:
    """The user of this cookie, if it is still valid."""
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    user = db.session.get(User, data.get("id"))
    if user is None or not user.active or data.get("fp") != _fingerprint(user):
        return None
    return user


def safe_next(target: str | None) -> str | None:
    """Only paths of the pages themselves: never another host (an open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/review/"):
        return None
    if "\\" in target or target.startswith("//"):
        return None
    return target


def landing(user: User) -> str:
    """Where a person lands after login: a pemantau's only page is monitoring."""
    return url_for("pages.monitoring") if user.role == "pemantau" else url_for("pages.queue")


def page_login_required(view: Callable | None = None, *,
                        roles: tuple[str, ...] = REVIEW_ROLES) -> Callable:
    """Send strangers to the login page; refuse enumerators (and, on the review pages, a
    pemantau) with a clear message."""
    if view is None:
        return functools.partial(page_login_required, roles=roles)

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        user = session_user()
        if user is None:
            end_session()
            nxt = request.full_path if request.method == "GET" else None
            return redirect(url_for("pages.login", next=safe_next(nxt and nxt.rstrip("?"))))
        if user.role not in roles:
            raise PageRefused(403, PEMANTAU_REFUSED if user.role == "pemantau"
                              else ENUMERATOR_REFUSED)
        g.user = user
        return view(*args, **kwargs)

    return wrapped


ENUMERATOR_REFUSED = ("Halaman peninjauan hanya untuk supervisor dan admin. Enumerator "
                      "memakai aplikasi Tapak di ponsel.")
PEMANTAU_REFUSED = ("Halaman ini memuat data keluarga dan hanya untuk supervisor dan admin. "
                    "Pemantau melihat halaman Pemantauan.")
