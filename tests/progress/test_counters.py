"""The trigger-kept counters equal a full recount after every kind of write."""

import datetime as dt
import random

from sqlalchemy import delete, select, update

from sync import assignments as core
from sync.db import write_transaction
from sync.models.assignment import Assignment, Round
from sync.models.conflict import Conflict
from sync.models.registry import Keluarga
from sync.progress import counters, counts, escalate, open_conflict_counts, recount
from tests.conftest import _empty_tables

ANYWHERE = lambda code: True  # noqa: E731


def test_mixed_sequence_matches_a_recount(db, client, field, add_families, add_conflicts,
                                          consistent):
    consistent()
    rid = field.round_id
    view = counts(db, rid)
    assert view["31.73.01.1001"] == {"households": 1, "assigned": 1, "pending": 1}
    assert view["31.72.01.1001"] == {"households": 1}
    add_families([("KLG-C1", "31.73.01.1002"), ("KLG-C2", "31.73.01.1002"),
                  ("KLG-C3", "31.73.01.1003")])
    consistent()

    # Assign by kelurahan: A2 moves from budi to ani, C1 and C2 are new.
    r = client.post("/api/v1/assignments", headers=field.headers["spv"], json={
        "round_id": rid, "enumerator": "ani", "kelurahan": "31.73.01.1002"})
    assert r.status_code == 201, r.get_json()
    assert counts(db, rid)["31.73.01.1002"]["assigned"] == 3
    consistent()
    # Reassign one back to budi, unassign another.
    r = client.post("/api/v1/assignments", headers=field.headers["spv"], json={
        "round_id": rid, "enumerator": "budi", "household_ids": ["KLG-C1"]})
    assert r.get_json()["moved"] == 1
    assert client.delete(f"/api/v1/assignments/{rid}/KLG-C2",
                         headers=field.headers["spv"]).status_code == 204
    consistent()

    # Push a visit: ingest's bulk UPDATE marks the assignment visited.
    visit, _images = field.visit("KLG-A1", with_photos=False)
    assert field.push([visit]).status_code == 200
    assert counts(db, rid)["31.73.01.1001"].get("visited") == 1
    consistent()

    # Statuses through the core, and a worker-like bulk update of status and review state.
    with write_transaction(db):
        core.set_status(db, rid, "KLG-A2", "returned", note="foto kurang jelas")
    db.execute(update(Assignment).where(Assignment.household_id == "KLG-A1")
               .values(status="done", review_state="needs_review"))
    db.commit()
    consistent()
    db.execute(update(Assignment).where(Assignment.household_id == "KLG-A1")
               .values(review_state="verified"))
    db.commit()
    assert counts(db, rid)["31.73.01.1001"] == {
        "households": 1, "assigned": 1, "done": 1, "verified": 1}

    # Conflicts: bulk insert, one without a round, resolve, escalate, reopen.
    add_conflicts([("KLG-A1", "31.73.01.1001", "photo_reused", rid),
                   ("KLG-A1", "31.73.01.1001", "location_far", rid),
                   ("KLG-A2", "31.73.01.1002", "photo_reused", None)], age_days=10)
    add_conflicts([("KLG-C1", "31.73.01.1002", "visit_too_short", rid)])
    consistent()
    assert open_conflict_counts(db, kelurahan="31.73.01.1002") == {"photo_reused": 1,
                                                                   "visit_too_short": 1}
    assert open_conflict_counts(db, kecamatan="31.73.01") == {
        "location_far": 1, "photo_reused": 2, "visit_too_short": 1}
    assert escalate(db, dt.timedelta(days=7)) == 3
    db.commit()
    assert counts(db, rid)["31.73.01.1002"]["conflicts_escalated"] == 1
    db.execute(update(Conflict).where(Conflict.kind == "photo_reused")
               .values(status="resolved", resolution="keep_registry"))
    db.commit()
    consistent()
    db.execute(update(Conflict).where(Conflict.kind == "photo_reused", Conflict.round_id == rid)
               .values(status="open", resolution=None))
    db.commit()
    consistent()
    assert escalate(db, dt.timedelta(days=7)) == 0  # flagged once

    # ORM deletes and updates of conflicts.
    row = db.scalar(select(Conflict).where(Conflict.kind == "location_far"))
    row.kind = "location_outside_area"
    db.commit()
    consistent()
    db.delete(db.scalar(select(Conflict).where(Conflict.kind == "visit_too_short")))
    db.commit()
    consistent()

    # The registry: a family moves, another is removed, another deleted (cascades).
    db.execute(update(Keluarga).where(Keluarga.id == "KLG-A2")
               .values(kode_kelurahan="31.73.01.1003"))
    db.execute(update(Keluarga).where(Keluarga.id == "KLG-C3")
               .values(removed_at=dt.datetime.now(dt.UTC)))
    db.commit()
    assert counts(db, rid)["31.73.01.1003"]["returned"] == 1
    consistent()
    db.execute(delete(Keluarga).where(Keluarga.id == "KLG-C1"))
    db.commit()
    consistent()

    # A round deleted: its assignments go, its conflicts lose their round (round 0).
    with write_transaction(db):
        second = core.create_round(db, "Round two", dt.date(2026, 1, 1),
                                   dt.date(2026, 12, 31)).id
        core.assign(db, second, field.users["ani"], [("KLG-A1", "31.73.01.1001")],
                    actor_id=None, actor_covers=ANYWHERE, enumerator_covers=ANYWHERE)
    add_conflicts([("KLG-A1", "31.73.01.1001", "inclusion_error", second)])
    assert counts(db, second)["31.73.01.1001"]["pending"] == 1
    consistent()
    db.execute(delete(Round).where(Round.id == second))
    db.commit()
    consistent()
    assert recount(db, None)["31.73.01.1001"] == {"households": 1,
                                                 "conflicts_open:inclusion_error": 1}


def test_emptying_every_table_leaves_no_counts(db, field, add_conflicts, consistent):
    add_conflicts([("KLG-A1", "31.73.01.1001", "photo_reused", field.round_id)])
    consistent()
    db.commit()
    _empty_tables()
    assert counters(db) == {}


def test_random_sequences_match_a_recount(db, field, add_families, add_conflicts, consistent):
    """Random assign / move / unassign / status / review / conflict writes, ORM and bulk."""
    rng = random.Random(20261201)
    kel = ["31.73.01.1001", "31.73.01.1002", "31.73.01.1003", "31.73.01.1004"]
    fams = [(f"KLG-R{i:02d}", kel[i % 4]) for i in range(24)]
    add_families(fams)
    rounds = [field.round_id]
    with write_transaction(db):
        rounds.append(core.create_round(db, "Round two", dt.date(2026, 1, 1),
                                        dt.date(2026, 12, 31)).id)
    users = list(field.users.values())
    kinds = ["photo_reused", "location_far", "inclusion_error"]
    for _step in range(120):
        op = rng.choice(["assign", "assign", "unassign", "status", "review", "bulk_status",
                         "conflicts", "resolve", "escalate", "move"])
        r = rng.choice(rounds)
        with write_transaction(db):
            if op == "assign":
                chosen = rng.sample(fams, 5)
                core.assign(db, r, rng.choice(users), chosen, actor_id=None,
                            actor_covers=ANYWHERE, enumerator_covers=ANYWHERE)
            elif op == "unassign":
                a = db.scalar(select(Assignment).where(Assignment.round_id == r).limit(1))
                if a:
                    core.unassign(db, r, a.household_id, actor_covers=ANYWHERE)
            elif op == "status":
                a = db.scalar(select(Assignment).order_by(Assignment.id.desc()).limit(1))
                if a:
                    core.set_status(db, a.round_id, a.household_id,
                                    rng.choice(["pending", "visited", "returned", "done"]))
            elif op == "review":
                db.execute(update(Assignment).where(Assignment.id % 3 == rng.randrange(3))
                           .values(review_state=rng.choice(
                               [None, "verified", "needs_review", "rejected"])))
            elif op == "bulk_status":
                db.execute(update(Assignment).where(Assignment.status.in_(("pending",
                                                                           "returned")))
                           .values(status="visited"))
            elif op == "conflicts":
                picks = rng.sample(fams, 3)
                add_conflicts([(f, k, rng.choice(kinds), rng.choice(rounds + [None]))
                               for f, k in picks], age_days=rng.choice([0, 9]))
            elif op == "resolve":
                db.execute(update(Conflict).where(Conflict.id % 2 == rng.randrange(2),
                                                  Conflict.status == "open")
                           .values(status=rng.choice(["resolved", "dismissed"])))
            elif op == "escalate":
                escalate(db, dt.timedelta(days=7))
            elif op == "move":
                f = rng.choice(fams)[0]
                db.execute(update(Keluarga).where(Keluarga.id == f)
                           .values(kode_kelurahan=rng.choice(kel)))
        consistent()
    assert sum(n for (_r, _k, m), n in counters(db).items() if m == "assigned") > 0
