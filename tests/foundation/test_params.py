"""Values that pass a schema but not the database driver get 4xx, never 500 (server/params.py)."""

import pytest

from tests.foundation.test_errors import envelope


@pytest.fixture
def admin(make_user, login):
    make_user("root", role="admin")
    return login("root")


def test_media_signature_that_is_not_ascii_is_403(client):
    """hmac.compare_digest raised TypeError on a non-ASCII str: a 500 before the fix."""
    response = client.get(f"/api/v1/media/{'0' * 64}?exp=1&sig=%C3%A9%E2%98%83")
    envelope(response, 403, "invalid_signature")


def test_integer_beyond_64_bits_in_query_is_422(client, admin):
    """SQLite raised OverflowError binding it."""
    response = client.get(f"/api/v1/assignments?round_id={2**63}", headers=admin)
    error = envelope(response, 422, "validation_failed")
    assert [(e["path"], e["location"]) for e in error["details"]["errors"]] == [
        ("round_id", "query")]


def test_integer_beyond_64_bits_in_path_matches_no_route(client, admin):
    envelope(client.get(f"/api/v1/conflicts/{2**63}", headers=admin), 404, "not_found")


@pytest.mark.parametrize("url", ["/api/v1/households/a%00b", "/api/v1/households?q=a%00b"])
def test_nul_in_url_is_400(client, admin, url):
    """PostgreSQL text cannot hold a NUL: the driver raised DataError."""
    envelope(client.get(url, headers=admin), 400, "invalid_characters")


def test_nul_in_a_page_form_field_is_400(client):
    """The review pages' login looked the name up: DataError on PostgreSQL."""
    response = client.post("/review/masuk", data={"username": "a\x00b", "password": "x"})
    assert response.status_code == 400


def test_nul_in_json_body_is_422(client, make_user, login):
    make_user("sup", role="supervisor")
    response = client.post("/api/v1/rounds", headers=login("sup"), json={
        "name": "Round\x00 one", "starts_on": "2026-01-01", "ends_on": "2026-02-01"})
    error = envelope(response, 422, "validation_failed")
    assert [e["path"] for e in error["details"]["errors"]] == ["name"]


def test_date_time_that_overflows_in_utc_is_422(client, admin):
    """The CSV export's query failed converting it to UTC, mid-stream."""
    response = client.get("/api/v1/exports/changes.csv?since=9999-12-31T23:59:59-14:00",
                          headers=admin)
    error = envelope(response, 422, "validation_failed")
    assert [e["path"] for e in error["details"]["errors"]] == ["since"]


def test_check_storable_names_every_bad_value():
    from marshmallow import ValidationError

    from server.params import HAS_NUL, OUT_OF_RANGE, check_storable

    check_storable({"ids": [1, 2**63 - 1, -(2**63)], "flag": True, "name": "ok"})
    with pytest.raises(ValidationError) as caught:
        check_storable({"ids": [1, 2**63], "value": {"a\x00": "b", "c": "d\x00"}})
    assert caught.value.messages == {"ids": {1: [OUT_OF_RANGE]},
                                     "value": {"a\x00": [HAS_NUL], "c": [HAS_NUL]}}


@pytest.mark.parametrize("position", [
    {"u": 1}, {"u": 1, "s": "x", "e": 1}, {"u": 1, "s": 2**70, "e": 1}, [1, 2], "1", None,
    {"u": 1, "s": True, "e": 1}])
def test_pull_cursor_of_another_shape_is_400(client, make_user, login, position):
    """A cursor that verifies but holds another shape (another release's) raised KeyError."""
    from server.pagination import _serializer

    make_user("ani")
    headers = login("ani")
    position = {**position, "u": 1} if isinstance(position, dict) else position
    cursor = _serializer("pull").dumps(position)
    envelope(client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=headers), 400,
             "invalid_cursor")


@pytest.mark.parametrize("cursor", ["eyJhIjoxfQ", "eyJhIjoxfQ.abc", ".", "é☃", "x" * 1000])
def test_cursor_that_does_not_verify_is_refused(client, admin, cursor):
    """400, or 422 when the schema's pattern or length refuses it first."""
    response = client.get("/api/v1/households", headers=admin, query_string={"cursor": cursor})
    if response.status_code == 422:
        envelope(response, 422, "validation_failed")
    else:
        envelope(response, 400, "invalid_cursor")


def test_cursor_of_one_kind_is_refused_by_another(client, app, admin):
    from server.pagination import encode_cursor

    with app.test_request_context():
        cursor = encode_cursor("assignments", 5)
    response = client.get("/api/v1/households", headers=admin, query_string={"cursor": cursor})
    envelope(response, 400, "invalid_cursor")


def test_encoding_a_cursor_checks_its_shape(app):
    from server.pagination import decode_cursor, encode_cursor

    with app.test_request_context():
        assert decode_cursor("conflicts.severity", encode_cursor("conflicts.severity", [0, 7])) \
            == [0, 7]
        with pytest.raises(ValueError):
            encode_cursor("pull", {"u": 1, "s": 2})


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("body", [
    DEEP, '{"a":' * 100_000 + "1" + "}" * 100_000, '{"x": ' + "[" * 65 + "]" * 65 + "}",
    '{"name": NaN}', '{"name": 1e999}', '{"name": "abc\\ud800"}', '{"\\udc00": 1}'])
@pytest.mark.parametrize("url", ["/api/v1/rounds", "/api/v1/sync/push", "/api/v1/auth/token"])
def test_json_that_cannot_be_handled_is_400(client, make_user, login, url, body):
    """Deep nesting raised RecursionError; NaN, overflowing numbers and lone surrogates got
    through to the database (or to the UTF-8 encoding of the push's content hash)."""
    make_user("sup", role="supervisor")
    make_user("ani")
    headers = login("ani" if "push" in url else "sup")
    response = client.post(url, data=body, headers={**headers,
                                                    "Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] in ("bad_request", "bad_batch")


def test_loads_strict_keeps_what_json_allows():
    from server.jsonutil import loads_strict

    text = '{"a": [[["\\ud83d\\ude00 ok"]]], "b": 1.5e300, "c": -0.0, "d": "\\\\ud800"}'
    assert loads_strict(text.encode()) == {"a": [[["😀 ok"]]], "b": 1.5e300, "c": -0.0,
                                           "d": "\\ud800"}
    assert loads_strict("[" * 64 + "]" * 64) is not None
