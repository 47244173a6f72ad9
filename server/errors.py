"""The contract's error envelope, for every error the API answers.

``{"error": {"code": "validation_failed", "message": "human sentence", "details": {...}}}``
"""

from __future__ import annotations

import logging
import time

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from sync.privacy import exception_summary

log = logging.getLogger("tapak.errors")

# Machine-readable codes per status; a view may pass its own through ``abort(..., code=...)``.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

MESSAGES = {
    400: "The request could not be understood.",
    401: "A valid bearer token is required.",
    403: "You are not allowed to do this.",
    404: "Not found.",
    405: "This method is not allowed on this path.",
    409: "The request conflicts with the current state.",
    413: "The request is larger than the server accepts.",
    415: "This content type is not supported here.",
    422: "Some fields are invalid.",
    429: "Too many requests; try again later.",
    500: "Something went wrong on the server; it has been logged.",
}


def error_body(status: int, message: str | None = None, code: str | None = None,
               details: dict | None = None) -> dict:
    return {
        "error": {
            "code": code or CODES.get(status, "error"),
            "message": message or MESSAGES.get(status, "Error."),
            "details": details or {},
        }
    }


def flatten_messages(messages, prefix: str = "") -> list[dict]:
    """Turn marshmallow's nested message dict into ``[{"path", "code", "message"}]``.

    Integer keys are list positions and become ``[i]``, so paths read like
    ``visits[2].answers``, the same form the forms engine uses.
    """
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_messages(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            out.append({"path": prefix, "code": "invalid", "message": message})
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            out.extend(flatten_messages(value, f"{prefix}[{i}]"))
    else:
        out.append({"path": prefix, "code": "invalid", "message": str(messages)})
    return out


def http_error_response(error: HTTPException):
    """Render any HTTPException (webargs' 422s, flask-limiter's 429s, aborts) as the envelope."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    details = dict(data.get("details") or {})
    message = data.get("message")
    if "messages" in data:  # webargs: {"json": {...}} or {"query": {...}}
        errors = []
        for location, messages in data["messages"].items():
            for item in flatten_messages(messages):
                item["location"] = location
                errors.append(item)
        details["errors"] = errors
        message = message or MESSAGES[422]
    elif "errors" in data and isinstance(data["errors"], list):
        details["errors"] = data["errors"]
    if status == 429:
        message = f"Too many requests ({error.description}); try again later."
    elif message is None and status not in MESSAGES and error.description:
        message = error.description
    if status == 413 and message is None:
        message = error.description if error.description else None
    response = jsonify(error_body(status, message, data.get("code"), details))
    response.status_code = status
    for name, value in (getattr(error, "get_headers", lambda: [])() or []):
        if name.lower() in ("retry-after", "allow", "www-authenticate"):
            response.headers[name] = value
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if status == 429 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(_retry_after(error))
    return response


def _retry_after(error: HTTPException) -> int:
    """Seconds until the limit that was hit lets a request through again (the whole window
    when the limiter cannot say)."""
    from server.extensions import limiter

    current = limiter.current_limit
    if current is not None:
        return max(0, int(current.reset_at - time.time()))
    limit = getattr(getattr(error, "limit", None), "limit", None)
    return int(limit.get_expiry()) if limit is not None else 60


def unexpected_error_response(error: Exception):
    """A 500 that never echoes the exception's message, which may hold personal data."""
    log.error("unhandled exception",
              extra={**exception_summary(error), "path": request.path if request else None})
    return http_error_response(InternalServerError())


def service_error_response(error):
    response = jsonify(error_body(error.status, error.message, error.code, error.details))
    response.status_code = error.status
    return response


def register_error_handlers(app: Flask) -> None:
    """HTTPException is handled by the Api (see extensions.TapakApi); the rest is a 500."""
    from server.services import ServiceError

    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(ServiceError, service_error_response)
    app.register_error_handler(Exception, unexpected_error_response)
