"""Lapangan, the enumerators' offline app, in a real browser.

Headless Chromium (Debian's package) driven by Playwright at a 360 px phone viewport with
touch, against a live server (werkzeug in a thread) over a database of its own set up by the
real ``bootstrap`` command (areas, forms, a small demo extract, the demo users and their
round). Without Chromium or Playwright the browser tests skip; with ``CI=true`` they fail.

The scenario is the issue's: log in and pull; offline, a reload opens the app from the service
worker's cache; three visits filled with fake geolocation and photos (one adds a member, one
marks a member as died); a reload in the middle of the second visit keeps its draft; back
online, a sync leaves the server with exactly those three visits, each photo stored once.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.pages.conftest import CHROMIUM, CHROMIUM_ARGS, chromium_missing, skip_or_fail
from tests.pages.test_browser import Live as PagesLive

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots" / "lapangan"
PHONE = {"width": 360, "height": 740}
HOME = {"lat": -6.1702, "lon": 106.7361}  # replaced by the family's registered point
TIMEOUT = 30_000


# --------------------------------------------------------------------------- the live server


class Live(PagesLive):
    """The review pages' live server (a werkzeug thread over a scratch database), with the
    JSON columns read alike on both databases."""

    @staticmethod
    def doc(value):
        """A JSON column as read by ``sql``: text on SQLite, already decoded on PostgreSQL."""
        return value if isinstance(value, dict | list) else json.loads(value)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.pages.test_browser import _scratch_database

    tmp = tmp_path_factory.mktemp("lapangan-live")
    (tmp / "instance").mkdir()
    url, drop = _scratch_database(tmp)
    server = None
    try:
        server = Live(tmp, url)
        server.cli("db", "upgrade")
        server.cli("bootstrap", "--households", "60", "--visits-per-kecamatan", "0")
        logins = {}
        for line in (Path(server.app.instance_path) / "demo-logins.txt").read_text().splitlines():
            if not line.startswith("#"):
                username, role, password = line.split("\t")
                logins[username] = (role, password)
        server.logins = logins
        server.used = set()
        server.thread.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        drop()


def enumerator(live, least: int = 3) -> tuple[str, str, list[str]]:
    """A demo enumerator holding at least ``least`` families: (username, password, ids)."""
    rows = live.sql("SELECT u.username, a.household_id FROM assignments a JOIN users u "
                    "ON u.id = a.enumerator_id WHERE a.status = 'pending' ORDER BY 1, 2")
    held: dict[str, list[str]] = {}
    for username, hid in rows:
        held.setdefault(username, []).append(hid)
    for username, ids in sorted(held.items(), key=lambda kv: -len(kv[1])):
        if len(ids) >= least and username not in live.used:
            live.used.add(username)  # one enumerator a test: each starts from a clean slate
            return username, live.logins[username][1], ids
    raise AssertionError(f"no demo enumerator holds {least} families: {held}")


@pytest.fixture(scope="module")
def browser():
    skip_or_fail("browser test", chromium_missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser, live):
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                              has_touch=True, locale="id-ID", service_workers="allow",
                              geolocation={"latitude": HOME["lat"], "longitude": HOME["lon"],
                                           "accuracy": 12.5},
                              permissions=["geolocation"])
    ctx.set_default_timeout(TIMEOUT)
    ctx.console = []
    yield ctx
    ctx.close()


def new_page(context):
    page = context.new_page()
    page.on("console", lambda m: context.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: context.console.append(f"pageerror: {e}"))
    return page


def jpeg_bytes(seed: int, size=(2400, 1800)) -> bytes:
    """A photo as a phone camera makes it: big, so the app has to shrink it."""
    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    for i in range(0, size[0], 150):
        img.paste(((seed + i) % 256, 40, 200), (i, 0, i + 60, size[1]))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92)
    return out.getvalue()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, live, username: str, password: str) -> None:
    page.goto(live.url + "/lapangan/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#families li.family")
    wait_synced(page)


def wait_synced(page) -> None:
    page.wait_for_function("() => window.lapangan && window.lapangan.lastSync "
                           "&& !window.lapangan.syncing", timeout=TIMEOUT)


def wait_js(page, predicate: str, timeout: float = TIMEOUT / 1000) -> None:
    """Poll an async predicate until it is true (wait_for_function takes a Promise for a
    truthy value, so it cannot wait on IndexedDB or the Cache API)."""
    end = time.monotonic() + timeout
    while not page.evaluate(predicate):
        assert time.monotonic() < end, f"timed out waiting for {predicate}"
        page.wait_for_timeout(100)


def wait_controlled(page) -> None:
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=TIMEOUT)


# --------------------------------------------------------------------------- the shell


def test_shell_page_worker_and_manifest_headers(live):
    import requests

    r = requests.get(live.url + "/lapangan/", timeout=10)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "'sha256-" in csp and "blob:" in csp and "worker-src 'self'" in csp
    assert "manifest-src 'self'" in csp and "unsafe-inline" not in csp
    assert '<script type="importmap">' in r.text
    sw = requests.get(live.url + "/lapangan/sw.js", timeout=10)
    assert sw.status_code == 200 and "javascript" in sw.headers["Content-Type"]
    assert "/static/lapangan/app.js" in sw.text and "/api/" in sw.text
    manifest = requests.get(live.url + "/lapangan/manifest.webmanifest", timeout=10)
    assert manifest.json()["scope"] == "/lapangan/"
    # The review pages keep their strict policy.
    review = requests.get(live.url + "/review/masuk", timeout=10)
    assert "blob:" not in review.headers["Content-Security-Policy"]
    assert "sha256-" not in review.headers["Content-Security-Policy"]


def test_login_pull_and_offline_reload(context, live):
    username, password, ids = enumerator(live)
    page = new_page(context)
    log_in(page, live, username, password)
    assert page.locator("#families li.family").count() == len(ids), context.console
    assert "Sinkron terakhir" in page.inner_text("#last-sync")
    assert page.inner_text("#storage").startswith("Penyimpanan")
    wait_controlled(page)
    shot(page, "home")
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("#families li.family")
    assert page.locator("#families li.family").count() == len(ids)
    assert page.inner_text("#net") == "Luring"
    context.set_offline(False)
    assert not [c for c in context.console if c.startswith("pageerror")], context.console
    print(json.dumps(context.console[:20]))


def test_a_list_redraw_begun_earlier_never_draws_over_the_family_opened_after_it(context, live):
    """A sync ending on the list redraws it from IndexedDB; the family opened meanwhile stays.

    Going offline makes the app sync at once (the connection changed); its redraw of the list
    reads more than the family page does, so it used to finish last and replace the family.
    """
    username, password, ids = enumerator(live, least=2)
    page = new_page(context)
    log_in(page, live, username, password)
    for i in range(6):
        hid = ids[i % 2]
        page.evaluate("""async (hid) => {
          location.hash = '#/';
          await new Promise((r) => setTimeout(r, 0));
          window.lapangan.sync('test');
          location.hash = '#/keluarga/' + encodeURIComponent(hid);
        }""", hid)
        page.wait_for_selector("#start")
        page.wait_for_function("() => !window.lapangan.syncing")
        page.wait_for_timeout(300)  # whatever was still drawing has drawn by now
        assert page.locator("#start").count() == 1, (i, page.inner_text("main"))
        assert page.locator("#families").count() == 0
    assert not [c for c in context.console if c.startswith("pageerror")], context.console


# --------------------------------------------------------------------------- visits

EMPTY_FIELDS = """() => {
  const out = [];
  for (const box of document.querySelectorAll('#visit-form .field')) {
    if (box.offsetParent === null) continue;  // hidden (not relevant)
    const radios = box.querySelectorAll('input[type=radio]');
    if (radios.length) {
      if (![...radios].some((r) => r.checked)) {
        const tidak = [...radios].find((r) => r.parentElement.textContent.trim() === 'Tidak');
        out.push({kind: 'radio', id: (tidak || radios[0]).id});
      }
      continue;
    }
    const select = box.querySelector('select');
    if (select) { if (!select.value) out.push({kind: 'select', id: select.id}); continue; }
    const input = box.querySelector('input[type=text], input[type=number], input[type=date]');
    if (input && !input.value) out.push({kind: input.type, id: input.id});
  }
  return out;
}"""


def fill_empty(page) -> None:
    """Answer every visible question still empty (a safe answer for each type)."""
    for _ in range(5):
        empty = page.evaluate(EMPTY_FIELDS)
        if not empty:
            return
        for f in empty:
            sel = "#" + f["id"]
            if f["kind"] == "radio":
                page.check(sel)
            elif f["kind"] == "select":
                page.select_option(sel, index=1)
            elif f["kind"] == "number":
                page.fill(sel, "1")
            elif f["kind"] == "date":
                page.fill(sel, "1990-01-01")
            else:
                page.fill(sel, "Isian uji")


def photo_file(name: str, seed: int) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": jpeg_bytes(seed)}


def take_photo(page, field: str, seed: int) -> None:
    page.set_input_files(f"#q-{field}", files=[photo_file(f"IMG_{seed:04d}.jpg", seed)])
    page.wait_for_selector(f"#f-{field} img.thumb")


def first_part(page, hid: str, seed: int, *, changed: bool) -> str:
    """Open the family, start a visit and answer its first questions; the visit's uuid."""
    page.goto(page.url.split("#")[0] + "#/keluarga/" + hid)
    page.click("#start")
    page.wait_for_selector("#visit-form")
    page.select_option("#q-hasil_kunjungan",
                       label="Ditemukan, ada perubahan data" if changed else
                       "Ditemukan, data sesuai")
    page.click("#gps-button")
    page.wait_for_function("() => document.querySelector('#gps-live').textContent"
                           ".includes('akurasi')")
    take_photo(page, "foto_depan", seed)
    page.check("#q-persetujuan-0")
    page.fill("#q-nama_responden", f"Responden {seed}")
    take_photo(page, "foto_dalam", seed + 1)
    return page.evaluate("location.hash").rsplit("/", 1)[1]


def second_part(page, *, add_member=False, died=False) -> None:
    members = page.locator("#visit-form .member").count()
    for i in range(members):
        page.check(f"#q-anggota_{i}__status_keberadaan-0")  # lives with the family
    if died:
        assert members >= 2
        page.check(f"#q-anggota_{members - 1}__status_keberadaan-1")  # Meninggal
    if add_member:
        page.click("#add-anggota")
        n = members
        page.fill(f"#q-anggota_{n}__nik", "3173015507230001")
        page.fill(f"#q-anggota_{n}__nama", "Bayi Baru")
        page.check(f"#q-anggota_{n}__jenis_kelamin-1")
        page.fill(f"#q-anggota_{n}__tanggal_lahir", "2023-07-15")
        page.select_option(f"#q-anggota_{n}__hubungan", label="Cucu")
        page.check(f"#q-anggota_{n}__status_kawin-0")
        page.check(f"#q-anggota_{n}__sekolah-0")
        page.select_option(f"#q-anggota_{n}__pekerjaan", label="Tidak bekerja")
    fill_empty(page)


def finish(page) -> None:
    page.click("#finish")
    page.wait_for_selector("#families", timeout=TIMEOUT)
    assert not page.is_visible("#error-summary")


def all_sent(page) -> bool:
    return page.evaluate("""async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => ['accepted', 'duplicate'].includes(v.state))""")


def test_three_visits_offline_then_one_sync(context, live):
    username, password, ids = enumerator(live)
    page = new_page(context)
    log_in(page, live, username, password)
    wait_controlled(page)
    records = {hid: live.doc(doc) for hid, doc in live.sql(
        "SELECT household_id, doc FROM verified_records")}
    # Visit 2 marks a member as died: a family of two or more.
    chosen = sorted(ids[:3], key=lambda h: -len(records[h]["anggota"]))
    assert len(records[chosen[0]]["anggota"]) >= 2

    context.set_offline(True)
    page.reload()
    page.wait_for_selector("#families li.family")

    uuids = []
    # 1: a member added.
    uuids.append(first_part(page, chosen[1], 10, changed=True))
    second_part(page, add_member=True)
    finish(page)
    # 2: a member died; the page is reloaded in the middle of the visit.
    uuids.append(first_part(page, chosen[0], 20, changed=True))
    shot(page, "visit")
    page.reload()
    page.wait_for_selector("#visit-form")
    assert page.input_value("#q-nama_responden") == "Responden 20"
    assert page.input_value("#q-hasil_kunjungan") != ""
    assert page.locator("#f-foto_depan img.thumb").count() == 1
    assert page.locator("#f-foto_dalam img.thumb").count() == 1
    assert "akurasi 13 m" in page.inner_text("#gps-live")
    second_part(page, died=True)
    finish(page)
    # 3: everything as registered.
    uuids.append(first_part(page, chosen[2], 30, changed=False))
    second_part(page)
    finish(page)
    assert live.sql("SELECT count(*) FROM visits")[0][0] == 0  # nothing left the phone

    # Every progress line shown (a back-off retry may run after the sync that sends).
    page.evaluate("""() => { window.__texts = []; new MutationObserver(() => {
        const el = document.getElementById('sync-progress');
        if (el) window.__texts.push(el.textContent);
      }).observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    context.set_offline(False)  # the online event starts a sync
    wait_js(page, """async () => (await window.lapangan.db.getAll('visits'))
        .every((v) => ['accepted', 'duplicate'].includes(v.state))""")
    wait_synced(page)
    shot(page, "synced")
    texts = page.evaluate("window.__texts")
    assert any("3 dari 3 kunjungan terkirim" in t for t in texts), texts

    rows = live.sql("SELECT uuid, household_id, status FROM visits ORDER BY uuid")
    assert sorted(r[0] for r in rows) == sorted(uuids)
    assert {r[1] for r in rows} == set(chosen)
    photos = live.sql("SELECT sha256 FROM photos")
    links = live.sql("SELECT visit_uuid, sha256 FROM visit_photos")
    assert len(photos) == 6 == len({p[0] for p in photos})  # each photo once
    assert len(links) == 6
    # Re-encoding dropped EXIF: each photo's time and point travel in its photos[] entry.
    claims = live.sql("SELECT taken_at_device, lat, lon, accuracy_m FROM visit_photos")
    assert all(c[0] and c[0][10] == "T" and c[0][-6] in "+-" for c in claims), claims
    assert all((c[1], c[2], c[3]) == (HOME["lat"], HOME["lon"], 12.5) for c in claims), claims
    # What the app sent is what it kept: every photo resized to 1600 px, as JPEG.
    sizes = page.evaluate("""async () => (await window.lapangan.db.getAll('photos'))
        .map((p) => [p.width, p.height, p.mime, p.state])""")
    assert sizes and all(s == [1600, 1200, "image/jpeg", "uploaded"] for s in sizes), sizes
    answers = {r[0]: live.doc(r[1]) for r in live.sql("SELECT uuid, answers FROM visits")}
    added = answers[uuids[0]]["anggota"]
    assert added[-1]["nama"] == "Bayi Baru" and added[-1]["status_keberadaan"] == 5
    assert answers[uuids[1]]["anggota"][-1]["status_keberadaan"] == 2
    assert not [c for c in context.console if c.startswith("pageerror")], context.console


def test_no_serious_accessibility_violation_and_44_px_targets(context, live):
    """axe-core (skip without it, fail with CI=true) on the login page, the family list and
    the visit form at 360 px; every button, link and choice is at least 44 px tall."""
    from tests.pages.axe import require_axe, violations

    require_axe()
    username, password, ids = enumerator(live, least=1)
    page = new_page(context)
    page.goto(live.url + "/lapangan/")
    page.wait_for_selector("#username")
    found = violations(page)
    log_in(page, live, username, password)
    found += violations(page)
    page.click(f"a[href='#/keluarga/{ids[0]}']")
    page.wait_for_selector("#start")
    found += violations(page)
    page.click("#start")
    page.wait_for_selector("#visit-form")
    found += violations(page)
    assert not found, "\n".join(found)
    small = page.evaluate("""() => [...document.querySelectorAll(
        'button, a.button, a.row, label.choice, select, input[type=text], input[type=date]')]
        .filter((el) => el.offsetParent !== null)
        .map((el) => [el.id || el.textContent.trim().slice(0, 30),
                      el.getBoundingClientRect().height])
        .filter(([, height]) => height < 44)""")
    assert not small, small
