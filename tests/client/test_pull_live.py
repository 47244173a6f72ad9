"""Pulling the change feed into the client's local store, against a live server."""

from __future__ import annotations

import json

import pytest

from sync.client import RetryPolicy
from tests.client.test_push_live import Crash


def local(client):
    return (sorted(client.households()), sorted(a["household_id"]
                                                for a in client.assignments().values()))


def test_pull_follows_more_page_by_page_into_the_local_store(live, make_client):
    user, families = live.enumerator(7)
    client = make_client(user, pull_limit=3)
    report = client.pull()
    # 7 assignments, 7 households and the form: 15 changes, 3 a page.
    assert (report.pages, report.changes, report.restarted) == (5, 15, False)
    assert local(client) == (sorted(families), sorted(families))
    record = client.households()[families[0]]
    assert record["base_version"] == 1 and record["record"]["id_keluarga"] == families[0]
    [form] = client.forms().values()
    assert (form["form_id"], form["version"]) == ("verifikasi_keluarga", 1)
    assert form["definition"]["version"] == 1 and report.forms_fetched == 1
    again = client.pull()
    assert (again.pages, again.changes, again.forms_fetched) == (1, 0, 0)


def test_a_crash_between_a_page_and_storing_it_repeats_only_that_page(live, make_client):
    user, families = live.enumerator(5)
    seen = []

    def on_step(step, detail):
        if step == "pull:page":
            seen.append(detail["cursor"])
            if len(seen) == 2:
                raise Crash(step)

    client = make_client(user, pull_limit=4, on_step=on_step)
    with pytest.raises(Crash):
        client.pull()
    assert client.outbox.get("cursor") == seen[0]  # the first page and its cursor, no more
    stored_after_one_page = sum(len(x) for x in local(client))
    assert stored_after_one_page == 4 - 1  # four changes, one of them the form
    outbox = client.outbox.path
    client.close()
    resumed = make_client(user, outbox=outbox, pull_limit=4)
    report = resumed.pull()
    assert report.changes == 11 - 4
    assert local(resumed) == (sorted(families), sorted(families))


def test_410_drops_the_cursor_and_the_local_store_and_starts_again(live, make_client):
    user, families = live.enumerator(3)
    client = make_client(user)
    client.pull()
    # Something the server will never send again (a family long gone), and a new family.
    client.outbox.db["households"].insert({"household_id": "KLG-GONE", "base_version": 1,
                                           "record": json.dumps({}), "seq": 1})
    extra = live.pool.pop(0)
    live.assign(user, [extra])
    # An operator restores a backup and resets the feed: every cursor is now stale.
    with live.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE feed_state SET epoch = epoch + 1")
    report = client.pull()
    assert report.restarted is True
    assert local(client) == (sorted([*families, extra]), sorted([*families, extra]))
    assert client.forms() and client.outbox.get("cursor")
    assert client.pull().restarted is False


def test_a_reassigned_family_leaves_the_old_phone_and_reaches_the_new(live, make_client):
    ani, families = live.enumerator(2)
    budi, _ = live.enumerator(0)
    ani_client, budi_client = make_client(ani), make_client(budi)
    ani_client.pull()
    budi_client.pull()
    live.assign(budi, [families[0]])
    ani_client.pull()
    budi_client.pull()
    assert local(ani_client) == ([families[1]], [families[1]])
    assert local(budi_client) == ([families[0]], [families[0]])


def test_pull_through_a_faulty_network(live, make_client, proxy):
    user, families = live.enumerator(4)
    client = make_client(user, server=proxy.url, pull_limit=2, retry=RetryPolicy(
        max_attempts=6, base_delay=0.01, max_delay=0.1, timeout=(2.0, 10.0)))
    proxy.plan("/api/v1/sync/pull", 503, "reset", "lose", (429, 0))
    report = client.pull()
    assert local(client) == (sorted(families), sorted(families))
    assert report.changes == 9
    pulls = [fault for _m, path, fault in proxy.log if path.startswith("/api/v1/sync/pull")]
    assert pulls[:4] == [503, "reset", "lose", (429, 0)]
