"""Request-wide limits on input values that the database cannot store or compare.

Some values pass any schema yet fail in the database driver, which would answer 500: an integer
beyond 64 bits (SQLite's and PostgreSQL's largest) and a NUL character (PostgreSQL text cannot
hold one). They are refused here once, for every view, rather than field by field:

* ``<int:...>`` in a URL rule matches 0 … 2**63 - 1 only (a bigger number is a 404);
* a NUL in the URL's path or query, or in a form field, answers 400 ``invalid_characters``;
* every ``@blp.arguments`` (the parser of ``server.api.blueprint.Blueprint``) reads JSON with
  ``jsonutil.loads_strict`` (too deep, NaN, lone surrogates: 400), and refuses out-of-range
  integers, strings with NUL and date-times that overflow when turned into UTC
  (``9999-12-31T23:00-14:00``) as 422 ``validation_failed``, with the field's path.

Schemas that want a (tighter) bound in the OpenAPI document too use ``server.schemas.Id``.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Flask, request
from marshmallow import ValidationError
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import IntegerConverter

from server.jsonutil import loads_strict
from server.services import ServiceError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
OUT_OF_RANGE = f"Must be between {INT64_MIN} and {INT64_MAX}."
HAS_NUL = "Must not contain NUL characters."
NOT_IN_UTC = "Must be a time that exists in UTC (years 1 to 9999)."


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` with a default maximum: a bigger number matches no route, so 404."""

    def __init__(self, map, *args, max: int | None = INT64_MAX, **kwargs) -> None:  # noqa: A002
        super().__init__(map, *args, max=max, **kwargs)


def _problems(value, path: tuple = ()) -> list[tuple[tuple, str]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [] if INT64_MIN <= value <= INT64_MAX else [(path, OUT_OF_RANGE)]
    if isinstance(value, str):
        return [(path, HAS_NUL)] if "\x00" in value else []
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        try:
            value.astimezone(dt.UTC)
        except OverflowError:
            return [(path, NOT_IN_UTC)]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                found.append(((*path, key), HAS_NUL))
            found.extend(_problems(item, (*path, key)))
        return found
    if isinstance(value, list | tuple | set):
        return [p for i, item in enumerate(value) for p in _problems(item, (*path, i))]
    return []


def check_storable(data) -> None:
    """ValidationError (messages nested by field) for values the database would choke on."""
    messages: dict = {}
    for path, message in _problems(data):
        if not path:
            messages.setdefault("_schema", []).append(message)
            continue
        node = messages
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], []).append(message)
    if messages:
        raise ValidationError(messages)


class TapakParser(FlaskParser):
    """webargs' parser, reading JSON with ``loads_strict`` and running ``check_storable`` on
    every loaded schema."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return missing
        data = req.get_data(cache=True)
        try:
            return loads_strict(data)
        except json.JSONDecodeError:
            raise
        except ValueError as exc:  # webargs answers its JSONDecodeError as invalid JSON: 400
            raise json.JSONDecodeError(str(exc), data.decode("utf-8", "replace") or " ",
                                       0) from None

    def _validate_arguments(self, data, validators) -> None:
        check_storable(data)
        super()._validate_arguments(data, validators)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_nul() -> None:
    """400 for a NUL in the path, the query or a form field (the review pages' forms)."""
    fields = [("query", request.args)]
    if request.mimetype in _FORM_TYPES:
        fields.append(("form", request.form))
    where = "path" if "\x00" in request.path else next(
        (location for location, values in fields
         if any("\x00" in k or "\x00" in v for k, v in values.items(multi=True))), None)
    if where is not None:
        raise ServiceError(400, f"The request's {where} contains a NUL character.",
                           code="invalid_characters", details={"location": where})


def init_app(app: Flask) -> None:
    """Call before any blueprint is registered: URL rules take their converters when added."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(_refuse_nul)
