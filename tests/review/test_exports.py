"""CSV exports: content, scope, injection safety, streaming."""

import csv
import datetime as dt
import io

from server.services.exports import safe_cell
from tests.review.conftest import body
from tests.review.test_conflicts import scenario
from tests.review.test_decisions import resolve, review


def rows(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_changes_csv_lists_verified_changes_not_the_import(rv, client):
    visit, ids = scenario(rv)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    resolve(client, rv.headers["spv"], ids[0], "accept_visit", note="=cmd|' /C calc'!A0")
    resolve(client, rv.headers["spv"], ids[2], "keep_registry")  # changes no field: no row
    response = client.get("/api/v1/exports/changes.csv", headers=rv.headers["admin"])
    assert response.is_streamed
    assert response.headers["Content-Disposition"].endswith('filename="changes.csv"')
    [row] = rows(response)
    assert row["household_id"] == "KLG-A1" and row["field"] == "rumah.lantai"
    assert (row["old"], row["new"], row["source"]) == ("6", "2", "review")
    assert row["kecamatan"] == "31.73.01" and row["kelurahan"] == "31.73.01.1001"
    assert row["visit_uuid"] == visit["uuid"] and row["decided_by"] == "spv"
    assert row["note"].startswith("'=")  # a formula is never a formula in a spreadsheet
    assert dt.datetime.fromisoformat(row["decided_at"]) >= start
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    assert rows(client.get(f"/api/v1/exports/changes.csv?since={later}",
                           headers=rv.headers["admin"])) == []
    since = start.strftime("%Y-%m-%dT%H:%M:%S")
    assert len(rows(client.get(f"/api/v1/exports/changes.csv?since={since}",
                               headers=rv.headers["spv"]))) == 1
    assert rows(client.get("/api/v1/exports/changes.csv", headers=rv.headers["spv-utara"])) == []
    outside = client.get("/api/v1/exports/changes.csv?kecamatan=31.73.01",
                         headers=rv.headers["spv-utara"])
    assert outside.status_code == 403 and body(outside)["error"]["code"] == "forbidden"
    assert client.get("/api/v1/exports/changes.csv",
                      headers=rv.headers["ani"]).status_code == 403


def test_outcomes_csv_counts_conflicts_by_severity(rv, client):
    visit, _ids = scenario(rv)
    other = rv.pushed("KLG-A2", who="budi")
    review(client, rv.headers["spv"], other["uuid"], "return", note="ulang")  # queued: 409
    response = client.get(f"/api/v1/exports/outcomes.csv?kecamatan=31.73.01"
                          f"&round_id={rv.round_id}", headers=rv.headers["spv"])
    assert response.is_streamed
    by_uuid = {r["visit_uuid"]: r for r in rows(response)}
    assert set(by_uuid) == {visit["uuid"], other["uuid"]}
    mine = by_uuid[visit["uuid"]]
    assert (mine["conflicts_hard"], mine["conflicts_soft"], mine["conflicts_info"],
            mine["conflicts_open"]) == ("1", "2", "0", "3")
    assert mine["status"] == "needs_review" and mine["enumerator"] == "ani"
    assert mine["household_id"] == "KLG-A1" and mine["started_at"]
    assert by_uuid[other["uuid"]]["conflicts_hard"] == "0"
    one = rows(client.get("/api/v1/exports/outcomes.csv?kelurahan=31.73.01.1002",
                          headers=rv.headers["admin"]))
    assert [r["visit_uuid"] for r in one] == [other["uuid"]]
    assert rows(client.get("/api/v1/exports/outcomes.csv",
                           headers=rv.headers["spv-utara"])) == []
    assert client.get("/api/v1/exports/outcomes.csv?kelurahan=31.73.01.1001",
                      headers=rv.headers["spv-utara"]).status_code == 403


def test_large_exports_stream_in_chunks(rv, client, db, monkeypatch):
    from server.services import exports

    monkeypatch.setattr(exports, "CHUNK", 2)
    visit = rv.pushed()
    specs = [{"field": "alamat", "visit_value": f"Jl. Baru {i}"} for i in range(5)]
    for cid in rv.under_review(visit["uuid"], specs):
        resolve(client, rv.headers["spv"], cid, "accept_visit")
    response = client.get("/api/v1/exports/changes.csv", headers=rv.headers["admin"])
    chunks = list(response.response)
    assert len(chunks) >= 3  # header and rows went out a chunk at a time
    text = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks).decode()
    assert len(list(csv.DictReader(io.StringIO(text)))) == 5


def test_safe_cell():
    assert safe_cell("=1+2") == "'=1+2"
    assert safe_cell("+62812") == "'+62812"
    assert safe_cell("-5") == "'-5" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("\t=x") == "'\t=x"
    assert safe_cell("Jl. Kamal") == "Jl. Kamal" and safe_cell(None) == ""
    assert safe_cell({"nik": "1"}) == '{"nik":"1"}' and safe_cell(True) == "true"
    assert safe_cell(-3) == "'-3"
