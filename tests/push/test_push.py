"""POST /sync/push and the photos endpoints, through the Flask client."""

import json

from sqlalchemy import func, select

from sync.models.visit import SyncBatch, Visit
from sync.queue import claim
from tests.push.conftest import jpeg, sha


def results(response):
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def test_a_visit_with_its_photos_uploaded_first_is_accepted_and_queued(field, db):
    visit, images = field.visit()
    for data in images.values():
        assert field.upload(data).status_code == 201
    [result] = results(field.push([visit]))
    assert result == {"uuid": visit["uuid"], "status": "accepted", "errors": [],
                      "missing_photos": []}
    stored = db.get(Visit, visit["uuid"])
    assert stored.status == "queued" and stored.household_id == "KLG-A1"
    assert json.loads(stored.raw) == visit
    assert stored.started_at.isoformat() == "2026-02-03T02:00:00+00:00"
    assert stored.started_at_device == "2026-02-03T09:00:00+07:00"
    assert stored.received_at is not None


def test_waiting_photos_until_the_last_one_arrives(field, db):
    visit, images = field.visit()
    [result] = results(field.push([visit]))
    assert result["status"] == "waiting_photos"
    assert result["missing_photos"] == sorted(sha(d) for d in images.values())
    uploads = list(images.values())
    for data in uploads[:-1]:
        field.upload(data)
        assert db.get(Visit, visit["uuid"]).status == "waiting_photos"
        db.expire_all()
    last = field.upload(uploads[-1])
    assert last.get_json()["queued_visits"] == [visit["uuid"]]
    db.expire_all()
    assert db.get(Visit, visit["uuid"]).status == "queued"


def test_duplicates_reuse_rejections_and_neighbours(field, db):
    good, _ = field.visit()
    bad, _ = field.visit()
    bad["answers"]["anggota"][0]["nik"] = "12"
    other_family, _ = field.visit("KLG-A2")
    batch = [good, bad, other_family]
    first = results(field.push(batch))
    assert [r["status"] for r in first] == ["waiting_photos", "rejected", "rejected"]
    assert first[1]["errors"][0]["path"] == "answers.anggota[0].nik"
    assert first[2]["errors"][0]["code"] == "not_assigned"
    again = results(field.push(batch))
    assert [r["status"] for r in again] == ["duplicate", "rejected", "rejected"]
    changed = dict(good, ended_at="2026-02-03T10:00:00+07:00")
    assert results(field.push([changed]))[0]["status"] == "uuid_reused"
    bad["answers"]["anggota"][0]["nik"] = good["answers"]["anggota"][0]["nik"]
    assert results(field.push([bad]))[0]["status"] == "waiting_photos"  # corrected, resent
    assert db.scalar(select(func.count()).select_from(Visit)) == 2
    assert db.scalar(select(func.count()).select_from(SyncBatch)) == 4


def test_no_nik_kk_or_name_reaches_a_log_line_or_an_error_message(field, caplog):
    """Pushing good and broken personal data logs none of it, and the errors do not echo it."""
    import logging

    caplog.set_level(logging.DEBUG)
    good, _ = field.visit()
    bad, _ = field.visit()
    member = bad["answers"]["anggota"][0]
    member["nik"] = member["nik"][:15]  # 15 digits: wrong length
    bad["answers"]["no_kk"] = bad["answers"]["no_kk"][:-1] + "x"
    other, _ = field.visit("KLG-A2")  # not assigned to ani
    response = field.push([good, bad, other])
    statuses = [r["status"] for r in results(response)]
    assert statuses == ["waiting_photos", "rejected", "rejected"]
    body = json.dumps(response.get_json()["results"][1:])
    secrets = {member["nik"], bad["answers"]["no_kk"], member["nama"]}
    for visit in (good, other):
        secrets |= {m["nik"] for m in visit["answers"]["anggota"]}
        secrets |= {m["nama"] for m in visit["answers"]["anggota"]}
        secrets.add(visit["answers"]["no_kk"])
    assert not [s for s in secrets if s in body]
    assert "tapak.request" in caplog.text
    assert not [s for s in secrets if s in caplog.text]


def test_key_order_and_spacing_do_not_change_identity(field):
    visit, _ = field.visit()
    results(field.push([visit]))
    reordered = json.loads(json.dumps(visit, sort_keys=True))
    assert results(field.push([reordered]))[0]["status"] == "duplicate"


def test_the_batch_body_is_kept_byte_for_byte_as_evidence(field, client, db):
    """Spacing, key order and escapes as the phone sent them, not a re-serialisation."""
    visit, _ = field.visit()
    body = ('{ "visits" : [' + json.dumps(visit, indent=3, ensure_ascii=True) + '],\n'
            '  "device_id":"ani-phone",   "batch_id" : "b-\\u00e9vidence" }').encode()
    response = client.post("/api/v1/sync/push", data=body,
                           headers={**field.headers["ani"], "Content-Type": "application/json"})
    assert [r["status"] for r in results(response)] == ["waiting_photos"]
    batch = db.scalar(select(SyncBatch))
    assert bytes(batch.body) == body and batch.batch_id == "b-\u00e9vidence"
    assert db.get(Visit, visit["uuid"]).batch_id == batch.id


def test_a_batch_that_is_not_json_or_not_this_shape_is_400_and_stores_nothing(field, client,
                                                                               db):
    headers = {**field.headers["ani"], "Content-Type": "application/json"}
    for body in ("{oops", "[]", '{"batch_id": "b", "device_id": "d"}',
                 '{"batch_id": "b", "device_id": "d", "visits": [1, 2]}'):
        response = client.post("/api/v1/sync/push", data=body, headers=headers)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == "bad_batch"
    assert db.scalar(select(func.count()).select_from(SyncBatch)) == 0


def test_limits_answer_413_with_the_limit(field, app):
    visit, _ = field.visit()
    app.config["MAX_PUSH_VISITS"] = 2
    try:
        response = field.push([visit, visit, visit])
    finally:
        app.config["MAX_PUSH_VISITS"] = 100
    assert response.status_code == 413
    assert "at most 2 visits" in response.get_json()["error"]["message"]
    app.config["MAX_PUSH_BYTES"] = 1000
    try:
        response = field.push([visit])
    finally:
        app.config["MAX_PUSH_BYTES"] = 16 * 1024 * 1024
    assert response.status_code == 413
    assert "1000 bytes" in response.get_json()["error"]["message"]


def test_closed_form_and_unknown_version_are_rejected(field, runner):
    visit, _ = field.visit()
    unknown = dict(visit, form_version=99)
    assert results(field.push([unknown]))[0]["errors"][0]["code"] == "unknown_form"
    runner.invoke(args=["forms", "close", "verifikasi_keluarga"])
    assert results(field.push([visit]))[0]["errors"][0]["code"] == "form_closed"


def test_push_marks_the_assignment_visited_and_tells_the_phone(field, client):
    visit, _ = field.visit()
    results(field.push([visit]))
    items = client.get("/api/v1/assignments", headers=field.headers["ani"]).get_json()["items"]
    assert items[0]["status"] == "visited"


def test_only_enumerators_push(field):
    visit, _ = field.visit()
    assert field.push([visit], who="spv").status_code == 403


def test_photo_put_head_get_and_refusals(field, client):
    data = jpeg(99)
    name = sha(data)
    headers = field.headers["ani"]
    assert client.head(f"/api/v1/photos/{name}", headers=headers).status_code == 404
    assert field.upload(data).status_code == 201
    assert field.upload(data).status_code == 200
    assert client.head(f"/api/v1/photos/{name}", headers=headers).status_code == 200
    mismatch = field.upload(jpeg(98), name=name)
    assert mismatch.status_code == 422
    assert mismatch.get_json()["error"]["code"] == "hash_mismatch"
    text = b"not an image at all"
    refused = field.upload(text, name=sha(text))
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] in (
        "unsupported_type", "invalid_image")
    truncated = data[: len(data) // 2]
    assert field.upload(truncated, name=sha(truncated)).status_code == 422
    assert field.upload(data, content_type="text/plain").status_code == 415
    # A name that is no SHA-256 matches no route (the document's pattern): 404, as any path.
    bad_name = field.upload(data, name="not-a-hash")
    assert bad_name.status_code == 404 and bad_name.get_json()["error"]["code"] == "not_found"


def test_a_put_photo_keeps_its_exif_time_gps_and_phash_in_the_database(field, db):
    """Through HTTP: the EXIF capture time (with its offset) and GPS are columns of ``photos``."""
    import datetime as dt
    import io

    from PIL import Image

    from sync.models.visit import Photo

    exif = Image.Exif()
    exif[0x0132] = "2026:02:03 09:05:00"
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003], ifd[0x9011] = "2026:02:03 09:05:00", "+07:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "S", 2: (6.0, 8.0, 24.0), 3: "E", 4: (106.0, 44.0, 10.0)})
    image = Image.open(io.BytesIO(jpeg(7, size=(320, 240))))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    data = out.getvalue()
    assert field.upload(data).status_code == 201
    photo = db.get(Photo, sha(data))
    assert photo.size_bytes == len(data) and photo.mime_type == "image/jpeg"
    assert (photo.width, photo.height) == (320, 240) and len(photo.phash) == 16
    assert photo.taken_at == dt.datetime(2026, 2, 3, 2, 5, tzinfo=dt.UTC)
    assert photo.taken_at_local.startswith("2026-02-03T09:05:00")
    assert round(photo.gps_lat, 4) == -6.14 and round(photo.gps_lon, 4) == 106.7361


def test_a_photo_over_the_limit_is_413(field, app):
    data = jpeg(5, size=(400, 300))
    app.config["MAX_PHOTO_BYTES"] = 1000
    try:
        response = field.upload(data)
    finally:
        app.config["MAX_PHOTO_BYTES"] = 20 * 1024 * 1024
    assert response.status_code == 413
    assert response.get_json()["error"]["details"]["max_bytes"] == 1000


def test_who_may_see_a_photo(field, client):
    visit, images = field.visit()
    for data in images.values():
        field.upload(data)
    results(field.push([visit]))
    name = sha(next(iter(images.values())))
    thumb = client.get(f"/api/v1/photos/{name}?size=thumb", headers=field.headers["ani"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    full = client.get(f"/api/v1/photos/{name}", headers=field.headers["spv"])
    assert full.status_code == 200 and full.data == images[visit["photos"][0]["field"]]
    assert client.get(f"/api/v1/photos/{name}", headers=field.headers["budi"]).status_code == 404


def test_visit_detail_is_scoped(field, client):
    visit, _ = field.visit()
    results(field.push([visit]))
    mine = client.get(f"/api/v1/visits/{visit['uuid']}", headers=field.headers["ani"])
    assert mine.status_code == 200 and mine.get_json()["status"] == "waiting_photos"
    assert len(mine.get_json()["missing_photos"]) == len(visit["photos"])
    assert client.get(f"/api/v1/visits/{visit['uuid']}",
                      headers=field.headers["spv"]).status_code == 200
    assert client.get(f"/api/v1/visits/{visit['uuid']}",
                      headers=field.headers["budi"]).status_code == 404


def test_the_queue_hands_each_visit_to_one_worker(field, db):
    for _ in range(3):
        visit, images = field.visit()
        for data in images.values():
            field.upload(data)
        results(field.push([visit]))
    first = claim(db, "worker-1", limit=2)
    second = claim(db, "worker-2", limit=5)
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    assert claim(db, "worker-3") == []


def test_workers_claiming_at_once_never_share_a_visit(field, db):
    """Four threads, each with its own connection, drain the queue: every visit exactly once."""
    import threading

    from sqlalchemy.orm import Session

    from server.extensions import db as _db

    visits = []
    for _ in range(12):
        visit, images = field.visit()
        for data in images.values():
            field.upload(data)
        visits.append(visit)
    assert {r["status"] for r in results(field.push(visits))} == {"accepted"}
    claimed: dict[str, list[str]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(4)
    engine = _db.engine  # read here: the threads have no app context

    def work(name: str) -> None:
        got = claimed.setdefault(name, [])
        try:
            with Session(engine) as session:
                start.wait()
                while batch := claim(session, name, limit=2):
                    got.extend(batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    every = [u for got in claimed.values() for u in got]
    assert sorted(every) == sorted(v["uuid"] for v in visits)  # all claimed, none twice
    db.rollback()  # end this session's read snapshot; the workers committed elsewhere
    owners = dict(db.execute(select(Visit.uuid, Visit.claimed_by)).all())
    assert all(owners[u] == name for name, got in claimed.items() for u in got)


def test_unreferenced_photos_are_removed_after_the_grace_period(field, runner, db, app):
    from server.jobs import build_scheduler, photos_cleanup
    from server.services.photos import storage
    from sync.models.visit import Photo

    visit, images = field.visit()
    for data in images.values():
        field.upload(data)
    results(field.push([visit]))
    orphan = jpeg(500)
    field.upload(orphan)
    kept = runner.invoke(args=["photos", "cleanup"])
    assert "removed 0 photo(s)" in kept.output  # within the grace period
    result = photos_cleanup(app)  # the scheduler's job, with a grace of 7 days
    assert result["removed"] == 0
    removed = runner.invoke(args=["photos", "cleanup", "--grace-days", "-1"])
    assert "removed 1 photo(s)" in removed.output
    db.expire_all()
    assert db.get(Photo, sha(orphan)) is None and not storage().exists(sha(orphan))
    for data in images.values():
        assert storage().exists(sha(data)) and db.get(Photo, sha(data)) is not None
    assert "photos_cleanup" in [j.id for j in build_scheduler(app).get_jobs()]  # beside others
