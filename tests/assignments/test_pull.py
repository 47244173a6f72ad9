"""The change feed behind GET /sync/pull."""

import datetime as dt
import gzip
import json

from server.cli.forms import FORMS_DIR
from server.extensions import db as _db
from sync import feed
from sync.db import write_transaction
from sync.models.feed import FeedEntry


def kinds(changes):
    return [(c["type"], c["op"], c["id"]) for c in changes]


def test_first_pull_has_the_assignments_and_their_families_only(client, team, round_id,
                                                               assign, pull):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    assign(round_id, "budi", household_ids=["KLG-A2"])
    changes, _ = pull("ani")
    assert kinds(changes) == [("assignment", "upsert", f"{round_id}:KLG-A1"),
                              ("household", "upsert", "KLG-A1")]
    assignment, household = changes
    assert assignment["data"]["status"] == "pending"
    assert household["data"]["base_version"] == 1
    assert household["data"]["record"]["rumah"]["lantai"] == 6
    assert household["data"]["record"]["anggota"][0]["nik"] == "3173014508850003"
    assert "KLG-A2" not in json.dumps(changes)
    seqs = [c["seq"] for c in changes]
    assert seqs == sorted(seqs)


def test_an_empty_delta_and_the_same_cursor_gives_the_same_answer(client, team, round_id,
                                                                  assign, pull):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    _, cursor = pull("ani")
    first = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=team["ani"]).get_json()
    assert first == {"changes": [], "next_cursor": cursor, "more": False}
    assign(round_id, "ani", household_ids=["KLG-A2"])
    again = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=team["ani"]).get_json()
    repeat = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=team["ani"]).get_json()
    assert again == repeat
    assert kinds(again["changes"]) == [("assignment", "upsert", f"{round_id}:KLG-A2"),
                                       ("household", "upsert", "KLG-A2")]


def test_pagination_interleaved_with_new_commits_loses_nothing(client, team, round_id, assign):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    page = client.get("/api/v1/sync/pull?limit=1", headers=team["ani"]).get_json()
    got = kinds(page["changes"])
    assert page["more"] is True
    # Between pages: a new family, and a change to the one already downloaded.
    assign(round_id, "ani", household_ids=["KLG-A2"])
    with write_transaction(_db.session):
        feed.household_changed(_db.session, ["KLG-A1"])
    cursor = page["next_cursor"]
    while True:
        page = client.get(f"/api/v1/sync/pull?limit=1&cursor={cursor}",
                          headers=team["ani"]).get_json()
        got += kinds(page["changes"])
        cursor = page["next_cursor"]
        if not page["more"]:
            break
    assert set(got) == {("assignment", "upsert", f"{round_id}:KLG-A1"),
                        ("assignment", "upsert", f"{round_id}:KLG-A2"),
                        ("household", "upsert", "KLG-A1"), ("household", "upsert", "KLG-A2")}
    assert got[-1] == ("household", "upsert", "KLG-A1")  # sent again after its change


def test_a_reassignment_is_a_delete_on_the_old_phone_and_an_upsert_on_the_new(
        client, team, round_id, assign, pull):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    _, ani_cursor = pull("ani")
    _, budi_cursor = pull("budi")
    assign(round_id, "budi", household_ids=["KLG-A1"])
    ani, _ = pull("ani", ani_cursor)
    budi, _ = pull("budi", budi_cursor)
    assert kinds(ani) == [("assignment", "delete", f"{round_id}:KLG-A1"),
                          ("household", "delete", "KLG-A1")]
    assert ani[0]["data"] == {"round_id": round_id, "household_id": "KLG-A1"}
    assert kinds(budi) == [("assignment", "upsert", f"{round_id}:KLG-A1"),
                           ("household", "upsert", "KLG-A1")]
    unassigned = client.delete(f"/api/v1/assignments/{round_id}/KLG-A1", headers=team["spv"])
    assert unassigned.status_code == 204
    budi_after, _ = pull("budi", _)
    assert [c["op"] for c in budi_after] == ["delete", "delete"]


def test_a_verified_record_change_reaches_only_the_assigned_phone(client, team, round_id,
                                                                  assign, pull):
    from sync.registry import apply_changes

    assign(round_id, "ani", household_ids=["KLG-A1"])
    assign(round_id, "budi", household_ids=["KLG-A2"])
    _, ani_cursor = pull("ani")
    _, budi_cursor = pull("budi")
    with write_transaction(_db.session):
        apply_changes(_db.session, "KLG-A1", {"rumah.lantai": 2}, source="supervisor",
                      actor_id=None)
    ani, _ = pull("ani", ani_cursor)
    budi, _ = pull("budi", budi_cursor)
    assert kinds(ani) == [("household", "upsert", "KLG-A1")]
    assert ani[0]["data"]["base_version"] == 2
    assert ani[0]["data"]["record"]["rumah"]["lantai"] == 2
    assert budi == []


def test_a_published_and_a_closed_form_appear_in_every_feed(client, team, runner, pull):
    _, cursor = pull("citra")
    runner.invoke(args=["forms", "publish", str(FORMS_DIR / "verifikasi_keluarga" / "v1.json")])
    changes, cursor = pull("citra", cursor)
    assert kinds(changes) == [("form", "upsert", "verifikasi_keluarga:1")]
    assert changes[0]["data"]["hash"] and changes[0]["data"]["version"] == 1
    runner.invoke(args=["forms", "close", "verifikasi_keluarga"])
    changes, _ = pull("citra", cursor)
    assert kinds(changes) == [("form", "delete", "verifikasi_keluarga:1")]
    assert kinds(pull("ani")[0]) == [("form", "delete", "verifikasi_keluarga:1")]


def test_a_tampered_cursor_gets_400_and_a_foreign_one_too(client, team, round_id, assign, pull):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    _, cursor = pull("ani")
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    response = client.get(f"/api/v1/sync/pull?cursor={tampered}", headers=team["ani"])
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cursor"
    foreign = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=team["budi"])
    assert foreign.status_code == 400


def test_a_cursor_older_than_a_compaction_or_a_reset_gets_410(client, team, round_id, assign,
                                                              pull, db):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    _, old_cursor = pull("ani")
    assign(round_id, "budi", household_ids=["KLG-A1"])  # tombstones on ani's feed
    _, fresh_cursor = pull("ani")
    with write_transaction(db):
        purged = feed.compact(db, older_than=dt.timedelta(seconds=-1))
    assert purged == 2
    gone = client.get(f"/api/v1/sync/pull?cursor={old_cursor}", headers=team["ani"])
    assert gone.status_code == 410 and gone.get_json()["error"]["code"] == "cursor_expired"
    ok = client.get(f"/api/v1/sync/pull?cursor={fresh_cursor}", headers=team["ani"])
    assert ok.status_code == 200
    with write_transaction(db):
        feed.reset(db)
    assert client.get(f"/api/v1/sync/pull?cursor={fresh_cursor}",
                      headers=team["ani"]).status_code == 410
    assert client.get("/api/v1/sync/pull", headers=team["ani"]).status_code == 200


def test_pull_is_gzipped_when_the_client_accepts_it(client, team, round_id, assign):
    assign(round_id, "ani", household_ids=["KLG-A1", "KLG-A2"])
    plain = client.get("/api/v1/sync/pull", headers=team["ani"])
    zipped = client.get("/api/v1/sync/pull", headers={**team["ani"],
                                                      "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.data)) == plain.get_json()
    assert len(zipped.data) < len(plain.data)


def test_only_enumerators_pull(client, team):
    assert client.get("/api/v1/sync/pull", headers=team["spv"]).status_code == 403
    assert client.get("/api/v1/sync/pull").status_code == 401


def test_feed_keeps_one_entry_per_recipient_and_entity(db, team, round_id, assign):
    for _ in range(3):
        assign(round_id, "ani", household_ids=["KLG-A1"])
        assign(round_id, "budi", household_ids=["KLG-A1"])
    rows = db.query(FeedEntry).filter(FeedEntry.entity_id.like("%KLG-A1")).all()
    assert len(rows) == 4  # ani: 2 tombstones, budi: 2 upserts


def test_a_newer_extract_reaches_the_phone_holding_the_family(client, team, round_id, assign,
                                                              pull, db, tmp_path):
    from sync.importer import import_extract
    from tests.conftest import FAMILIES

    assign(round_id, "ani", household_ids=["KLG-A1"])
    _, cursor = pull("ani")
    newer = json.loads(json.dumps(FAMILIES))
    newer[0]["rumah"]["lantai"] = 2
    path = tmp_path / "newer.jsonl"
    path.write_text("\n".join(json.dumps(f) for f in newer) + "\n")
    summary = import_extract(db, path, label="newer", rejects=tmp_path / "r.jsonl")
    assert summary.updated == 1
    changes, _ = pull("ani", cursor)
    assert kinds(changes) == [("household", "upsert", "KLG-A1")]
    assert changes[0]["data"]["record"]["rumah"]["lantai"] == 2
    assert changes[0]["data"]["base_version"] == 2


def test_a_writer_that_commits_first_but_started_later_is_never_skipped(client, team, round_id,
                                                                        assign, pull):
    """Two writers at once: the second waits for the first's feed lock, so seqs commit in order.

    A phone pulling while the first is still open sees neither; once both commit it sees both.
    """
    import threading

    from sqlalchemy import text
    from sqlalchemy.orm import Session

    assign(round_id, "ani", household_ids=["KLG-A1", "KLG-A2"])
    _, cursor = pull("ani")
    engine = _db.engine
    first = Session(engine)
    first.connection(execution_options={"tapak_begin_immediate": True})
    first_seq = feed.household_changed(first, ["KLG-A1"])  # holds the feed lock, uncommitted
    done: dict = {}

    def second_writer():
        try:
            with Session(engine) as session, write_transaction(session):
                done["seq"] = feed.household_changed(session, ["KLG-A2"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            done["error"] = exc

    thread = threading.Thread(target=second_writer)
    thread.start()
    if engine.dialect.name == "postgresql":  # wait until it is blocked on the lock, not longer
        with engine.connect() as conn:
            for _ in range(500):
                waiting = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")).scalar()
                if waiting or not thread.is_alive():
                    break
                threading.Event().wait(0.01)
    between = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=team["ani"]).get_json()
    assert between["changes"] == [] and "seq" not in done
    first.commit()
    first.close()
    thread.join()
    assert "error" not in done and done["seq"] > first_seq
    _db.session.rollback()  # the test's app context keeps one session: drop its read snapshot
    changes, _ = pull("ani", cursor)
    assert kinds(changes) == [("household", "upsert", "KLG-A1"),
                              ("household", "upsert", "KLG-A2")]
