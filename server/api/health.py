"""Liveness for load balancers and the phone's "can I sync now?" check; no login needed."""

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import text

from server import __version__
from server.api.blueprint import Blueprint
from server.extensions import db

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Service health")


class HealthSchema(Schema):
    status = fields.String(validate=validate.OneOf(["ok", "degraded"]))
    database = fields.String(validate=validate.OneOf(["ok", "unreachable"]))
    version = fields.String()


@blp.route("/health")
class Health(MethodView):
    @blp.doc(operationId="getHealth")
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema)
    def get(self):
        try:
            db.session.execute(text("SELECT 1"))
            db.session.rollback()
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            db.session.rollback()
            return {"status": "degraded", "database": "unreachable", "version": __version__}, 503
        return {"status": "ok", "database": "ok", "version": __version__}
