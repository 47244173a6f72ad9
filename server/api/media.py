"""Photos behind signed, expiring URLs (for ``<img src>`` on the review pages: no token)."""

from flask import send_file
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from server.api.blueprint import Blueprint
from server.api.openapi import errors
from server.api.photos import IMAGE_CONTENT
from server.services import media as service

blp = Blueprint("media", __name__, url_prefix="/api/v1/media",
                description="Signed photo URLs")


class MediaQuerySchema(Schema):
    size = fields.String(load_default="thumb", validate=validate.OneOf(service.SIZES))
    exp = fields.Integer(required=True, validate=validate.Range(0, 2**53),
                         metadata={"description": "Unix time the link expires"})
    sig = fields.String(required=True, validate=validate.Length(max=128),
                        metadata={"description": "HMAC-SHA256, hex, made by the server"})


@blp.route("/<sha256:sha256>")
class Media(MethodView):
    @blp.doc(operationId="getSignedPhoto", responses={200: {
        "description": "The thumbnail (JPEG) or the original.", "content": IMAGE_CONTENT}})
    @errors({403: ["invalid_signature", "link_expired"], 404: ["not_found"]})
    @blp.arguments(MediaQuerySchema, location="query")
    def get(self, query, sha256):
        """The thumbnail or original; 403 when the signature fails or the link expired."""
        path, mime = service.open_signed(sha256, query["size"], query["exp"], query["sig"])
        response = send_file(path, mimetype=mime, conditional=True, etag=False)
        response.headers["Cache-Control"] = "private, max-age=900"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
