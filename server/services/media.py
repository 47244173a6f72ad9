"""Signed, expiring photo URLs for the review pages and the conflict detail.

The review pages show thumbnails with ``<img src>``, which carries no bearer token; instead the
URL itself is the permission: an HMAC-SHA256 with the app's ``SECRET_KEY`` over the photo's
SHA-256, the size and the expiry. Only someone the API showed the conflict to gets the URL,
and it stops working after ``MEDIA_URL_TTL`` seconds (default 15 minutes).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from flask import current_app

from server.services import ServiceError

DEFAULT_TTL = 900
SIZES = ("thumb", "full")
_CONTEXT = b"tapak.media.v1"


def _key(secret: str | None = None) -> bytes:
    secret = secret if secret is not None else current_app.config["SECRET_KEY"]
    return hashlib.sha256(_CONTEXT + b"\x00" + secret.encode()).digest()


def signature(sha256: str, size: str, expires: int, secret: str | None = None) -> str:
    message = f"{sha256}:{size}:{expires}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signed_url(sha256: str, size: str = "thumb", ttl: int | None = None,
               now: float | None = None) -> str:
    """A path (no host) that serves the photo until ``now + ttl``."""
    if size not in SIZES:
        raise ValueError("size must be thumb or full")
    ttl = ttl if ttl is not None else int(current_app.config.get("MEDIA_URL_TTL", DEFAULT_TTL))
    expires = int(now if now is not None else time.time()) + ttl
    query = urlencode({"size": size, "exp": expires,
                       "sig": signature(sha256, size, expires)})
    return f"/api/v1/media/{sha256}?{query}"


def verify(sha256: str, size: str, expires: int, sig: str, now: float | None = None) -> None:
    """Raise 403 for a signature that does not match, or for an expired link."""
    given = (sig or "").encode("utf-8", "replace")
    # The current key, then any SECRET_KEY_FALLBACKS: an open page's links outlive a rotation.
    # Bytes, not str: compare_digest raises TypeError for a str that is not ASCII.
    keys = [current_app.config["SECRET_KEY"], *current_app.config.get("SECRET_KEY_FALLBACKS", [])]
    if not any(hmac.compare_digest(signature(sha256, size, expires, key).encode(), given)
               for key in keys):
        raise ServiceError(403, "This photo link is not valid.", code="invalid_signature")
    if (now if now is not None else time.time()) > expires:
        raise ServiceError(403, "This photo link has expired; reload the page.",
                           code="link_expired")


def open_signed(sha256: str, size: str, expires: int, sig: str):
    """The file path and MIME type of a photo behind a valid signed URL (404 when gone)."""
    from server.services.photos import storage
    from sync import photos as store

    sha = sha256.lower()
    if size not in SIZES:
        raise ServiceError(404, "No such photo.")
    verify(sha, size, expires, sig)
    try:
        path = storage().path(store.normalise_sha256(sha), size)
    except store.PhotoError:
        raise ServiceError(404, "No such photo.") from None
    if not path.is_file():
        raise ServiceError(404, "No such photo.")
    mime = "image/jpeg"
    if size == "full":
        from server.extensions import db
        from sync.models.visit import Photo

        row = db.session.get(Photo, sha)
        mime = row.mime_type if row is not None else "application/octet-stream"
    return path, mime
