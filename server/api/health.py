"""Liveness and readiness, for load balancers, systemd checks and the phone's "can I sync now?".

``/health`` stays cheap (one ``SELECT 1``): it is polled often. ``/ready`` says whether this
instance can do its work: the database answers, the photo store takes a file, and the schema
is at the migrations' head (a release whose ``db upgrade`` has not run yet is not ready).
"""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import text

from server import __version__
from server.api.blueprint import Blueprint
from server.api.openapi import errors
from server.extensions import db
from server.services import ServiceError
from server.services.health import readiness

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Service health")

CHECK = validate.OneOf(["ok", "failed"])


class HealthSchema(Schema):
    status = fields.String(validate=validate.OneOf(["ok", "degraded"]))
    database = fields.String(validate=validate.OneOf(["ok", "unreachable"]))
    version = fields.String()


class ReadyChecksSchema(Schema):
    database = fields.String(validate=CHECK, metadata={"description": "A query answers."})
    photos = fields.String(validate=CHECK, metadata={
        "description": "PHOTO_DIR is there and a file can be written into it."})
    migrations = fields.String(validate=CHECK, metadata={
        "description": "The database's alembic revision is the migrations' head."})


class ReadySchema(Schema):
    status = fields.String(validate=validate.OneOf(["ready"]))
    checks = fields.Nested(ReadyChecksSchema)
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


@blp.route("/ready")
class Ready(MethodView):
    @blp.doc(operationId="getReady")
    @errors({503: ["not_ready"]})
    @blp.response(200, ReadySchema)
    def get(self):
        """200 when this instance can serve; 503 (`not_ready`) lists in `details.failed` what
        cannot: `database`, `photos`, `migrations` (with `details.checks` for each)."""
        checks = readiness()
        failed = [name for name, state in checks.items() if state != "ok"]
        if failed:
            raise ServiceError(503, "Not ready: " + ", ".join(failed) + ".", code="not_ready",
                               details={"failed": failed, "checks": checks})
        return {"status": "ready", "checks": checks, "version": __version__}
