"""The OpenAPI document is valid, complete, and says what the server does.

Schemathesis (``make fuzz``) checks the document against the live server at large; these tests
pin the properties generated clients rely on, quickly, on every ``make test``.
"""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from server.api.openapi import error_codes

METHODS = ("get", "put", "post", "delete", "patch", "head")


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_the_document_is_valid_openapi(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_every_operation_has_a_unique_operation_id_a_tag_and_its_security(spec):
    ids = [op.get("operationId") for _, _, op in operations(spec)]
    assert all(ids) and len(ids) == len(set(ids))
    for path, method, op in operations(spec):
        assert op["tags"], (path, method)
        public = (path, method) in {("/api/v1/health", "get"), ("/api/v1/ready", "get"),
                                    ("/api/v1/auth/token", "post"),
                                    ("/api/v1/media/{sha256}", "get")}
        assert op["security"] == ([] if public else [{"bearer": []}]), (path, method)
        if not public:
            assert {"401", "403"} <= set(op["responses"]), (path, method)
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_every_error_response_is_the_envelope_with_its_codes(spec):
    envelope = spec["components"]["schemas"]["Error"]
    assert envelope["required"] == ["error"]
    for path, method, op in operations(spec):
        assert "default" not in op["responses"], (path, method)
        for status, response in op["responses"].items():
            if int(status) < 400 or (path, status) == ("/api/v1/health", "503"):
                continue  # health's 503 is its own body: what is degraded
            assert response["x-error-codes"], (path, method, status)
            if method == "head":  # no body to describe (a generated client must not parse one)
                assert "content" not in response, (path, status)
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_bounds_and_patterns_the_server_enforces_are_documented(spec):
    def param(path, method, name):
        item = spec["paths"][path]
        params = item[method].get("parameters", []) + item.get("parameters", [])
        return next(p["schema"] for p in params if p["name"] == name)

    limit = param("/api/v1/households", "get", "limit")
    assert (limit["minimum"], limit["maximum"]) == (1, 500)
    assert param("/api/v1/photos/{name}", "put", "name")["pattern"] == "^[0-9a-fA-F]{64}$"
    uuid = param("/api/v1/visits/{uuid}", "get", "uuid")
    assert uuid["pattern"] == "^[^/]{8,64}$"
    conflict_id = param("/api/v1/conflicts/{conflict_id}", "get", "conflict_id")
    assert (conflict_id["minimum"], conflict_id["maximum"]) == (1, 2**31 - 1)
    assert param("/api/v1/conflicts", "get", "kecamatan")["pattern"] == r"^\d\d\.\d\d\.\d\d$"
    assert param("/api/v1/sync/pull", "get", "cursor")["type"] == "string"
    area = spec["components"]["schemas"]["Area"]["properties"]
    assert area["parent_code"]["nullable"] is True


def test_push_documents_its_envelope_and_answers_bad_visits_with_200(spec):
    push = spec["paths"]["/api/v1/sync/push"]["post"]
    body = push["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PushBatch"}
    assert body["example"]["visits"][0]["form_id"] == "verifikasi_keluarga"
    assert "422" not in push["responses"]
    assert "bad_batch" in error_codes(spec, "/api/v1/sync/push", "post", 400)
    links = push["responses"]["200"]["links"]
    assert links["getVisit"]["operationId"] == "getVisit"


def test_photo_and_csv_endpoints_declare_their_content_types(spec):
    put = spec["paths"]["/api/v1/photos/{name}"]["put"]
    assert {"image/jpeg", "image/png", "image/heic"} <= set(put["requestBody"]["content"])
    get = spec["paths"]["/api/v1/photos/{name}"]["get"]["responses"]["200"]["content"]
    assert get["image/jpeg"]["schema"]["format"] == "binary"
    csv = spec["paths"]["/api/v1/exports/changes.csv"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in csv


def test_the_codes_the_server_answers_are_the_documented_ones(client, spec, make_user, login):
    """A few real refusals, each matched against the document's codes for its status."""
    make_user("ani")
    headers = login("ani")
    cases = [
        ("get", "/api/v1/visits/unknown-visit", "/api/v1/visits/{uuid}", headers, None),
        ("get", "/api/v1/households?cursor=forged", "/api/v1/households", headers, None),
        ("get", "/api/v1/sync/pull?limit=501", "/api/v1/sync/pull", headers, None),
        ("get", "/api/v1/me", "/api/v1/me", {}, None),
        ("get", "/api/v1/users", "/api/v1/users", headers, None),
        ("post", "/api/v1/auth/token", "/api/v1/auth/token", {},
         {"username": "ani", "password": "wrong-wrong", "device_id": "d"}),
    ]
    for method, url, path, request_headers, body in cases:
        response = getattr(client, method)(url, headers=request_headers, json=body)
        assert response.status_code >= 400, url
        code = response.get_json()["error"]["code"]
        assert code in error_codes(spec, path, method, response.status_code), (url, code)


def test_rate_limited_logins_say_when_to_try_again(client, spec, make_user):
    make_user("ani")
    attempt = {"username": "ani", "password": "wrong-wrong", "device_id": "d"}
    for _ in range(5):
        client.post("/api/v1/auth/token", json=attempt)
    response = client.post("/api/v1/auth/token", json=attempt)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 0
    documented = spec["paths"]["/api/v1/auth/token"]["post"]["responses"]["429"]
    assert documented["headers"]["Retry-After"]["required"] is True
