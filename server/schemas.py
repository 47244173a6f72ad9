"""Marshmallow schemas and fields shared by several blueprints.

The fields carry the bounds the server enforces, so the OpenAPI document states them too
(``Range`` becomes ``minimum``/``maximum``, ``Regexp`` a ``pattern``, ``Length`` the lengths).
"""

from marshmallow import Schema, ValidationError, fields, validate

from server.pagination import DEFAULT_LIMIT, MAX_LIMIT

# Database ids are 32-bit on every backend Tapak runs on.
MAX_ID = 2**31 - 1

KECAMATAN = validate.Regexp(r"^\d\d\.\d\d\.\d\d$")
KELURAHAN = validate.Regexp(r"^\d\d\.\d\d\.\d\d\.\d{4}$")
NOTE = validate.Length(max=2000)


def Id(**kwargs) -> fields.Integer:  # noqa: N802 - reads as a field class
    """A database id: 1 to 2**31 - 1 (larger values cannot exist, and would overflow)."""
    return fields.Integer(strict=False, validate=validate.Range(1, MAX_ID), **kwargs)


def Limit(default: int = DEFAULT_LIMIT) -> fields.Integer:  # noqa: N802
    return fields.Integer(load_default=default, validate=validate.Range(1, MAX_LIMIT),
                          metadata={"description": f"Page size, 1 to {MAX_LIMIT}."})


def Cursor() -> fields.String:  # noqa: N802
    """A signed position (itsdangerous' URL-safe form); ``format`` tells fuzzers it is opaque."""
    return fields.String(load_default=None, validate=[
        validate.Length(max=500), validate.Regexp(r"^[A-Za-z0-9_.-]*$")], metadata={
        "format": "tapak-cursor",
        "description": "Opaque: the `next_cursor` of the previous page, handed back as it is "
                       "(empty or absent: the first page). A cursor the server did not make "
                       "for this list gets 400 `invalid_cursor`."})


_INT64 = 2**63 - 1
_SCALARS = [{"type": "string", "nullable": True},
            {"type": "number", "minimum": -_INT64 - 1, "maximum": _INT64},
            {"type": "boolean"}]


def _scalar(value) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return True
    return isinstance(value, int) and -_INT64 - 1 <= value <= _INT64


class FieldValue(fields.Raw):
    """A value of one record field: null, text, a number, true/false, or a member (an object
    of those). Anything else could never fit a field, whatever the decision."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_none", True)
        kwargs.setdefault("metadata", {})["anyOf"] = [
            *_SCALARS, {"type": "object", "additionalProperties": {"anyOf": _SCALARS}}]
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if _scalar(value) or (isinstance(value, dict) and all(map(_scalar, value.values()))):
            return value
        raise ValidationError("Must be null, text, a number, true/false, or an object of "
                              "those (a member).")


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={
        "description": "Machine-readable; the values each operation answers are listed in "
                       "its responses' `x-error-codes`."})
    message = fields.String(required=True, metadata={"description": "A sentence for people."})
    details = fields.Dict(required=True, metadata={
        "description": "More about the error; `errors`, when present, is a list of "
                       '`{"path", "code", "message"}`.'})


class ErrorSchema(Schema):
    """The contract's error envelope, on every error the API answers."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class UserSchema(Schema):
    username = fields.String()
    full_name = fields.String(allow_none=True)
    role = fields.String()
    areas = fields.List(fields.String())
    active = fields.Boolean()
