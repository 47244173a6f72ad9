"""GET /api/v1/progress and /progress/escalated: numbers, levels, rounds and scoping."""

import datetime as dt

from sync.progress import escalate


def _by_code(body):
    return {a["code"]: a for a in body["areas"]}


def test_kecamatan_and_kelurahan_levels(client, db, field, make_user, login, add_conflicts):
    add_conflicts([("KLG-A1", "31.73.01.1001", "photo_reused", field.round_id),
                   ("KLG-A2", "31.73.01.1002", "photo_reused", None),
                   ("KLG-A2", "31.73.01.1002", "location_far", field.round_id)])
    make_user("root", role="admin")
    admin = login("root", device_id="root-laptop")
    r = client.get("/api/v1/progress", headers=admin)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["level"] == "kecamatan" and body["round"]["id"] == field.round_id
    kec = _by_code(body)
    cengkareng = kec["31.73.01"]
    assert cengkareng["name"] and cengkareng["priority"] is True
    assert (cengkareng["households"], cengkareng["assigned"], cengkareng["pending"]) == (2, 2, 2)
    assert cengkareng["conflicts_open"] == {"location_far": 1, "photo_reused": 2}
    assert cengkareng["conflicts_open_total"] == 3 and cengkareng["percent_done"] == 0.0
    assert kec["31.72.01"]["households"] == 1 and kec["31.72.01"]["assigned"] == 0
    assert body["totals"]["households"] == 3 and body["totals"]["conflicts_open_total"] == 3
    assert len(kec) > 10  # every kecamatan of Jakarta for an admin
    prio = client.get("/api/v1/progress?priority=1", headers=admin).get_json()
    assert len(prio["areas"]) == 10

    r = client.get("/api/v1/progress?level=kelurahan&parent=31.73.01", headers=admin)
    kel = _by_code(r.get_json())
    assert all(code.startswith("31.73.01.") for code in kel)
    assert kel["31.73.01.1001"]["households"] == 1
    assert kel["31.73.01.1002"]["conflicts_open"] == {"location_far": 1, "photo_reused": 1}

    # Work moves: the dashboard follows in the same request cycle.
    client.post("/api/v1/assignments", headers=field.headers["spv"], json={
        "round_id": field.round_id, "enumerator": "ani", "household_ids": ["KLG-A1"]})
    from sync import assignments as core
    from sync.db import write_transaction
    with write_transaction(db):
        core.set_status(db, field.round_id, "KLG-A1", "done")
    kel = _by_code(client.get("/api/v1/progress?level=kelurahan&parent=31.73.01",
                              headers=admin).get_json())
    assert kel["31.73.01.1001"]["done"] == 1 and kel["31.73.01.1001"]["percent_done"] == 100.0


def test_rounds_and_validation(client, field, make_user, login):
    make_user("root", role="admin")
    admin = login("root", device_id="root-laptop")
    other = client.post("/api/v1/rounds", headers=field.headers["spv"], json={
        "name": "Round old", "starts_on": "2025-01-01", "ends_on": "2025-02-01"}).get_json()["id"]
    kec = _by_code(client.get(f"/api/v1/progress?round_id={other}", headers=admin).get_json())
    assert kec["31.73.01"]["assigned"] == 0 and kec["31.73.01"]["households"] == 2
    assert client.get("/api/v1/progress?round_id=999", headers=admin).status_code == 404
    r = client.get("/api/v1/progress?level=kelurahan", headers=admin)
    assert r.status_code == 422 and "error" in r.get_json()
    assert client.get("/api/v1/progress?level=rt", headers=admin).status_code == 422


def test_scoping(client, field, make_user, login):
    make_user("utara", role="supervisor", areas=("31.72",))
    make_user("kamal", role="supervisor", areas=("31.73.01.1001",))
    r = client.get("/api/v1/progress", headers=field.headers["ani"])
    assert r.status_code == 403 and r.get_json()["error"]
    spv = _by_code(client.get("/api/v1/progress", headers=field.headers["spv"]).get_json())
    assert list(spv) == ["31.73.01"]
    utara = _by_code(client.get("/api/v1/progress", headers=login("utara", device_id="u"))
                     .get_json())
    assert "31.72.01" in utara and all(c.startswith("31.72.") for c in utara)
    assert utara["31.72.01"]["households"] == 1
    kamal = login("kamal", device_id="k")
    only = _by_code(client.get("/api/v1/progress", headers=kamal).get_json())
    # Holding one kelurahan: its kecamatan is listed, counted over that kelurahan only.
    assert list(only) == ["31.73.01"] and only["31.73.01"]["households"] == 1
    kel = _by_code(client.get("/api/v1/progress?level=kelurahan&parent=31.73.01",
                              headers=kamal).get_json())
    assert list(kel) == ["31.73.01.1001"]
    r = client.get("/api/v1/progress?level=kelurahan&parent=31.72.01", headers=kamal)
    assert r.status_code == 404


def test_escalated_list_for_admins(client, db, field, make_user, login, add_conflicts):
    from sqlalchemy import update

    from sync.models.conflict import Conflict

    add_conflicts([("KLG-A1", "31.73.01.1001", "invalid_identity", field.round_id)],
                  age_days=9)
    add_conflicts([("KLG-A2", "31.73.01.1002", "photo_reused", field.round_id)], age_days=1)
    db.execute(update(Conflict).where(Conflict.kind == "invalid_identity")
               .values(registry_value="3173014508850003", visit_value="Siti Aminah"))
    db.commit()
    assert escalate(db, dt.timedelta(days=7)) == 1
    db.commit()
    make_user("root", role="admin")
    admin = login("root", device_id="root-laptop")
    assert client.get("/api/v1/progress/escalated",
                      headers=field.headers["spv"]).status_code == 403
    items = client.get("/api/v1/progress/escalated", headers=admin).get_json()["items"]
    assert len(items) == 1
    item = items[0]
    assert item["kind"] == "invalid_identity" and item["age_days"] == 9
    assert item["registry_value"] == "317301********03" and item["visit_value"] == "S*** A*****"
    kec = _by_code(client.get("/api/v1/progress", headers=admin).get_json())
    assert kec["31.73.01"]["escalated"] == 1
    assert client.get("/api/v1/progress", headers=admin).get_json()["totals"]["escalated"] == 1
