"""The JSON API under /api/v1, one blueprint per resource."""

from flask import Flask, abort, current_app, request

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def binary_body(view):
    """Mark a view that takes raw bytes (photos) rather than JSON."""
    view._tapak_binary_body = True
    return view


def _require_json_bodies():
    """Answer 415 to a body that is not JSON, unless the view takes raw bytes (a path that
    matches no route is left to its 404)."""
    if request.routing_exception is not None:
        return
    if request.method not in _BODY_METHODS or not request.path.startswith("/api/"):
        return
    if not (request.content_length or request.headers.get("Transfer-Encoding")):
        return
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, request.method.lower(), view)
    if getattr(handler, "_tapak_binary_body", False) or request.is_json:
        return
    abort(415)


def register_blueprints(app: Flask) -> None:
    from server.api import (
        areas,
        assignments,
        auth,
        conflicts,
        exports,
        forms,
        health,
        households,
        media,
        monitoring,
        photos,
        progress,
        rounds,
        sync,
        users,
        visits,
    )
    from server.api.converters import register_converters
    from server.api.openapi import complete_spec
    from server.extensions import api
    from server.schemas import ErrorSchema

    register_converters(app, api)
    for module in (health, auth, users, areas, forms, households, rounds, assignments, sync,
                   photos, visits, progress, monitoring, conflicts, media, exports):
        api.register_blueprint(module.blp)
    if "Error" not in api.spec.components.schemas:
        api.spec.components.schema("Error", schema=ErrorSchema)
    complete_spec(api.spec)
    app.before_request(_require_json_bodies)
