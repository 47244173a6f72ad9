"""The queue and the detail: filters, keyset pages, counts, scope, masking, signed photo URLs."""

import time
from urllib.parse import parse_qs, urlparse

from tests.review.conftest import NIK, body

NAME_PATH = f"anggota[NIK={NIK}].nama"


def scenario(rv):
    visit = rv.pushed()
    ids = rv.under_review(visit["uuid"], [
        {"field": "rumah.lantai", "registry_value": 6, "visit_value": 2, "base_value": 6},
        {"field": NAME_PATH, "registry_value": "Siti Aminah", "visit_value": "Siti Aminah Putri"},
        {"kind": "photo_reused", "severity": "hard", "detail": {"household_ids": ["KLG-A2"]}},
    ], proposed={"rumah.lantai": 2, NAME_PATH: "Siti Aminah Putri", "rt": "004"})
    return visit, ids


def test_the_list_filters_counts_and_masks(rv, client):
    visit, ids = scenario(rv)
    spv = rv.headers["spv"]
    page = body(client.get("/api/v1/conflicts", headers=spv))
    assert [c["id"] for c in page["items"]] == sorted(ids, reverse=True)
    assert page["counts"] == {"field_mismatch": 2, "photo_reused": 1}
    assert page["next_cursor"] is None
    first = page["items"][-1]
    for key in ("id", "household_id", "visit_uuid", "kind", "severity", "field",
                "registry_value", "visit_value", "base_value", "status", "resolution",
                "created_at", "kecamatan", "kelurahan"):
        assert key in first
    named = next(c for c in page["items"] if c["id"] == ids[1])
    assert NIK not in named["field"] and named["field"].startswith("anggota[NIK=317301")
    assert named["registry_value"] == "S*** A*****"
    assert "Siti" not in str(page)
    kind = body(client.get("/api/v1/conflicts?kind=photo_reused", headers=spv))
    assert [c["id"] for c in kind["items"]] == [ids[2]]
    assert kind["counts"] == page["counts"]  # counts ignore the kind filter
    for query in ("kelurahan=31.73.01.1001", "kecamatan=31.73.01", "household_id=KLG-A1",
                  f"visit_uuid={visit['uuid']}"):
        assert len(body(client.get(f"/api/v1/conflicts?{query}", headers=spv))["items"]) == 3
    for query in ("kelurahan=31.73.01.1002", "household_id=KLG-A2", "status=resolved"):
        assert body(client.get(f"/api/v1/conflicts?{query}", headers=spv))["items"] == []
    oldest = body(client.get("/api/v1/conflicts?sort=oldest", headers=spv))
    assert [c["id"] for c in oldest["items"]] == sorted(ids)
    severity = body(client.get("/api/v1/conflicts?sort=severity", headers=spv))
    assert [c["id"] for c in severity["items"]] == [ids[2], ids[1], ids[0]]


def test_keyset_pages_cover_every_row_once_in_each_sort(rv, client):
    visit = rv.pushed()
    specs = [{"field": f"f{i}", "severity": ("hard", "soft", "info")[i % 3]} for i in range(11)]
    ids = rv.under_review(visit["uuid"], specs)
    for sort in ("newest", "oldest", "severity"):
        seen, cursor = [], None
        while True:
            url = f"/api/v1/conflicts?limit=4&sort={sort}" + (f"&cursor={cursor}" if cursor
                                                              else "")
            page = body(client.get(url, headers=rv.headers["spv"]))
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen)), sort
    bad = client.get("/api/v1/conflicts?cursor=forged", headers=rv.headers["spv"])
    assert bad.status_code == 400 and body(bad)["error"]["code"] == "invalid_cursor"
    too_many = client.get("/api/v1/conflicts?limit=501", headers=rv.headers["spv"])
    assert too_many.status_code == 422
    assert set(body(too_many)["error"]) == {"code", "message", "details"}


def test_scope_enumerators_and_other_areas(rv, client):
    _visit, ids = scenario(rv)
    other = rv.headers["spv-utara"]
    assert body(client.get("/api/v1/conflicts", headers=other))["items"] == []
    assert body(client.get("/api/v1/conflicts", headers=other))["counts"] == {}
    missing = client.get(f"/api/v1/conflicts/{ids[0]}", headers=other)
    assert missing.status_code == 404 and body(missing)["error"]["code"] == "not_found"
    for path in ("/api/v1/conflicts", f"/api/v1/conflicts/{ids[0]}"):
        refused = client.get(path, headers=rv.headers["ani"])
        assert refused.status_code == 403 and body(refused)["error"]["code"] == "forbidden"
    assert client.get("/api/v1/conflicts").status_code == 401
    admin = body(client.get("/api/v1/conflicts", headers=rv.headers["admin"]))
    assert len(admin["items"]) == 3


def test_the_detail_is_whole_with_photos_history_and_map(rv, client, db):
    visit, ids = scenario(rv)
    detail = body(client.get(f"/api/v1/conflicts/{ids[1]}", headers=rv.headers["spv"]))
    assert detail["field"] == NAME_PATH and detail["registry_value"] == "Siti Aminah"
    assert detail["visit_value"] == "Siti Aminah Putri"
    assert detail["visit"]["uuid"] == visit["uuid"] and detail["visit"]["enumerator"] == "ani"
    assert detail["visit"]["open_conflicts"] == 3
    assert [e["layer"] for e in detail["history"]][:2] == ["registry", "verified"]
    svg = detail["map_svg"]
    assert svg.startswith("<svg") and "<path" in svg and "titik-kunjungan" in svg
    assert "titik-terdaftar" in svg and "akurasi" in svg and "http://" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert len(detail["photos"]) == len(visit["photos"]) >= 1
    photo = detail["photos"][0]
    thumb = client.get(photo["thumb_url"])  # no bearer token: the URL is the permission
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert thumb.data[:2] == b"\xff\xd8"
    full = client.get(photo["url"])
    assert full.status_code == 200 and full.data[:2] == b"\xff\xd8"
    assert photo["sha256"] in photo["thumb_url"]


def test_signed_urls_refuse_tampering_and_expiry(rv, client, app):
    from server.services.media import signed_url

    _visit, ids = scenario(rv)
    photo = body(client.get(f"/api/v1/conflicts/{ids[0]}", headers=rv.headers["spv"]))[
        "photos"][0]
    url = urlparse(photo["thumb_url"])
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert int(q["exp"]) > time.time()

    def get(path=url.path, **over):
        query = "&".join(f"{k}={v}" for k, v in {**q, **over}.items())
        return client.get(f"{path}?{query}")

    assert get().status_code == 200
    tampered = get(sig=("0" if q["sig"][0] != "0" else "1") + q["sig"][1:])
    assert tampered.status_code == 403
    assert body(tampered)["error"]["code"] == "invalid_signature"
    assert get(exp=int(q["exp"]) + 3600).status_code == 403  # a later expiry is not signed
    assert get(size="full").status_code == 403  # the size is signed too
    other = get(path="/api/v1/media/" + "a" * 64)
    assert other.status_code == 403
    expired = signed_url(photo["sha256"], "thumb", ttl=-1)
    refused = client.get(expired)
    assert refused.status_code == 403 and body(refused)["error"]["code"] == "link_expired"
    assert get(sig="").status_code in (403, 422)
    missing = signed_url("b" * 64, "thumb")
    assert client.get(missing).status_code == 404


def test_the_visit_detail_lists_its_conflicts(rv, client):
    visit, ids = scenario(rv)
    spv = body(client.get(f"/api/v1/visits/{visit['uuid']}", headers=rv.headers["spv"]))
    assert [c["id"] for c in spv["conflicts"]] == ids
    assert spv["conflicts"][1]["registry_value"] == "Siti Aminah"
    own = body(client.get(f"/api/v1/visits/{visit['uuid']}", headers=rv.headers["ani"]))
    assert own["conflicts"][1]["registry_value"] == "S*** A*****"
    # the enumerator never learns which integrity check fired
    assert "photo_reused" in {c["kind"] for c in spv["conflicts"]}
    assert "photo_reused" not in {c["kind"] for c in own["conflicts"]}


def test_masking_reaches_into_members_and_paths():
    from server.services.conflicts import mask_path, mask_value

    member = {"nik": NIK, "nama": "Siti Aminah", "tanggal_lahir": "1985-08-05",
              "hubungan": 1}
    masked = mask_value(member, f"anggota[NIK={NIK}]")
    assert masked == {"nik": "317301********03", "nama": "S*** A*****",
                      "tanggal_lahir": "1985-08-05", "hubungan": 1}
    assert mask_value(NIK, f"anggota[NIK={NIK}].nik") == "317301********03"
    assert mask_value("3173011203150005", "no_kk") == "317301********05"
    assert mask_value([{"nama": "Budi"}]) == [{"nama": "B***"}]
    assert mask_value(6, "rumah.lantai") == 6 and mask_value("Jl. Kamal", "alamat") == "Jl. Kamal"
    assert mask_path(f"anggota[NIK={NIK}].nama") == "anggota[NIK=317301********03].nama"
    assert mask_path(None) is None


def test_the_review_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/v1/conflicts", "/api/v1/conflicts/{conflict_id}",
                 "/api/v1/conflicts/{conflict_id}/resolve",
                 "/api/v1/conflicts/{conflict_id}/reopen",
                 "/api/v1/conflicts/resolve", "/api/v1/visits/{uuid}/review",
                 "/api/v1/media/{sha256}", "/api/v1/exports/changes.csv",
                 "/api/v1/exports/outcomes.csv"):
        assert path in paths


def test_counts_from_the_progress_counters_equal_a_group_by(rv, client, db):
    from server.models import User
    from server.services.conflicts import _counts, group_counts

    _visit, ids = scenario(rv)
    other = rv.pushed("KLG-A2", who="budi")
    rv.under_review(other["uuid"], [{"kind": "location_far"}, {"kind": "photo_reused"}])
    client.post(f"/api/v1/conflicts/{ids[0]}/resolve", headers=rv.headers["spv"],
                json={"decision": "keep_registry"})
    db.expire_all()
    spv = db.query(User).filter_by(username="spv").one()
    for area in ({"kelurahan": "31.73.01.1001"}, {"kelurahan": "31.73.01.1002"},
                 {"kecamatan": "31.73.01"}, {"kecamatan": "31.73.01",
                                             "kelurahan": "31.73.01.1001"}):
        args = (area.get("kecamatan"), area.get("kelurahan"), None, None)
        fast = _counts(db, spv, "open", *args)
        assert fast == group_counts(db, spv, "open", *args), area
        assert fast
    assert _counts(db, spv, "open", "31.73.01", None, None, None) == {
        "field_mismatch": 1, "location_far": 1, "photo_reused": 2}
    page = body(client.get("/api/v1/conflicts?kecamatan=31.73.01", headers=rv.headers["spv"]))
    assert page["counts"] == {"field_mismatch": 1, "location_far": 1, "photo_reused": 2}
