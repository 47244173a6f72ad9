"""A visit as the server holds it: status, answers, photos (and, later, conflicts)."""

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors
from server.auth import login_required
from server.extensions import db
from server.schemas import NOTE
from server.services import visits as service

blp = Blueprint("visits", __name__, url_prefix="/api/v1/visits", description="Visits")


class FilledSchema(Schema):
    path = fields.String(required=True, metadata={
        "description": "The change path (`aset.lahan`, `anggota[NIK=...].disabilitas`)."})
    value = fields.Raw(required=True, metadata={
        "description": "The visit's value, typed for the record; never null (a blank is no "
                       "fill).",
        "anyOf": [{"type": "string"}, {"type": "number", "minimum": -2**63, "maximum": 2**63 - 1},
                  {"type": "boolean"}]})


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
    filled = fields.List(fields.Nested(FilledSchema), metadata={
        "description": "Fields the verified record held blank that the visit filled: no "
                       "conflict, applied when the visit is verified or approved "
                       "(docs/reconciliation.md). Masked for enumerators, as conflicts are."})


@blp.route("/<visit_uuid:uuid>")
class VisitDetail(MethodView):
    @login_required()
    @blp.doc(operationId="getVisit")
    @blp.response(200, VisitSchema)
    def get(self, uuid):
        """The visit, its status and its conflicts; 404 outside the caller's reach."""
        return service.visit_detail(db.session, g.user, uuid)


class VisitReviewSchema(Schema):
    decision = fields.String(required=True,
                             validate=validate.OneOf(["approve", "reject", "return"]))
    note = fields.String(load_default=None, allow_none=True, validate=NOTE)


class VisitReviewedSchema(Schema):
    uuid = fields.String()
    household_id = fields.String()
    decision = fields.String()
    status = fields.String()
    note = fields.String(allow_none=True)
    reviewed_by = fields.String()
    reviewed_at = fields.DateTime()
    verified_version = fields.Integer()
    applied = fields.List(fields.String())
    resolved = fields.List(fields.Integer())
    dismissed = fields.List(fields.Integer())
    assignment = fields.Dict(allow_none=True)


@blp.route("/<visit_uuid:uuid>/review")
class VisitReview(MethodView):
    @login_required("supervisor", "admin")
    @blp.doc(operationId="reviewVisit")
    @errors({409: ["stale_review", "hard_conflicts_open", "no_assignment", "round_closed"]})
    @blp.arguments(VisitReviewSchema, example={"decision": "return",
                                               "note": "Foto rumah tidak jelas; ulangi."})
    @blp.response(200, VisitReviewedSchema)
    def post(self, body, uuid):
        """Approve, reject or return (to the enumerator's phone, with the note) a visit."""
        from server.services.review import review_visit

        return review_visit(db.session, g.user, uuid, body["decision"], note=body["note"])
