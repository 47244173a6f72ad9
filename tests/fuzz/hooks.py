"""Schemathesis hooks for Tapak's API (``SCHEMATHESIS_HOOKS=tests.fuzz.hooks``).

Three kinds of thing live here, and nothing else:

* **What JSON Schema cannot say, for positive cases only.** A valid request sometimes depends on
  the server's data or on two fields at once: a photo's name is the SHA-256 of its bytes, an
  assignment names an enumerator who exists, a round ends after it starts, a user's areas are
  real area codes, ``level=kelurahan`` needs its kecamatan, ``set_value`` needs a value that fits
  the conflict's field. The document states each rule in words; these hooks make the positive
  cases obey it, so that ``positive_data_acceptance`` checks that valid requests are accepted.
  Negative cases are left as generated.
* **Tokens of their own** for the two operations that revoke the caller's token
  (``DELETE /auth/token``, ``POST /auth/revoke``): each call logs in afresh, and a revocation is
  never aimed at the run's own user or device, which would end the run rather than test it.
* **A check the built-in ones lack:** every error's ``error.code`` must be one of the codes the
  document lists for that operation and status (``x-error-codes``), since clients branch on them.

The harness (``tests/fuzz/run.py``) passes what exists through the environment:
``TAPAK_FUZZ_ENUMERATORS`` (usernames, comma-separated), ``TAPAK_FUZZ_SECRET`` (the
instance's ``SECRET_KEY``, to tell a cursor the server made from one made up), and
``TAPAK_FUZZ_URL``, ``TAPAK_FUZZ_USER``, ``TAPAK_FUZZ_PASSWORD``, ``TAPAK_FUZZ_DEVICE`` and
``TAPAK_FUZZ_TOKEN`` (the run's server and login).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import urllib.request
from functools import lru_cache
from pathlib import Path

import schemathesis
from hypothesis import strategies as st
from itsdangerous import BadSignature, URLSafeSerializer
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- formats, bodies

# An opaque cursor can only be handed back, never made up: a client's own is "no cursor".
# Real cursors reach the stateful phase through the document's links (next_cursor -> cursor).
schemathesis.openapi.format("tapak-cursor", st.just(""))


def _image(width: int, height: int, shade: int, kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, shade // 2)).save(out, kind)
    return out.getvalue()


_SIZES = st.integers(min_value=1, max_value=48)
_SHADES = st.integers(min_value=0, max_value=255)
schemathesis.openapi.media_type(
    "image/jpeg", st.builds(_image, _SIZES, _SIZES, _SHADES, st.just("JPEG")))
schemathesis.openapi.media_type(
    "image/png", st.builds(_image, _SIZES, _SIZES, _SHADES, st.just("PNG")))


# --------------------------------------------------------------------------- positive cases

@lru_cache(maxsize=1)
def _area_codes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kecamatan codes, kelurahan codes) of the reference data the server loads."""
    kecamatan, kelurahan = [], []
    with open(ROOT / "data" / "wilayah_dki.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            level, code = row["tingkat"], row["kode_kemendagri"]
            (kecamatan if level == "kecamatan" else kelurahan if level == "kelurahan"
             else []).append(code)
    return tuple(kecamatan), tuple(kelurahan)


CURSOR_KINDS = ("assignments", "escalated", "households", "pull")


def _server_made(cursor: str) -> bool:
    """Whether the server signed this cursor (for any list: which list is the server's call)."""
    secret = os.environ.get("TAPAK_FUZZ_SECRET", "")
    for kind in CURSOR_KINDS:
        try:
            URLSafeSerializer(secret, salt=f"tapak.cursor.{kind}").loads(cursor)
            return True
        except BadSignature:
            continue
    return False


def _enumerators() -> list[str]:
    return [u for u in os.environ.get("TAPAK_FUZZ_ENUMERATORS", "").split(",") if u]


def _positive(case, location: str) -> bool:
    meta = case.meta
    return meta is None or not meta.is_negative_at(location)


def _pick(options, seed) -> str:
    options = list(options)
    return options[hash(str(seed)) % len(options)]


@schemathesis.hook
def map_case(context, case):
    path, method = case.operation.path, case.operation.method.upper()
    body = case.body
    if method == "PUT" and path.endswith("/photos/{name}") and isinstance(body, bytes) \
            and _positive(case, "body"):
        case.path_parameters = {**(case.path_parameters or {}),
                                "name": hashlib.sha256(body).hexdigest()}
    if not isinstance(body, dict) or not _positive(case, "body"):
        body = None
    if body is not None and method == "POST" and path.endswith("/rounds"):
        start, end = body.get("starts_on"), body.get("ends_on")
        if isinstance(start, str) and isinstance(end, str) and end < start:
            body["starts_on"], body["ends_on"] = end, start
    if body is not None and method == "POST" and path.endswith("/assignments"):
        if _enumerators():
            body["enumerator"] = _pick(_enumerators(), body.get("enumerator"))
        if "household_ids" in body and "kelurahan" in body:  # one selector or the other
            for key in ("kelurahan", "rt", "rw"):
                body.pop(key, None)
    if body is not None and method == "POST" and path.endswith("/users"):
        kecamatan, _ = _area_codes()
        if body.get("role") != "admin" or body.get("areas"):
            body["areas"] = [_pick(kecamatan, a) for a in body.get("areas") or ["x"]]
    if body is not None and method == "POST" and path.endswith("/resolve") \
            and body.get("decision") == "set_value":
        # Whether a value fits depends on the conflict's field: not fuzzable blind.
        body["decision"] = "keep_registry"
    if body is not None and method == "POST" and path.endswith("/auth/revoke"):
        if body.get("username") == os.environ.get("TAPAK_FUZZ_USER"):
            body["username"] = "someone-else"
        if body.get("device_id") == os.environ.get("TAPAK_FUZZ_DEVICE"):
            body["device_id"] = "another-device"
    query = case.query
    if isinstance(query, dict) and _positive(case, "query") and query.get("cursor") \
            and not _server_made(str(query["cursor"])):
        query["cursor"] = ""  # a made-up cursor is no valid request; only the server makes one
    if method == "GET" and path.endswith(("/progress", "/monitoring", "/monitoring.csv")) \
            and isinstance(query, dict) \
            and _positive(case, "query") and query.get("level") == "kelurahan" \
            and not query.get("parent"):
        query["parent"] = _pick(_area_codes()[0], query.get("round_id"))
    return case


# --------------------------------------------------------------------------- own tokens

_REVOKING = ["logout", "revokeTokens"]
_devices = itertools.count(1)


def _fresh_token() -> str:
    body = json.dumps({"username": os.environ["TAPAK_FUZZ_USER"],
                       "password": os.environ["TAPAK_FUZZ_PASSWORD"],
                       "device_id": f"fuzz-own-{next(_devices)}"}).encode()
    request = urllib.request.Request(f"{os.environ['TAPAK_FUZZ_URL']}/api/v1/auth/token",
                                     data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


def _bearer(case, token: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.auth(refresh_interval=None).skip_for(operation_id=_REVOKING)
class RunToken:
    """The token the run logged in with, for every operation but the two that revoke it."""

    def get(self, case, context):
        return os.environ["TAPAK_FUZZ_TOKEN"]

    def set(self, case, data, context):
        _bearer(case, data)


@schemathesis.auth(refresh_interval=None).apply_to(operation_id=_REVOKING)
class OwnToken:
    """A fresh login for each call that revokes the token it is made with."""

    def get(self, case, context):
        return _fresh_token()

    def set(self, case, data, context):
        _bearer(case, data)


# --------------------------------------------------------------------------- checks

@schemathesis.check
def error_code_documented(ctx, response, case):
    """An error's ``error.code`` is among the codes documented for its operation and status."""
    if response.status_code < 400 or response.request.method == "HEAD":
        return None
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None  # the schema check reports a body that is not the envelope
    documented = case.operation.definition.raw.get("responses", {}).get(
        str(response.status_code), {})
    codes = documented.get("x-error-codes")
    if codes is not None and code not in codes:
        raise AssertionError(
            f"error.code {code!r} is not documented for {response.status_code} "
            f"(documented: {', '.join(codes)})")
    return None
