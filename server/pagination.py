"""Opaque, tamper-evident cursors for list endpoints and the pull feed.

A cursor is the position after the last row returned, signed with the app's secret key, so a
client can hand it back but not forge or edit it: a cursor that does not verify gets 400.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from server.services import ServiceError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"tapak.cursor.{salt}")


def encode_cursor(kind: str, position: Any) -> str:
    return _serializer(kind).dumps(position)


def decode_cursor(kind: str, cursor: str | None) -> Any:
    """The position a cursor carries, or None for no cursor; 400 for a forged or foreign one."""
    if not cursor:
        return None
    try:
        return _serializer(kind).loads(cursor)
    except BadSignature:
        raise ServiceError(400, "The cursor is not valid here; start again without one.",
                           code="invalid_cursor") from None
