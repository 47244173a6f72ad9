"""Security headers on every response of the app: pages, API, static files and errors alike.

One ``after_request`` for the whole app, so that nothing (a 404, a static file, a new
blueprint) is served without them. Headers are set with ``setdefault``: a view that needs
another value for one response may set it itself.
"""

from __future__ import annotations

from flask import Flask, Response, current_app

# Pages are small and self-contained: nothing from another host, no inline script and no
# inline style (every style lives in static/tapak.css), never framed by another site.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

# Lapangan, the enumerators' offline app under /lapangan/, needs a little more, on its own
# responses only: its inline import map (allowed by hash, never 'unsafe-inline'), photo previews
# from Blobs (img-src blob:), its service worker and manifest from this origin. The review
# pages keep the policy above.
def lapangan_policy(script_hashes: list[str] | tuple[str, ...] = ()) -> str:
    """The Content-Security-Policy of the field app's responses."""
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in script_hashes)])
    return (
        f"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        f"script-src {scripts}; worker-src 'self'; manifest-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


# Sent only when the session cookie is HTTPS-only: then the app is known to be behind TLS,
# and a browser that saw it once refuses plain HTTP for a year.
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response


def register_security_headers(app: Flask) -> None:
    """App-wide, so that error responses and static files carry the headers too."""
    app.after_request(add_security_headers)
