"""Lapangan in a real browser: the failures a field app must survive.

A push whose answer is lost after the server stored it, a photo upload cut off, a visit the
server rejects (shown with its field's label, corrected, resent), a family returned by a
supervisor reaching the phone through pull, a logout with a full outbox, and a new version of
the app shell arriving while a draft is open. Same live server, bootstrap and 360 px touch
viewport as tests/lapangan/test_app.py.
"""

from __future__ import annotations

import json
import time

import requests

import server.web.lapangan as lapangan_module
from tests.lapangan import test_app
from tests.lapangan.test_app import (
    TIMEOUT,
    enumerator,
    finish,
    first_part,
    log_in,
    new_page,
    second_part,
    shot,
    wait_controlled,
    wait_js,
    wait_synced,
)

# The live server, browser and phone context of test_app.py (the server module-scoped: one
# of this module's own).
live = test_app.live
browser = test_app.browser
context = test_app.context


def wait_until(page, predicate, what: str, timeout: float = TIMEOUT / 1000) -> None:
    """Let the page run (and its routes answer) until ``predicate()`` holds."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def local_visits(page) -> list[dict]:
    return page.evaluate("""async () => (await window.lapangan.db.getAll('visits'))
        .map((v) => ({uuid: v.uuid, state: v.state, batch_id: v.batch_id || null,
                      errors: v.errors || [], household_id: v.household_id}))""")


def server_visits(live, uuid: str | None = None) -> list:
    if uuid:
        return live.sql("SELECT uuid, status FROM visits WHERE uuid = :u", u=uuid)
    return live.sql("SELECT uuid, status FROM visits")


def test_a_lost_push_answer_is_resent_with_its_batch_id_and_comes_back_duplicate(context, live):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    batches = []

    def lose_first_answer(route):
        batches.append(route.request.post_data_json["batch_id"])
        if len(batches) == 1:
            route.fetch()  # the server stores the visit...
            route.abort("connectionreset")  # ...and its answer never reaches the phone
        else:
            route.continue_()

    context.route("**/api/v1/sync/push", lose_first_answer)
    seen = []
    page.on("request", lambda r: seen.append((r.method, r.url, r.post_data))
            if "push" in r.url else None)
    uuid = first_part(page, ids[0], 40, changed=False)
    second_part(page)
    finish(page)
    wait_until(page, lambda: len(batches) >= 1, "the first push")
    wait_until(page, lambda: len(server_visits(live, uuid)) == 1, "the visit on the server")
    page.wait_for_function("() => !window.lapangan.syncing")
    mine = local_visits(page)[0]
    assert mine["state"] == "sent" and mine["batch_id"] == batches[0]
    page.click("#sync-button")  # or the back-off timer, whichever comes first
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => v.state === 'duplicate')""")
    # The retry carries the same batch_id.
    assert len(batches) == 2 and batches[0] == batches[1], (seen, context.console)
    assert len(server_visits(live, uuid)) == 1
    context.unroute("**/api/v1/sync/push")


def test_a_photo_upload_cut_off_is_sent_again_whole_and_stored_once(context, live):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    puts = []

    def cut_first_put(route):
        if route.request.method != "PUT":
            route.continue_()
            return
        puts.append((route.request.url.rsplit("/", 1)[1], len(route.request.post_data_buffer)))
        if len(puts) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    context.route("**/api/v1/photos/*", cut_first_put)
    uuid = first_part(page, ids[0], 50, changed=False)
    second_part(page)
    finish(page)
    # The failed sync backs off (about a second) and tries again by itself.
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => v.state === 'accepted')""")
    assert len(puts) == 3, puts  # two photos, the first one twice
    assert puts[0] == puts[1]  # the same photo, the same (whole) number of bytes
    shas = {p[0] for p in puts}
    stored = live.sql("SELECT sha256 FROM photos")
    assert {r[0] for r in stored} >= shas and len(stored) == len({r[0] for r in stored})
    assert server_visits(live, uuid)[0][1] != "waiting_photos"
    context.unroute("**/api/v1/photos/*")


def test_a_rejected_visit_shows_its_field_and_is_corrected_and_resent(context, live):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    pushes = []

    def spoil_first_push(route):
        body = route.request.post_data_json
        pushes.append(body)
        if len(pushes) == 1:
            # A visit the server must refuse: its own rules decide, not the test.
            body["visits"][0]["answers"]["nama_responden"] = "X"
            route.continue_(post_data=json.dumps(body))
        else:
            route.continue_()

    context.route("**/api/v1/sync/push", spoil_first_push)
    uuid = first_part(page, ids[0], 60, changed=False)
    second_part(page)
    finish(page)
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .some((v) => v.state === 'rejected')""")
    assert server_visits(live, uuid) == []
    mine = local_visits(page)[0]
    assert mine["errors"][0]["path"] == "answers.nama_responden"
    page.wait_for_selector(".attention")
    shot(page, "rejected-home")
    page.click(f".attention a[href='#/kunjungan/{uuid}']")
    summary = page.wait_for_selector("#error-summary")
    assert "Nama responden" in summary.inner_text()
    assert page.is_visible("#f-nama_responden .field-error")
    shot(page, "rejected-visit")
    page.fill("#q-nama_responden", "Responden Diperbaiki")
    finish(page)
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => v.state === 'accepted')""")
    answers = live.doc(live.sql("SELECT answers FROM visits WHERE uuid = :u", u=uuid)[0][0])
    assert answers["nama_responden"] == "Responden Diperbaiki"
    assert pushes[1]["visits"][0]["uuid"] == uuid  # the same uuid, corrected
    context.unroute("**/api/v1/sync/push")


def test_a_returned_visit_reaches_the_phone_with_its_note(context, live):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    hid = ids[0]
    uuid = first_part(page, hid, 70, changed=False)
    second_part(page)
    finish(page)
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => v.state === 'accepted')""")
    live.reconcile()
    kecamatan = live.sql("SELECT k.kode_kelurahan FROM keluarga k WHERE k.id = :h", h=hid)[0][0]
    supervisor = next(u for u, (role, _pw) in live.logins.items() if role == "supervisor"
                      and live.sql("SELECT 1 FROM users u JOIN user_areas ua ON ua.user_id = "
                                   "u.id WHERE u.username = :u AND :k LIKE ua.area_code || '%'",
                                   u=u, k=kecamatan))
    token = requests.post(live.url + "/api/v1/auth/token", json={
        "username": supervisor, "password": live.logins[supervisor][1],
        "device_id": "spv-laptop"}, timeout=10).json()["token"]
    note = "Foto depan buram, mohon kunjungi lagi."
    r = requests.post(f"{live.url}/api/v1/visits/{uuid}/review", json={
        "decision": "return", "note": note}, headers={"Authorization": f"Bearer {token}"},
        timeout=10)
    assert r.status_code == 200, r.text
    page.click("#sync-button")
    wait_synced(page)
    page.wait_for_selector("li.family.returned")
    first = page.locator("li.family.returned .row > *").first
    assert first.inner_text() == "Catatan pengawas: " + note  # the note comes first
    page.click(f"a[href='#/keluarga/{hid}']")
    assert note in page.inner_text("#supervisor-note")
    shot(page, "returned")
    page.click("#start")  # a new visit: a new uuid and the current base_version
    page.wait_for_selector("#visit-form")
    again = page.evaluate("location.hash").rsplit("/", 1)[1]
    assert again != uuid
    base = page.evaluate(f"async () => (await window.lapangan.db.get('visits', '{again}'))"
                         ".base_version")
    current = live.sql("SELECT version FROM verified_records WHERE household_id = :h", h=hid)
    assert base == current[0][0]


def test_logout_with_a_full_outbox_is_refused_then_confirmed_wipes_the_data(context, live):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    wait_controlled(page)
    context.set_offline(True)
    first_part(page, ids[0], 80, changed=False)
    second_part(page)
    finish(page)
    page.once("dialog", lambda d: d.dismiss())
    page.click("#logout")
    page.wait_for_selector("#flash:not([hidden])")
    assert "belum terkirim" in page.inner_text("#flash")
    assert len(local_visits(page)) == 1
    names = "async () => (await indexedDB.databases()).map((d) => d.name)"
    assert f"lapangan:{username}" in page.evaluate(names)
    page.once("dialog", lambda d: d.accept())
    page.click("#logout")
    page.wait_for_selector("#username")
    assert f"lapangan:{username}" not in page.evaluate(names)
    assert page.evaluate("localStorage.getItem('lapangan.user')") is None
    context.set_offline(False)


def test_a_new_shell_version_waits_until_the_next_start_and_loses_no_draft(context, live,
                                                                          monkeypatch):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    wait_controlled(page)
    caches = "async () => (await caches.keys()).sort()"
    old = page.evaluate(caches)
    assert len(old) == 1
    uuid = first_part(page, ids[0], 90, changed=False)
    monkeypatch.setattr(lapangan_module, "shell_version", lambda: "0123456789abcdef")
    page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).update()")
    wait_js(page, "async () => !!(await navigator.serviceWorker.getRegistration())"
                           ".waiting")
    # Mid-visit: the old shell keeps serving; answers go on being saved.
    assert old[0] in page.evaluate(caches)
    page.fill("#q-nama_responden", "Setelah pembaruan")
    page.wait_for_timeout(200)
    page.close()
    # The next start: once no tab of the app is open, the new worker takes over. A page
    # outside the worker's scope watches for it without being one of its clients.
    page = new_page(context)
    page.goto(live.url + "/static/lapangan/icon.svg")
    wait_js(page, "async () => (await caches.keys()).join() === "
                  "'lapangan-shell-0123456789abcdef'")
    page.goto(live.url + "/lapangan/#/kunjungan/" + uuid)
    page.wait_for_selector("#visit-form")
    assert page.input_value("#q-nama_responden") == "Setelah pembaruan"
    assert page.locator("#f-foto_depan img.thumb").count() == 1


def test_an_expired_token_asks_for_the_password_and_keeps_the_drafts(context, live):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    uuid = first_part(page, ids[0], 100, changed=False)
    live.cli("users", "revoke", username)  # as after 30 days offline
    page.goto(live.url + "/lapangan/#/")
    page.wait_for_selector("#families")
    page.click("#sync-button")
    page.wait_for_selector("#password")
    assert "Sesi berakhir" in page.inner_text("main")
    assert page.input_value("#username") == username
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#families li.family")
    wait_synced(page)
    assert [v["uuid"] for v in local_visits(page)] == [uuid]
    page.goto(live.url + "/lapangan/#/kunjungan/" + uuid)
    page.wait_for_selector("#visit-form")
    assert page.input_value("#q-nama_responden") == "Responden 100"


def test_a_draft_of_a_family_reassigned_away_is_kept_marked_and_cannot_be_sent(context, live):
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    hid = ids[0]
    uuid = first_part(page, hid, 110, changed=False)
    round_id = live.sql("SELECT round_id FROM assignments WHERE household_id = :h "
                        "AND status = 'pending'", h=hid)[0][0]
    live.cli("assignments", "unassign", str(round_id), hid)
    page.goto(live.url + "/lapangan/#/")
    page.wait_for_selector("#families")
    page.click("#sync-button")
    wait_synced(page)
    page.wait_for_selector(".attention")
    assert "dipindahkan" in page.inner_text(".attention")
    assert page.locator(f"a[href='#/keluarga/{hid}']").count() == 0
    page.click(f".attention a[href='#/kunjungan/{uuid}']")
    page.wait_for_selector("#moved")
    assert page.locator("#finish").count() == 0
    assert page.input_value("#q-nama_responden") == "Responden 110"  # kept as it was
    assert live.sql("SELECT count(*) FROM visits WHERE uuid = :u", u=uuid)[0][0] == 0


FAKE_CONNECTION = """(() => {
  const listeners = [];
  const connection = {type: 'cellular', effectiveType: '3g',
    addEventListener: (name, f) => listeners.push(f),
    removeEventListener: () => {}};
  window.__setConnection = (type) => { connection.type = type; listeners.forEach((f) => f()); };
  Object.defineProperty(Navigator.prototype, 'connection', {get: () => connection});
})();"""


def test_photos_held_until_wifi_go_when_the_phone_reaches_wifi(context, live):
    """Desktop Chromium has no navigator.connection.type: a phone's (cellular, then Wi-Fi)
    is given by an init script."""
    context.add_init_script(FAKE_CONNECTION)
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    puts = []
    context.route("**/api/v1/photos/*", lambda route: (
        puts.append(route.request.url) if route.request.method == "PUT" else None,
        route.continue_()))
    page.check("#wifi-only")
    uuid = first_part(page, ids[0], 120, changed=False)
    second_part(page)
    finish(page)
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => v.state === 'waiting_photos')""")
    wait_synced(page)
    assert "ditahan sampai ada Wi-Fi" in page.inner_text("#sync-progress")
    assert puts == []
    assert server_visits(live, uuid)[0][1] == "waiting_photos"
    page.evaluate("window.__setConnection('wifi')")
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => ['accepted', 'duplicate'].includes(v.state))""")
    assert len(puts) == 2
    assert server_visits(live, uuid)[0][1] != "waiting_photos"
    context.unroute("**/api/v1/photos/*")


def test_when_space_runs_short_the_oldest_sent_photos_go_first(context, live):
    """evictSentPhotos, which the form calls on a QuotaExceededError, run on a store of two
    acknowledged visits and a draft: the older sent visit's photo goes, the draft's stays."""
    username, password, _ids = enumerator(live, least=1)
    page = new_page(context)
    log_in(page, live, username, password)
    left = page.evaluate("""async () => {
      const {evictSentPhotos} = await import('/static/lapangan/sync.js');
      const db = window.lapangan.db;
      const blob = (n) => new Blob([new Uint8Array(n)], {type: 'image/jpeg'});
      const photo = (sha, n) => ({sha256: sha, blob: blob(n), size: n, state: 'uploaded'});
      const visit = (uuid, state, acked, sha) => ({uuid, state, acked_at: acked,
        household_id: 'x', visit: {photos: [{field: 'foto_depan', sha256: sha}]},
        photos: {foto_depan: {sha256: sha}}});
      await db.put('photos', photo('a'.repeat(64), 1000));
      await db.put('photos', photo('b'.repeat(64), 1000));
      await db.put('photos', photo('c'.repeat(64), 1000));
      await db.put('visits', visit('old', 'accepted', '2026-01-01T00:00:00Z', 'a'.repeat(64)));
      await db.put('visits', visit('new', 'duplicate', '2026-01-02T00:00:00Z', 'b'.repeat(64)));
      const draft = visit('draft', 'draft', null, 'c'.repeat(64));
      delete draft.visit;
      await db.put('visits', draft);
      const freed = await evictSentPhotos(db, 500);
      return {freed, left: (await db.getAllKeys('photos')).map((k) => k[0]).sort()};
    }""")
    assert left == {"freed": 1000, "left": ["b", "c"]}
