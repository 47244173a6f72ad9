"""Tokens: log in from a device, log out, and (admins) revoke a user's or a device's tokens."""

from flask import current_app, g, request
from flask.views import MethodView
from flask_limiter.util import get_remote_address
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors
from server.auth import ANY_ROLE, login_required
from server.extensions import db, limiter
from server.schemas import UserSchema
from server.services import users as user_service
from sync.db import write_transaction

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Login and tokens")


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256),
                             load_only=True)
    device_id = fields.String(required=True, validate=validate.Length(min=1, max=128))


class TokenSchema(Schema):
    token = fields.String()
    token_type = fields.String()
    expires_at = fields.DateTime()
    user = fields.Nested(UserSchema)


class RevokeSchema(Schema):
    """A user, a device, or one user's device; at least one of the two."""

    class Meta:
        openapi = {"minProperties": 1}

    username = fields.String(validate=validate.Length(min=1, max=64))
    device_id = fields.String(validate=validate.Length(min=1, max=128))


class RevokedSchema(Schema):
    revoked = fields.Integer()


def _login_key() -> str:
    """Count attempts per address and username, so one phone cannot lock out a whole relay."""
    body = request.get_json(silent=True)
    username = body.get("username") if isinstance(body, dict) else None
    return f"{get_remote_address()}|{username if isinstance(username, str) else ''}"


@blp.route("/token")
class Token(MethodView):
    decorators = [limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"],
                                key_func=_login_key, methods=["POST"])]

    @blp.doc(operationId="login")
    @errors({401: ["invalid_credentials"], 429: ["rate_limited"]})
    @blp.arguments(LoginSchema, example={"username": "enum-cengkareng-1",
                                         "password": "from demo-logins.txt",
                                         "device_id": "android-5f2c"})
    @blp.response(201, TokenSchema)
    def post(self, body):
        """Log in from a device and receive an opaque bearer token."""
        with write_transaction(db.session):
            plain, token = user_service.login(
                db.session, body["username"], body["password"], body["device_id"],
                current_app.config["TOKEN_TTL"],
            )
            g.user = token.user
            result = {"token": plain, "token_type": "Bearer", "expires_at": token.expires_at,
                      "user": token.user}
        return result

    @login_required(*ANY_ROLE)
    @blp.doc(operationId="logout")
    @blp.response(204)
    def delete(self):
        """Revoke the token this request was made with."""
        with write_transaction(db.session):
            db.session.get(type(g.token), g.token.id).revoked_at = db.func.now()


@blp.route("/revoke")
class Revoke(MethodView):
    @login_required("admin")
    @blp.doc(operationId="revokeTokens")
    @errors({404: ["not_found"]})
    @blp.arguments(RevokeSchema, example={"device_id": "android-5f2c"})
    @blp.response(200, RevokedSchema)
    def post(self, body):
        """Revoke every token of a user, of a device (a lost phone), or of a user's device."""
        with write_transaction(db.session):
            revoked = user_service.revoke_tokens(db.session, username=body.get("username"),
                                                 device_id=body.get("device_id"))
        return {"revoked": revoked}
