"""The pull side of sync: each enumerator's change feed."""

from flask import current_app, g, request
from flask.views import MethodView
from marshmallow import INCLUDE, Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors, links
from server.auth import login_required
from server.extensions import db
from server.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from server.schemas import Cursor, Limit
from server.services import ServiceError
from sync import feed
from sync.ingest import ACCEPTED, DUPLICATE, REJECTED, UUID_REUSED, WAITING

blp = Blueprint("sync", __name__, url_prefix="/api/v1/sync", description="Sync")


class PullQuerySchema(Schema):
    cursor = Cursor()
    limit = Limit(MAX_LIMIT)


class ChangeSchema(Schema):
    seq = fields.Integer()
    type = fields.String(validate=validate.OneOf(["assignment", "household", "form"]))
    op = fields.String(validate=validate.OneOf(["upsert", "delete"]))
    id = fields.String()
    data = fields.Dict(allow_none=True, metadata={"description": "null for a delete"})


class PullSchema(Schema):
    changes = fields.List(fields.Nested(ChangeSchema))
    next_cursor = fields.String(metadata={"description": "opaque; hand it back as `cursor`"})
    more = fields.Boolean()


@blp.route("/pull")
class Pull(MethodView):
    @login_required("enumerator")
    @blp.doc(operationId="pull")
    @errors({410: ["cursor_expired"]})
    @links(200, {"nextPage": {"operationId": "pull",
                              "parameters": {"cursor": "$response.body#/next_cursor"}}})
    @blp.arguments(PullQuerySchema, location="query")
    @blp.response(200, PullSchema)
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


VISIT_RESULTS = (ACCEPTED, WAITING, DUPLICATE, REJECTED, UUID_REUSED)


class VisitErrorSchema(Schema):
    path = fields.String(metadata={"description": "e.g. `answers.anggota[0].nik`"})
    code = fields.String(metadata={"description": "e.g. `required`, `not_assigned`, "
                                                  "`form_closed`, `unknown_form`"})
    message = fields.String()


class PushResultSchema(Schema):
    uuid = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(VISIT_RESULTS), metadata={
        "description": "accepted | waiting_photos | duplicate | rejected | uuid_reused"})
    errors = fields.List(fields.Nested(VisitErrorSchema))
    missing_photos = fields.List(fields.String())


class PushResponseSchema(Schema):
    batch_id = fields.String()
    results = fields.List(fields.Nested(PushResultSchema))


def _described(text: str) -> fields.Raw:
    """A visit's field, described but not constrained: a visit that breaks it is answered in
    ``results`` as ``rejected``, never refused as a request."""
    return fields.Raw(metadata={"description": text})


class PushVisitSchema(Schema):
    """One visit (see the contract). Each is checked on its own and answered in ``results``:
    the document constrains only the batch around it."""

    class Meta:
        unknown = INCLUDE

    uuid = _described("string, 8-64 characters, made on the phone when the form is opened")
    form_id = _described("string: the form's id")
    form_version = _described("integer: the published version the answers follow")
    household_id = _described("string: the family visited (assigned to this enumerator)")
    base_version = _described("integer or null: the verified record version prefilled from")
    branch_id = _described("string or null: a visit that continues another offline")
    trunk_version = _described("integer or null")
    started_at = _described("date-time with offset")
    ended_at = _described("date-time with offset")
    location = _described('object or null: {"lat", "lon", "accuracy_m"}')
    answers = _described("object: the answers, by the form's field names")
    photos = _described(
        'array of {"field", "sha256", "filename", "taken_at", "location"}. `taken_at` '
        "(optional, null = absent): when the photo was taken, an RFC 3339 date-time with its "
        "offset (`2026-01-05T09:12:00+07:00`); `location` (optional, null = absent): where, "
        '`{"lat": -90..90, "lon": -180..180, "accuracy_m": >= 0 or null}`. They are the '
        "app's claims for a photo whose EXIF its re-encoding dropped: stored per visit, and "
        "read by the photo checks where the photo has no EXIF time or GPS (EXIF wins where "
        "it has). A bad value rejects that visit alone (`photos[i].taken_at`, "
        "`photos[i].location.lat`, ...: `format`, `type`, `required`, `out_of_range`).")


class PushBatchSchema(Schema):
    """The batch envelope; anything else gets 400 ``bad_batch`` and nothing is stored.

    Other keys are ignored, so relays may add their own."""

    class Meta:
        unknown = INCLUDE

    batch_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    device_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    visits = fields.List(fields.Nested(PushVisitSchema), required=True,
                         validate=validate.Length(max=100),
                         metadata={"description": "at most MAX_PUSH_VISITS (100): 413 above"})


PUSH_EXAMPLE = {
    "batch_id": "0b8f6c1e-2f55-4c3a-9a57-0c2b1f9d2a10", "device_id": "android-5f2c",
    "visits": [{
        "uuid": "5d0c1f9e-8a3b-4f7e-b1a2-6c9d8e7f6a5b", "form_id": "verifikasi_keluarga",
        "form_version": 1, "household_id": "KLG-3173010000123", "base_version": 3,
        "started_at": "2026-01-05T09:12:00+07:00", "ended_at": "2026-01-05T09:31:00+07:00",
        "location": {"lat": -6.1402, "lon": 106.7361, "accuracy_m": 8},
        "answers": {"hasil_kunjungan": 1},
        "photos": [{"field": "foto_depan", "sha256": "9f" * 32, "filename": "IMG_0012.jpg",
                    "taken_at": "2026-01-05T09:14:10+07:00",
                    "location": {"lat": -6.14021, "lon": 106.73605, "accuracy_m": 6}}],
    }],
}


@blp.route("/push")
class Push(MethodView):
    @login_required("enumerator")
    @blp.doc(operationId="push", requestBody={"required": True, "content": {
        "application/json": {"schema": PushBatchSchema, "example": PUSH_EXAMPLE}}})
    @errors({400: ["bad_batch"], 413: ["batch_too_large", "too_many_visits"]}, never=(422,))
    @links(200, {"getVisit": {"operationId": "getVisit",
                              "parameters": {"uuid": "$response.body#/results/0/uuid"}}})
    @blp.response(200, PushResponseSchema)
    def post(self):
        """Store a batch of visits; one result a visit, in order (see the contract).

        The body is read raw (kept verbatim as evidence) and checked for shape here; each
        visit is then validated on its own, so one bad visit never costs its neighbours.
        """
        from server.services.push import push

        return push(db.session, g.user, request)
