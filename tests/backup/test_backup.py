"""``flask --app server backup run``: the snapshot, then only the photos the backup lacks."""

import json

from sqlalchemy import text


def run(runner, app, folder):
    saved = app.config["BACKUP_DIR"]
    app.config["BACKUP_DIR"] = str(folder)
    try:
        return runner.invoke(args=["backup", "run"])
    finally:
        app.config["BACKUP_DIR"] = saved


def test_photos_are_copied_incrementally_with_a_manifest(loaded, runner, app, db, tmp_path):
    folder = tmp_path / "backups"
    first = run(runner, app, folder)
    assert first.exit_code == 0, first.output
    assert "photos: 9 named, 9 copied" in first.output and "0 already" in first.output
    manifest = json.loads(next(folder.glob("tapak-*.manifest.json")).read_text())
    assert sorted(manifest["photos"]) == sorted(loaded.shas)
    assert manifest["missing"] == [] and manifest["corrupt"] == []
    snapshot = folder / manifest["snapshot"]
    assert snapshot.exists() and snapshot.suffix == (
        ".db" if db.get_bind().dialect.name == "sqlite" else ".dump")

    # A new photo arrives: the next run copies it alone.
    visit, images = loaded.visit("KLG-A2")
    for data in images.values():
        assert loaded.upload(data, who="budi").status_code == 201
    assert loaded.push([visit], who="budi").get_json()["results"][0]["status"] == "accepted"
    second = run(runner, app, folder)
    assert second.exit_code == 0, second.output
    assert f"photos: 12 named, {len(images)} copied" in second.output
    assert "9 already backed up" in second.output
    copies = list((folder / "photos" / "originals").rglob("*"))
    assert len([p for p in copies if p.is_file()]) == 12
    assert db.execute(text("SELECT count(*) FROM photos")).scalar() == 12


def test_restore_refuses_a_photo_whose_bytes_changed_in_the_backup(loaded, runner, app, db,
                                                                    tmp_path):
    if db.get_bind().dialect.name != "sqlite":
        return  # a .dump restores with pg_restore: the drill is SQLite's (docs/deploy.md)
    folder = tmp_path / "backups"
    assert run(runner, app, folder).exit_code == 0
    damaged = folder / "photos" / "originals" / loaded.shas[0][:2] / loaded.shas[0][2:4] / \
        loaded.shas[0]
    data = bytearray(damaged.read_bytes())
    data[-5] ^= 0xFF
    damaged.write_bytes(bytes(data))
    snapshot = next(folder.glob("tapak-*.db"))
    target = tmp_path / "restored"
    result = runner.invoke(args=["backup", "restore", str(snapshot), "--into", str(target),
                                 "--yes"])
    assert result.exit_code == 1, result.output
    assert f"corrupt in the backup (SHA-256 differs from the manifest): {loaded.shas[0]}" \
        in result.output
    assert "8 restored" in result.output
    assert not (target / "photos" / "originals" / loaded.shas[0][:2] / loaded.shas[0][2:4]
                / loaded.shas[0]).exists()


def test_a_pg_dump_restores_into_a_new_database_and_passes_check(loaded, runner, app, db,
                                                                  tmp_path):
    """PostgreSQL only (the SQLite restore is the drill's): pg_dump -Fc, pg_restore into a
    new database with the photos, a new epoch, and ``check`` passes there."""
    import pytest

    import config
    from server import create_app
    from server.extensions import db as _db
    from sync import backup
    from tests.conftest import scratch_test_database

    if db.get_bind().dialect.name != "postgresql" or backup.pg_dump_path() is None:
        pytest.skip("PostgreSQL with pg_dump and pg_restore")
    folder = tmp_path / "backups"
    assert run(runner, app, folder).exit_code == 0
    dump = next(folder.glob("tapak-*.dump"))
    url, drop = scratch_test_database("tapak_restore")
    try:
        photos = tmp_path / "restored-photos"
        result = runner.invoke(args=["backup", "restore", str(dump), "--into", url,
                                     "--photo-dir", str(photos), "--yes"])
        assert result.exit_code == 0, result.output
        assert "9 restored" in result.output
        other = create_app(config.for_testing(str(tmp_path / "instance"), url, str(photos)))
        check = other.test_cli_runner().invoke(args=["check"])
        with other.app_context():
            epoch = _db.session.execute(text("SELECT epoch FROM feed_state")).scalar()
            visits = _db.session.execute(text("SELECT count(*) FROM visits")).scalar()
            _db.session.remove()
            _db.engine.dispose()
        assert check.exit_code == 0, check.output
        assert visits == 4 and epoch > 1_000_000  # a new epoch no phone's cursor names
    finally:
        drop()
