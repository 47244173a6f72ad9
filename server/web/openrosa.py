"""``/review/petugas/<username>/collect``: an enumerator's ODK Collect / KoboCollect settings QR
code, for the supervisors who manage them and admins (docs/openrosa.md).

The key is stored hashed, so the QR code can be shown only when it is made: the page's button
(a POST, CSRF-checked) makes a new key, revoking the old one, and shows the code once, as inline
SVG. Registered on the pages' blueprint (``server.web.views.bp``) before it is registered.
"""

from __future__ import annotations

import os

from flask import g, render_template, request
from markupsafe import Markup

from server.extensions import db
from server.services import ServiceError
from server.web import auth
from server.web.views import bp


def _member(username: str):
    from server.services import devices

    member = devices.get_member(db.session, g.user, username)  # 404 outside one's areas
    if member.role != "enumerator":
        raise ServiceError(422, "Hanya enumerator yang memakai Collect.", code="not_enumerator")
    return member


@bp.get("/petugas/<username>/collect")
@auth.page_login_required
def collect_qr(username: str):
    return render_template("pages/openrosa.html", user=g.user, member=_member(username),
                           qr=None, server_url=None)


@bp.post("/petugas/<username>/collect")
@auth.page_login_required
def collect_qr_new(username: str):
    from server.openrosa import keys, qr

    member = _member(username)
    token = keys.new_key(db.session, member, created_by=g.user.id)
    base = os.environ.get("PUBLIC_URL") or request.url_root
    settings = qr.settings(base, token, member.username)
    response = render_template("pages/openrosa.html", user=g.user, member=member,
                               qr=Markup(qr.svg(settings)),  # noqa: S704  (segno's own SVG)
                               server_url=settings["general"]["server_url"])
    return response, 200, {"Cache-Control": "no-store"}
