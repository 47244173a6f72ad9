"""What the OpenAPI document says about security, errors and links, derived from the views.

flask-smorest documents what a view returns on success. Everything else a generated client needs
is filled in here, once, after every blueprint is registered, from facts the views already
declare: ``login_required`` marks the operation as needing the bearer token (401, 403), a path
parameter can miss (404), query arguments can fail validation (422), a cursor can be refused
(400), a JSON body can be malformed, too large or of another type (400, 413, 415, 422). A view
adds what only it knows with ``errors`` (the extra ``code`` values it raises) and ``links``.

Every error response is the contract's envelope (``Error``), and lists the ``code`` values that
operation can answer with that status in ``x-error-codes`` (and in its description), since
clients branch on them.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Iterable
from copy import deepcopy

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from server.errors import CODES

SECURITY = [{"bearer": []}]
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
_ERRORS_KEY = "x-tapak-errors"
_LINKS_KEY = "x-tapak-links"
_NEVER_KEY = "x-tapak-never"

RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}


class TapakMarshmallowPlugin(MarshmallowPlugin):
    """Rules across fields that marshmallow checks in code and apispec cannot see.

    ``Meta.openapi``: keywords added to the schema (``minProperties``...). ``Meta.one_of``:
    the schema is documented as exactly one of these schemas (each a whole object, which
    generated clients turn into a union of types), while it still loads as it is.
    """

    def schema_helper(self, name, _, schema=None, **kwargs):
        json_schema = super().schema_helper(name, _, schema=schema, **kwargs)
        meta = getattr(resolve_schema_cls(schema), "Meta", None) if schema else None
        if json_schema is not None and getattr(meta, "one_of", None):
            return {"oneOf": [self.converter.resolve_nested_schema(s) for s in meta.one_of]}
        if json_schema is not None and getattr(meta, "openapi", None):
            json_schema.update(deepcopy(meta.openapi))
        return json_schema


def _manual_doc(view: Callable) -> dict:
    """The view's own ``_apidoc`` (copied: wrapped views share their wrappee's dict)."""
    doc = deepcopy(getattr(view, "_apidoc", {}))
    view._apidoc = doc
    return doc.setdefault("manual_doc", {})


def mark_authenticated(view: Callable, roles: Iterable[str]) -> None:
    """Called by ``login_required``: the operation needs a bearer token (and one of ``roles``)."""
    manual = _manual_doc(view)
    manual["security"] = SECURITY
    if roles:
        manual["x-roles"] = list(roles)


def errors(extra: dict[int, Iterable[str]], never: Iterable[int] = ()) -> Callable:
    """Declare error statuses and ``code`` values a view answers beyond the derived ones, and
    derived statuses it ``never`` answers (a body it reads itself is never a 422)."""

    def decorator(view: Callable) -> Callable:
        manual = _manual_doc(view)
        known = manual.setdefault(_ERRORS_KEY, {})
        for status, codes in extra.items():
            known.setdefault(int(status), []).extend(codes)
        manual.setdefault(_NEVER_KEY, []).extend(int(s) for s in never)
        return view

    return decorator


def links(status: int, named: dict[str, dict]) -> Callable:
    """OpenAPI links from a response to the operations its values lead to."""

    def decorator(view: Callable) -> Callable:
        _manual_doc(view).setdefault(_LINKS_KEY, {}).setdefault(str(status), {}).update(named)
        return view

    return decorator


def _error_response(status: int, codes: list[str], method: str) -> dict:
    listed = ", ".join(f"`{code}`" for code in codes)
    response = {
        "description": f"{http.HTTPStatus(status).phrase}; `error.code` is one of {listed}.",
        "x-error-codes": codes,
    }
    if method != "head":  # a HEAD answer has no body to describe
        response["content"] = {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    if status == 429:
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def _derived_errors(path: str, operation: dict) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}

    def add(status: int, code: str | None = None) -> None:
        codes = found.setdefault(status, [])
        code = code or CODES[status]
        if code not in codes:
            codes.append(code)

    if operation.get("security"):
        add(401)
        add(403)
    if "{" in path:
        add(404)
    query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
    if query or "{" in path:
        add(400, "invalid_characters")  # a NUL in the URL (server/params.py)
    if query:
        add(422)
    if any(p.get("name") == "cursor" for p in query):
        add(400, "invalid_cursor")
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        add(400)
        add(413)
        add(415)
        add(422)
    return found


def complete_spec(spec) -> None:
    """Fill in every operation's error responses, links and security (see the module doc)."""
    for path, item in spec._paths.items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            statuses = _derived_errors(path, operation)
            for status in operation.pop(_NEVER_KEY, []):
                statuses.pop(status, None)
            for status, codes in operation.pop(_ERRORS_KEY, {}).items():
                for code in codes:
                    if code not in statuses.setdefault(int(status), []):
                        statuses[int(status)].append(code)
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            for status in sorted(statuses):
                responses[str(status)] = _error_response(status, statuses[status], method)
            for status, named in operation.pop(_LINKS_KEY, {}).items():
                responses[status].setdefault("links", {}).update(named)
            if not operation.get("security"):
                operation["security"] = []  # public: no token needed
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _not_null(parameter["schema"])
    for schema in spec.components.schemas.values():
        for prop in schema.get("properties", {}).values():
            _nullable_ref_first(prop)


def _not_null(schema: dict) -> None:
    """A query parameter is absent or a value, never null (marshmallow's load_default=None
    makes apispec say ``nullable``, which clients would turn into three types)."""
    schema.pop("nullable", None)
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    if "enum" in schema:
        schema["enum"] = [value for value in schema["enum"] if value is not None]


def _nullable_ref_first(prop: dict) -> None:
    """A nullable nested object: the referenced schema or null, in that order (apispec puts an
    open object first, which clients match before the real type)."""
    options = prop.get("anyOf")
    if not options or len(options) != 2 or options[0] != {"type": "object", "nullable": True}:
        return
    prop["anyOf"] = [options[1], {"type": "object", "nullable": True, "enum": [None]}]


def error_codes(spec_dict: dict, path: str, method: str, status: int) -> list[str]:
    """The ``code`` values documented for one operation and status (for tests and checks)."""
    response = spec_dict["paths"][path][method.lower()]["responses"].get(str(status), {})
    return list(response.get("x-error-codes", []))
