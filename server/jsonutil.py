"""JSON as the contract wants it: ISO 8601 timestamps with offset, keys in the order written.

Request bodies are read with ``loads_strict``: standard JSON only (no NaN or Infinity, no number
too large for a float, no lone UTF-16 surrogate, which no database can store) and at most
``MAX_DEPTH`` levels deep, since deeper nesting made ``json.loads`` (and anything walking the
result) raise RecursionError: each of these was a 500.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import uuid
from itertools import accumulate

from flask.json.provider import DefaultJSONProvider


def _default(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


MAX_DEPTH = 64  # a push batch nests about 6 levels
# On UTF-8 bytes, since '"' and '\\' are never part of a multi-byte character.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
_DELTA = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _depth(utf8: bytes) -> int:
    """The deepest nesting of brackets, at C speed (a push batch of 300 kB in under 1 ms)."""
    return max(accumulate(map(_DELTA.__getitem__, utf8.translate(None, _NOT_BRACKET))),
               default=0)


def _too_deep(utf8: bytes) -> bool:
    if _depth(utf8) <= MAX_DEPTH:
        return False
    return _depth(_STRING.sub(b"", utf8)) > MAX_DEPTH  # brackets in strings do not count


def _constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def loads_strict(data: bytes | str):
    """Parse a request body; ValueError (a JSONDecodeError for bad syntax) when refused."""
    if isinstance(data, bytes | bytearray):  # as json.loads would: UTF-8, or a BOM's UTF-16/32
        encoding = json.detect_encoding(data)
        text = data.decode(encoding)
        utf8 = bytes(data) if encoding == "utf-8" else text.encode("utf-8", "surrogatepass")
    else:
        text, utf8 = data, data.encode("utf-8", "surrogatepass")
    if _too_deep(utf8):
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_finite)
    except RecursionError:  # deeper than the count above saw (unbalanced brackets)
        raise ValueError("JSON nested too deeply") from None
    if _SURROGATE.search(text):  # a "\\ud800" escape not in a pair cannot be stored as UTF-8
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("JSON text holds a lone UTF-16 surrogate") from None
    return value


class TapakJSONProvider(DefaultJSONProvider):
    sort_keys = False
    default = staticmethod(_default)

    def loads(self, s: str | bytes, **kwargs):
        """Flask's ``request.get_json`` (and ``silent=True``, which expects ValueError)."""
        return loads_strict(s)
