"""Lapangan, the enumerators' offline field app, served under ``/lapangan/``.

Three things come from Flask routes rather than from ``/static``:

- ``/lapangan/``: the app shell, one HTML page with an inline import map (allowed by its
  hash in the page's own Content-Security-Policy, see ``server.security.lapangan_policy``);
- ``/lapangan/sw.js``: the service worker, served here so that its scope is ``/lapangan/``.
  Its body names the shell's version (a digest of every shell file), so any change of a file
  makes a new worker, which the browser installs beside the old one and lets take over only
  once every tab of the app is closed (the next start, never in the middle of a visit);
- ``/lapangan/manifest.webmanifest``: what "Add to home screen" installs.

Everything else (JavaScript modules, CSS, icon, vendored libraries) lives in
``server/static/lapangan/`` and is listed, file by file, in the worker's cache. The app talks to
the JSON API only (``/api/v1``), which the worker never caches.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from flask import Blueprint, Response, redirect, render_template, url_for

from server.security import lapangan_policy

bp = Blueprint("lapangan", __name__, url_prefix="/lapangan")

STATIC = Path(__file__).resolve().parents[1] / "static" / "lapangan"
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "lapangan" / "index.html"
SW_TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "lapangan" / "sw.js"
# Files of the static folder the app never loads (licences, the vendoring record).
SKIP_SUFFIXES = (".md", ".txt", ".map")
SKIP_NAMES = {"LICENSE", "LICENCE", "vendor.json"}


def shell_files() -> list[Path]:
    """Every file of the app shell under static/lapangan, sorted."""
    if not STATIC.is_dir():
        return []
    return sorted(p for p in STATIC.rglob("*") if p.is_file()
                  and not p.name.startswith(".") and p.name not in SKIP_NAMES
                  and not p.name.upper().startswith("LICEN")
                  and not p.name.endswith(SKIP_SUFFIXES))


def static_url(path: Path) -> str:
    return "/static/lapangan/" + path.relative_to(STATIC).as_posix()


def import_map() -> dict:
    """Bare names the modules import, mapped to the vendored files that exist."""
    imports = {}
    for name, candidates in (("idb", ("vendor/idb/index.js", "vendor/idb/build/index.js")),
                             ("json-logic-js", ("vendor/json-logic-js/json-logic.js",))):
        for rel in candidates:
            if (STATIC / rel).is_file():
                imports[name] = "/static/lapangan/" + rel
                break
    return {"imports": imports}


def import_map_text() -> str:
    return json.dumps(import_map(), ensure_ascii=False, sort_keys=True)


def script_hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def shell_version() -> str:
    """A digest of every byte the shell is made of: any change gives a new version."""
    digest = hashlib.sha256()
    for path in [TEMPLATE, SW_TEMPLATE, *shell_files()]:
        if path.is_file():
            digest.update(path.as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    digest.update(import_map_text().encode())
    return digest.hexdigest()[:16]


def shell_urls() -> list[str]:
    return ["/lapangan/", "/lapangan/manifest.webmanifest",
            *(static_url(p) for p in shell_files())]


@bp.get("")
def bare():
    return redirect(url_for("lapangan.shell"), 308)


@bp.get("/")
def shell():
    imports = import_map_text()
    html = render_template("lapangan/index.html", import_map=imports,
                           version=shell_version())
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = lapangan_policy([script_hash(imports)])
    # The worker keeps the shell; the browser's HTTP cache must not hold an older copy that
    # a new worker would install.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sw.js")
def service_worker():
    body = render_template("lapangan/sw.js", version=shell_version(),
                           shell=json.dumps(shell_urls(), indent=1))
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = lapangan_policy()
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    body = {
        "name": "Tapak Lapangan",
        "short_name": "Lapangan",
        "description": "Verifikasi keluarga DTSEN dari rumah ke rumah, juga tanpa sinyal.",
        "lang": "id",
        "start_url": "/lapangan/",
        "scope": "/lapangan/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b5d1e",
        "icons": [
            {"src": "/static/lapangan/icon.svg", "sizes": "any", "type": "image/svg+xml",
             "purpose": "any"},
            {"src": "/static/lapangan/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/lapangan/icon-512.png", "sizes": "512x512", "type": "image/png"},
        ],
    }
    response = Response(json.dumps(body, ensure_ascii=False, indent=1),
                        mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = lapangan_policy()
    return response
