"""The assignment page in a real browser at 360 px, without a line of JavaScript of ours: a
supervisor chooses a kecamatan and a kelurahan, sees the enumerators' load, ticks a family and
moves it to another enumerator. The live server and its data are test_browser.py's fixtures
(module-scoped: this module gets a server of its own)."""

from __future__ import annotations

import pytest

from tests.pages import test_browser as scenario
from tests.pages.test_browser import KECAMATAN, PASSWORD, log_in, no_horizontal_scroll, shot
from tests.pages.test_browser_csp import Watch

pytestmark = pytest.mark.browser

browser, live, page = scenario.browser, scenario.live, scenario.page


def test_assigning_a_family_from_a_phone(page, live):
    live.cli("users", "create", "budi", "--role", "enumerator", "--area", KECAMATAN,
             "--password", PASSWORD)
    watch = Watch(page)
    log_in(page, live)
    page.goto(live.url + "/review/penugasan")
    page.select_option("#a-kec", KECAMATAN)
    page.click("#pick button[type=submit]")
    page.wait_for_selector("#a-kel")
    no_horizontal_scroll(page)
    kelurahan = page.eval_on_selector("#a-kel option:nth-child(2)", "o => o.value")
    page.select_option("#a-kel", kelurahan)
    page.click("#pick button[type=submit]")
    page.wait_for_selector("#families")
    assert page.is_visible("#load-ani") and page.is_visible("#load-budi")
    assert _load(page, "budi") == ["0", "0", "0"]
    no_horizontal_scroll(page)
    shot(page, "penugasan")
    household = page.eval_on_selector("#families input[name=keluarga]", "i => i.value")
    page.check(f"#families input[value='{household}']")
    page.select_option("#fam-enum", "budi")
    page.click("#families button[value=tugaskan]")
    page.wait_for_selector(".flash")
    assert "dipindahkan 1" in page.inner_text(".flash")
    assert _load(page, "budi") == ["1", "0", "0"]
    no_horizontal_scroll(page)
    rows = live.sql("SELECT u.username, a.status FROM assignments a JOIN users u "
                    "ON u.id = a.enumerator_id WHERE a.household_id = :h", h=household)
    assert [tuple(r) for r in rows] == [("budi", "pending")]
    # every other work page fits the phone too, under the CSP
    for path in ("/review/putaran", "/review/ekspor?kecamatan=" + KECAMATAN, "/review/cari",
                 "/review/petugas", "/review/petugas/ani", "/review/mutu"):
        page.goto(live.url + path)
        no_horizontal_scroll(page)
        shot(page, path.strip("/").split("?")[0].replace("/", "-"))
    page.goto(live.url + "/review/cari")
    page.fill("#q", household)
    page.click("#search button[type=submit]")
    page.wait_for_selector("#results")
    assert "/review/cari" in page.url and household not in page.url  # a POST: no query in URL
    no_horizontal_scroll(page)
    assert watch.settle() == []


def _load(page, username):
    """(assigned, visited, returned) as the page shows them."""
    return page.eval_on_selector_all(f"#load-{username} b.n", "bs => bs.map(b => b.innerText)")
