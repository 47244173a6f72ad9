"""The caller (``/me``) and user administration."""

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors
from server.auth import ANY_ROLE, login_required
from server.extensions import db
from server.models import ROLES
from server.schemas import UserSchema
from server.services import ServiceError
from server.services import users as user_service
from sync.db import write_transaction

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="Users")


class UserCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9._-]{2,64}$"))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=8, max=256)
    )
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    areas = fields.List(fields.String(validate=validate.Length(max=20)), load_default=list,
                        validate=validate.Length(max=100), metadata={
                            "description": "Kemendagri codes the user works in; at least one "
                                           "for an enumerator or supervisor (422 otherwise, "
                                           "and for a code that is not an area)."})
    full_name = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=200))


@blp.route("/me")
class Me(MethodView):
    @login_required(*ANY_ROLE)
    @blp.doc(operationId="getMe")
    @blp.response(200, UserSchema)
    def get(self):
        """The user this token belongs to, with role and areas."""
        return g.user


@blp.route("/users")
class Users(MethodView):
    @login_required("admin", "supervisor")
    @blp.doc(operationId="listUsers")
    @blp.response(200, UserSchema(many=True))
    def get(self):
        """Admins see every user; supervisors the enumerators of their areas."""
        return user_service.visible_users(db.session, g.user)

    @login_required("admin")
    @blp.doc(operationId="createUser")
    @errors({409: ["user_exists"]})
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    def post(self, body):
        """Create a user (admins only)."""
        with write_transaction(db.session):
            user = user_service.create_user(db.session, body["username"], body["role"],
                                            body["password"], areas=body["areas"],
                                            full_name=body["full_name"])
        return user


@blp.route("/users/<username:username>")
class UserDetail(MethodView):
    @login_required("admin", "supervisor")
    @blp.doc(operationId="getUser")
    @blp.response(200, UserSchema)
    def get(self, username):
        user = user_service.get_user(db.session, username)
        if user not in user_service.visible_users(db.session, g.user):
            raise ServiceError(404, f"No user named {username!r}.")
        return user
