"""The requests ODK Collect sends, rebuilt from its source (no phone is available here).

Every constant and rule below names the file of getodk/collect (commit 137f325, 2026-08-20) it
was taken from:

- headers on every request: ``User-Agent``, ``X-OpenRosa-Version: 1.0`` and ``Date``, added by
  ``OkHttpOpenRosaServerClient.makeRequest``
  (open-rosa/src/main/java/org/odk/collect/openrosa/http/okhttp/OkHttpOpenRosaServerClientProvider.java);
  the ``Date`` pattern is ``E, dd MMM yyyy hh:mm:ss zz`` in GMT (note ``hh``: a 12-hour clock);
- the User-Agent is ``<APPLICATION_ID>/<VERSION_NAME> <http.agent>``
  (collect_app/src/main/java/org/odk/collect/android/utilities/AndroidUserAgent.java);
- the submission URL gets ``?deviceID=<install id>``, ``collect:`` and 16 random characters
  (collect_app/src/main/java/org/odk/collect/android/instancemanagement/send/OpenRosaServerInstanceUploader.kt,
  ``getUrlToSubmitTo``; metadata/src/main/java/org/odk/collect/metadata/InstallIDProvider.kt);
- ``HEAD`` to the submission URL first; 204 with ``X-OpenRosa-Accept-Content-Length`` (else
  10,000,000 bytes are assumed) (OpenRosaServerInstanceUploader.kt);
- ``POST`` multipart/form-data: the part ``xml_submission_file`` (filename of the instance file,
  ``text/xml``), then one part per file of the instance folder, named by its filename, with its
  content type from the extension; a new POST starts after 100 files or when the next file would
  go over the accepted content length, and every POST but the last carries the form field
  ``*isIncomplete*`` = ``yes``; each POST repeats the full XML; anything but 201 or 202 stops
  the upload (open-rosa/src/main/java/org/odk/collect/openrosa/http/okhttp/OkHttpConnection.java,
  ``uploadSubmissionAndFiles``);
- a resend of a sent form posts exactly the same again (collect#3517).
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib

USER_AGENT = ("org.odk.collect.android/v2026.2.3 Dalvik/2.1.0 (Linux; U; Android 13; "
              "SM-A145F Build/TP1A.220624.014)")
DEVICE_ID = "collect:Xq8vT2mK9pL4wR7z"
DEFAULT_ACCEPT = 10_000_000


def collect_date(now: dt.datetime | None = None) -> str:
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return now.strftime("%a, %d %b %Y %I:%M:%S GMT")


def headers() -> dict:
    return {"User-Agent": USER_AGENT, "X-OpenRosa-Version": "1.0", "Date": collect_date()}


def split_posts(xml_name: str, xml: bytes, files: list[tuple[str, bytes]],
                content_length: int) -> list[list[tuple[str, str | None, str, bytes]]]:
    """The POSTs of one submission: each a list of parts ``(name, filename, type, bytes)``,
    split as ``OkHttpConnection.uploadSubmissionAndFiles`` splits."""
    posts = []
    index, first = 0, True
    while index < len(files) or first:
        last_index, first = index, False
        parts = [("xml_submission_file", xml_name, "text/xml", xml)]
        count = len(xml)
        while index < len(files):
            name, data = files[index]
            parts.append((name, name, "image/jpeg" if name.endswith(".jpg") else
                          "application/octet-stream", data))
            count += len(data)
            if index + 1 < len(files) and (index - last_index + 1 > 100
                                           or count + len(files[index + 1][1]) > content_length):
                parts.append(("*isIncomplete*", None, "", b"yes"))
                index += 1
                break
            index += 1
        posts.append(parts)
    return posts


def multipart(parts: list[tuple[str, str | None, str, bytes]]) -> tuple[bytes, str]:
    """The body OkHttp's ``MultipartBody`` (type FORM) writes, and its content type."""
    boundary = str(uuidlib.uuid4())
    out = bytearray()
    for name, filename, ctype, data in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += f"Content-Length: {len(data)}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------- the instance XML


def _text(f: dict, value) -> str:
    t = f["type"]
    if t == "boolean":
        return "yes" if value else "no"
    if t == "select_multiple":
        return " ".join(str(v) for v in value)
    if t == "geopoint":
        return " ".join(str(value.get(k, 0)) for k in ("lat", "lon", "altitude_m", "accuracy_m"))
    return str(value)


def _fields(fields: list, answers: dict, out: list) -> None:
    from xml.sax.saxutils import escape

    for f in fields:
        name, value = f["name"], answers.get(f["name"])
        if f["type"] == "note":
            continue
        if f["type"] == "group":
            out.append(f"<{name}>")
            _fields(f["fields"], value or {}, out)
            out.append(f"</{name}>")
        elif f["type"] == "repeat":
            for entry in value or []:
                out.append(f"<{name}>")
                _fields(f["fields"], entry, out)
                out.append(f"</{name}>")
        elif value is None:
            out.append(f"<{name}/>")
        else:
            out.append(f"<{name}>{escape(_text(f, value))}</{name}>")


def instance_xml(definition: dict, visit: dict, filenames: dict[str, str]) -> bytes:
    """The instance Collect would save for a push-format visit; photo answers are the file
    names in ``filenames`` (field path -> filename)."""
    answers = _with_filenames(visit["answers"], filenames)
    out = [f'<?xml version="1.0" ?><data xmlns:jr="http://openrosa.org/javarosa" '
           f'xmlns:orx="http://openrosa.org/xforms" id="{definition["form_id"]}" '
           f'version="{definition["version"]}">',
           f"<_mulai>{visit['started_at']}</_mulai><_selesai>{visit['ended_at']}</_selesai>",
           f"<_keluarga>{visit['household_id']}</_keluarga>",
           f"<_base_version>{visit['base_version']}</_base_version>"]
    _fields(definition["fields"], answers, out)
    out.append(f"<meta><instanceID>uuid:{visit['uuid']}</instanceID></meta></data>")
    return "".join(out).encode()


def _with_filenames(answers: dict, filenames: dict[str, str], prefix: str = "") -> dict:
    out = {}
    for key, value in answers.items():
        path = f"{prefix}{key}"
        if path in filenames:
            out[key] = filenames[path]
        elif isinstance(value, dict) and "lat" not in value:
            out[key] = _with_filenames(value, filenames, path + ".")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out[key] = [_with_filenames(v, filenames, f"{path}[{i}].")
                        for i, v in enumerate(value)]
        else:
            out[key] = value
    return out
