"""The review queue: conflicts listed, shown, resolved (one or in bulk) and reopened."""

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors, links
from server.auth import login_required
from server.extensions import db
from server.schemas import KECAMATAN, KELURAHAN, NOTE, Cursor, FieldValue, Id, Limit
from server.services import conflicts as service
from server.services import review
from sync.models.conflict import CONFLICT_STATUSES, DECISIONS

blp = Blueprint("conflicts", __name__, url_prefix="/api/v1/conflicts",
                description="Conflicts (the review queue)")

REVIEWERS = ("supervisor", "admin")


class ConflictQuerySchema(Schema):
    status = fields.String(load_default="open",
                           validate=validate.OneOf([*CONFLICT_STATUSES, "all"]))
    kind = fields.String(load_default=None, validate=validate.Length(min=1, max=40))
    kecamatan = fields.String(load_default=None, validate=KECAMATAN)
    kelurahan = fields.String(load_default=None, validate=KELURAHAN)
    household_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    visit_uuid = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    sort = fields.String(load_default="newest", validate=validate.OneOf(service.SORTS))
    limit = Limit()
    cursor = Cursor()


class ConflictSchema(Schema):
    id = fields.Integer()
    household_id = fields.String()
    visit_uuid = fields.String(allow_none=True)
    round_id = fields.Integer(allow_none=True)
    kind = fields.String()
    severity = fields.String()
    field = fields.String(allow_none=True)
    registry_value = fields.Raw(allow_none=True)
    visit_value = fields.Raw(allow_none=True)
    base_value = fields.Raw(allow_none=True)
    message = fields.String()
    status = fields.String()
    resolution = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    escalated_at = fields.DateTime(allow_none=True)
    kecamatan = fields.String()
    kelurahan = fields.String()


class ConflictPageSchema(Schema):
    items = fields.List(fields.Nested(ConflictSchema))
    next_cursor = fields.String(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "per kind, for every filter but kind"})
    total = fields.Integer()


class ConflictDetailSchema(ConflictSchema):
    detail = fields.Dict(allow_none=True)
    record_version = fields.Integer(allow_none=True)
    resolution_value = fields.Raw(allow_none=True)
    note = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    visit = fields.Dict(allow_none=True)
    registered_location = fields.Dict(allow_none=True)
    photos = fields.List(fields.Dict(), metadata={"description": "signed, expiring URLs"})
    history = fields.List(fields.Dict())
    decisions = fields.List(fields.Dict())
    map_svg = fields.String()


class ResolveSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    value = FieldValue(load_default=None, metadata={
        "description": "With set_value: the value to write, fitting the field (422 "
                       "`invalid_value` otherwise); ignored by the other decisions."})
    note = fields.String(load_default=None, allow_none=True, validate=NOTE)


class ResolvedSchema(ConflictSchema):
    resolution_value = fields.Raw(allow_none=True)
    note = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    verified_version = fields.Integer()
    applied = fields.List(fields.String())
    visit = fields.Dict(allow_none=True)
    reopened_from = fields.Dict()


class BulkResolveSchema(Schema):
    ids = fields.List(Id(), required=True,
                      validate=validate.Length(min=1, max=review.MAX_BULK))
    decision = fields.String(required=True, validate=validate.OneOf(review.BULK_DECISIONS))
    note = fields.String(load_default=None, allow_none=True, validate=NOTE)


class BulkReportSchema(Schema):
    status = fields.String(metadata={"description": "OK, WARNING (some failed) or ERROR"})
    stats = fields.Dict()
    results = fields.List(fields.Dict())


class ReopenSchema(Schema):
    note = fields.String(load_default=None, allow_none=True, validate=NOTE)


@blp.route("")
class Conflicts(MethodView):
    @login_required(*REVIEWERS)
    @blp.doc(operationId="listConflicts")
    @links(200, {"nextPage": {"operationId": "listConflicts",
                              "parameters": {"cursor": "$response.body#/next_cursor"}},
                 "getConflict": {"operationId": "getConflict",
                                 "parameters": {"conflict_id": "$response.body#/items/0/id"}},
                 "resolveConflict": {"operationId": "resolveConflict",
                                     "parameters": {"conflict_id": "$response.body#/items/0/id"}}})
    @blp.arguments(ConflictQuerySchema, location="query")
    @blp.response(200, ConflictPageSchema)
    def get(self, query):
        """Conflicts in the caller's areas, newest first by default; values masked."""
        return service.list_conflicts(db.session, g.user, **query)


@blp.route("/<id:conflict_id>")
class ConflictDetail(MethodView):
    @login_required(*REVIEWERS)
    @blp.doc(operationId="getConflict")
    @links(200, {"resolveConflict": {"operationId": "resolveConflict",
                                     "parameters": {"conflict_id": "$response.body#/id"}},
                 "getVisit": {"operationId": "getVisit",
                              "parameters": {"uuid": "$response.body#/visit_uuid"}}})
    @blp.response(200, ConflictDetailSchema)
    def get(self, conflict_id):
        """Values whole, the visit's photos (signed URLs), the family's history, the map."""
        return service.conflict_detail(db.session, g.user, conflict_id)


@blp.route("/<id:conflict_id>/resolve")
class Resolve(MethodView):
    @login_required(*REVIEWERS)
    @blp.doc(operationId="resolveConflict")
    @errors({409: ["already_decided", "stale_field", "household_not_found"],
             422: ["invalid_value", "no_field"]})
    @links(200, {"reopenConflict": {"operationId": "reopenConflict",
                                    "parameters": {"conflict_id": "$response.body#/id"}}})
    @blp.arguments(ResolveSchema, examples={
        "accept": {"value": {"decision": "accept_visit", "note": "Dicek di lapangan."}},
        "keep": {"value": {"decision": "keep_registry", "note": "Registri benar."}}})
    @blp.response(200, ResolvedSchema)
    def post(self, body, conflict_id):
        """Decide: accept_visit, keep_registry or set_value (with value), and a note."""
        return review.resolve_conflict(db.session, g.user, conflict_id, body["decision"],
                                       value=body["value"], note=body["note"])


@blp.route("/<id:conflict_id>/reopen")
class Reopen(MethodView):
    @login_required(*REVIEWERS)
    @blp.doc(operationId="reopenConflict")
    @errors({409: ["already_open", "visit_closed"]})
    @blp.arguments(ReopenSchema, required=False,
                   example={"note": "Salah pilih; diperiksa lagi."})
    @blp.response(200, ResolvedSchema)
    def post(self, body, conflict_id):
        """Open a decided conflict again; the version its decision wrote is not undone."""
        return review.reopen_conflict(db.session, g.user, conflict_id, note=body["note"])


@blp.route("/resolve")
class BulkResolve(MethodView):
    @login_required(*REVIEWERS)
    @blp.doc(operationId="bulkResolveConflicts")
    @blp.arguments(BulkResolveSchema, example={"ids": [101, 102, 103],
                                               "decision": "keep_registry",
                                               "note": "Perbedaan kecil, registri benar."})
    @blp.response(200, BulkReportSchema)
    def post(self, body):
        """Resolve many conflicts with one decision; each id stands alone (a per-id report)."""
        results = review.bulk_resolve(db.session, g.user, body["ids"], body["decision"],
                                      note=body["note"])
        failed = sum(1 for r in results if r["status"] == "error")
        status = "OK" if not failed else ("ERROR" if failed == len(results) else "WARNING")
        return {"status": status,
                "stats": {"resolved": len(results) - failed, "failed": failed,
                          "total": len(results)},
                "results": results}
