"""``flask assignments ...`` and ``flask feed ...``: the same rules as the API, from a shell."""

from sqlalchemy import select

from sync.models.assignment import Assignment


def invoke(runner, *args, ok=True):
    result = runner.invoke(args=[str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_rounds_assign_reassign_and_unassign_from_the_command_line(runner, db, team, pull):
    out = invoke(runner, "assignments", "round-create", "Groundcheck CLI", "--starts",
                 "2026-01-01", "--ends", "2026-03-31")
    round_id = int(out.split()[1].rstrip(":"))
    assert "Groundcheck CLI" in invoke(runner, "assignments", "rounds")
    out = invoke(runner, "assignments", "assign", round_id, "ani", "--household", "KLG-A1",
                 "--household", "KLG-B1")
    assert "assigned 1, moved 0, unchanged 0, skipped 1" in out
    assert "KLG-B1: outside_enumerator_areas" in out
    out = invoke(runner, "assignments", "assign", round_id, "budi", "--kelurahan",
                 "31.73.01.1001", "--rt", "003", "--rw", "007")
    assert "assigned 0, moved 1" in out
    rows = db.execute(select(Assignment.household_id, Assignment.enumerator_id)).all()
    assert len(rows) == 1 and rows[0][0] == "KLG-A1"
    changes, _ = pull("budi")
    assert [(c["type"], c["op"]) for c in changes] == [("assignment", "upsert"),
                                                      ("household", "upsert")]
    assert "unassigned KLG-A1" in invoke(runner, "assignments", "unassign", round_id, "KLG-A1")
    assert db.scalars(select(Assignment)).all() == []
    # Refusals are clean errors, not tracebacks.
    assert "not an enumerator" in invoke(runner, "assignments", "assign", round_id, "spv",
                                         "--household", "KLG-A1", ok=False)
    assert "--kelurahan" in invoke(runner, "assignments", "assign", round_id, "ani", ok=False)
    assert "No assignment" in invoke(runner, "assignments", "unassign", round_id, "KLG-A1",
                                     ok=False)


def test_feed_compact_and_reset_from_the_command_line(client, runner, team, round_id, assign,
                                                      pull):
    assign(round_id, "ani", household_ids=["KLG-A1"])
    _, old_cursor = pull("ani")
    assign(round_id, "budi", household_ids=["KLG-A1"])  # two tombstones on ani's feed
    _, fresh_cursor = pull("ani")
    assert "purged 0 delete entries" in invoke(runner, "feed", "compact")
    assert "purged 2 delete entries" in invoke(runner, "feed", "compact", "--days", "-1")
    gone = client.get(f"/api/v1/sync/pull?cursor={old_cursor}", headers=team["ani"])
    assert gone.status_code == 410
    assert client.get(f"/api/v1/sync/pull?cursor={fresh_cursor}",
                      headers=team["ani"]).status_code == 200
    assert "feed epoch is now" in invoke(runner, "feed", "reset", "--yes")
    assert client.get(f"/api/v1/sync/pull?cursor={fresh_cursor}",
                      headers=team["ani"]).status_code == 410
