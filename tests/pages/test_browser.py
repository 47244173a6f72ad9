"""The review pages in a real browser: headless Chromium (Debian's package) driven by
Playwright, against a live server on 127.0.0.1 over a database of its own.

Everything the supervisor sees is built through the real paths: a generated extract imported
by the CLI, users and an assignment round made by the CLI, visits added and synced by the
reference client (``sync.client``) as a phone would, and the reconciliation worker's
``run_once`` raising the conflicts. The scenario is the issue's: a supervisor logs in and filters
the queue, accepts a visit's value, sees the family's history and the dashboard change, returns
another visit, and the enumerator's next pull receives it.

Phone-width (360x800) screenshots of each page are saved under
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

import config
import forms
from tests.pages.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.push.conftest import jpeg, sha

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
KECAMATAN = "31.73.01"
PASSWORD = "pages-test-pw"
FAMILIES = 30
PHONE = {"width": 360, "height": 800}


# --------------------------------------------------------------------------- the live server


def _scratch_database(tmp: Path):
    """(url, drop): a SQLite file, or a PostgreSQL database beside TEST_DATABASE_URL's."""
    from tests.conftest import scratch_test_database

    if not os.environ.get("TEST_DATABASE_URL"):
        return f"sqlite:///{tmp / 'pages.db'}", lambda: None
    return scratch_test_database("tapak_pages")


class Live:
    """The app served by werkzeug in a thread; ``app`` is used in-process for the worker."""

    def __init__(self, tmp: Path, url: str):
        from server import create_app

        settings = config.for_testing(str(tmp / "instance"), url, str(tmp / "photos"))
        settings.update(LOGIN_RATE_LIMIT="1000 per minute", TESTING=False)
        self.app = create_app(settings)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def cli(self, *args: str) -> str:
        with self.app.app_context():  # bootstrap reads the app's session outside click's
            result = self.app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    def sql(self, query: str, **params):
        from server.extensions import db

        with self.app.app_context():
            rows = db.session.execute(text(query), params).all()
            db.session.remove()
        return rows

    def reconcile(self) -> dict:
        from server.extensions import db
        from sync.reconcile.worker import run_once

        with self.app.app_context():
            done = run_once(db.session, worker="pages-test")
            db.session.remove()
        return done

    def stop(self) -> None:
        """Stop serving (if it started) and close the database connections."""
        from server.extensions import db

        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from sync.generator import generate

    tmp = tmp_path_factory.mktemp("pages-live")
    (tmp / "instance").mkdir()
    url, drop = _scratch_database(tmp)
    server = None
    try:
        server = Live(tmp, url)
        generate(tmp / "extract", FAMILIES, 23, "jsonl", [KECAMATAN])
        today = dt.date.today()
        server.cli("db", "upgrade")
        server.cli("areas", "load")
        server.cli("forms", "publish", str(ROOT / "forms/verifikasi_keluarga/v1.json"))
        server.cli("registry", "import", str(tmp / "extract" / "keluarga.jsonl"),
                   "--no-progress")
        server.cli("users", "create", "spv", "--role", "supervisor", "--area", KECAMATAN,
                   "--password", PASSWORD)
        server.cli("users", "create", "ani", "--role", "enumerator", "--area", KECAMATAN,
                   "--password", PASSWORD)
        server.cli("assignments", "round-create", "Uji halaman",
                   "--starts", (today - dt.timedelta(days=7)).isoformat(),
                   "--ends", (today + dt.timedelta(days=60)).isoformat())
        ids = [r[0] for r in server.sql("SELECT id FROM keluarga ORDER BY id")]
        args = [a for hid in ids for a in ("--household", hid)]
        server.cli("assignments", "assign", "1", "ani", *args)
        server.thread.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        drop()


@pytest.fixture(scope="module")
def phone(live, tmp_path_factory):
    """Enumerator ani's phone (the reference client), with two visits that change the
    family's floor, in two kelurahan, synced and reconciled."""
    from sync.client import RetryPolicy, SyncClient

    client = SyncClient(live.url, "ani", PASSWORD, "ani-phone",
                        tmp_path_factory.mktemp("phone") / "outbox.db",
                        retry=RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2))
    client.pull()
    form = forms.load_form(ROOT / "forms/verifikasi_keluarga/v1.json")
    households = client.households()
    chosen, kelurahan = [], set()
    for hid, h in households.items():  # two families in two kelurahan
        if h["kode_kelurahan"] not in kelurahan and h["record"]["rumah"].get("lantai") != 8:
            chosen.append(hid)
            kelurahan.add(h["kode_kelurahan"])
        if len(chosen) == 2:
            break
    assert len(chosen) == 2
    client.visits = {}
    for i, hid in enumerate(chosen):
        record = households[hid]["record"]
        import uuid as uuidlib

        v = forms.example_visit(form, record, uuid=str(uuidlib.uuid4()),
                                started_at="2026-02-03T09:00:00+07:00")
        v["base_version"] = households[hid]["base_version"]
        v["ended_at"] = "2026-02-03T09:35:00+07:00"
        if record.get("lat") is not None:
            v["location"] = {"lat": record["lat"], "lon": record["lon"], "accuracy_m": 8}
            v["answers"]["lokasi"] = dict(v["location"])
        v["answers"]["rumah"]["lantai"] = 8  # earth floor
        images = {}
        for j, p in enumerate(v["photos"]):
            data = jpeg(100 + 10 * i + j, size=(320, 240))
            images[p["field"]] = data
            p["sha256"] = sha(data)
        client.add_visit(v, images)
        client.visits[hid] = v["uuid"]
    report = client.sync()
    assert not report.rejected, report.as_dict()
    done = live.reconcile()
    assert set(done) == set(client.visits.values())
    assert set(done.values()) == {"needs_review"}
    client.families = chosen
    yield client
    client.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live):
    """A phone-sized page that refuses any request off the live server."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="id-ID")
    page = context.new_page()
    page.foreign = []

    def guard(route):
        if route.request.url.startswith(live.url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            page.foreign.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    yield page
    context.close()
    assert page.foreign == [], "the pages asked for something outside the server"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at {PHONE['width']}px"


def log_in(page, live, username="spv"):
    page.goto(live.url + "/review/masuk")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]:has-text('Masuk')")


def open_total(page, live) -> int:
    page.goto(live.url + "/review/dasbor")
    return int(page.inner_text("#open-total").replace(".", ""))


# --------------------------------------------------------------------------- the scenario


def test_supervisor_scenario_from_queue_to_the_phone(page, live, phone):
    first, second = phone.families
    kel_first = live.sql("SELECT kode_kelurahan FROM keluarga WHERE id = :i", i=first)[0][0]
    conflict_id = live.sql("SELECT id FROM conflicts WHERE household_id = :h AND "
                           "kind = 'field_mismatch' AND field = 'rumah.lantai'", h=first)[0][0]

    # 1. log in, filter the queue by kecamatan then kelurahan
    page.goto(live.url + "/review/antrean")
    assert page.url.startswith(live.url + "/review/masuk")
    shot(page, "01-masuk")
    log_in(page, live)
    assert page.url.startswith(live.url + "/review/antrean")
    assert page.locator("#queue li").count() >= 2
    shot(page, "02-antrean")
    before = open_total(page, live)
    shot(page, "03-dasbor-sebelum")
    page.goto(live.url + "/review/antrean")
    assert page.locator("details[open]").count() == 0  # folded away until used
    page.click("summary:has-text('Filter')")
    page.select_option("#f-kec", KECAMATAN)
    page.click("button:has-text('Terapkan')")
    page.select_option("#f-kel", kel_first)
    page.click("button:has-text('Terapkan')")
    assert f"kelurahan={kel_first}" in page.url
    hrefs = page.eval_on_selector_all("#queue a.row", "els => els.map(e => e.href)")
    assert any(h.endswith(f"/review/konflik/{conflict_id}") for h in hrefs)
    assert all(second not in t for t in page.locator("#queue").all_inner_texts())
    shot(page, "04-antrean-filter-kelurahan")

    # 2. open the conflict, see photos and map, accept the visit's value
    page.click(f"a[href='/review/konflik/{conflict_id}']")
    assert "Tanah" in page.locator("#values").inner_text()  # code 8, in words
    assert "Jenis lantai terluas" in page.inner_text("#field")
    thumbs = page.locator(".photos img")
    assert thumbs.count() >= 1
    src = thumbs.first.get_attribute("src")
    r = page.request.get(live.url + src)
    assert r.status == 200, (r.status, r.text()[:300])
    page.locator(".photos").scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('.photos img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=10_000)
    assert page.locator(".map svg").count() == 1
    shot(page, "05-konflik")
    page.fill("#note", "Lantai tanah terlihat di foto.")
    page.click("button:has-text('Terima nilai kunjungan')")
    assert "Keputusan disimpan" in page.inner_text(".flash")
    assert page.inner_text("#status") == "Diputuskan"
    shot(page, "06-konflik-diputuskan")

    # 3. the family's history has the new verified version; the dashboard counts moved
    page.click("a:has-text('Riwayat keluarga')")
    history = page.inner_text("#history")
    assert "Jenis lantai terluas" in history and "Tanah" in history
    assert "Lantai tanah terlihat di foto." in history
    version = live.sql("SELECT version FROM verified_records WHERE household_id = :h",
                       h=first)[0][0]
    assert f"Data terverifikasi v{version}" in history.splitlines()[0]
    shot(page, "07-riwayat-keluarga")
    assert open_total(page, live) == before - 1
    shot(page, "08-dasbor-sesudah")
    page.click(f"#areas a[href='/review/dasbor?kecamatan={KECAMATAN}']")
    assert "Kemajuan Cengkareng" in page.inner_text("h1")
    shot(page, "09-dasbor-kelurahan")

    # 4. return the other family's visit to the enumerator, with a note
    page.goto(live.url + f"/review/kunjungan/{phone.visits[second]}")
    shot(page, "10-kunjungan")
    page.fill("#note", "Foto rumah kurang jelas, mohon kunjungi lagi.")
    page.click("button:has-text('Kembalikan ke enumerator')")
    assert "Tinjauan disimpan" in page.inner_text(".flash")
    assert page.inner_text("#status") == "Dikembalikan"
    assert "Foto rumah kurang jelas" in page.inner_text("#review-note")
    shot(page, "11-kunjungan-dikembalikan")

    # 5. the enumerator's next pull receives it
    report = phone.pull()
    assert report.changes >= 1
    returned = [a for a in phone.assignments().values() if a["household_id"] == second]
    assert len(returned) == 1
    assert returned[0]["status"] == "returned"
    assert returned[0]["note"] == "Foto rumah kurang jelas, mohon kunjungi lagi."
    # the accepted value reached the phone's prefill too
    assert phone.households()[first]["record"]["rumah"]["lantai"] == 8
    assert phone.households()[first]["base_version"] == version


def test_an_enumerator_is_refused_in_indonesian(page, live, phone):
    log_in(page, live, "ani")
    assert "hanya untuk supervisor dan admin" in page.inner_text(".error")
    shot(page, "12-enumerator-ditolak")


PAGES = ["/review/masuk", "/review/antrean", "/review/antrean?status=all",
         "/review/konflik/{conflict}", "/review/kunjungan/{visit}",
         "/review/keluarga/{household}", "/review/dasbor",
         f"/review/dasbor?kecamatan={KECAMATAN}"]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_scrolls_sideways_at_360px(page, live, phone, path):
    first = phone.families[0]
    conflict = live.sql("SELECT min(id) FROM conflicts WHERE household_id = :h", h=first)[0][0]
    target = path.format(conflict=conflict, visit=phone.visits[first], household=first)
    if path != "/review/masuk":
        log_in(page, live)
    page.goto(live.url + target)
    assert page.url.startswith(live.url + target.split("?")[0])
    no_horizontal_scroll(page)
    assert re.search(r"<html lang=\"id\">", page.content())


# The rendered size of a piece of chart text: its computed font size times the scale of the
# SVG it sits in (a viewBox scales its text with the width), 1 for HTML text.
RENDERED_SIZE = """(root) => {
  const size = el => {
    const svg = el.closest('svg');
    return parseFloat(getComputedStyle(el).fontSize) * (svg ? svg.getScreenCTM().a : 1);
  };
  const legend = [...root.querySelectorAll('li, text')]
    .find(e => e.textContent.trim().startsWith('Selesai '));
  const all = [...document.querySelectorAll('svg.chart text, .legend li, .bars li')];
  return {legend: legend ? size(legend) : null, height: legend.getBoundingClientRect().height,
          all: all.map(size)};
}"""


def test_chart_text_keeps_its_size_at_every_width(browser, live, phone):
    """At 1280 px the dashboard's legend reads as it does on a 360 px phone: chart text does
    not scale with the chart's width (a viewBox made 11 px text about 30 px wide screens)."""
    sizes = {}
    for width in (360, 1280):
        context = browser.new_context(viewport={"width": width, "height": 900},
                                      locale="id-ID")
        page = context.new_page()
        try:
            log_in(page, live)
            page.goto(live.url + "/review/dasbor")
            assert page.locator("svg.chart").count() >= 3
            assert page.evaluate("[...document.querySelectorAll('svg.chart')]"
                                 ".every(s => !s.hasAttribute('viewBox'))")
            sizes[width] = page.eval_on_selector("#totals", RENDERED_SIZE)
            if width == 1280:
                shot(page, "13-dasbor-1280")
                # the bars still fill the wider card
                bar = page.eval_on_selector("#totals svg.chart",
                                            "s => s.getBoundingClientRect().width")
                assert bar > 600
        finally:
            context.close()
    small, large = sizes[360], sizes[1280]
    assert small["legend"] is not None and abs(small["legend"] - large["legend"]) <= 1, sizes
    assert abs(small["height"] - large["height"]) <= 1, sizes
    assert 11 <= small["legend"] <= 16, sizes
    assert max(small["all"] + large["all"]) - min(small["all"] + large["all"]) <= 1.5, sizes
