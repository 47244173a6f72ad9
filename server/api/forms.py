"""Published forms, as phones download them (immutable versions, cached by ETag)."""

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from server.auth import login_required
from server.extensions import db
from server.services import ServiceError
from sync import forms as form_store

blp = Blueprint("forms", __name__, url_prefix="/api/v1/forms", description="Forms")


class FormSummarySchema(Schema):
    form_id = fields.String()
    version = fields.Integer()
    title = fields.String()
    hash = fields.String()


@blp.route("")
class Forms(MethodView):
    @login_required()
    @blp.response(200, FormSummarySchema(many=True))
    def get(self):
        """Open published forms, one entry a version."""
        return form_store.published_forms(db.session)


@blp.route("/<form_id>/versions/<int:version>")
class FormVersionView(MethodView):
    @login_required()
    @blp.response(200)
    def get(self, form_id, version):
        """The whole definition, immutable once published; ETag is its content hash.

        A phone that sends ``If-None-Match`` with the hash it has gets 304 and no body.
        """
        row = form_store.get_form_version(db.session, form_id, version)
        if row is None:
            raise ServiceError(404, f"No published version {version} of form {form_id!r}.")
        etag = f'"{row.hash}"'
        headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate",
                   "X-Form-State": "open" if row.is_open else "closed"}
        if etag in request.if_none_match or row.hash in request.if_none_match:
            return "", 304, headers
        return row.definition, 200, headers
