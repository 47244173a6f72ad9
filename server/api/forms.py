"""Published forms, as phones download them (immutable versions, cached by ETag)."""

from flask import current_app, jsonify, request
from flask.views import MethodView
from marshmallow import Schema, fields

from server.api.blueprint import Blueprint
from server.auth import login_required
from server.extensions import db
from server.services import ServiceError
from sync import forms as form_store

blp = Blueprint("forms", __name__, url_prefix="/api/v1/forms", description="Forms")


class FormDefinitionSchema(Schema):
    """The definition as published (its fields are described in docs/forms.md)."""

    form_id = fields.String()
    version = fields.Integer()
    title = fields.Raw(metadata={"description": "a label: text, or text per language"})
    description = fields.Raw(metadata={"description": "a label: text, or text per language"})
    choices = fields.Dict(keys=fields.String(), values=fields.List(fields.Dict()))
    fields_ = fields.List(fields.Dict(), data_key="fields")


class FormSummarySchema(Schema):
    form_id = fields.String()
    version = fields.Integer()
    title = fields.String()
    hash = fields.String()


@blp.route("")
class Forms(MethodView):
    @login_required()
    @blp.doc(operationId="listForms")
    @blp.response(200, FormSummarySchema(many=True))
    def get(self):
        """Open published forms, one entry a version."""
        return form_store.published_forms(db.session)


@blp.route("/<form_id:form_id>/versions/<id:version>")
class FormVersionView(MethodView):
    @login_required()
    @blp.doc(operationId="getFormVersion", parameters=[{
        "in": "header", "name": "If-None-Match", "required": False,
        "schema": {"type": "string"},
        "description": "The ETag (the form's hash) the phone has: 304 when unchanged."}])
    @blp.response(200, FormDefinitionSchema, headers={
        "ETag": {"description": "The definition's content hash, quoted.",
                 "schema": {"type": "string"}},
        "X-Form-State": {"description": "`open`, or `closed` (pushes are refused).",
                         "schema": {"type": "string", "enum": ["open", "closed"]}}})
    @blp.alt_response(304, description="Not modified: the phone's copy is current.")
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
            return current_app.response_class(status=304, headers=headers)
        # Served as stored: the schema only documents it.
        response = jsonify(row.definition)
        response.headers.update(headers)
        return response
