"""Marshmallow schemas shared by several blueprints."""

from marshmallow import Schema, fields


class ErrorDetailSchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema)


class UserSchema(Schema):
    username = fields.String()
    full_name = fields.String(allow_none=True)
    role = fields.String()
    areas = fields.List(fields.String())
    active = fields.Boolean()
