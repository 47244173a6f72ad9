"""The monitoring page in Chromium at 360 px, as a pemantau: it lands there after login, the
page fits the phone, the map has its legend and its Kepulauan Seribu inset, the weekly chart
is drawn, and the Content-Security-Policy sees no violation. The live server and its data
are tests/pages/test_browser.py's fixtures (module-scoped: a server of this module's own)."""

from __future__ import annotations

import pytest

from tests.pages import test_browser as scenario
from tests.pages.test_browser import PASSWORD, log_in, no_horizontal_scroll, shot
from tests.pages.test_browser_csp import Watch

pytestmark = pytest.mark.browser

browser, live, page, phone = scenario.browser, scenario.live, scenario.page, scenario.phone


def test_a_pemantau_on_a_phone(page, live, phone):
    live.cli("users", "create", "pantau", "--role", "pemantau", "--area", "31.73.01",
             "--area", "31.01.02", "--password", PASSWORD)
    watch = Watch(page)
    log_in(page, live, "pantau")
    page.wait_for_url("**/review/pemantauan")
    assert page.viewport_size["width"] == 360
    no_horizontal_scroll(page)
    assert page.is_visible("#computed-at")
    assert page.is_visible("svg.choropleth") and page.is_visible("#map-legend")
    assert page.locator("svg.choropleth g.inset path.kel").count() >= 1  # Kepulauan Seribu
    kelurahan = page.locator("svg.choropleth path.kel").count()
    assert kelurahan == page.locator("#map-table tbody tr").count() > 1
    assert page.is_visible("svg.linechart") and page.is_visible("#weekly-legend")
    assert page.locator("[style]").count() == 0
    visited = page.inner_text("#coverage-table tfoot td:nth-child(3)")
    assert visited == "< 5"  # two visits: suppressed
    shot(page, "pemantauan")
    # the map by another measure, then one kecamatan's kelurahan
    page.select_option("#f-measure", "inklusi")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**ukuran=inklusi**")
    no_horizontal_scroll(page)
    page.click("#coverage-table a:has-text('Cengkareng')")
    page.wait_for_url("**kecamatan=31.73.01**")
    no_horizontal_scroll(page)
    assert page.locator("svg.choropleth g.inset").count() == 0
    # the review pages stay closed
    response = page.goto(live.url + "/review/antrean")
    assert response.status == 403
    assert watch.settle() == []
