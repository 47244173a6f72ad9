"""``flask --app server check`` passes on a consistent instance and names what is wrong."""

from sqlalchemy import text

from sync.photos import LocalPhotoStorage


def check(runner):
    result = runner.invoke(args=["check"])
    return result.exit_code, result.output


def test_a_consistent_instance_passes(loaded, runner):
    code, out = check(runner)
    assert code == 0, out
    assert "consistent" in out.splitlines()[-1] and "NOT" not in out
    assert "visits 4" in out and "rejected 1" in out and "waiting_photos 1" in out
    # photos still awaited are listed apart, not as problems
    assert f"awaited: {loaded.awaited[0]}" in out
    assert "[ok] feed" in out and "2 of 2 enumerators" in out


def test_a_missing_photo_fails(loaded, runner, app):
    LocalPhotoStorage(app.config["PHOTO_DIR"]).path(loaded.shas[1]).unlink()
    code, out = check(runner)
    assert code == 1
    assert "[FAIL] photos" in out
    assert f"{loaded.shas[1]}: referenced by a visit, not in the photo store" in out


def test_a_corrupted_photo_fails(loaded, runner, app):
    path = LocalPhotoStorage(app.config["PHOTO_DIR"]).path(loaded.shas[2])
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte: same size, another hash
    path.write_bytes(bytes(data))
    code, out = check(runner)
    assert code == 1
    assert f"{loaded.shas[2]}: stored bytes hash to" in out
    # only a file's presence is looked at without hashing
    assert runner.invoke(args=["check", "--no-hash"]).exit_code == 0


def test_a_wrong_progress_counter_fails(loaded, runner, db):
    db.execute(text("UPDATE progress_counts SET n = n + 3 WHERE metric = 'assigned'"))
    db.commit()
    code, out = check(runner)
    assert code == 1
    assert "[FAIL] counters against a recount" in out
    assert "'assigned'): counter" in out


def test_a_wrong_monitoring_counter_fails(loaded, runner, db):
    assert db.execute(text("UPDATE monitoring_counts SET n = n + 1 WHERE week = ''")).rowcount
    db.commit()
    code, out = check(runner)
    assert code == 1 and "monitoring (" in out


def test_a_lost_feed_entry_and_an_incoherent_visit_fail(loaded, runner, db):
    db.execute(text("DELETE FROM feed_entries WHERE type = 'assignment' AND entity_id LIKE "
                    "'%KLG-A2'"))
    db.execute(text("UPDATE visits SET status = 'queued' WHERE uuid = :u"),
               {"u": loaded.uuids[0]})
    db.execute(text("UPDATE visits SET status = 'lost' WHERE uuid = :u"),
               {"u": loaded.uuids[1]})
    db.execute(text("DELETE FROM conflicts WHERE visit_uuid = :u"), {"u": loaded.uuids[2]})
    db.commit()
    code, out = check(runner)
    assert code == 1
    assert "[FAIL] feed" in out and "KLG-A2 is not in the feed" in out
    assert f"visit {loaded.uuids[0]}: queued yet decided (reject)" in out
    assert f"visit {loaded.uuids[1]}: unknown status 'lost'" in out
    assert f"visit {loaded.uuids[2]}: needs_review without any conflict" in out
