"""Opaque, tamper-evident cursors for list endpoints and the pull feed.

A cursor is the position after the last row returned, signed with the app's secret key, so a
client can hand it back but not forge or edit it: a cursor that does not verify gets 400.
Cursors signed with a key in ``SECRET_KEY_FALLBACKS`` still verify: phones keep their stored
pull cursor across a key rotation (docs/deploy.md), and new cursors are signed with the new key.

``SHAPES`` is what each kind of cursor holds. A cursor that verifies but holds something else
(one a past or future release signed) also gets 400, rather than failing in the view that
unpacks it; encoding checks the same shape, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from server.services import ServiceError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

# kind -> a type, a list of types (a list of that length), or a dict of key -> type.
SHAPES: dict[str, Any] = {
    "households": str,
    "assignments": int,
    "escalated": int,
    "conflicts.newest": int,
    "conflicts.oldest": int,
    "conflicts.severity": [int, int],
    "pull": {"u": int, "s": int, "e": int},
}
_INT64 = 2**63
_INVALID = object()


def _fits(value: Any, shape: Any) -> bool:
    if isinstance(shape, dict):
        return (isinstance(value, dict) and set(value) == set(shape)
                and all(_fits(value[k], t) for k, t in shape.items()))
    if isinstance(shape, list):
        return (isinstance(value, list) and len(value) == len(shape)
                and all(_fits(v, t) for v, t in zip(value, shape, strict=True)))
    if shape is int:  # not a bool, and small enough for the database to compare
        return type(value) is int and -_INT64 <= value < _INT64
    if shape is str:
        return isinstance(value, str) and "\x00" not in value
    return isinstance(value, shape)


def _serializer(salt: str) -> URLSafeSerializer:
    # itsdangerous signs with the last key and verifies with any of them.
    keys = [*current_app.config.get("SECRET_KEY_FALLBACKS", []), current_app.config["SECRET_KEY"]]
    return URLSafeSerializer(keys, salt=f"tapak.cursor.{salt}")


def encode_cursor(kind: str, position: Any) -> str:
    if kind in SHAPES and not _fits(position, SHAPES[kind]):
        raise ValueError(f"a {kind} cursor holds {SHAPES[kind]!r}, not {position!r}")
    return _serializer(kind).dumps(position)


def decode_cursor(kind: str, cursor: str | None) -> Any:
    """The position a cursor carries, or None for no cursor; 400 for a forged or foreign one."""
    if not cursor:
        return None
    try:
        position = _serializer(kind).loads(cursor)
    except BadSignature:
        position = _INVALID
    if position is _INVALID or (kind in SHAPES and not _fits(position, SHAPES[kind])):
        raise ServiceError(400, "The cursor is not valid here; start again without one.",
                           code="invalid_cursor")
    return position
