"""Collect's settings QR code for an enumerator: the server URL with the device key.

Collect (and KoboCollect) read a settings QR code as base64 of the zlib-compressed settings
JSON (ODK docs, collect-import-export). The server URL is ``<base>/openrosa/key/<token>``: Collect
appends ``/formList`` and ``/submission`` to it, and asks for no username or password.
"""

from __future__ import annotations

import base64
import io
import json
import zlib

import segno


def settings(base_url: str, token: str, username: str) -> dict:
    return {
        "general": {
            "server_url": f"{base_url.rstrip('/')}/openrosa/key/{token}",
            "username": "",
            "password": "",
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "admin": {},
        "project": {"name": f"Tapak {username}", "icon": "T", "color": "#1b5e20"},
    }


def payload(settings_json: dict) -> str:
    raw = json.dumps(settings_json, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw)).decode("ascii")


def decode(text: str) -> dict:
    """The settings JSON back from a QR code's text (what Collect does)."""
    return json.loads(zlib.decompress(base64.b64decode(text)))


def png(settings_json: dict, scale: int = 6) -> bytes:
    out = io.BytesIO()
    segno.make(payload(settings_json), error="m", micro=False).save(out, kind="png", scale=scale,
                                                                     border=4)
    return out.getvalue()


def svg(settings_json: dict, scale: int = 4) -> str:
    out = io.BytesIO()
    segno.make(payload(settings_json), error="m", micro=False).save(
        out, kind="svg", scale=scale, border=4, xmldecl=False, svgns=True,
        title="Kode QR pengaturan Collect")
    return out.getvalue().decode()
