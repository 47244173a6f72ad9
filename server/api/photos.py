"""Photos by SHA-256: HEAD to ask, PUT to upload (safe to repeat), GET for those who may see."""

from flask import current_app, g, request, send_file
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api import binary_body
from server.api.blueprint import Blueprint
from server.api.openapi import errors
from server.auth import login_required
from server.extensions import db
from server.services import ServiceError
from server.services import photos as service

blp = Blueprint("photos", __name__, url_prefix="/api/v1/photos", description="Photos")


class PhotoQuerySchema(Schema):
    size = fields.String(load_default="full", validate=validate.OneOf(["thumb", "full"]))


class StoredPhotoSchema(Schema):
    sha256 = fields.String()
    size_bytes = fields.Integer()
    mime_type = fields.String()
    width = fields.Integer()
    height = fields.Integer()
    queued_visits = fields.List(fields.String())


BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_CONTENT = {mime: BINARY for mime in sorted(service.ACCEPTED_TYPES)}


@blp.route("/<sha256:name>")
class PhotoView(MethodView):
    @login_required()
    @blp.doc(operationId="hasPhoto", responses={200: {"description": "The server has it."}})
    def head(self, name):
        """200 when the server has this photo, 404 when not (no body, as HEAD has none)."""
        if not service.has_photo(db.session, name):
            raise ServiceError(404, "No such photo.")
        return current_app.response_class(status=200)

    @login_required("enumerator", "supervisor", "admin")
    @blp.doc(operationId="uploadPhoto", requestBody={"required": True, "content": IMAGE_CONTENT})
    @errors({413: ["too_large"], 415: ["unsupported_media_type"],
             422: ["hash_mismatch", "unsupported_type", "invalid_image", "too_many_pixels",
                   "invalid_photo"]})
    @blp.response(201, StoredPhotoSchema)
    @blp.alt_response(200, schema=StoredPhotoSchema, description="Already stored")
    @binary_body
    def put(self, name):
        """Upload the bytes; 422 when they do not hash to the name or are no valid image."""
        body, created = service.receive(db.session, g.user, name, request.stream,
                                        request.content_type, request.content_length)
        return body, 201 if created else 200

    @login_required()
    @blp.doc(operationId="getPhoto", responses={200: {
        "description": "A JPEG thumbnail, or the original in the type it was uploaded as.",
        "content": IMAGE_CONTENT}})
    @blp.arguments(PhotoQuerySchema, location="query")
    def get(self, query, name):
        """The original or its thumbnail, for roles that may see a visit it belongs to."""
        path, mime = service.open_photo(db.session, g.user, name, query["size"])
        if query["size"] == "thumb":
            mime = "image/jpeg"
        response = send_file(path, mimetype=mime, conditional=True, etag=False)
        response.headers["Cache-Control"] = "private, max-age=86400, immutable"
        return response
