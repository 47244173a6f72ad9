"""Jakarta's administrative areas, for pickers and filters."""

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from server.api.blueprint import Blueprint
from server.auth import ANY_ROLE, login_required
from server.extensions import db
from sync.models import Area
from sync.models.area import LEVELS

blp = Blueprint("areas", __name__, url_prefix="/api/v1", description="Administrative areas")


class AreaQuerySchema(Schema):
    level = fields.String(load_default=None, validate=validate.OneOf(LEVELS))
    parent = fields.String(load_default=None, validate=validate.Length(max=20),
                           metadata={"description": "Kemendagri code of the parent area."})


class AreaSchema(Schema):
    code = fields.String()
    bps_code = fields.String(allow_none=True)
    name = fields.String()
    level = fields.String(validate=validate.OneOf(LEVELS))
    parent_code = fields.String(allow_none=True, metadata={"description": "null for the province"})


@blp.route("/areas")
class Areas(MethodView):
    @login_required(*ANY_ROLE)
    @blp.doc(operationId="listAreas")
    @blp.arguments(AreaQuerySchema, location="query")
    @blp.response(200, AreaSchema(many=True))
    def get(self, query):
        """Areas, optionally of one level or under one parent. Public facts, no scoping."""
        stmt = select(Area).order_by(Area.code)
        if query["level"]:
            stmt = stmt.where(Area.level == query["level"])
        if query["parent"]:
            stmt = stmt.where(Area.parent_code == query["parent"])
        return db.session.scalars(stmt).all()
