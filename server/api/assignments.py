"""Assignments: which enumerator visits which family in a round."""

from flask import g
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from server.api.blueprint import Blueprint
from server.api.openapi import errors, links
from server.auth import login_required
from server.extensions import db
from server.pagination import decode_cursor, encode_cursor
from server.schemas import KELURAHAN, Cursor, Id, Limit
from server.services import assignments as service
from sync.db import write_transaction
from sync.models.assignment import ASSIGNMENT_STATUSES

blp = Blueprint("assignments", __name__, url_prefix="/api/v1/assignments",
                description="Assignments")



class _AssignTo(Schema):
    round_id = Id(required=True)
    enumerator = fields.String(required=True, validate=validate.Length(min=1, max=64),
                               metadata={"description": "an active enumerator's username"})


class AssignFamiliesSchema(_AssignTo):
    """These families, by id."""

    household_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                                required=True, validate=validate.Length(min=1, max=5000))


class AssignKelurahanSchema(_AssignTo):
    """Every family of a kelurahan, or of one RT/RW in it."""

    kelurahan = fields.String(required=True, validate=KELURAHAN)
    rt = fields.String(validate=validate.Regexp(r"^\d{3}$"))
    rw = fields.String(validate=validate.Regexp(r"^\d{3}$"))


class AssignSchema(AssignKelurahanSchema, AssignFamiliesSchema):
    """Families by id, or every family of a kelurahan (optionally one RT/RW): one of the two."""

    class Meta:
        one_of = (AssignFamiliesSchema, AssignKelurahanSchema)

    household_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                                validate=validate.Length(min=1, max=5000))
    kelurahan = fields.String(validate=KELURAHAN)

    @validates_schema
    def one_selector(self, data, **_kwargs):
        if ("household_ids" in data) == ("kelurahan" in data):
            raise ValidationError("Give either household_ids or kelurahan.", "household_ids")
        if "household_ids" in data and ("rt" in data or "rw" in data):
            raise ValidationError("rt and rw go with kelurahan.", "rt")


class AssignResultSchema(Schema):
    assigned = fields.Integer()
    moved = fields.Integer()
    unchanged = fields.Integer()
    skipped = fields.List(fields.Dict())


class AssignmentQuerySchema(Schema):
    round_id = Id(load_default=None)
    enumerator = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    status = fields.String(load_default=None, validate=validate.OneOf(ASSIGNMENT_STATUSES))
    limit = Limit()
    cursor = Cursor()


class AssignmentSchema(Schema):
    id = fields.Integer()
    round_id = fields.Integer()
    household_id = fields.String()
    enumerator = fields.String()
    status = fields.String()
    note = fields.String(allow_none=True)
    kode_kelurahan = fields.String()
    no_kk = fields.String(allow_none=True, metadata={"description": "masked"})
    assigned_at = fields.DateTime()
    updated_at = fields.DateTime()


class AssignmentPageSchema(Schema):
    items = fields.List(fields.Nested(AssignmentSchema))
    next_cursor = fields.String(allow_none=True)


@blp.route("")
class Assignments(MethodView):
    @login_required("supervisor", "admin")
    @blp.doc(operationId="assign")
    @errors({404: ["not_found"], 409: ["round_closed"]})
    @blp.arguments(AssignSchema, examples={
        "families": {"value": {"round_id": 1, "enumerator": "enum-cengkareng-1",
                               "household_ids": ["KLG-3173010000123"]}},
        "kelurahan": {"value": {"round_id": 1, "enumerator": "enum-cengkareng-1",
                                "kelurahan": "31.73.01.1001", "rt": "003", "rw": "007"}}})
    @blp.response(201, AssignResultSchema)
    def post(self, body):
        """Assign families in bulk; a family held by another enumerator in the round moves."""
        with write_transaction(db.session):
            result = service.assign(db.session, g.user, body["round_id"], body["enumerator"],
                                    household_ids=body.get("household_ids"),
                                    kelurahan=body.get("kelurahan"), rt=body.get("rt"),
                                    rw=body.get("rw"))
        return result.as_dict()

    @login_required()
    @blp.doc(operationId="listAssignments")
    @links(200, {"nextPage": {"operationId": "listAssignments",
                              "parameters": {"cursor": "$response.body#/next_cursor"}}})
    @blp.arguments(AssignmentQuerySchema, location="query")
    @blp.response(200, AssignmentPageSchema)
    def get(self, query):
        """Assignments, filtered; enumerators see their own, supervisors their areas."""
        items, last = service.list_assignments(
            db.session, g.user, round_id=query["round_id"], enumerator=query["enumerator"],
            status=query["status"], after=decode_cursor("assignments", query["cursor"]),
            limit=query["limit"])
        return {"items": items,
                "next_cursor": encode_cursor("assignments", last) if last else None}


@blp.route("/<id:round_id>/<household_id:household_id>")
class AssignmentDetail(MethodView):
    @login_required("supervisor", "admin")
    @blp.doc(operationId="unassign")
    @errors({409: ["round_closed"]})
    @blp.response(204)
    def delete(self, round_id, household_id):
        """Unassign: the family leaves the enumerator's phone at its next pull."""
        with write_transaction(db.session):
            service.unassign(db.session, g.user, round_id, household_id)
