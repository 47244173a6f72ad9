"""The per-enumerator counters (enumerator_load, migration 0013) equal a GROUP BY recount."""

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import delete, select, update

from server.extensions import db as flask_db
from sync import assignments as core
from sync.db import write_transaction
from sync.models.assignment import Assignment, Round
from sync.models.progress import EnumeratorLoad
from sync.models.registry import Keluarga
from sync.progress import enumerator_load, load_counters, recount_load, round_totals
from tests.conftest import _empty_tables
from tests.pages.conftest import Web

ANYWHERE = lambda code: True  # noqa: E731


@pytest.fixture
def same(db):
    """Assert that enumerator_load equals a recount, and return the counters."""

    def check():
        db.commit()
        have = load_counters(db)
        assert have == recount_load(db)
        by_round: dict = {}  # the rounds page's sums, as a GROUP BY round, status would give
        for (r, _e, metric), n in have.items():
            if metric != "assigned":
                by_round.setdefault(r, {})[metric] = by_round.get(r, {}).get(metric, 0) + n
        assert round_totals(db) == by_round
        return have

    return check


def _page_load(client, round_id, kelurahan, login=True):
    """The assignment page as the supervisor ``spv`` sees it."""
    if login:
        Web(client).login("spv")
    page = client.get(f"/review/penugasan?putaran={round_id}&kelurahan={kelurahan}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_load_follows_the_services(db, client, field, add_families, same):
    rid, ani, budi = field.round_id, field.users["ani"], field.users["budi"]
    spv = field.headers["spv"]
    assert same() == {(rid, ani, "assigned"): 1, (rid, ani, "pending"): 1,
                      (rid, budi, "assigned"): 1, (rid, budi, "pending"): 1}
    add_families([("KLG-C1", "31.73.01.1002"), ("KLG-C2", "31.73.01.1002"),
                  ("KLG-C3", "31.73.01.1002")])

    # Assign a kelurahan to ani: A2 moves from budi (reassignment), C1..C3 are new.
    r = client.post("/api/v1/assignments", headers=spv, json={
        "round_id": rid, "enumerator": "ani", "kelurahan": "31.73.01.1002"})
    assert r.status_code == 201 and r.get_json()["moved"] == 1
    assert enumerator_load(db, rid, [ani, budi]) == {
        ani: {"assigned": 5, "pending": 5}, budi: {}}
    same()
    # Reassign one back to budi, unassign another.
    assert client.post("/api/v1/assignments", headers=spv, json={
        "round_id": rid, "enumerator": "budi", "household_ids": ["KLG-C1"]}
    ).get_json()["moved"] == 1
    assert client.delete(f"/api/v1/assignments/{rid}/KLG-C2", headers=spv).status_code == 204
    assert enumerator_load(db, rid, [ani, budi]) == {
        ani: {"assigned": 3, "pending": 3}, budi: {"assigned": 1, "pending": 1}}
    same()

    # A pushed visit (ingest's bulk UPDATE), then the reconciliation worker.
    visit, _images = field.visit("KLG-A1", with_photos=False)
    assert field.push([visit]).status_code == 200
    assert enumerator_load(db, rid, [ani])[ani] == {"assigned": 3, "pending": 2, "visited": 1}
    same()
    worker = pytest.importorskip("sync.reconcile.worker")
    worker.run_once(db)
    db.commit()
    same()

    # Statuses through the core, and bulk updates of status, enumerator and round.
    with write_transaction(db):
        core.set_status(db, rid, "KLG-A2", "returned", note="foto kurang jelas")
        core.set_status(db, rid, "KLG-C3", "done")
    same()
    assert enumerator_load(db, rid, [ani])[ani]["returned"] == 1
    html = _page_load(client, rid, "31.73.01.1002")
    assert 'id="load-ani"' in html
    db.execute(update(Assignment).where(Assignment.enumerator_id == ani,
                                        Assignment.status == "pending")
               .values(enumerator_id=budi))
    same()
    with write_transaction(db):
        second = core.create_round(db, "Round two", dt.date(2026, 1, 1),
                                   dt.date(2026, 12, 31)).id
    db.execute(update(Assignment).where(Assignment.household_id == "KLG-C1")
               .values(round_id=second, enumerator_id=ani, status="visited"))
    have = same()
    assert have[(second, ani, "assigned")] == 1 and have[(second, ani, "visited")] == 1
    # ORM writes.
    row = db.scalar(select(Assignment).where(Assignment.household_id == "KLG-A2"))
    row.enumerator_id, row.status = budi, "pending"
    db.commit()
    same()
    db.delete(row)
    db.commit()
    same()

    # Closing the round ends its open assignments (status closed).
    with write_transaction(db):  # (the admin's service; the API is tested in test_round_close)
        assert core.close_round(db, rid) >= 1
    have = same()
    assert not any(m in ("pending", "visited", "returned") for (r, _e, m) in have if r == rid)

    # Cascades: a family deleted, then a whole round (one without visits: visits keep theirs).
    db.execute(delete(Keluarga).where(Keluarga.id == "KLG-C3"))
    same()
    with write_transaction(db):
        core.assign(db, second, budi, [("KLG-C2", "31.73.01.1002")], actor_id=None,
                    actor_covers=ANYWHERE, enumerator_covers=ANYWHERE)
    assert enumerator_load(db, second, [ani, budi]) == {
        ani: {"assigned": 1, "visited": 1}, budi: {"assigned": 1, "pending": 1}}
    db.execute(delete(Round).where(Round.id == second))
    have = same()
    assert have and {r for (r, _e, _m) in have} == {rid}


def test_the_page_reads_the_counters(db, client, field):
    """The assignment page shows what the counters hold (a counter changed by hand shows)."""
    rid, ani = field.round_id, field.users["ani"]
    html = _page_load(client, rid, "31.73.01.1001")
    assert 'id="load-ani"' in html
    db.execute(update(EnumeratorLoad).where(EnumeratorLoad.round_id == rid,
                                            EnumeratorLoad.enumerator_id == ani,
                                            EnumeratorLoad.metric == "assigned")
               .values(n=4321))
    db.commit()
    html = _page_load(client, rid, "31.73.01.1001", login=False)
    card = html.split('id="load-ani"', 1)[1].split("</li>", 1)[0]
    assert "4.321" in card or "4,321" in card or "4321" in card


def test_the_migration_fill_counts_existing_rows(db, field, same):
    """Migration 0013's fill, run on a table emptied by hand, gives back the same counters."""
    before = same()
    assert before
    db.execute(delete(EnumeratorLoad))
    db.commit()
    path = Path(__file__).parents[2] / "migrations" / "versions" / "0013_enumerator_load.py"
    spec = importlib.util.spec_from_file_location("migration_0013", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with flask_db.engine.begin() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            module._fill()
    assert same() == before


def test_emptying_every_table_leaves_no_load(db, field, same):
    assert same()
    db.commit()
    _empty_tables()
    assert load_counters(db) == {}
