"""Photos by SHA-256: HEAD to ask, PUT to upload (safe to repeat), GET for those who may see."""

from flask import g, request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api import binary_body
from server.auth import login_required
from server.extensions import db
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


@blp.route("/<name>")
class PhotoView(MethodView):
    @login_required()
    def head(self, name):
        """200 when the server has this photo, 404 when not."""
        return ("", 200) if service.has_photo(db.session, name) else ("", 404)

    @login_required("enumerator", "supervisor", "admin")
    @blp.response(201, StoredPhotoSchema)
    @blp.alt_response(200, schema=StoredPhotoSchema, description="Already stored")
    @binary_body
    def put(self, name):
        """Upload the bytes; 422 when they do not hash to the name or are no valid image."""
        body, created = service.receive(db.session, g.user, name, request.stream,
                                        request.content_type, request.content_length)
        return body, 201 if created else 200

    @login_required()
    @blp.arguments(PhotoQuerySchema, location="query")
    def get(self, query, name):
        """The original or its thumbnail, for roles that may see a visit it belongs to."""
        path, mime = service.open_photo(db.session, g.user, name, query["size"])
        if query["size"] == "thumb":
            mime = "image/jpeg"
        response = send_file(path, mimetype=mime, conditional=True, etag=False)
        response.headers["Cache-Control"] = "private, max-age=86400, immutable"
        return response
