"""Households: the registry record, the verified record and their history, scoped per caller."""

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import links
from server.auth import login_required
from server.extensions import db
from server.pagination import decode_cursor, encode_cursor
from server.schemas import KECAMATAN, KELURAHAN, Cursor, Limit
from server.services import households as service

blp = Blueprint("households", __name__, url_prefix="/api/v1/households",
                description="Households (keluarga)")


class HouseholdQuerySchema(Schema):
    kecamatan = fields.String(load_default=None, validate=KECAMATAN)
    kelurahan = fields.String(load_default=None, validate=KELURAHAN)
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    limit = Limit()
    cursor = Cursor()


class HouseholdSummarySchema(Schema):
    household_id = fields.String()
    no_kk = fields.String(allow_none=True,
                          metadata={"description": "masked: region code and last 2 digits"})
    kode_kelurahan = fields.String()
    kode_kecamatan = fields.String()
    rt = fields.String(allow_none=True)
    rw = fields.String(allow_none=True)
    desil = fields.Integer(allow_none=True)
    members = fields.Integer()
    version = fields.Integer(allow_none=True,
                             metadata={"description": "verified record version"})
    registry_version = fields.Integer()
    removed = fields.Boolean()
    registry_changed_at = fields.DateTime(allow_none=True)


class HouseholdPageSchema(Schema):
    items = fields.List(fields.Nested(HouseholdSummarySchema))
    next_cursor = fields.String(allow_none=True)


class LayerSchema(Schema):
    version = fields.Integer(allow_none=True)
    record = fields.Dict(allow_none=True)
    removed_at = fields.DateTime(allow_none=True)
    changed_at = fields.DateTime(allow_none=True)
    local_changes = fields.Boolean()
    upstream_version = fields.Integer(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class HouseholdDetailSchema(Schema):
    household_id = fields.String()
    kode_kelurahan = fields.String()
    registry = fields.Nested(LayerSchema)
    verified = fields.Nested(LayerSchema)
    version = fields.Integer(allow_none=True)
    history = fields.List(fields.Dict())


@blp.route("")
class Households(MethodView):
    @login_required()
    @blp.doc(operationId="listHouseholds")
    @links(200, {"nextPage": {"operationId": "listHouseholds",
                              "parameters": {"cursor": "$response.body#/next_cursor"}},
                 "getHousehold": {"operationId": "getHousehold", "parameters": {
                     "household_id": "$response.body#/items/0/household_id"}}})
    @blp.arguments(HouseholdQuerySchema, location="query")
    @blp.response(200, HouseholdPageSchema)
    def get(self, query):
        """Households in the caller's scope, by id; NIK and KK numbers masked."""
        items, last = service.list_households(
            db.session, g.user, kecamatan=query["kecamatan"], kelurahan=query["kelurahan"],
            q=query["q"], after=decode_cursor("households", query["cursor"]),
            limit=query["limit"])
        return {"items": items,
                "next_cursor": encode_cursor("households", last) if last else None}


@blp.route("/<household_id:household_id>")
class Household(MethodView):
    @login_required()
    @blp.doc(operationId="getHousehold")
    @blp.response(200, HouseholdDetailSchema)
    def get(self, household_id):
        """The registry record, the verified record, its version and its history."""
        return service.household_detail(db.session, g.user, household_id)


class PrefillQuerySchema(Schema):
    form_id = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$"))


class PrefillSchema(Schema):
    form_id = fields.String()
    version = fields.Integer()
    household_id = fields.String()
    base_version = fields.Integer()
    answers = fields.Dict()


@blp.route("/<household_id:household_id>/prefill")
class Prefill(MethodView):
    @login_required()
    @blp.doc(operationId="getPrefill")
    @blp.arguments(PrefillQuerySchema, location="query")
    @blp.response(200, PrefillSchema)
    def get(self, query, household_id):
        """Answers prefilled from the current verified record, with its version as base."""
        from server.services.forms import prefill

        return prefill(db.session, g.user, household_id, query["form_id"])
