"""CSV exports (streamed): verified changes since a time, visit outcomes per area."""

import datetime as dt

from flask import Response, g, stream_with_context
from flask.views import MethodView
from marshmallow import Schema, fields

from server.api.blueprint import Blueprint
from server.auth import login_required
from server.extensions import db
from server.schemas import KECAMATAN, KELURAHAN, Id
from server.services import exports as service

blp = Blueprint("exports", __name__, url_prefix="/api/v1/exports", description="CSV exports")



class ChangesQuerySchema(Schema):
    since = fields.DateTime(load_default=None)
    kecamatan = fields.String(load_default=None, validate=KECAMATAN)
    kelurahan = fields.String(load_default=None, validate=KELURAHAN)


class OutcomesQuerySchema(Schema):
    kecamatan = fields.String(load_default=None, validate=KECAMATAN)
    kelurahan = fields.String(load_default=None, validate=KELURAHAN)
    round_id = Id(load_default=None)


CSV = {"description": "CSV (UTF-8, a header row), streamed.",
       "content": {"text/csv": {"schema": {"type": "string"}}}}


def _csv(chunks, name: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@blp.route("/changes.csv")
class Changes(MethodView):
    @login_required("supervisor", "admin")
    @blp.doc(operationId="exportChanges", responses={200: CSV})
    @blp.arguments(ChangesQuerySchema, location="query")
    def get(self, query):
        """Verified changes (not the registry import's) since a time, one row a field."""
        chunks = service.changes_csv(db.session, g.user, since=_utc(query["since"]),
                                     kecamatan=query["kecamatan"], kelurahan=query["kelurahan"])
        return _csv(chunks, "changes.csv")


@blp.route("/outcomes.csv")
class Outcomes(MethodView):
    @login_required("supervisor", "admin")
    @blp.doc(operationId="exportOutcomes", responses={200: CSV})
    @blp.arguments(OutcomesQuerySchema, location="query")
    def get(self, query):
        """Visit outcomes of an area (and round): status, times, conflicts by severity."""
        chunks = service.outcomes_csv(db.session, g.user, kecamatan=query["kecamatan"],
                                      kelurahan=query["kelurahan"], round_id=query["round_id"])
        return _csv(chunks, "outcomes.csv")
