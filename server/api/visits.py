"""A visit as the server holds it: status, answers, photos (and, later, conflicts)."""

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from server.auth import login_required
from server.extensions import db
from server.services import visits as service

blp = Blueprint("visits", __name__, url_prefix="/api/v1/visits", description="Visits")


class VisitSchema(Schema):
    uuid = fields.String()
    household_id = fields.String()
    form_id = fields.String()
    form_version = fields.Integer()
    enumerator = fields.String()
    device_id = fields.String()
    status = fields.String()
    base_version = fields.Integer(allow_none=True)
    branch_id = fields.String(allow_none=True)
    trunk_version = fields.Integer(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime()
    location = fields.Dict(allow_none=True)
    answers = fields.Dict()
    photos = fields.List(fields.Dict())
    missing_photos = fields.List(fields.String())
    conflicts = fields.List(fields.Dict())


@blp.route("/<uuid>")
class VisitDetail(MethodView):
    @login_required()
    @blp.response(200, VisitSchema)
    def get(self, uuid):
        """The visit, its status and its conflicts; 404 outside the caller's reach."""
        return service.visit_detail(db.session, g.user, uuid)
