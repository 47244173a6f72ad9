"""The reconciliation worker on a real database: outcomes, write-back, audit, feed, holds."""

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from sync.models import (
    Assignment,
    Conflict,
    FeedEntry,
    VerifiedChange,
    VerifiedRecord,
    VerifiedVersion,
    Visit,
)
from sync.reconcile.worker import process_visits
from sync.registry import apply_changes


def visit_row(db, uuid) -> Visit:
    db.commit()  # end the read snapshot: other sessions may have written
    return db.get(Visit, uuid)


def conflicts(db, uuid=None) -> list[Conflict]:
    q = select(Conflict).order_by(Conflict.id)
    if uuid:
        q = q.where(Conflict.visit_uuid == uuid)
    return list(db.scalars(q))


def assignment(db, hid="KLG-A1") -> Assignment:
    db.commit()
    return db.scalar(select(Assignment).where(Assignment.household_id == hid))


def feed_types(db, user_id) -> set[tuple[str, str]]:
    return {(e.type, e.entity_id) for e in db.scalars(
        select(FeedEntry).where(FeedEntry.user_id == user_id))}


def test_a_visit_that_confirms_the_record_is_verified(db, located, deliver, reconcile):
    v, images = located()
    assert deliver((v, images))[0]["status"] == "waiting_photos"  # photos came after the push
    assert reconcile() == 1
    row = visit_row(db, v["uuid"])
    assert row.status == "verified"
    assert conflicts(db) == []
    assert "rumah.lantai" in row.comparison["confirmed"]
    assert row.comparison["proposed"] == {} and row.result_version == 1
    a = assignment(db)
    assert (a.status, a.review_state) == ("done", "verified")
    # the phone is told its assignment is done
    assert ("assignment", f"{a.round_id}:KLG-A1") in feed_types(db, a.enumerator_id)


def test_a_change_needing_review_is_flagged_and_not_written_back(db, located, deliver,
                                                                 reconcile):
    v, images = located()
    v["answers"]["rumah"]["lantai"] = 8  # earth floor instead of cement
    deliver((v, images))
    reconcile()
    row = visit_row(db, v["uuid"])
    assert row.status == "needs_review"
    [c] = [c for c in conflicts(db) if c.kind == "field_mismatch"]
    assert (c.field, c.registry_value, c.visit_value, c.severity) == ("rumah.lantai", 6, 8, "soft")
    assert (c.household_id, c.kelurahan, c.kecamatan, c.status) == (
        "KLG-A1", "31.73.01.1001", "31.73.01", "open")
    assert c.record_version == 1 and c.round_id == row.round_id
    record = db.get(VerifiedRecord, "KLG-A1")
    assert record.version == 1 and record.doc["rumah"]["lantai"] == 6
    assert row.comparison["proposed"] == {"rumah.lantai": 8}
    a = assignment(db)
    assert (a.status, a.review_state) == ("visited", "needs_review")


def test_an_auto_accepted_change_is_applied_with_audit_and_feed(db, located, deliver,
                                                               reconcile):
    v, images = located()
    v["answers"]["alamat"] = "Jl. Kamal Raya No. 14"
    deliver((v, images))
    reconcile()
    row = visit_row(db, v["uuid"])
    assert row.status == "verified" and row.comparison["applied"] == {
        "alamat": "Jl. Kamal Raya No. 14"}
    record = db.get(VerifiedRecord, "KLG-A1")
    assert record.version == 2 == row.result_version
    assert record.doc["alamat"] == "Jl. Kamal Raya No. 14"
    version = db.scalar(select(VerifiedVersion).where(VerifiedVersion.household_id == "KLG-A1",
                                                      VerifiedVersion.version == 2))
    assert (version.source, version.visit_uuid, version.actor_id) == (
        "visit", v["uuid"], row.enumerator_id)
    assert version.doc["alamat"] == "Jl. Kamal Raya No. 14"  # snapshot kept for later bases
    [change] = db.scalars(select(VerifiedChange).where(VerifiedChange.version_id == version.id))
    assert (change.path, change.old_value, change.new_value) == (
        "alamat", "Jl. Kamal Raya No. 12", "Jl. Kamal Raya No. 14")
    assert ("household", "KLG-A1") in feed_types(db, row.enumerator_id)


def test_reconciling_a_visit_twice_creates_nothing_new(db, located, deliver, reconcile):
    v, images = located()
    v["answers"]["rumah"]["lantai"] = 8
    v["answers"]["alamat"] = "Jl. Baru 1"
    deliver((v, images))
    reconcile()
    before = [(c.kind, c.field) for c in conflicts(db)]
    versions = db.scalar(select(func.count()).select_from(VerifiedVersion))
    row = visit_row(db, v["uuid"])
    row.status = "processing"
    db.commit()
    assert process_visits(db, [v["uuid"]]) == {v["uuid"]: "needs_review"}
    assert [(c.kind, c.field) for c in conflicts(db)] == before
    assert db.scalar(select(func.count()).select_from(VerifiedVersion)) == versions


def test_a_record_changed_since_the_base_is_a_concurrent_update(db, located, deliver,
                                                                reconcile):
    v, images = located()  # base_version 1, lantai 6 as recorded
    v["answers"]["rumah"]["lantai"] = 8
    apply_changes(db, "KLG-A1", {"rumah.lantai": 2}, source="review", actor_id=None)
    db.commit()
    deliver((v, images))
    reconcile()
    [c] = [c for c in conflicts(db) if c.field == "rumah.lantai" and c.kind != "exclusion_error"]
    assert (c.kind, c.severity) == ("concurrent_update", "hard")
    assert (c.base_value, c.registry_value, c.visit_value) == (6, 2, 8)
    row = visit_row(db, v["uuid"])
    assert row.status == "needs_review"
    assert row.comparison["concurrent"] == {"rumah.lantai": 8}
    assert "rumah.lantai" not in row.comparison["confirmed"]


def test_a_visit_that_did_not_see_a_change_is_a_soft_concurrent_update(db, located, deliver,
                                                                       reconcile):
    v, images = located()  # lantai 6 as the base
    apply_changes(db, "KLG-A1", {"rumah.lantai": 2}, source="review", actor_id=None)
    db.commit()
    deliver((v, images))
    reconcile()
    [c] = [c for c in conflicts(db) if c.kind == "concurrent_update"]
    assert (c.field, c.severity) == ("rumah.lantai", "soft")


def chain(located, n=2):
    """Visits of one offline chain (one branch): the second built on the first."""
    first, img1 = located()
    second, img2 = located()
    second["branch_id"] = first["branch_id"]
    second["trunk_version"] = first["trunk_version"]
    second["base_version"] = first["base_version"] + 1
    second["started_at"] = "2026-02-04T09:00:00+07:00"
    second["ended_at"] = "2026-02-04T09:25:00+07:00"
    return (first, img1), (second, img2)


def test_a_visit_whose_chain_predecessor_is_missing_is_held_then_released(
        db, located, deliver, reconcile):
    (first, img1), (second, img2) = chain(located)
    deliver((second, img2))
    reconcile()
    row = visit_row(db, second["uuid"])
    assert row.status == "held" and "previous visit" in row.hold_reason
    deliver((first, img1))
    reconcile()
    assert visit_row(db, first["uuid"]).status in ("verified", "needs_review")
    row = visit_row(db, second["uuid"])
    assert row.status in ("verified", "needs_review") and row.hold_reason is None
    # built on the server version the first visit left
    assert row.comparison["base_version"] == visit_row(db, first["uuid"]).result_version


def test_a_held_visit_is_forced_through_after_the_hold_and_flagged(db, located, deliver,
                                                                   reconcile):
    (_, _), (second, img2) = chain(located)
    deliver((second, img2))
    reconcile()
    assert visit_row(db, second["uuid"]).status == "held"
    row = visit_row(db, second["uuid"])
    row.received_at = row.received_at - dt.timedelta(days=6)
    db.commit()
    reconcile()
    row = visit_row(db, second["uuid"])
    assert row.status == "needs_review"
    assert [c.kind for c in conflicts(db, second["uuid"])] == ["out_of_order"]


def test_one_bad_visit_never_costs_its_neighbours(db, located, deliver, reconcile):
    good, g_img = located()
    bad, b_img = located("KLG-A1")
    bad["started_at"] = "2026-02-05T09:00:00+07:00"
    bad["ended_at"] = "2026-02-05T09:25:00+07:00"
    deliver((good, g_img), (bad, b_img))
    row = visit_row(db, bad["uuid"])
    row.answers = ["not", "an", "object"]  # stored data no rule can read
    db.commit()
    reconcile()
    assert visit_row(db, good["uuid"]).status in ("verified", "needs_review")
    row = visit_row(db, bad["uuid"])
    assert row.status in ("queued", "failed") and row.error
    assert row.attempts >= 1 and row.claimed_by == "test"  # failed tries still count
    for _ in range(6):  # retried until it is set aside
        reconcile()
    assert visit_row(db, bad["uuid"]).status == "failed"


def test_the_same_photo_at_another_family_is_flagged(db, located, deliver, reconcile):
    v1, images1 = located("KLG-A1")
    deliver((v1, images1))
    reconcile()
    v2, images2 = located("KLG-A2")
    reused = v2["photos"][0]
    del images2[reused["field"]]
    reused["sha256"] = v1["photos"][0]["sha256"]  # the same bytes, another family
    assert deliver((v2, images2), who="budi")[0]["status"] in ("accepted", "waiting_photos")
    reconcile()
    assert visit_row(db, v1["uuid"]).status == "verified"
    assert visit_row(db, v2["uuid"]).status == "needs_review"
    [c] = [c for c in conflicts(db, v2["uuid"]) if c.kind == "photo_reused"]
    assert (c.severity, c.field, c.registry_value) == ("hard", reused["field"], ["KLG-A1"])


def test_several_workers_share_the_queue_without_processing_a_visit_twice(
        app, db, located, deliver):
    from server.extensions import db as flask_db
    from sync.reconcile.worker import drain

    pairs = [located() for _ in range(12)]
    for i, (v, _) in enumerate(pairs):
        v["started_at"] = f"2026-02-03T{8 + i // 2:02d}:{(i % 2) * 30:02d}:00+07:00"
        v["ended_at"] = f"2026-02-03T{8 + i // 2:02d}:{(i % 2) * 30 + 20:02d}:00+07:00"
    deliver(*pairs)
    errors = []

    def work(name):
        with app.app_context():
            session = flask_db.session
            try:
                drain(session, worker=name, limit=2)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                session.remove()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = [visit_row(db, v["uuid"]) for v, _ in pairs]
    assert all(r.status in ("verified", "needs_review") for r in rows)
    assert all(r.attempts == 1 for r in rows)
    # each finding once per visit, whichever worker stored it
    keys = [(c.visit_uuid, c.key) for c in conflicts(db)]
    assert len(keys) == len(set(keys))


def test_cli_reconcile_run_once(db, runner, located, deliver):
    v, images = located()
    deliver((v, images))
    result = runner.invoke(args=["reconcile", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "reconciled 1 visits" in result.output
    assert visit_row(db, v["uuid"]).status == "verified"
    status = runner.invoke(args=["reconcile", "status"])
    assert "verified: 1" in status.output


@pytest.mark.parametrize("code", [3, 6])
def test_a_family_not_found_needs_review(db, located, deliver, reconcile, code):
    v, images = located()
    v["answers"] = {"hasil_kunjungan": code, "lokasi": v["answers"]["lokasi"],
                    "foto_depan": v["answers"].get("foto_depan")}
    v["photos"] = [p for p in v["photos"] if p["field"] == "foto_depan"]
    images = {k: d for k, d in images.items() if k == "foto_depan"}
    assert deliver((v, images))[0]["status"] in ("accepted", "waiting_photos")
    reconcile()
    assert visit_row(db, v["uuid"]).status == "needs_review"
    assert "household_not_found" in {c.kind for c in conflicts(db, v["uuid"])}


def test_a_newer_import_touching_a_locally_changed_field_is_upstream_changed(
        db, located, deliver, reconcile, extract, tmp_path):
    import json

    from sync.importer import import_extract

    v, images = located()
    v["answers"]["alamat"] = "Jl. Kamal Raya No. 14"  # auto-accepted: a local change
    deliver((v, images))
    reconcile()
    assert db.get(VerifiedRecord, "KLG-A1").local_changes
    rows = [json.loads(line) for line in extract.read_text().splitlines()]
    rows[0]["alamat"] = "Jl. Kamal Raya No. 16"  # DTSEN's newer extract moves it too
    newer = tmp_path / "newer.jsonl"
    newer.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    import_extract(db, newer, label="newer", rejects=tmp_path / "rej.jsonl")
    db.commit()
    record = db.get(VerifiedRecord, "KLG-A1")
    assert record.upstream_version == 2 and record.doc["alamat"] == "Jl. Kamal Raya No. 14"
    again, images = located()
    again["answers"]["alamat"] = "Jl. Kamal Raya No. 18"
    again["started_at"] = "2026-02-06T09:00:00+07:00"
    again["ended_at"] = "2026-02-06T09:30:00+07:00"
    from sync.assignments import set_status

    set_status(db, assignment(db).round_id, "KLG-A1", "returned", note="check the address")
    db.commit()
    assert deliver((again, images))[0]["status"] in ("accepted", "waiting_photos")
    reconcile()
    [c] = [c for c in conflicts(db, again["uuid"]) if c.kind == "upstream_changed"]
    assert (c.field, c.severity) == ("alamat", "hard")


def test_a_failure_logs_where_it_happened_but_no_personal_data(db, located, deliver, reconcile,
                                                               monkeypatch, caplog):
    import logging

    import sync.reconcile.worker as worker

    def boom(*_args, **_kw):
        raise ValueError("Siti Aminah 3173014508850053")  # as a message might quote a row

    monkeypatch.setattr(worker, "three_way", boom)
    v, images = located()
    deliver((v, images))
    with caplog.at_level(logging.ERROR, logger="tapak.reconcile"):
        reconcile()
    records = [r for r in caplog.records if r.getMessage() == "reconciliation failed"]
    assert records and all(r.exception == "ValueError" and r.visit_uuid == v["uuid"]
                           for r in records)
    assert any("worker.py" in f for f in records[0].frames)
    assert "Siti" not in caplog.text and "3173014508850053" not in caplog.text
    assert len(records) == 1  # retried at the next run, not in a tight loop
    assert visit_row(db, v["uuid"]).status == "queued"


def _moved(v, images, started, ended, dlat=0.0):
    """The visit at ``started``-``ended`` (Jakarta time), its point ``dlat`` degrees north."""
    v["started_at"], v["ended_at"] = f"{started}+07:00", f"{ended}+07:00"
    v["location"] = dict(v["location"], lat=v["location"]["lat"] + dlat)
    v["answers"]["lokasi"] = dict(v["location"])
    return v, images


def _travel(db, uuid):
    return [c for c in conflicts(db, uuid) if c.kind == "impossible_travel"]


def test_impossible_travel_finds_the_previous_visit_in_an_earlier_batch_and_in_its_own(
        db, located, deliver, reconcile):
    # a visit days before (outside any short window), then one far away just after another
    old = _moved(*located("KLG-A1"), "2026-01-27T09:00:00", "2026-01-27T09:20:00")
    first = _moved(*located("KLG-A1"), "2026-02-03T09:00:00", "2026-02-03T09:20:00")
    deliver(old)
    deliver(first)
    assert reconcile() == 2
    far = _moved(*located("KLG-A1"), "2026-02-03T09:25:00", "2026-02-03T09:45:00", dlat=0.9)
    back = _moved(*located("KLG-A1"), "2026-02-03T09:50:00", "2026-02-03T10:10:00")
    deliver(far, back)
    assert reconcile() == 2
    assert _travel(db, first[0]["uuid"]) == []  # six days after the one before: no hurry
    # 100 km in 5 minutes from the visit of the earlier batch, and back within the batch
    (f,), (b,) = _travel(db, far[0]["uuid"]), _travel(db, back[0]["uuid"])
    assert f.detail["previous_visit_uuid"] == first[0]["uuid"]
    assert b.detail["previous_visit_uuid"] == far[0]["uuid"]


def test_the_previous_visit_is_found_however_long_before(db, located, deliver):
    from sync.reconcile import worker

    old = _moved(*located("KLG-A1"), "2026-01-13T09:00:00", "2026-01-13T09:20:00")
    new = _moved(*located("KLG-A1"), "2026-02-03T09:00:00", "2026-02-03T09:20:00")
    deliver(old, new)
    db.commit()
    visits = worker._read_visits(db, [old[0]["uuid"], new[0]["uuid"]], claimed=False)
    previous = worker._previous_visits(db, visits)
    assert old[0]["uuid"] not in previous  # the enumerator's first visit
    assert previous[new[0]["uuid"]]["uuid"] == old[0]["uuid"]
    assert previous[new[0]["uuid"]]["ended_at"] == dt.datetime(2026, 1, 13, 2, 20,
                                                                tzinfo=dt.UTC)


def _reimport(db, extract, tmp_path, change) -> None:
    import json

    from sync.importer import import_extract

    rows = [json.loads(line) for line in extract.read_text().splitlines()]
    change({r["id_keluarga"]: r for r in rows})
    newer = tmp_path / "newer.jsonl"
    newer.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    import_extract(db, newer, label="newer", rejects=tmp_path / "rej.jsonl")
    db.commit()


def _nik_conflicts(db, uuid) -> list[Conflict]:
    return [c for c in conflicts(db, uuid) if c.kind == "duplicate_identity"
            and (c.detail or {}).get("code") == "nik_other_family"]


def test_a_nik_two_extracts_share_is_flagged_at_both_families(db, located, deliver, reconcile,
                                                               extract, tmp_path):
    from sync.models import SharedNik

    shared = db.get(VerifiedRecord, "KLG-A1").doc["anggota"][0]["nik"]

    def give_a2_the_nik(rows):
        rows["KLG-A2"]["anggota"][1]["nik"] = shared

    _reimport(db, extract, tmp_path, give_a2_the_nik)
    assert db.scalars(select(SharedNik.nik)).all() == [shared]  # kept by the importer
    v1, images1 = located("KLG-A1")
    v2, images2 = located("KLG-A2")
    deliver((v1, images1))
    deliver((v2, images2), who="budi")
    reconcile()
    [c1] = _nik_conflicts(db, v1["uuid"])
    [c2] = _nik_conflicts(db, v2["uuid"])
    assert (c1.visit_value, c1.registry_value) == (shared, ["KLG-A2"])
    assert (c2.visit_value, c2.registry_value) == (shared, ["KLG-A1"])


def test_a_member_a_visit_adds_with_another_familys_nik_is_flagged(db, located, deliver,
                                                                    reconcile):
    other = db.get(VerifiedRecord, "KLG-A2").doc["anggota"][0]["nik"]
    v, images = located("KLG-A1")
    newcomer = dict(v["answers"]["anggota"][-1], nik=other)
    v["answers"]["anggota"].append(newcomer)
    deliver((v, images))
    reconcile()
    [c] = _nik_conflicts(db, v["uuid"])
    assert (c.visit_value, c.registry_value) == (other, ["KLG-A2"])
    assert {x.visit_uuid for x in _nik_conflicts(db, None)} == {v["uuid"]}  # no other


def test_nik_holders_equal_a_lookup_of_every_nik(db, located, deliver, extract, tmp_path):
    """The shortcut for a family's own registry NIKs gives what looking each one up gives,
    with a shared NIK, a NIK a visit adds and a record changed locally."""
    from sync.reconcile import worker

    shared = db.get(VerifiedRecord, "KLG-A1").doc["anggota"][0]["nik"]
    _reimport(db, extract, tmp_path,
              lambda rows: rows["KLG-B1"]["anggota"][0].update(nik=shared))
    record = db.get(VerifiedRecord, "KLG-A2")
    apply_changes(db, "KLG-A2", {"alamat": "Jl. Lain No. 1"}, source="review", actor_id=None)
    db.commit()
    assert db.get(VerifiedRecord, "KLG-A2").local_changes
    pairs = [located(h) for h in ("KLG-A1", "KLG-A2")]
    added = record.doc["anggota"][0]["nik"][:-1] + "9"  # held by no family
    pairs[1][0]["answers"]["anggota"].append(dict(pairs[1][0]["answers"]["anggota"][-1],
                                                  nik=added))
    assert deliver(pairs[0])[0]["status"] in ("accepted", "waiting_photos")
    result = deliver(pairs[1], who="budi")[0]
    assert result["status"] in ("accepted", "waiting_photos"), result
    db.commit()
    visits = worker._read_visits(db, [v["uuid"] for v, _ in pairs], claimed=False)
    records = {r[0]: worker._Record(*r) for r in worker._rows(
        db, worker._RECORDS, ["KLG-A1", "KLG-A2"])}
    got = worker._nik_holders(db, visits, records)
    niks = {m["nik"] for r in records.values() for m in r.doc["anggota"]}
    niks |= {m["nik"] for v in visits for m in v.answers["anggota"]}
    every = worker._grouped(worker._raw_rows(db, worker._NIK_HOLDERS_SQL, niks))
    assert {n: got.get(n, set()) for n in niks} == {n: every.get(n, set()) for n in niks}
    assert len(visits) == 2 and added in niks and not got.get(added)
    assert got[shared] == {"KLG-A1", "KLG-B1"}  # B1, not visited, holds it too
    db.rollback()
