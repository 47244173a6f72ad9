"""The restore drill on SQLite: load, a backup in the middle of it, a restore into a new
instance; ``check`` passes there, every visit acknowledged before the backup is there, and the
visits acknowledged after it come back from the phones' outboxes on the new feed epoch.

Real parts throughout: gunicorn over HTTP (the sync client suite's live server), the reference
client, ``flask --app server backup run|restore`` and ``check`` as CLI commands.
"""

from __future__ import annotations

import os
import threading

import pytest

import config
from server import create_app
from sync.client import RetryPolicy, SyncClient
from tests.client.conftest import PASSWORD, LiveServer, Visits, _prepare, _scratch_database

pytestmark = pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                                reason="the restore drill runs on SQLite (docs/deploy.md "
                                       "documents pg_dump and pg_restore)")

RETRY = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.5, timeout=(2.0, 30.0))


def cli(url, instance, photos, backups, *args):
    """A flask command in-process on the instance (``flask --app server ...``)."""
    settings = config.for_testing(str(instance), url, str(photos))
    settings["BACKUP_DIR"] = str(backups)
    app = create_app(settings)
    result = app.test_cli_runner().invoke(args=list(args))
    from server.extensions import db

    with app.app_context():
        db.engine.dispose()
    return result


@pytest.fixture
def servers(tmp_path):
    """The instance under load (started), and the folder a restore goes into."""
    first = tmp_path / "a"
    (first / "instance").mkdir(parents=True)
    url, drop = _scratch_database(first)
    assert url.startswith("sqlite")
    families = _prepare(url, first / "instance", first / "photos")
    live = LiveServer(url, first, families)
    live.start()
    made = []
    yield live, tmp_path / "b", made
    for server in made + [live]:
        server.stop()
        server.engine.dispose()


def clients(live, tmp_path, n, per):
    out = []
    for _ in range(n):
        user, _ids = live.enumerator(per)
        out.append(SyncClient(live.url, user, PASSWORD, f"{user}-phone",
                              tmp_path / f"{user}.outbox", batch_size=3, retry=RETRY))
        out[-1].pull()
    return out


def acknowledged(client) -> dict[str, tuple[str, str]]:
    """uuid -> (content hash, when acknowledged) of the visits the server acknowledged."""
    return {v["uuid"]: (v["content_hash"], v["acknowledged_at"]) for v in
            client.outbox.visits(["accepted", "duplicate", "waiting_photos"])}


def test_restore_drill(servers, tmp_path):
    live, restored_dir, made = servers
    visits = Visits(live)
    phones = clients(live, tmp_path, 3, 6)
    for phone in phones:  # the morning's work, synced
        for visit, images in visits.for_client(phone, count=3):
            phone.add_visit(visit, images)
        assert phone.sync().results["accepted"] == 3

    # Load goes on while the backup runs: one phone syncs a visit at a time.
    busy = phones[0]
    pending = visits.for_client(busy, count=6)[3:]
    stop = threading.Event()

    def load():
        loader = SyncClient(live.url, busy.username, PASSWORD, busy.device_id,
                            busy.outbox.path, batch_size=1, retry=RETRY)
        try:
            for visit, images in pending:
                loader.add_visit(visit, images)
                loader.sync()
                if stop.is_set():
                    break
        finally:
            loader.close()

    thread = threading.Thread(target=load)
    instance, photos, backups = live.tmp / "instance", live.tmp / "photos", tmp_path / "backups"
    before_backup = None
    thread.start()
    try:
        from sync.client import _now

        before_backup = _now()
        result = cli(live.database_url, instance, photos, backups, "backup", "run")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    snapshot = next(backups.glob("tapak-*.db"))
    assert next(backups.glob("tapak-*.manifest.json"))

    # The afternoon's work reaches the server after the backup, then the server is lost.
    for phone in phones[1:]:
        for visit, images in visits.for_client(phone)[3:5]:
            phone.add_visit(visit, images)
        assert phone.sync().results["accepted"] == 2
    acked = {}
    for phone in phones:
        acked.update(acknowledged(phone))
    early = {u: h for u, (h, at) in acked.items() if at < before_backup}
    late = {u: h for u, (h, _at) in acked.items() if u not in early}
    assert len(early) >= 9 and len(late) >= 4
    live.stop()

    # Restore into a new instance, from nothing but the backup folder.
    new_instance, new_photos = restored_dir / "instance", restored_dir / "photos"
    new_url = f"sqlite:///{new_instance / 'tapak.db'}"
    result = cli(new_url, new_instance, new_photos, backups, "backup", "restore",
                 str(snapshot), "--into", str(new_instance), "--photo-dir", str(new_photos),
                 "--yes")
    assert result.exit_code == 0, result.output
    assert "feed epoch is now" in result.output
    check = cli(new_url, new_instance, new_photos, backups, "check")
    assert check.exit_code == 0, check.output

    restored = LiveServer(new_url, restored_dir, [])
    restored.start()
    made.append(restored)
    kept = restored.stored(acked)
    assert {u: kept[u] for u in early} == early  # nothing acknowledged before the backup lost
    lost = set(late) - set(kept)
    assert lost, "the drill should lose the visits sent after the backup"

    # The phones meet the new epoch (410), resend what they were told was stored, and the
    # restored server takes what it lost; what it kept answers duplicate.
    for phone in phones:
        mine = set(acknowledged(phone))
        phone.server = restored.url
        report = phone.pull()
        assert report.restarted and report.resend == len(mine) > 0
        sync = phone.sync()
        assert not sync.rejected and not sync.photos_failed, sync.as_dict()
        assert sync.results == {"duplicate": len(mine & set(kept)),
                                "accepted": len(mine - set(kept))}, sync.as_dict()
        assert set(acknowledged(phone)) == mine
    assert restored.stored(acked) == {u: h for u, (h, _at) in acked.items()}
    check = cli(new_url, new_instance, new_photos, backups, "check")
    assert check.exit_code == 0, check.output
    for phone in phones:
        phone.close()
