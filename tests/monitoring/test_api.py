"""GET /api/v1/monitoring and its CSV: the shape, the bounds, disclosure control."""

from __future__ import annotations

import csv
import datetime as dt
import io

from server.services import monitoring as service
from sync import monitoring as sync_monitoring


def test_the_body_and_its_bounds(demo, client, token):
    headers = token("pemantau-bappeda")
    body = client.get("/api/v1/monitoring?weekly=areas", headers=headers).get_json()
    assert body["level"] == "kecamatan" and body["round"]["id"]
    assert body["min_count"] == 5 and body["min_verified_for_rates"] == 20
    assert dt.datetime.fromisoformat(body["computed_at"])
    assert len(body["areas"]) == 10
    for area in (*body["areas"], body["totals"]):
        assert set(area["targeting_errors"]) == set(service.ERROR_KINDS)
        assert set(area["eligibility_changes"]) == {"pkh", "bpnt", "pbi_jk"}
        assert set(area["members"]) == {"died", "moved", "added"}
        assert area["weekly"] and area["weekly"][0]["week"].startswith("20")
        for value in _counts(area):
            assert value == "< 5" or (isinstance(value, int) and value >= 5), value
    kel = client.get("/api/v1/monitoring?level=kelurahan&parent=31.73.01",
                     headers=headers).get_json()
    assert [a["code"][:8] for a in kel["areas"]] == ["31.73.01"] * 6
    # by default only the totals carry the weekly series, the same as the areas' summed
    assert all("weekly" not in a for a in kel["areas"]) and kel["totals"]["weekly"]
    plain = client.get("/api/v1/monitoring", headers=headers).get_json()
    assert plain["totals"]["weekly"] == body["totals"]["weekly"]
    bad = client.get("/api/v1/monitoring?level=kelurahan", headers=headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "validation_failed"
    assert client.get("/api/v1/monitoring?round_id=999", headers=headers).status_code == 404
    outside = client.get("/api/v1/monitoring?level=kelurahan&parent=31.71.01", headers=headers)
    assert outside.status_code == 404
    assert client.get("/api/v1/monitoring").status_code == 401


def _counts(area):
    yield from (area[k] for k in ("households", "visited", "verified", "returned"))
    for e in area["targeting_errors"].values():
        yield from (e["flagged"], e["upheld"])
    for p in area["eligibility_changes"].values():
        yield from (p["gains"], p["losses"])
    yield from area["members"].values()
    for w in area["weekly"]:
        yield from (w["visited"], w["verified"], w["returned"], w["flagged"])


def test_a_supervisor_sees_their_kecamatan_only(demo, client, token):
    body = client.get("/api/v1/monitoring", headers=token("spv-cengkareng")).get_json()
    assert [a["code"] for a in body["areas"]] == ["31.73.01"]


def test_the_csv(demo, client, token):
    response = client.get("/api/v1/exports/monitoring.csv?level=kelurahan&parent=31.73.01",
                          headers=token("pemantau-bappeda"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["code"] for r in rows][-1] == "total" and len(rows) == 7
    assert list(rows[0]) == service.CSV_COLUMNS
    for row in rows:
        assert row["visited"] == "< 5" or int(row["visited"]) >= 5
        if row["inclusion_errors_flagged"] == "< 5":
            assert row["inclusion_errors_flagged_per_1000"] == ""


def test_suppression_and_rates():
    assert [service.count(n) for n in (0, 4, 5, 120)] == ["< 5", "< 5", 5, 120]
    assert service.rate(7, 19) is None          # fewer than 20 verified
    assert service.rate(4, 500) is None         # the count is suppressed
    assert service.rate(7, 20) == 350.0
    assert service.rate(5, 3000) == 1.7


def test_eligibility_uses_the_rule(monkeypatch):
    doc = {"id_keluarga": "K1", "aset": {"mobil": False}, "rumah": {"air_minum": 3},
           "anggota": [{"nik": "3173014508850003", "pekerjaan": 4}], "program": {}}
    assert service.eligible(doc, 4) == {"pkh": True, "bpnt": True, "pbi_jk": True}
    assert service.eligible(doc, 5) == {"pkh": False, "bpnt": True, "pbi_jk": True}
    assert service.eligible(doc, 6) == {"pkh": False, "bpnt": False, "pbi_jk": False}
    assert service.eligible(doc, None) == {"pkh": False, "bpnt": False, "pbi_jk": False}
    for change in ({"aset": {"mobil": True}}, {"rumah": {"air_minum": 1}},
                   {"rumah": {"njop_di_atas_1m": True}},
                   {"anggota": [{"nik": "3173014508850003", "pekerjaan": 5}]}):
        assert service.eligible({**doc, **change}, 2) == {"pkh": False, "bpnt": False,
                                                           "pbi_jk": False}, change
    # a changed threshold in the rules' config changes eligibility: nothing is copied
    import dataclasses

    from sync.reconcile import config

    monkeypatch.setattr(sync_monitoring, "RULES_CONFIG",
                        dataclasses.replace(config.DEFAULT, pkh_max_desil=5))
    assert service.eligible(doc, 5)["pkh"] is True


def test_iso_weeks_are_jakartas():
    # Sunday 23:30 UTC is Monday 06:30 WIB: the next ISO week
    assert service.iso_week(dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)) == "2026-W49"
    assert service.iso_week(dt.datetime(2026, 11, 29, 16, 0, tzinfo=dt.UTC)) == "2026-W48"
    assert service.week_monday("2026-W49") == dt.date(2026, 11, 30)


def test_the_weekly_series_is_bounded():
    class R:  # a round as odd as the fuzzer makes them
        starts_on, ends_on = dt.date(227, 1, 19), dt.date(2026, 2, 16)

    weeks = service.round_weeks(R, ["9999-W52", "0001-W01"], today=dt.date(2026, 12, 5))
    assert len(weeks) == service.MAX_WEEKS and weeks[-1] == "2026-W08"
    assert service.iso_week(dt.date(227, 1, 19)) == "0227-W03"
    assert service.iso_week(dt.datetime(9999, 12, 31, 23, tzinfo=dt.UTC)) == "9999-W52"

    class Later:
        starts_on, ends_on = dt.date(2030, 1, 1), dt.date(2030, 2, 1)

    assert service.round_weeks(Later, [], today=dt.date(2026, 12, 5)) == []
