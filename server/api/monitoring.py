"""Monitoring aggregates (pemantau, supervisors, admins): JSON and CSV.

Never a name, NIK, KK, visit, photo or conflict: areas and counts only, small counts shown as
``"< 5"`` and rates hidden below 20 verified families (docs/monitoring.md).
"""

from flask import Response, g
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors
from server.auth import login_required
from server.extensions import db
from server.schemas import Id
from server.services import monitoring as service
from server.services.exports import csv_stream
from server.services.progress import LEVELS

blp = Blueprint("monitoring", __name__, url_prefix="/api/v1",
                description="Monitoring aggregates per kecamatan and kelurahan")

MONITOR_ROLES = ("supervisor", "admin", "pemantau")


class MonitoringQuerySchema(Schema):
    level = fields.String(load_default="kecamatan", validate=validate.OneOf(LEVELS))
    parent = fields.String(load_default=None, validate=validate.Regexp(r"^\d\d(\.\d\d){1,2}$"),
                           metadata={"description": "With level=kelurahan: the kecamatan "
                                                    "(422 without it); with level=kecamatan, "
                                                    "optionally the kota."})
    round_id = Id(load_default=None, metadata={"description": "Default: the active round."})
    priority = fields.Boolean(load_default=False, metadata={
        "description": "Only the ten priority kecamatan."})
    weekly = fields.String(load_default="total", validate=validate.OneOf(("total", "areas")),
                           metadata={"description": "`total`: the weekly series of the totals "
                                                    "only; `areas`: of each area too."})


def Count(description: str = "") -> fields.Raw:  # noqa: N802 - reads as a field class
    """A count: a number from 5 up, or the string ``"< 5"``."""
    return fields.Raw(required=True, metadata={
        "description": (description + " " if description else "")
        + "A whole number of 5 or more, or \"< 5\" (small counts are suppressed).",
        "oneOf": [{"type": "integer", "minimum": service.MIN_COUNT},
                  {"type": "string", "enum": [service.SUPPRESSED]}]})


def Rate(description: str) -> fields.Float:  # noqa: N802
    return fields.Float(required=True, allow_none=True, metadata={
        "description": description + " Per 1,000 verified families, one decimal; null when "
                                     "the area has fewer than 20 verified families or the "
                                     "count is suppressed.", "minimum": 0})


class ErrorFiguresSchema(Schema):
    flagged = Count("Families with at least one such conflict in the round.")
    upheld = Count("Families with such a conflict upheld by review.")
    flagged_per_1000 = Rate("flagged.")
    upheld_per_1000 = Rate("upheld.")


class TargetingSchema(Schema):
    inclusion_errors = fields.Nested(ErrorFiguresSchema, required=True)
    exclusion_errors = fields.Nested(ErrorFiguresSchema, required=True)
    deceased_with_aid = fields.Nested(ErrorFiguresSchema, required=True)
    moved_with_aid = fields.Nested(ErrorFiguresSchema, required=True)


class GainsLossesSchema(Schema):
    gains = Count("Verified families not eligible by their registry record, eligible by the "
                  "verified one.")
    losses = Count("Verified families eligible by their registry record, not by the verified "
                   "one.")


class EligibilitySchema(Schema):
    pkh = fields.Nested(GainsLossesSchema, required=True)
    bpnt = fields.Nested(GainsLossesSchema, required=True,
                         metadata={"description": "BPNT / Sembako"})
    pbi_jk = fields.Nested(GainsLossesSchema, required=True)


class MembersSchema(Schema):
    died = Count("Members removed from verified records as died.")
    moved = Count("Members removed from verified records as moved away.")
    added = Count("Members added to verified records.")


class WeekSchema(Schema):
    week = fields.String(required=True, metadata={"description": "ISO week in WIB, 2026-W49",
                                                  "pattern": r"^\d{4}-W\d\d$"})
    starts_on = fields.Date(required=True, metadata={"description": "Its Monday."})
    visited = Count("Families first visited that week.")
    verified = Count("Families first verified that week.")
    returned = Count("Families first returned to the enumerator that week.")
    flagged = Count("Families first flagged with a targeting error that week.")


class FiguresSchema(Schema):
    households = Count("Families in the registry.")
    visited = Count("Families with a visit in the round.")
    verified = Count("Families with a verified or approved visit in the round.")
    returned = Count("Families with a visit returned to the enumerator.")
    rates_shown = fields.Boolean(required=True, metadata={
        "description": "Whether the area has 20 verified families or more."})
    targeting_errors = fields.Nested(TargetingSchema, required=True)
    eligibility_changes = fields.Nested(EligibilitySchema, required=True)
    members = fields.Nested(MembersSchema, required=True)


class TotalFiguresSchema(FiguresSchema):
    weekly = fields.List(fields.Nested(WeekSchema), required=True,
                         metadata={"description": "ISO weeks (WIB) since the round began."})


class AreaFiguresSchema(FiguresSchema):
    weekly = fields.List(fields.Nested(WeekSchema), metadata={
        "description": "ISO weeks (WIB) since the round began; only with `weekly=areas`."})
    code = fields.String(required=True)
    name = fields.String(required=True)
    priority = fields.Boolean(required=True)


class MonitoringRoundSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class MonitoringSchema(Schema):
    level = fields.String(required=True)
    parent = fields.String(required=True, allow_none=True)
    round = fields.Nested(MonitoringRoundSchema, required=True, allow_none=True)
    min_count = fields.Integer(required=True)
    min_verified_for_rates = fields.Integer(required=True)
    areas = fields.List(fields.Nested(AreaFiguresSchema), required=True)
    totals = fields.Nested(TotalFiguresSchema, required=True)
    computed_at = fields.DateTime(required=True)


CSV = {"description": "CSV (UTF-8, a header row): one row per area, then the total.",
       "content": {"text/csv": {"schema": {"type": "string"}}}}


def _figures(query) -> dict:
    return service.monitoring(db.session, g.user, query["level"], query["parent"],
                              query["round_id"], priority=query["priority"],
                              weekly_by_area=query.get("weekly") == "areas")


@blp.route("/monitoring")
class Monitoring(MethodView):
    @login_required(*MONITOR_ROLES)
    @blp.doc(operationId="getMonitoring")
    @errors({404: ["not_found"]})
    @blp.arguments(MonitoringQuerySchema, location="query")
    @blp.response(200, MonitoringSchema)
    def get(self, query):
        """Coverage, targeting errors found, eligibility changes and member changes after
        verification, and the weekly series, per area of the caller (aggregates only)."""
        return _figures(query)


@blp.route("/exports/monitoring.csv")
class MonitoringCsv(MethodView):
    @login_required(*MONITOR_ROLES)
    @blp.doc(operationId="exportMonitoring", responses={200: CSV})
    @errors({404: ["not_found"]})
    @blp.arguments(MonitoringQuerySchema, location="query")
    def get(self, query):
        """The figures of ``getMonitoring`` as CSV (without the weekly series)."""
        data = _figures(query)
        response = Response(csv_stream(list(service.CSV_COLUMNS), service.csv_rows(data)),
                            mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="monitoring.csv"'
        response.headers["Cache-Control"] = "no-store"
        return response
