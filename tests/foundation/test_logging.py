"""One JSON line per request, and no NIK, KK number, name, token or password in any line."""

import json
import logging

from server.logging import JsonFormatter, mask_identifiers

NIK = "3173014508850003"


def lines(caplog):
    formatter = JsonFormatter()
    return [formatter.format(r) for r in caplog.records]


def test_each_request_is_one_json_line(client, make_user, login, caplog):
    make_user("ani")
    headers = login("ani")
    caplog.clear()
    caplog.set_level(logging.INFO, logger="tapak")
    response = client.get("/api/v1/me", headers={**headers, "X-Request-ID": "req-42"})
    assert response.headers["X-Request-ID"] == "req-42"
    records = [json.loads(line) for line in lines(caplog)]
    requests = [r for r in records if r["logger"] == "tapak.request"]
    assert len(requests) == 1
    entry = requests[0]
    assert entry["request_id"] == "req-42" and entry["method"] == "GET"
    assert entry["path"] == "/api/v1/me" and entry["status"] == 200
    assert entry["user_id"] is not None and entry["duration_ms"] >= 0


def test_no_log_line_of_a_request_carrying_a_nik_contains_it(client, make_user, login, caplog):
    make_user("ani", password="pass-" + NIK)
    caplog.set_level(logging.DEBUG)
    headers = login("ani", password="pass-" + NIK, device_id=NIK)
    token = headers["Authorization"].split()[1]
    client.get(f"/api/v1/areas?q={NIK}&nama=Siti+Aminah", headers=headers)
    client.get(f"/api/v1/users/{NIK}", headers=headers)
    client.post("/api/v1/auth/token", json={"username": NIK, "password": "Siti Aminah",
                                            "device_id": NIK})
    client.post("/api/v1/users", json={"nik": NIK, "nama": "Siti Aminah"}, headers=headers)
    text = "\n".join(lines(caplog))
    assert "tapak.request" in text
    for secret in (NIK, "Siti Aminah", "Siti+Aminah", token, "pass-"):
        assert secret not in text


def test_sixteen_digit_runs_are_masked():
    assert mask_identifiers(f"nik={NIK} kk=3173011203150005 rt=003 id=12345678901234567") == (
        "nik=**************** kk=**************** rt=003 id=12345678901234567")
