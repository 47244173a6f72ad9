"""OpenRosa 1.0 for ODK Collect, KoboCollect and Enketo: ``/openrosa/key/<token>/...``.

XML, not the JSON API: these endpoints are not in the OpenAPI document. The device key in the
path is the credential (``keys.py``); every response carries ``X-OpenRosa-Version: 1.0``, and
messages are the ``OpenRosaResponse`` envelope. See docs/openrosa.md.
"""

from __future__ import annotations

import hashlib
from email.utils import formatdate

from flask import Blueprint, Flask, Response, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException

from server.extensions import db
from server.openrosa import keys, service
from server.openrosa import xml as oxml

bp = Blueprint("openrosa", __name__, url_prefix="/openrosa/key/<token>")
XML = "text/xml; charset=utf-8"


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=XML)


def message(status: int, text: str, nature: str | None = None) -> Response:
    nature = nature or ("submit_success" if status < 300 else "error")
    return _xml(oxml.envelope(text, nature), status)


@bp.url_value_preprocessor
def _pop_token(endpoint, values):
    g.openrosa_token = (values or {}).pop("token", None)


@bp.url_defaults
def _add_token(endpoint, values):
    if "token" not in values and g.get("openrosa_token"):
        values["token"] = g.openrosa_token


@bp.before_request
def _authenticate():
    user = keys.user_of(db.session, g.get("openrosa_token"))
    if user is None:
        return message(403, "Kunci perangkat ini tidak berlaku (salah atau sudah dicabut). "
                       "Minta kode QR baru kepada supervisor Anda.")
    g.user = user
    return None


@bp.after_request
def _openrosa_headers(response: Response) -> Response:
    response.headers["X-OpenRosa-Version"] = "1.0"
    response.headers.setdefault("Date", formatdate(usegmt=True))
    response.headers.setdefault("Cache-Control", "private, no-cache")
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    texts = {404: "Tidak ditemukan.", 405: "Metode ini tidak didukung di alamat ini.",
             413: "Kiriman lebih besar dari yang diterima server; kirim lebih sedikit berkas "
                  "sekaligus."}
    return message(exc.code or 500, texts.get(exc.code, exc.description or "Galat."))


@bp.errorhandler(service.OpenRosaError)
def _refused(exc: service.OpenRosaError):
    return message(exc.status, exc.message)


@bp.get("/formList")
def form_list():
    wanted = request.args.get("formID")
    items = []
    for row in service.listed_forms(db.session):
        if wanted and row.form_id != wanted:
            continue
        _data, md5 = service.xform(db.session, row)
        where = {"form_id": row.form_id, "version": row.version, "_external": True}
        items.append({"form_id": row.form_id, "name": row.title, "version": row.version,
                      "md5": md5, "download_url": url_for(".form_xml", **where),
                      "manifest_url": url_for(".manifest", **where)})
    return _xml(oxml.form_list(items))


@bp.get("/forms/<form_id>/<int:version>/form.xml")
def form_xml(form_id: str, version: int):
    row = service.open_form(db.session, form_id, version)
    data, md5 = service.xform(db.session, row)
    response = _xml(data)
    response.set_etag(md5)
    return response.make_conditional(request)


@bp.get("/forms/<form_id>/<int:version>/manifest")
def manifest(form_id: str, version: int):
    row = service.open_form(db.session, form_id, version)
    md5s, _data = service.media(db.session, g.user, row)
    body = oxml.manifest([{"filename": name, "md5": md5s[name],
                           "download_url": url_for(".media_file", form_id=form_id,
                                                   version=version, filename=name,
                                                   _external=True)}
                          for name in service.MEDIA_FILES])
    response = _xml(body)
    response.set_etag(hashlib.md5(body).hexdigest())
    return response.make_conditional(request)


@bp.get("/forms/<form_id>/<int:version>/media/<filename>")
def media_file(form_id: str, version: int, filename: str):
    row = service.open_form(db.session, form_id, version)
    if filename not in service.MEDIA_FILES:
        return message(404, "Berkas media ini tidak ada.")
    md5s, data = service.media(db.session, g.user, row, filename)
    response = Response(data, content_type="text/csv; charset=utf-8")
    response.set_etag(md5s[filename])
    return response.make_conditional(request)


@bp.route("/submission", methods=["GET", "HEAD", "POST"])
def submission():
    if request.method != "POST":
        response = Response(status=204)
        response.headers["X-OpenRosa-Accept-Content-Length"] = str(
            current_app.config["MAX_CONTENT_LENGTH"])
        return response
    outcome = service.receive(db.session, g.user, request)
    return message(outcome.status, outcome.message)


def init_app(app: Flask) -> None:
    """Register the blueprint (exempt from the pages' CSRF checks: the key is in the path) and
    the ``flask openrosa`` commands come from server/cli/openrosa.py."""
    from server.web import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
