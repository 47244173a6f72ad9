"""URL converters for the API's path parameters, each documented with the pattern it enforces.

A path that does not fit is answered 404 by the router before any view runs, so a view never
sees an id too large for the database or a photo name that is not a hash, and the OpenAPI
document tells clients exactly which values are worth sending.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import BaseConverter, IntegerConverter

from server.schemas import MAX_ID


class IdConverter(IntegerConverter):
    """A database id: 1 to 2**31 - 1."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=MAX_ID)


class PatternConverter(BaseConverter):
    """A string path segment matching ``pattern`` (documented as it is)."""

    pattern = r"[^/]+"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.regex = cls.pattern


class Sha256Converter(PatternConverter):
    """A photo's name: the SHA-256 of its bytes, hex (either case)."""

    pattern = r"[0-9a-fA-F]{64}"


class VisitUuidConverter(PatternConverter):
    """A visit's uuid, made on the phone: 8 to 64 characters."""

    pattern = r"[^/]{8,64}"


class HouseholdIdConverter(PatternConverter):
    """The registry's family id (``id_keluarga``): 1 to 64 characters."""

    pattern = r"[^/]{1,64}"


class FormIdConverter(PatternConverter):
    """A form's id: lower-case snake_case, as forms/definition.py requires."""

    pattern = r"[a-z][a-z0-9_]{0,63}"


class UsernameConverter(PatternConverter):
    """A username, as users are created."""

    pattern = r"[a-z0-9._-]{2,64}"


CONVERTERS = {
    "id": IdConverter,
    "sha256": Sha256Converter,
    "visit_uuid": VisitUuidConverter,
    "household_id": HouseholdIdConverter,
    "form_id": FormIdConverter,
    "username": UsernameConverter,
}


def _pattern_schema(converter: PatternConverter) -> dict:
    return {"type": "string", "pattern": f"^{converter.pattern}$"}


def register_converters(app: Flask, api) -> None:
    """Make the converters usable in routes and documented in the OpenAPI document."""
    for name, converter in CONVERTERS.items():
        app.url_map.converters[name] = converter
        if issubclass(converter, PatternConverter):
            api.register_converter(converter, _pattern_schema)
