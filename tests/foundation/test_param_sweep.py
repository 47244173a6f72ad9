"""No input reaches a 500: every operation of the live OpenAPI document, swept.

For each path and query parameter in turn (the others valid or absent) the sweep sends hostile
values: non-ASCII, overlong, huge integers, empty, with a NUL; then hostile headers; then, for
JSON bodies, hostile values at every place of the documented example (or property). Each answer
must be below 500, and an error must come in the envelope. The operations come from the document
itself, so a new endpoint is swept the day it is added.
"""

from __future__ import annotations

import copy
from urllib.parse import quote, urlencode

import pytest

HOSTILE = [
    "é☃\u202e𝄞",
    "x" * 5000,
    "9" * 30,
    str(2**63),  # one past int64: where SQLite's and psycopg's integers overflow
    "-" + "9" * 30,
    "",
    "a\x00b",
    "9999-12-31T23:59:59-14:00",  # a date-time that overflows when turned into UTC
    "0001-01-01T00:00:00+14:00",
]
# Valid values for parameters the sweep leaves alone, by name where a name helps reach deeper.
SAMPLES = {"household_id": "KLG-A1", "username": "sweep-enumerator", "sha256": "0" * 64,
           "name": "0" * 64, "exp": "1", "sig": "0" * 64, "form_id": "verifikasi_keluarga",
           "version": "1"}
# Tokens these operations revoke: each such request gets a token of its own.
REVOKING = {("delete", "/api/v1/auth/token"), ("post", "/api/v1/auth/revoke")}
JPEG_BYTES = b"\xff\xd8\xff\xe0not really a jpeg"


def _sample(param: dict) -> str:
    if param["name"] in SAMPLES:
        return SAMPLES[param["name"]]
    schema = param.get("schema") or {}
    enum = [v for v in schema.get("enum") or () if v is not None]
    if enum:
        return str(enum[0])
    return {"integer": "1", "number": "1", "boolean": "false"}.get(
        schema.get("type"), "2026-01-01T00:00:00Z" if schema.get("format") == "date-time"
        else "0" * 64)


def _operations(doc: dict):
    """(method, path template, parameters, bodies, operation) for every operation."""
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            params = {(p["name"], p["in"]): p for p in shared + op.get("parameters", [])}
            yield method, path, list(params.values()), _bodies(method, op), op


def _bodies(method: str, op: dict) -> list[dict]:
    """Keyword arguments for the body: ``{}`` for JSON, a few bytes of any other type; both
    when the document declares none (raw-body views such as the photo upload)."""
    if method not in ("post", "put", "patch"):
        return [{}]
    content = (op.get("requestBody") or {}).get("content") or {}
    json_body = {"json": {}}
    raw = [{"data": JPEG_BYTES, "content_type": ctype} for ctype in content
           if "json" not in ctype]
    if not content:
        return [json_body, {"data": JPEG_BYTES, "content_type": "image/jpeg"}]
    return ([json_body] if any("json" in c for c in content) else []) + raw


def _url(path: str, params: list[dict], values: dict[tuple[str, str], str]) -> str:
    for p in params:
        if p["in"] == "path":
            path = path.replace(f"{{{p['name']}}}", quote(values[(p["name"], "path")], safe=""))
    query = [(p["name"], values[(p["name"], "query")]) for p in params
             if p["in"] == "query" and (p["name"], "query") in values]
    return path + ("?" + urlencode(query, quote_via=quote) if query else "")


def _cases(params: list[dict]):
    """The baseline values, then one parameter at a time replaced by each hostile value."""
    base = {(p["name"], p["in"]): _sample(p) for p in params
            if p["in"] == "path" or p.get("required")}
    swept = [p for p in params if p["in"] in ("path", "query")]
    if not swept:
        yield base
    for p in swept:
        for value in HOSTILE:
            yield {**base, (p["name"], p["in"]): value}


def _send(client, method: str, url: str, note: str = "", **kwargs) -> str | None:
    """Send one request; what is wrong with the answer, or None."""
    where = f"{method.upper()} {url[:200]!r}{note}"
    try:
        response = client.open(url, method=method.upper(), **kwargs)
        try:
            response.get_data()  # a streamed body (CSV) fails only while it is read
        finally:
            response.close()  # and holds its request context until closed
    except Exception as exc:  # noqa: BLE001 - the test client re-raises what a stream raised
        return f"{where}: raised {exc!r}"[:400]
    return _check(response, method, where)


def _check(response, method: str, where: str) -> str | None:
    where = f"{where} -> {response.status_code}"
    if response.status_code >= 500:
        return f"{where}: {response.get_data(as_text=True)[:200]}"
    if response.status_code < 400 or method == "head" or not response.data:
        return None
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("code"), str)
            and isinstance(error.get("message"), str) and isinstance(error.get("details"), dict)):
        return f"{where}: not the envelope: {response.get_data(as_text=True)[:200]}"
    return None


@pytest.fixture
def sweep(app, client, runner, db, make_user, imported):
    """``(token, doc)``: ``token(role)`` mints a fresh token (headers) for a role, or none.

    The form is published so that pushed visits and prefills get past "no such form"."""
    from server.cli.forms import FORMS_DIR
    from server.services.users import login
    from sync.db import write_transaction

    for definition in sorted(FORMS_DIR.glob("*/v1.json")):
        result = runner.invoke(args=["forms", "publish", str(definition)])
        assert result.exit_code == 0, result.output
    for name in ("admin", "supervisor", "enumerator", "pemantau"):
        make_user(f"sweep-{name}", role=name, areas=() if name == "admin" else ("31.73.01",))

    def token(role: str | None) -> dict:
        if role is None:
            return {}
        with write_transaction(db):
            plain, _ = login(db, f"sweep-{role}", "password123", "sweep-device",
                             app.config["TOKEN_TTL"])
        return {"Authorization": f"Bearer {plain}"}

    return token, client.get("/api/openapi.json").get_json()


@pytest.mark.parametrize("role", ["admin", "supervisor", "enumerator", "pemantau", None])
def test_no_parameter_value_reaches_a_500(client, sweep, role):
    token, doc = sweep
    headers = token(role)
    problems, requests = [], 0
    for method, path, params, bodies, _op in _operations(doc):
        for values in _cases(params):
            url = _url(path, params, values)
            for body in bodies:
                own = token(role) if (method, path) in REVOKING else headers
                requests += 1
                problem = _send(client, method, url, headers=own, **body)
                if problem:
                    problems.append(problem)
    assert requests > 100, "the document lists fewer operations than expected"
    assert not problems, "\n".join(problems)


# Headers the server parses, each with values a client or a relay could send.
HOSTILE_HEADERS = [
    ("Authorization", "Bearer " + "x" * 10000),
    ("Authorization", "Bearer é☃\u202e𝄞"),
    ("Authorization", "Bearer a\x00b"),
    ("Authorization", "Bearer"),
    ("Authorization", "Bearer  a b c"),
    ("Authorization", "Basic dXNlcjpwYXNz"),
    ("Authorization", "é" * 300),
    ("If-None-Match", "é☃"),
    ("If-None-Match", '"' * 5000),
    ("If-None-Match", 'W/, *, "a", W/"b'),
    ("If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 GMT"),
    ("If-Modified-Since", "Mon, 01 Jan 0001 00:00:00 GMT"),
    ("If-Modified-Since", "é☃"),
    ("Range", f"bytes={10**30}-"),
    ("Range", "bytes=5-1, -0, é"),
    ("X-Request-ID", "é" * 100),
    ("X-Request-ID", "x" * 5000),
    ("Accept-Encoding", "gzip;q=é, br;q=" + "9" * 30),
    ("Content-Type", "application/json; charset=unknown-8bit"),
    ("Content-Length", "abc"),
    ("Content-Length", "-1"),
    ("Content-Length", "9" * 30),
]


@pytest.mark.parametrize("role", ["admin", "enumerator"])
def test_no_header_value_reaches_a_500(client, sweep, role):
    """Every operation with valid parameters, one hostile header at a time."""
    token, doc = sweep
    headers = token(role)
    problems = []
    for method, path, params, bodies, _op in _operations(doc):
        base = {(p["name"], p["in"]): _sample(p) for p in params
                if p["in"] == "path" or p.get("required")}
        url = _url(path, params, base)
        for name, value in HOSTILE_HEADERS:
            own = token(role) if (method, path) in REVOKING else headers
            body = dict(bodies[0])
            environ = {}
            if name == "Content-Length":  # the test client would set its own
                environ["CONTENT_LENGTH"] = value
            elif name == "Content-Type" and "content_type" in body:
                body["content_type"] = value
            else:
                own = {**own, name: value}
            problem = _send(client, method, url, f" with {name}: {value[:40]!r}", headers=own,
                            environ_overrides=environ, **body)
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems)


# JSON values for the body sweep: the strings above, and numbers and shapes no schema expects.
HOSTILE_JSON = [*HOSTILE, 2**63, -(2**63) - 1, 10**30, 1.5e308, -1, 0, True, None, [], {},
                ["a\x00b"], {"a\x00b": 1}]


def _json_example(op: dict):
    """The documented example body (the first, when there are several), or None."""
    media = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
    if media is None:
        return None
    if "example" in media:
        return media["example"]
    for example in (media.get("examples") or {}).values():
        return example.get("value")
    return {}


def _places(value, doc: dict, schema: dict | None, path: tuple = ()):
    """Every place in a body: the example's keys and items, nested, and the schema's
    top-level properties the example leaves out."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, doc, None, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:2]):
            yield from _places(item, doc, None, (*path, i))
    while schema and "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for key in (schema or {}).get("properties", {}):
        if not (isinstance(value, dict) and key in value):
            yield (*path, key)


def _put(body, path: tuple, value):
    if not path:
        return value
    body = copy.deepcopy(body) if isinstance(body, dict | list) else {}
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


@pytest.mark.parametrize("role", ["admin", "supervisor", "enumerator"])
def test_no_body_value_reaches_a_500(client, sweep, role):
    """Every JSON body, its example with one place at a time made hostile."""
    from server.extensions import limiter

    token, doc = sweep
    headers = token(role)
    problems, requests = [], 0
    for method, path, params, _bodies, op in _operations(doc):
        example = _json_example(op)
        if example is None:
            continue
        schema = op["requestBody"]["content"]["application/json"].get("schema")
        url = _url(path, params, {(p["name"], p["in"]): _sample(p) for p in params
                                  if p["in"] == "path" or p.get("required")})
        for place in dict.fromkeys(_places(example, doc, schema)):
            for value in HOSTILE_JSON:
                limiter.reset()  # the login's rate limit would hide what lies behind it
                own = token(role) if (method, path) in REVOKING else headers
                requests += 1
                problem = _send(client, method, url, f" with {place}={str(value)[:40]!r}",
                                headers=own, json=_put(example, place, value))
                if problem:
                    problems.append(problem)
    assert requests > 100, "the document lists fewer JSON bodies than expected"
    assert not problems, "\n".join(problems[:40])
