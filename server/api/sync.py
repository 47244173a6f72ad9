"""The pull side of sync: each enumerator's change feed."""

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.auth import login_required
from server.extensions import db
from server.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from server.services import ServiceError
from sync import feed

blp = Blueprint("sync", __name__, url_prefix="/api/v1/sync", description="Sync")


class PullQuerySchema(Schema):
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=MAX_LIMIT, validate=validate.Range(1, MAX_LIMIT))


class ChangeSchema(Schema):
    seq = fields.Integer()
    type = fields.String()
    op = fields.String()
    id = fields.String()
    data = fields.Dict(allow_none=True)


class PullSchema(Schema):
    changes = fields.List(fields.Nested(ChangeSchema))
    next_cursor = fields.String()
    more = fields.Boolean()


@blp.route("/pull")
class Pull(MethodView):
    @login_required("enumerator")
    @blp.arguments(PullQuerySchema, location="query")
    @blp.response(200, PullSchema)
    @blp.alt_response(410, description="The cursor predates a compaction or reset: start again")
    def get(self, query):
        """What changed for this enumerator since the cursor (from the start without one).

        Only this enumerator's assignments and families, and forms; the same cursor gives the
        same answer while nothing changes; a forged cursor gets 400, an expired one 410.
        """
        position = decode_cursor("pull", query["cursor"])
        after, epoch = 0, None
        if position is not None:
            if not isinstance(position, dict) or position.get("u") != g.user.id:
                raise ServiceError(400, "This cursor belongs to another user.",
                                   code="invalid_cursor")
            after, epoch = int(position["s"]), int(position["e"])
        try:
            page = feed.pull(db.session, g.user.id, after, query["limit"], epoch)
        except feed.CursorGone:
            raise ServiceError(410, "The feed was compacted or reset since this cursor; "
                               "pull again without a cursor.", code="cursor_expired") from None
        cursor = encode_cursor("pull", {"u": g.user.id, "s": page.seq, "e": page.epoch})
        # Serialised by the feed itself (PullSchema documents it): records pass through as
        # stored, which keeps a first pull of hundreds of families fast.
        return current_app.response_class(feed.page_json(page, cursor),
                                          mimetype="application/json")


class PushResultSchema(Schema):
    uuid = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "accepted | waiting_photos | duplicate | "
                                                    "rejected | uuid_reused"})
    errors = fields.List(fields.Dict())
    missing_photos = fields.List(fields.String())


class PushResponseSchema(Schema):
    batch_id = fields.String()
    results = fields.List(fields.Nested(PushResultSchema))


@blp.route("/push")
class Push(MethodView):
    @login_required("enumerator")
    @blp.response(200, PushResponseSchema)
    def post(self):
        """Store a batch of visits; one result a visit, in order (see the contract).

        The body is read raw (kept verbatim as evidence) and checked for shape here; each
        visit is then validated on its own, so one bad visit never costs its neighbours.
        """
        from server.services.push import push

        return push(db.session, g.user, request)
