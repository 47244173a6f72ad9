"""The XML documents of OpenRosa 1.0: the response envelope, formList and the manifest."""

from __future__ import annotations

from xml.sax.saxutils import escape

RESPONSE_NS = "http://openrosa.org/http/response"
FORMLIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _el(name: str, value) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def envelope(message: str, nature: str) -> bytes:
    """``<OpenRosaResponse>``: Collect shows the message to the enumerator."""
    return (f'{HEAD}<OpenRosaResponse xmlns="{RESPONSE_NS}">'
            f'<message nature="{escape(nature)}">{escape(message)}</message>'
            "</OpenRosaResponse>\n").encode()


def form_list(forms: list[dict]) -> bytes:
    """``forms``: ``{"form_id", "name", "version", "md5", "download_url", "manifest_url"}``."""
    items = []
    for f in forms:
        items.append("<xform>" + _el("formID", f["form_id"]) + _el("name", f["name"])
                     + _el("version", f["version"]) + _el("hash", "md5:" + f["md5"])
                     + _el("downloadUrl", f["download_url"])
                     + _el("manifestUrl", f["manifest_url"]) + "</xform>")
    return (f'{HEAD}<xforms xmlns="{FORMLIST_NS}">' + "".join(items) + "</xforms>\n").encode()


def manifest(files: list[dict]) -> bytes:
    """``files``: ``{"filename", "md5", "download_url"}``."""
    items = ["<mediaFile>" + _el("filename", f["filename"]) + _el("hash", "md5:" + f["md5"])
             + _el("downloadUrl", f["download_url"]) + "</mediaFile>" for f in files]
    return (f'{HEAD}<manifest xmlns="{MANIFEST_NS}">' + "".join(items) + "</manifest>\n").encode()
