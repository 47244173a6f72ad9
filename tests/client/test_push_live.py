"""The reference client against a live server: push, resends, lost answers, crashes."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import threading
import time
import uuid as uuidlib

import pytest
import requests

from sync.client import OfflineError, RetryPolicy, SyncClient, content_hash
from tests.client.conftest import PASSWORD, jpeg, run_client_cli, sha


def token(live, user, device="raw-device"):
    r = requests.post(live.url + "/api/v1/auth/token", timeout=10, json={
        "username": user, "password": PASSWORD, "device_id": device})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def raw_push(live, headers, visits, batch_id=None, device="raw-device"):
    r = requests.post(live.url + "/api/v1/sync/push", headers=headers, timeout=60, json={
        "batch_id": batch_id or str(uuidlib.uuid4()), "device_id": device, "visits": visits})
    assert r.status_code == 200, r.text
    return [x["status"] for x in r.json()["results"]]


def upload_all(live, headers, images):
    for data in images.values():
        r = requests.put(f"{live.url}/api/v1/photos/{sha(data)}", data=data, timeout=30,
                         headers={**headers, "Content-Type": "image/jpeg"})
        assert r.status_code in (200, 201), r.text


def states(client):
    return {v["uuid"]: v["state"] for v in client.outbox.visits()}


def assert_stored_once(live, client):
    """Every visit of the outbox is on the server exactly once, with the content sent."""
    mine = {v["uuid"]: v["content_hash"] for v in client.outbox.visits()}
    stored = live.stored(mine)
    assert stored == mine


# --------------------------------------------------------------------------- the happy path


def test_pull_add_sync_accepts_every_visit_with_its_photos(live, visits, make_client):
    user, families = live.enumerator(3)
    client = make_client(user)
    pulled = client.pull()
    assert sorted(client.households()) == sorted(families)
    assert pulled.forms_fetched == 1
    [form] = client.forms().values()
    assert form["definition"]["form_id"] == "verifikasi_keluarga"
    made = visits.for_client(client)
    for visit, images in made:
        client.add_visit(visit, images)
    report = client.sync()
    assert report.results == {"accepted": 3}
    assert report.photos_uploaded == sum(len(images) for _, images in made)
    assert set(states(client).values()) == {"accepted"}
    assert_stored_once(live, client)
    statuses = dict(live.rows("SELECT uuid, status FROM visits WHERE enumerator_id = "
                              "(SELECT id FROM users WHERE username = :u)", u=user))
    assert set(statuses.values()) == {"queued"}
    # The assignment is now "visited" and the phone hears of it through the feed.
    client.pull()
    assert {a["status"] for a in client.assignments().values()} == {"visited"}
    # Nothing left to do: a second sync sends nothing.
    again = client.sync()
    assert again.batches == 0 and again.photos_uploaded == 0


def test_photos_matched_by_hash_not_file_name(live, visits, make_client, tmp_path):
    user, _ = live.enumerator(1)
    client = make_client(user)
    client.pull()
    [(visit, images)] = visits.for_client(client)
    # Two files with the same (misleading) name in two folders: only the bytes count.
    paths = {}
    for i, (field, data) in enumerate(images.items()):
        folder = tmp_path / f"dcim{i}"
        folder.mkdir()
        paths[field] = folder / "IMG_0001.jpg"
        paths[field].write_bytes(data)
    client.add_visit(visit, paths)
    stored = client.outbox.visit(visit["uuid"])["visit"]
    assert {p["field"]: p["sha256"] for p in stored["photos"]} == {
        f: sha(d) for f, d in images.items()}
    assert client.sync().results == {"accepted": 1}
    assert live.rows("SELECT field, sha256 FROM visit_photos WHERE visit_uuid = :u ORDER BY "
                     "field", u=visit["uuid"]) == sorted((f, sha(d)) for f, d in images.items())


# --------------------------------------------------------------------------- resends


def test_the_same_batch_twice_is_all_duplicate_and_nothing_doubled(live, visits):
    user, families = live.enumerator(4)
    headers = token(live, user)
    batch = []
    for household_id in families:
        record, version = _record(live, household_id)
        visit, images = visits.make(household_id, record, version)
        upload_all(live, headers, images)
        batch.append(visit)
    batch_id = str(uuidlib.uuid4())
    assert raw_push(live, headers, batch, batch_id) == ["accepted"] * 4
    counts = _counts(live, user)
    # The very same request again (same batch_id): every visit is a harmless duplicate.
    assert raw_push(live, headers, batch, batch_id) == ["duplicate"] * 4
    # Reordered keys and a new batch id: still the same visits.
    shuffled = [json.loads(json.dumps(v, sort_keys=True)) for v in reversed(batch)]
    assert raw_push(live, headers, shuffled) == ["duplicate"] * 4
    after = _counts(live, user)
    assert after["visits"] == counts["visits"] == 4
    assert after["visit_photos"] == counts["visit_photos"]
    assert after["feed"] == counts["feed"]
    assert after["batches"] == counts["batches"] + 2  # each request kept as evidence


def _record(live, household_id):
    doc, version = live.rows("SELECT doc, version FROM verified_records WHERE household_id = "
                             ":h", h=household_id)[0]
    return (json.loads(doc) if isinstance(doc, str) else doc), version


def _counts(live, user):
    uid = live.scalar("SELECT id FROM users WHERE username = :u", u=user)
    return {
        "visits": live.scalar("SELECT count(*) FROM visits WHERE enumerator_id = :i", i=uid),
        "visit_photos": live.scalar("SELECT count(*) FROM visit_photos vp JOIN visits v ON "
                                    "v.uuid = vp.visit_uuid WHERE v.enumerator_id = :i", i=uid),
        "feed": live.scalar("SELECT count(*) FROM feed_entries WHERE user_id = :i", i=uid),
        "batches": live.scalar("SELECT count(*) FROM sync_batches WHERE user_id = :i", i=uid),
    }


class Crash(Exception):
    """Stands for the app being killed at a checkpoint."""


def crash_at(step_name, times=1):
    left = [times]

    def on_step(step, detail):
        if step == step_name and left[0] > 0:
            left[0] -= 1
            raise Crash(step)

    return on_step


def test_answer_lost_after_the_server_committed_then_resumed(live, visits, make_client):
    """Killed after the server answered but before the outbox recorded it: on the next run
    the visits are sent again and come back duplicate, each stored once."""
    user, _ = live.enumerator(5)
    outbox = make_client(user).outbox.path
    client = make_client(user, outbox=outbox, batch_size=2,
                         on_step=crash_at("push:answered"))
    client.pull()
    for visit, images in visits.for_client(client):
        client.add_visit(visit, images)
    with pytest.raises(Crash):
        client.sync()
    # The first batch is on the server, but the outbox still says "sent".
    assert list(states(client).values()).count("sent") == 2
    first = [u for u, s in states(client).items() if s == "sent"]
    assert set(live.stored(first)) == set(first)
    client.close()

    resumed = make_client(user, outbox=outbox, batch_size=2)  # a new process, same file
    report = resumed.sync()
    assert report.results == {"duplicate": 2, "accepted": 3}
    assert set(states(resumed).values()) == {"accepted", "duplicate"}
    assert_stored_once(live, resumed)


def test_answer_lost_on_the_wire_is_retried_and_comes_back_duplicate(live, visits, make_client,
                                                                     proxy):
    user, _ = live.enumerator(3)
    client = make_client(user, server=proxy.url)
    client.pull()
    for visit, images in visits.for_client(client):
        client.add_visit(visit, images)
    proxy.plan("/api/v1/sync/push", "lose")      # the server commits, the answer is lost
    proxy.plan("/api/v1/photos/", "lose", "reset")
    report = client.sync()
    assert report.results == {"duplicate": 3}
    pushes = [entry for entry in proxy.log if entry[1] == "/api/v1/sync/push"]
    assert [fault for _, _, fault in pushes] == ["lose", None]
    assert set(states(client).values()) == {"duplicate"}
    assert_stored_once(live, client)


def test_client_killed_with_sigkill_at_a_random_moment_then_resumed(live, visits,
                                                                    make_client, tmp_path):
    """The CLI in a subprocess, killed by SIGKILL while it syncs (once it has made progress,
    at a random moment after); rerun until done. Each visit ends stored exactly once."""
    user, _ = live.enumerator(12)
    setup = make_client(user)
    setup.pull()
    for visit, images in visits.for_client(setup, per_family=2):
        setup.add_visit(visit, images)
    outbox = setup.outbox.path
    everything = {v["uuid"]: v["content_hash"] for v in setup.outbox.visits()}
    setup.close()
    args = ["--server", live.url, "--user", user, "--device", f"{user}-phone",
            "--outbox", str(outbox), "--batch-size", "2", "sync"]
    env = {**os.environ, "TAPAK_PASSWORD": PASSWORD}
    rng = random.Random(int(os.environ.get("CLIENT_KILL_SEED", "7")))
    kills = 0
    for _ in range(3):
        before = progress(outbox)
        proc = run_client_cli(args, env=env)
        deadline = time.monotonic() + 30
        while proc.poll() is None and progress(outbox) == before \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
    assert kills >= 1
    proc = run_client_cli(args, env=env)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    final = SyncClient(live.url, user, PASSWORD, f"{user}-phone", outbox)
    try:
        assert set(states(final).values()) <= {"accepted", "duplicate"}
        assert live.stored(everything) == everything
    finally:
        final.close()


def progress(outbox) -> tuple:
    """What a client process has done so far, read from its outbox (WAL: a reader does not
    block the writer). Read-write, so that it may recover the WAL of a killed process."""
    with contextlib.closing(sqlite3.connect(outbox, timeout=10)) as conn:
        return (conn.execute("SELECT count(*) FROM photos WHERE state != 'pending'").fetchone(),
                conn.execute("SELECT state, count(*) FROM visits GROUP BY state").fetchall())


# --------------------------------------------------------------------------- server crash


@pytest.mark.timeout(120)
def test_server_killed_mid_batch_loses_nothing_acknowledged_and_doubles_nothing(
        live, visits, make_client):
    """gunicorn and its workers SIGKILLed at a random moment inside a 100-visit batch, three
    times over, restarted each time. After each crash every visit the client saw acknowledged
    is stored, once, with the content sent; the visits in doubt (sent, no answer) are stored
    or not, never half; resending everything doubles nothing."""
    user, _ = live.enumerator(60)
    pool = [jpeg(9000 + i) for i in range(6)]  # content-addressed: reused across visits
    client = make_client(user, batch_size=100, retry=RetryPolicy(
        max_attempts=3, base_delay=0.05, max_delay=0.2, timeout=(1.0, 20.0)))
    client.pull()
    made = visits.for_client(client, per_family=6, photo_pool=pool)
    for visit, images in made[:100]:
        client.add_visit(visit, images)
    # A first batch without a crash tells how long a batch takes on this machine.
    times = {}
    client.on_step = lambda step, detail: times.setdefault(step, time.monotonic())
    assert client.sync().results == {"accepted": 100}
    batch_seconds = times["push:answered"] - times["push:sending"]
    for visit, images in made[100:]:
        client.add_visit(visit, images)
    client.upload_photos()
    everything = {v["uuid"]: v["content_hash"] for v in client.outbox.visits()}
    assert len(everything) == 360
    acknowledged = {u for u, s in states(client).items() if s == "accepted"}
    in_doubt_but_stored: set[str] = set()
    rng = random.Random(int(os.environ.get("SERVER_KILL_SEED", "3")))
    crashes = 0
    for _cycle in range(3):
        killer = None
        sending = []
        # Inside the first or the second batch of this sync, somewhere along it.
        arm_at, delay = rng.randint(1, 2), rng.uniform(0.05, 1.0) * batch_seconds

        def on_step(step, detail, arm_at=arm_at, delay=delay, sending=sending):
            nonlocal killer
            if step == "push:sending":
                sending.append(detail["batch_id"])
                if len(sending) == arm_at:
                    killer = threading.Timer(delay, live.kill)
                    killer.start()
            if step == "push:answered":
                acknowledged.update(r["uuid"] for r in detail["results"])

        client.on_step = on_step
        try:
            client.sync()
        except OfflineError:
            crashes += 1
        finally:
            if killer is not None:
                killer.join()
            if live.proc.poll() is not None:
                live.start()
        stored = live.stored(everything)
        assert acknowledged <= set(stored)
        assert all(stored[u] == everything[u] for u in stored)
        in_doubt_but_stored |= {u for u, s in states(client).items() if s == "sent"} & set(stored)
    assert crashes >= 1
    # Resend what is still in doubt or never sent: what the server has comes back duplicate.
    client.on_step = None
    report = client.sync()
    assert report.results["accepted"] + report.results["duplicate"] == report.results.total()
    assert {u for u, s in states(client).items() if s == "duplicate"} >= in_doubt_but_stored
    assert set(states(client).values()) <= {"accepted", "duplicate"}
    assert live.stored(everything) == everything
    # And pushing the whole lot once more in raw batches changes nothing.
    headers = token(live, user)
    before = _counts(live, user)
    all_visits = [v["visit"] for v in client.outbox.visits()]
    for i in range(0, len(all_visits), 100):
        assert set(raw_push(live, headers, all_visits[i:i + 100])) == {"duplicate"}
    after = _counts(live, user)
    assert after["visits"] == before["visits"] == 360
    assert after["visit_photos"] == before["visit_photos"]


# --------------------------------------------------------------------------- ordering, devices


def test_batches_out_of_order_store_each_visit_once(live, visits):
    user, families = live.enumerator(2)
    headers = token(live, user)
    (h1, h2) = families
    record1, v1 = _record(live, h1)
    record2, v2 = _record(live, h2)
    a, images_a = visits.make(h1, record1, v1)
    b, images_b = visits.make(h2, record2, v2)
    # A later revisit of family 1, made after A, arrives before A's batch.
    c, images_c = visits.make(h1, record1, v1, started_at="2026-02-04T10:00:00+07:00",
                              ended_at="2026-02-04T10:20:00+07:00")
    for images in (images_a, images_b, images_c):
        upload_all(live, headers, images)
    assert raw_push(live, headers, [b]) == ["accepted"]          # batch 2 first
    assert raw_push(live, headers, [c]) == ["accepted"]          # batch 3
    assert raw_push(live, headers, [a, b]) == ["accepted", "duplicate"]   # batch 1, late
    stored = live.stored([a["uuid"], b["uuid"], c["uuid"]])
    assert stored == {v["uuid"]: content_hash(v) for v in (a, b, c)}
    times = dict(live.rows("SELECT uuid, started_at_device FROM visits WHERE household_id = :h",
                           h=h1))
    assert times == {a["uuid"]: a["started_at"], c["uuid"]: c["started_at"]}


def test_two_devices_for_one_family_not_assigned_then_reassigned(live, visits, make_client):
    ani, [family] = live.enumerator(1)
    budi, _ = live.enumerator(0)
    ani_client = make_client(ani)
    ani_client.pull()
    [(visit_a, images_a)] = visits.for_client(ani_client)
    ani_client.add_visit(visit_a, images_a)
    assert ani_client.sync().results == {"accepted": 1}
    # Budi has an old copy of the family (say, from before a reassignment) and visits it.
    record, version = _record(live, family)
    visit_b, images_b = visits.make(family, record, version)
    budi_client = make_client(budi)
    budi_client.add_visit(visit_b, images_b)
    report = budi_client.sync()
    assert report.results == {"rejected": 1}
    assert report.rejected[0]["errors"][0]["code"] == "not_assigned"
    # Rejected visits stay for the enumerator; they are not sent again by themselves.
    assert budi_client.sync().batches == 0
    assert budi_client.status()["rejected"][0]["uuid"] == visit_b["uuid"]
    # The supervisor moves the family to Budi; Budi resubmits the same visit.
    assert live.assign(budi, [family])["moved"] == 1
    budi_client.add_visit(visit_b, images_b)
    assert budi_client.sync().results == {"accepted": 1}
    stored = dict(live.rows("SELECT uuid, enumerator_id FROM visits WHERE household_id = :h",
                            h=family))
    assert set(stored) == {visit_a["uuid"], visit_b["uuid"]}


@pytest.mark.parametrize("same_content", [True, False], ids=["same", "changed"])
def test_the_same_uuid_from_two_devices_at_once_is_stored_once(live, visits, same_content):
    user, [family] = live.enumerator(1)
    record, version = _record(live, family)
    phone, tablet = token(live, user, "phone"), token(live, user, "tablet")
    loser = "duplicate" if same_content else "uuid_reused"
    for _round in range(6):
        visit, images = visits.make(family, record, version)
        upload_all(live, phone, images)
        other = dict(visit) if same_content else dict(visit, ended_at="2026-02-03T09:40:00+07:00")
        barrier = threading.Barrier(2)
        answers = {}

        def send(name, headers, v, barrier=barrier, answers=answers):
            barrier.wait()
            answers[name] = raw_push(live, headers, [v], device=name)[0]

        threads = [threading.Thread(target=send, args=("phone", phone, visit)),
                   threading.Thread(target=send, args=("tablet", tablet, other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(answers.values()) == sorted(["accepted", loser]), answers
        stored = live.stored([visit["uuid"]])
        winner = visit if answers["phone"] == "accepted" else other
        assert stored == {visit["uuid"]: content_hash(winner)}


# --------------------------------------------------------------------------- what needs a person


def test_waiting_photos_then_done_once_the_photos_are_up(live, visits, make_client, proxy):
    user, _ = live.enumerator(1)
    client = make_client(user, server=proxy.url)
    client.pull()
    [(visit, images)] = visits.for_client(client)
    client.add_visit(visit, images)
    # Both photo HEADs fail for good this time, so the visit goes before its photos...
    client.retry.max_attempts = 1
    proxy.plan("/api/v1/photos/", 503, 503)
    with pytest.raises(OfflineError):
        client.upload_photos()
    client.push()
    assert states(client) == {visit["uuid"]: "waiting_photos"}
    assert sorted(client.outbox.visit(visit["uuid"])["missing_photos"]) == sorted(
        sha(d) for d in images.values())
    assert live.scalar("SELECT status FROM visits WHERE uuid = :u",
                       u=visit["uuid"]) == "waiting_photos"
    # ...and the next sync uploads them: the visit is complete on both sides.
    client.retry.max_attempts = 4
    report = client.sync()
    assert report.photos_uploaded == len(images) and report.waiting_photos == []
    assert states(client) == {visit["uuid"]: "accepted"}
    assert live.scalar("SELECT status FROM visits WHERE uuid = :u", u=visit["uuid"]) == "queued"


def test_a_rejected_visit_is_kept_with_its_errors_and_can_be_corrected(live, visits,
                                                                      make_client):
    user, _ = live.enumerator(2)
    client = make_client(user)
    client.pull()
    (good, good_images), (bad, bad_images) = visits.for_client(client)
    broken = json.loads(json.dumps(bad))
    broken["answers"]["anggota"][0]["nik"] = "12"
    client.add_visit(good, good_images)
    client.add_visit(broken, bad_images)
    report = client.sync()
    assert report.results == {"accepted": 1, "rejected": 1}
    [rejected] = report.rejected
    assert rejected["uuid"] == bad["uuid"]
    assert rejected["errors"][0]["path"] == "answers.anggota[0].nik"
    assert states(client) == {good["uuid"]: "accepted", bad["uuid"]: "rejected"}
    assert live.stored([bad["uuid"]]) == {}
    with pytest.raises(ValueError):
        client.add_visit(dict(good, ended_at="2026-02-03T11:00:00+07:00"))  # stored: frozen
    client.add_visit(bad, bad_images)  # corrected, same uuid
    assert client.sync().results == {"accepted": 1}
    assert_stored_once(live, client)


def test_uuid_reused_is_reported(live, visits, make_client):
    user, _ = live.enumerator(1)
    first = make_client(user, device="old-phone")
    first.pull()
    [(visit, images)] = visits.for_client(first)
    first.add_visit(visit, images)
    assert first.sync().results == {"accepted": 1}
    second = make_client(user, device="new-phone")  # a restored backup, edited
    second.add_visit(dict(visit, ended_at="2026-02-03T10:05:00+07:00"), images)
    report = second.sync()
    assert report.uuid_reused == [visit["uuid"]]
    assert second.status()["uuid_reused"] == [visit["uuid"]]
    assert live.stored([visit["uuid"]]) == {visit["uuid"]: content_hash(
        first.outbox.visit(visit["uuid"])["visit"])}


def test_a_malformed_envelope_rejects_only_that_visit(live, visits):
    user, families = live.enumerator(2)
    headers = token(live, user)
    batch = []
    for household_id in families:
        record, version = _record(live, household_id)
        visit, images = visits.make(household_id, record, version)
        upload_all(live, headers, images)
        batch.append(visit)
    junk = [dict(batch[0], uuid=str(uuidlib.uuid4()), location="on the corner"),
            dict(batch[0], uuid=str(uuidlib.uuid4()), base_version="three"),
            dict(batch[0], uuid=str(uuidlib.uuid4()), branch_id="b" * 300),
            dict(batch[0], uuid=str(uuidlib.uuid4()),
                 location={"lat": "south", "lon": 106.7, "accuracy_m": 5})]
    answers = raw_push(live, headers, [batch[0], *junk, batch[1]])
    assert answers == ["accepted", "rejected", "rejected", "rejected", "rejected", "accepted"]
    assert set(live.stored([v["uuid"] for v in batch + junk])) == {v["uuid"] for v in batch}
