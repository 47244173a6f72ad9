"""One JSON line per request, and nothing personal in any log line.

Only the path is logged, never the query string or a body: queries can carry a NIK (``q=``) and
bodies carry names and passwords. A filter on the handler masks any 16-digit run (a NIK or KK
number) that still finds its way into a message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, request

SIXTEEN_DIGITS = re.compile(r"(?<!\d)\d{16}(?!\d)")
# An OpenRosa device key is a credential in the URL path (/openrosa/key/<token>/formList).
DEVICE_KEY = re.compile(r"(/openrosa/key/)[^/\s\"?]+")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_identifiers(text: str) -> str:
    return DEVICE_KEY.sub(r"\1***", SIXTEEN_DIGITS.sub("****************", text))


class JsonFormatter(logging.Formatter):
    """Render a record and its ``extra`` fields as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        return mask_identifiers(json.dumps(payload, default=str, ensure_ascii=False))


def configure_logging(app: Flask) -> None:
    """Send the ``tapak`` loggers to stderr as JSON; quiet werkzeug's URL-echoing access log."""
    logger = logging.getLogger("tapak")
    logger.setLevel(app.config["LOG_LEVEL"])
    if not app.testing and not any(getattr(h, "_tapak", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._tapak = True
        logger.addHandler(handler)
    logger.propagate = app.testing  # lets pytest's caplog see the lines
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    access = logging.getLogger("tapak.request")

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _log_request(response):
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        user = g.get("user")
        response.headers["X-Request-ID"] = g.get("request_id", "")
        access.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": mask_identifiers(request.path),
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": user.id if user is not None else None,
            },
        )
        return response
