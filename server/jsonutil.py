"""JSON as the contract wants it: ISO 8601 timestamps with offset, keys in the order written."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

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


class TapakJSONProvider(DefaultJSONProvider):
    sort_keys = False
    default = staticmethod(_default)
