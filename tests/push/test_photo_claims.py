"""A photos[] entry's taken_at and location (issue 15: the field app re-encodes photos, which
drops their EXIF): stored per visit photo, a bad one refuses its visit alone, documented."""

import datetime as dt

from sqlalchemy import select

from sync.models.visit import VisitPhoto
from tests.push.test_push import results

CLAIM = {"taken_at": "2026-02-03T09:05:00+07:00",
         "location": {"lat": -6.1402, "lon": 106.7361, "accuracy_m": 12.5}}


def rows(db, uuid):
    db.expire_all()
    return {p.field: p for p in db.scalars(select(VisitPhoto).where(
        VisitPhoto.visit_uuid == uuid))}


def test_the_claims_are_stored_with_each_visit_photo(field, db):
    visit, _ = field.visit()
    visit["photos"][0].update(CLAIM)
    [result] = results(field.push([visit]))
    assert result["status"] == "waiting_photos"
    stored = rows(db, visit["uuid"])
    first = stored[visit["photos"][0]["field"]]
    assert first.taken_at == dt.datetime(2026, 2, 3, 2, 5, tzinfo=dt.UTC)
    assert first.taken_at_device == "2026-02-03T09:05:00+07:00"
    assert (first.lat, first.lon, first.accuracy_m) == (-6.1402, 106.7361, 12.5)
    others = [p for f, p in stored.items() if f != visit["photos"][0]["field"]]
    assert others and all(p.taken_at is None and p.lat is None for p in others)
    # Resending the same visit is a duplicate; the claims are part of its content.
    assert results(field.push([visit]))[0]["status"] == "duplicate"
    changed = dict(visit, photos=[dict(visit["photos"][0], taken_at="2026-02-03T09:06:00Z"),
                                  *visit["photos"][1:]])
    assert results(field.push([changed]))[0]["status"] == "uuid_reused"


def test_the_same_bytes_keep_each_visits_own_claims(field, db):
    one, _ = field.visit()
    two, _ = field.visit()
    two["photos"][0]["sha256"] = one["photos"][0]["sha256"]
    two["answers"][two["photos"][0]["field"]] = one["photos"][0]["sha256"]
    one["photos"][0].update(CLAIM)
    two["photos"][0].update(taken_at="2026-02-01T08:00:00Z",
                            location={"lat": -6.2, "lon": 106.8})
    assert [r["status"] for r in results(field.push([one, two]))] == ["waiting_photos"] * 2
    a = rows(db, one["uuid"])[one["photos"][0]["field"]]
    b = rows(db, two["uuid"])[two["photos"][0]["field"]]
    assert a.sha256 == b.sha256
    assert a.lat == -6.1402 and (b.lat, b.lon, b.accuracy_m) == (-6.2, 106.8, None)
    assert b.taken_at == dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)


BAD = [
    ({"taken_at": "2026-02-03T09:05:00"}, "photos[0].taken_at", "format"),  # no offset
    ({"taken_at": "2026-02-03 09:05:00+07:00"}, "photos[0].taken_at", "format"),
    ({"taken_at": "2026-02-03T09:05+07:00"}, "photos[0].taken_at", "format"),  # no seconds
    ({"taken_at": "2026-02-30T09:05:00+07:00"}, "photos[0].taken_at", "format"),
    ({"taken_at": "9999-12-31T23:00:00-14:00"}, "photos[0].taken_at", "format"),
    ({"taken_at": 1770084300}, "photos[0].taken_at", "format"),
    ({"location": "-6.14,106.73"}, "photos[0].location", "type"),
    ({"location": {"lat": 91, "lon": 106.7}}, "photos[0].location.lat", "out_of_range"),
    ({"location": {"lat": -6.1, "lon": -180.5}}, "photos[0].location.lon", "out_of_range"),
    ({"location": {"lat": -6.1, "lon": "106.7"}}, "photos[0].location.lon", "type"),
    ({"location": {"lat": -6.1, "lon": True}}, "photos[0].location.lon", "type"),
    ({"location": {"lat": -6.1}}, "photos[0].location.lon", "required"),
    ({"location": {"lat": -6.1, "lon": 106.7, "accuracy_m": -1}},
     "photos[0].location.accuracy_m", "out_of_range"),
]


def test_bad_claims_refuse_their_visit_alone(field, db):
    good, _ = field.visit()
    good["photos"][0].update(CLAIM)
    bad = []
    for claim, _path, _code in BAD:
        v, _ = field.visit()
        v["photos"][0].update(claim)
        bad.append(v)
    answered = results(field.push([bad[0], good, *bad[1:]]))
    assert answered[1]["status"] == "waiting_photos"
    refused = [answered[0], *answered[2:]]
    for (claim, path, code), result in zip(BAD, refused, strict=True):
        assert result["status"] == "rejected", claim
        assert [(e["path"], e["code"]) for e in result["errors"]] == [(path, code)], claim
        assert result["errors"][0]["message"]
    assert rows(db, good["uuid"])
    assert all(not rows(db, v["uuid"]) for v in bad)
    # Corrected, the same uuid is accepted.
    bad[0]["photos"][0]["taken_at"] = "2026-02-03T09:05:00+07:00"
    assert results(field.push([bad[0]]))[0]["status"] == "waiting_photos"


def test_nulls_and_other_keys_are_no_claim(field, db):
    visit, _ = field.visit()
    visit["photos"][0].update(taken_at=None, location=None, orientation=6)
    visit["photos"][1].update(location={"lat": -6.1, "lon": 106.7, "accuracy_m": None,
                                        "altitude": 12})
    assert results(field.push([visit]))[0]["status"] == "waiting_photos"
    stored = rows(db, visit["uuid"])
    assert stored[visit["photos"][0]["field"]].taken_at is None
    second = stored[visit["photos"][1]["field"]]
    assert (second.lat, second.lon, second.accuracy_m) == (-6.1, 106.7, None)


def test_the_openapi_document_describes_the_entry_fields(client):
    spec = client.get("/api/openapi.json").get_json()
    visit = spec["components"]["schemas"]["PushVisit"]["properties"]
    text = visit["photos"]["description"]
    assert "taken_at" in text and "location" in text and "EXIF" in text
