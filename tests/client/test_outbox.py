"""The client offline: the outbox, photos by hash, replacing visits, the CLI's add/status."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid as uuidlib

import pytest

from sync.client import Outbox, SyncClient, content_hash, sniff_mime
from sync.ingest import content_hash as server_content_hash
from tests.client.conftest import ROOT, jpeg, sha


@pytest.fixture
def client(tmp_path):
    c = SyncClient("http://127.0.0.1:9", "ani", "pw", "ani-phone", tmp_path / "outbox.db")
    yield c
    c.close()


def visit(**kw):
    v = {"uuid": str(uuidlib.uuid4()), "form_id": "verifikasi_keluarga", "form_version": 1,
         "household_id": "KLG-1", "answers": {"catatan": "é ü 漢"},
         "photos": [{"field": "foto_depan", "sha256": "0" * 64, "filename": "IMG_1.jpg"}]}
    v.update(kw)
    return v


def test_the_content_hash_is_the_servers(client):
    v = visit()
    assert content_hash(v) == server_content_hash(v)
    assert content_hash(json.loads(json.dumps(v, sort_keys=True, indent=3))) == content_hash(v)


def test_add_visit_hashes_photos_and_fills_photos_by_field(client, tmp_path):
    front, inside = jpeg(1), jpeg(2)
    path = tmp_path / "DCIM" / "IMG_0007.jpg"
    path.parent.mkdir()
    path.write_bytes(inside)
    v = visit()
    uuid = client.add_visit(v, {"foto_depan": front, "foto_dalam": path})
    stored = client.outbox.visit(uuid)
    assert stored["state"] == "pending" and stored["attempts"] == 0
    assert stored["visit"]["photos"] == [
        {"field": "foto_depan", "sha256": sha(front), "filename": "IMG_1.jpg"},
        {"field": "foto_dalam", "sha256": sha(inside), "filename": "IMG_0007.jpg"}]
    assert stored["content_hash"] == content_hash(stored["visit"])
    assert v["photos"][0]["sha256"] == "0" * 64  # the caller's dict is left alone
    photos = {p["sha256"]: p for p in client.outbox.db["photos"].rows}
    assert set(photos) == {sha(front), sha(inside)}
    assert photos[sha(inside)]["path"] == str(path.resolve())
    kept = client.outbox.photo_dir / sha(front)
    assert photos[sha(front)]["path"] == str(kept) and kept.read_bytes() == front
    assert {p["mime"] for p in photos.values()} == {"image/jpeg"}


def test_the_same_bytes_under_two_names_are_one_photo(client, tmp_path):
    data = jpeg(3)
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(data)
    b.write_bytes(data)
    client.add_visit(visit(), {"foto_depan": a})
    client.add_visit(visit(), {"foto_depan": b})
    assert client.outbox.db["photos"].count == 1
    assert client.outbox.db["visit_photos"].count == 2


def test_a_visit_may_be_replaced_only_while_the_server_has_not_stored_it(client):
    v = visit()
    client.add_visit(v)
    client.add_visit(dict(v, answers={"catatan": "corrected"}))
    assert client.outbox.visit(v["uuid"])["visit"]["answers"] == {"catatan": "corrected"}
    client.outbox.mark_sent([v["uuid"]], "batch-1")
    with pytest.raises(ValueError, match="sent"):
        client.add_visit(dict(v, answers={}))
    for state in ("accepted", "waiting_photos", "duplicate", "uuid_reused"):
        client.outbox.record_results([{"uuid": v["uuid"], "status": state}])
        with pytest.raises(ValueError, match=state):
            client.add_visit(v)
    client.outbox.record_results([{"uuid": v["uuid"], "status": "rejected", "errors": [
        {"path": "answers.x", "code": "required", "message": "x"}]}])
    assert client.status()["rejected"][0]["errors"][0]["code"] == "required"
    client.add_visit(v)
    assert client.outbox.visit(v["uuid"])["state"] == "pending"


def test_junk_is_refused(client):
    for junk in (None, [], {"no": "uuid"}, {"uuid": 7}):
        with pytest.raises(ValueError):
            client.add_visit(junk)


def test_state_survives_a_restart_and_the_outbox_belongs_to_one_user(client, tmp_path):
    v = visit()
    client.add_visit(v, {"foto_depan": jpeg(4)})
    client.outbox.set("username", "ani")
    client.close()
    again = SyncClient("http://127.0.0.1:9", "ani", "pw", "ani-phone", tmp_path / "outbox.db")
    try:
        assert again.status()["visits"] == {"pending": 1}
        assert again.status()["photos"] == {"pending": 1}
    finally:
        again.close()
    with pytest.raises(ValueError, match="belongs to 'ani'"):
        SyncClient("http://127.0.0.1:9", "budi", "pw", "budi-phone", tmp_path / "outbox.db")


def test_the_outbox_schema(tmp_path):
    outbox = Outbox(tmp_path / "o.db")
    try:
        assert set(outbox.db.table_names()) >= {"visits", "photos", "visit_photos",
                                                "assignments", "households", "forms", "meta"}
        assert outbox.db["visits"].pks == ["uuid"] and outbox.db["photos"].pks == ["sha256"]
        assert outbox.db.journal_mode == "wal"
    finally:
        outbox.close()


def test_mime_sniffing():
    assert sniff_mime(jpeg(1)[:16]) == "image/jpeg"
    assert sniff_mime(b"\x89PNG\r\n\x1a\n0000") == "image/png"
    assert sniff_mime(b"\0\0\0\x18ftypheic0000") == "image/heic"
    assert sniff_mime(b"hello") == "image/jpeg"  # the server names the problem (422)


def test_cli_add_and_status_work_offline(tmp_path):
    v = visit()
    (tmp_path / "visit.json").write_text(json.dumps(v))
    (tmp_path / "front.jpg").write_bytes(jpeg(9))
    outbox = tmp_path / "cli.db"

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "sync.client", "--outbox", str(outbox),
                               *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout, done.stderr

    code, out, err = cli("add", str(tmp_path / "visit.json"), "--photo",
                         f"foto_depan={tmp_path / 'front.jpg'}")
    assert code == 0, err
    assert json.loads(out) == {"added": v["uuid"]}
    code, out, _ = cli("status")
    status = json.loads(out)
    assert code == 0 and status["visits"] == {"pending": 1} and status["photos"] == {
        "pending": 1}
    code, _, err = cli("sync")  # no server given
    assert code == 2 and "--server" in err
    code, _, err = cli("--server", "http://127.0.0.1:9", "--user", "ani", "--password", "x",
                       "--max-attempts", "1", "sync")
    assert code == 2 and "OfflineError" in err
