"""The client keeps acknowledged visits and their photos for ``keep_days``, to send them again
to a restored server; older ones are forgotten (offline: the outbox's own methods)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid as uuidlib

from sync.client import SyncClient
from tests.client.conftest import jpeg, sha


def iso(days_ago: float) -> str:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return when.isoformat(timespec="milliseconds")


def acknowledge(client, uuid, status, days_ago):
    client.outbox.record_results([{"uuid": uuid, "status": status}])
    client.outbox.db.execute("UPDATE visits SET acknowledged_at = ? WHERE uuid = ?",
                             [iso(days_ago), uuid])
    client.outbox.db.conn.commit()


def add(client, seed):
    v = {"uuid": str(uuidlib.uuid4()), "form_id": "verifikasi_keluarga", "form_version": 1,
         "household_id": f"KLG-{seed}", "answers": {}}
    return client.add_visit(v, {"foto_depan": jpeg(seed)}), sha(jpeg(seed))


def test_resend_window_and_pruning(tmp_path):
    client = SyncClient("http://127.0.0.1:9", "ani", "pw", "ani-phone", tmp_path / "o.db",
                        keep_days=7)
    try:
        old, old_photo = add(client, 1)
        recent, recent_photo = add(client, 2)
        waiting, _ = add(client, 3)
        rejected, _ = add(client, 4)
        acknowledge(client, old, "accepted", 8)
        acknowledge(client, recent, "duplicate", 2)
        acknowledge(client, waiting, "waiting_photos", 1)
        client.outbox.record_results([{"uuid": rejected, "status": "rejected"}])
        for photo in (old_photo, recent_photo):
            client.outbox.mark_photo(photo, "uploaded")

        # A new epoch: what was acknowledged in the last 7 days goes again, photos asked again.
        assert client.outbox.requeue_acknowledged(client._keep_since()) == 2
        states = {v["uuid"]: v["state"] for v in client.outbox.visits()}
        assert states == {old: "accepted", recent: "sent", waiting: "sent", rejected: "rejected"}
        assert client.outbox.photo(recent_photo)["state"] == "pending"
        assert client.outbox.photo(old_photo)["state"] == "uploaded"
        assert {r["uuid"] for r in client.outbox.to_send(10, set())} == {recent, waiting}

        # After a sync, visits acknowledged more than 7 days ago go, with the photo bytes
        # the outbox kept for them; the others stay.
        assert (client.outbox.photo_dir / old_photo).exists()
        assert client.outbox.prune(client._keep_since()) == 1
        assert client.outbox.visit(old) is None and client.outbox.photo(old_photo) is None
        assert not (client.outbox.photo_dir / old_photo).exists()
        assert (client.outbox.photo_dir / recent_photo).exists()
        assert len(client.outbox.visits()) == 3
    finally:
        client.close()


def test_an_outbox_from_before_gets_the_column(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE visits (uuid TEXT PRIMARY KEY, household_id TEXT, form_id TEXT, "
                 "json TEXT NOT NULL, content_hash TEXT, state TEXT NOT NULL, errors TEXT, "
                 "missing_photos TEXT, attempts INTEGER, last_batch_id TEXT, created_at TEXT, "
                 "updated_at TEXT)")
    answered = iso(3)
    conn.execute("INSERT INTO visits VALUES ('u1', 'K', 'f', '{}', 'h', 'accepted', '[]', '[]', "
                 "1, 'b', ?, ?)", [answered, answered])
    conn.commit()
    conn.close()
    client = SyncClient("http://127.0.0.1:9", "ani", "pw", "ani-phone", path)
    try:
        assert client.outbox.visit("u1")["acknowledged_at"] == answered
        assert client.outbox.requeue_acknowledged(client._keep_since()) == 1
    finally:
        client.close()
