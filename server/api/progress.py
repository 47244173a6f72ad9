"""Progress per area (supervisors and admins) and the escalated conflicts (admins)."""

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors, links
from server.auth import login_required
from server.extensions import db
from server.pagination import decode_cursor, encode_cursor
from server.schemas import Cursor, Id, Limit
from server.services import progress as service

blp = Blueprint("progress", __name__, url_prefix="/api/v1/progress",
                description="Progress per kecamatan and kelurahan")


class ProgressQuerySchema(Schema):
    level = fields.String(load_default="kecamatan", validate=validate.OneOf(service.LEVELS))
    parent = fields.String(load_default=None, validate=validate.Regexp(r"^\d\d(\.\d\d){1,2}$"),
                           metadata={"description": "With level=kelurahan: the kecamatan "
                                                    "(422 without it)."})
    round_id = Id(load_default=None)
    priority = fields.Boolean(load_default=False)


class CountsSchema(Schema):
    households = fields.Integer()
    assigned = fields.Integer()
    pending = fields.Integer()
    visited = fields.Integer()
    returned = fields.Integer()
    done = fields.Integer()
    verified = fields.Integer()
    needs_review = fields.Integer()
    rejected = fields.Integer()
    conflicts_open = fields.Dict(keys=fields.String(), values=fields.Integer(),
                                 metadata={"description": "open conflicts by kind"})
    conflicts_open_total = fields.Integer()
    escalated = fields.Integer()
    percent_done = fields.Float(metadata={"description": "100 * done / assigned"})


class AreaProgressSchema(CountsSchema):
    code = fields.String()
    name = fields.String()
    priority = fields.Boolean()


class RoundRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class ProgressSchema(Schema):
    level = fields.String()
    parent = fields.String(allow_none=True)
    round = fields.Nested(RoundRefSchema, allow_none=True)
    areas = fields.List(fields.Nested(AreaProgressSchema))
    totals = fields.Nested(CountsSchema)
    generated_at = fields.DateTime()


class EscalatedQuerySchema(Schema):
    limit = Limit()
    cursor = Cursor()


class EscalatedSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    severity = fields.String()
    field = fields.String(allow_none=True)
    household_id = fields.String()
    kecamatan = fields.String()
    kelurahan = fields.String()
    round_id = fields.Integer(allow_none=True)
    registry_value = fields.Raw(allow_none=True, metadata={"description": "masked"})
    visit_value = fields.Raw(allow_none=True, metadata={"description": "masked"})
    created_at = fields.DateTime()
    escalated_at = fields.DateTime()
    age_days = fields.Integer()


class EscalatedPageSchema(Schema):
    items = fields.List(fields.Nested(EscalatedSchema))
    next_cursor = fields.String(allow_none=True)


@blp.route("")
class Progress(MethodView):
    @login_required("supervisor", "admin", "pemantau")
    @blp.doc(operationId="getProgress")
    @errors({404: ["not_found"]})
    @blp.arguments(ProgressQuerySchema, location="query")
    @blp.response(200, ProgressSchema)
    def get(self, query):
        """Households, assignments by status and review state, open conflicts by kind."""
        return service.progress(db.session, g.user, query["level"], query["parent"],
                                query["round_id"], priority=query["priority"])


@blp.route("/escalated")
class Escalated(MethodView):
    @login_required("admin")
    @blp.doc(operationId="listEscalated")
    @links(200, {"nextPage": {"operationId": "listEscalated",
                              "parameters": {"cursor": "$response.body#/next_cursor"}}})
    @blp.arguments(EscalatedQuerySchema, location="query")
    @blp.response(200, EscalatedPageSchema)
    def get(self, query):
        """Conflicts open longer than ESCALATE_AFTER_DAYS, flagged by the escalation job."""
        items, last = service.escalated(db.session, g.user,
                                        after=decode_cursor("escalated", query["cursor"]),
                                        limit=query["limit"])
        return {"items": items,
                "next_cursor": encode_cursor("escalated", last) if last else None}
