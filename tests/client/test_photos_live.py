"""Photo uploads against a live server: cut off, wrong bytes, too big, not an image; and what
the client does with a photo the server refuses for good."""

from __future__ import annotations

import http.client
import socket
import time

import pytest
import requests

from tests.client.conftest import MAX_PHOTO_BYTES, PASSWORD, jpeg, sha


@pytest.fixture
def auth(live):
    user, _ = live.enumerator(0)
    r = requests.post(live.url + "/api/v1/auth/token", timeout=10, json={
        "username": user, "password": PASSWORD, "device_id": "camera"})
    assert r.status_code == 201
    return {"Authorization": f"Bearer {r.json()['token']}"}


def head(live, auth, name) -> int:
    return requests.head(f"{live.url}/api/v1/photos/{name}", headers=auth, timeout=10).status_code


def put(live, auth, name, data, content_type="image/jpeg") -> requests.Response:
    return requests.put(f"{live.url}/api/v1/photos/{name}", data=data, timeout=30,
                        headers={**auth, "Content-Type": content_type})


def leftovers(live) -> list:
    tmp = live.tmp / "photos" / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_an_upload_cut_off_halfway_stores_nothing_and_a_full_one_then_works(live, auth):
    data = jpeg(4242, size=(320, 240))
    name = sha(data)
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        s.sendall((f"PUT /api/v1/photos/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: {auth['Authorization']}\r\nContent-Type: image/jpeg\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:len(data) // 2])
        time.sleep(0.2)  # the server is reading the body now
        s.shutdown(socket.SHUT_WR)  # and the phone loses its connection
        s.settimeout(10)
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert head(live, auth, name) == 404
    assert live.scalar("SELECT count(*) FROM photos WHERE sha256 = :s", s=name) == 0
    assert not (live.tmp / "photos" / "originals" / name[:2] / name[2:4] / name).exists()
    assert leftovers(live) == []
    assert put(live, auth, name, data).status_code == 201
    assert head(live, auth, name) == 200
    assert put(live, auth, name, data).status_code == 200  # safe to repeat


def test_bytes_that_do_not_match_their_hash_are_422(live, auth):
    good, other = jpeg(501), jpeg(502)
    r = put(live, auth, sha(good), other)
    assert r.status_code == 422 and r.json()["error"]["code"] == "hash_mismatch"
    assert head(live, auth, sha(good)) == 404 and head(live, auth, sha(other)) == 404


def test_a_truncated_file_and_a_file_that_is_no_image_are_422(live, auth):
    truncated = jpeg(503, size=(320, 240))[:1500]
    r = put(live, auth, sha(truncated), truncated)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_image"
    text = b"%PDF-1.4 not a photo at all" * 10
    r = put(live, auth, sha(text), text)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_type"
    assert head(live, auth, sha(truncated)) == 404 and head(live, auth, sha(text)) == 404
    assert leftovers(live) == []


def test_a_huge_file_is_413_by_its_length_or_by_what_arrives(live, auth):
    huge = b"\xff\xd8\xff\xe0" + b"\0" * (MAX_PHOTO_BYTES + 1000)
    name = sha(huge)
    # Announced by Content-Length: refused before the body is read.
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    conn.putrequest("PUT", f"/api/v1/photos/{name}")
    for key, value in {**auth, "Content-Type": "image/jpeg",
                       "Content-Length": str(len(huge))}.items():
        conn.putheader(key, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 413, body
    # Streamed without a length (chunked): reading stops just past the limit.
    chunks = (huge[i:i + 65536] for i in range(0, len(huge), 65536))
    r = requests.put(f"{live.url}/api/v1/photos/{name}", data=chunks, timeout=30,
                     headers={**auth, "Content-Type": "image/jpeg"})
    assert r.status_code == 413 and r.json()["error"]["details"]["max_bytes"] == MAX_PHOTO_BYTES
    assert head(live, auth, name) == 404
    assert leftovers(live) == []


def test_the_client_holds_back_a_visit_whose_photo_is_refused_until_retaken(
        live, visits, make_client, tmp_path):
    user, _ = live.enumerator(2)
    client = make_client(user, max_photo_bytes=MAX_PHOTO_BYTES * 10)
    client.pull()
    (broken, images), (big, big_images) = visits.for_client(client)
    field = next(iter(images))
    bad = dict(images, **{field: images[field][:700]})  # the camera wrote half a file
    client.add_visit(broken, bad)
    # A photo over the server's limit (but not the client's): the server says 413.
    big_field = next(iter(big_images))
    oversized = dict(big_images, **{big_field: jpeg(77, size=(64, 48)) + b"\0" * MAX_PHOTO_BYTES})
    client.add_visit(big, oversized)
    report = client.sync()
    failed = {f["sha256"]: f["code"] for f in report.photos_failed}
    assert failed == {sha(bad[field]): "invalid_image", sha(oversized[big_field]): "too_large"}
    assert report.batches == 0  # both visits are held back, not pushed to wait forever
    assert {b["uuid"] for b in report.blocked} == {broken["uuid"], big["uuid"]}
    status = client.status()
    assert status["visits"] == {"pending": 2}
    assert {p["sha256"] for p in status["failed_photos"]} == set(failed)
    # The enumerator retakes the photos; the visits (same uuids, not stored yet) are replaced.
    client.add_visit(broken, images)
    client.add_visit(big, big_images)
    again = client.sync()
    assert again.results == {"accepted": 2} and again.blocked == []
    assert set(live.stored([broken["uuid"], big["uuid"]])) == {broken["uuid"], big["uuid"]}


def test_the_client_refuses_locally_a_photo_over_its_own_limit(live, visits, make_client):
    user, _ = live.enumerator(1)
    client = make_client(user)
    client.pull()
    [(visit, images)] = visits.for_client(client)
    client.max_photo_bytes = max(len(d) for d in images.values())
    field = next(iter(images))
    client.add_visit(visit, dict(images, **{field: images[field] + b"\0" * 10_000}))
    report = client.sync()
    assert [f["code"] for f in report.photos_failed] == ["too_large"]
    assert report.batches == 0


def test_a_photo_file_deleted_from_the_phone_is_reported(live, visits, make_client, tmp_path):
    user, _ = live.enumerator(1)
    client = make_client(user)
    client.pull()
    [(visit, images)] = visits.for_client(client)
    paths = {}
    for field, data in images.items():
        paths[field] = tmp_path / f"{field}.jpg"
        paths[field].write_bytes(data)
    client.add_visit(visit, paths)
    gone = next(iter(paths.values()))
    gone.unlink()
    report = client.sync()
    assert [f["code"] for f in report.photos_failed] == ["file_missing"]
    assert report.blocked and report.batches == 0
