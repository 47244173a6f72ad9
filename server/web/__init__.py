"""Server-rendered review pages for supervisors and admins, under ``/review``.

The pages are a second face of the same services the JSON API calls (never HTTP to itself).
People log in with a session cookie, separate from the phones' bearer tokens; every POST
carries a CSRF token (Flask-WTF), except on the API's blueprints, which authenticate by token
and never read the cookie.
"""

from __future__ import annotations

import datetime as dt
import os

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def api_blueprint_names(app: Flask) -> set[str]:
    """Blueprints that serve a path under /api/, however their prefix was given."""
    names = set()
    for rule in app.url_map.iter_rules():
        name = rule.endpoint.rpartition(".")[0]
        if rule.rule.startswith("/api/") and name in app.blueprints:
            names.add(name)
    return names


def init_app(app: Flask) -> None:
    """Register the pages and CSRF protection; call after the API's blueprints exist."""
    import server.web.openrosa  # noqa: F401  (Collect's settings QR code page)
    import server.web.work  # noqa: F401  (its routes join the pages blueprint)
    from server.web import monitoring  # noqa: F401  (the monitoring page joins the blueprint)
    from server.web.lapangan import bp as lapangan_bp
    from server.web.views import bp

    # Flask's own defaults (SameSite unset, 31 days) are always present in the config, so a
    # setdefault would never apply: replace them unless the app was given other values.
    for key, value in (("SESSION_COOKIE_HTTPONLY", True), ("SESSION_COOKIE_SAMESITE", "Lax"),
                       ("PERMANENT_SESSION_LIFETIME", dt.timedelta(hours=12))):
        if app.config.get(key) == Flask.default_config.get(key):
            app.config[key] = value
    if os.environ.get("SESSION_COOKIE_SECURE", "").lower() in ("1", "true", "yes"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
    csrf.init_app(app)
    # Token-authenticated endpoints are exempt: a bearer token cannot be forged by another
    # site, and phones have no CSRF token to send.
    for name in sorted(api_blueprint_names(app)):
        csrf.exempt(app.blueprints[name])
    app.register_blueprint(bp)
    app.register_blueprint(lapangan_bp)  # the enumerators' offline app, /lapangan/
