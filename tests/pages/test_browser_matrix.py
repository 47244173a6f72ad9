"""Every page of the issue's work, at phone width (360 px) and laptop width (1280 px): a
screenshot kept as a test artefact (test-artifacts/screenshots/matrix-<page>-<width>.png), no
serious or critical accessibility violation (axe-core), nothing wider than the phone at 360 px.

The conflict pages of each kind are covered by test_evidence_browser.py, the supervisor's
daily pages by test_accessibility.py; this adds the work pages (rounds, assignment, exports,
escalations, search, team, quality) and the monitoring view, as the roles that use them. The
live server and its data are test_browser.py's fixtures.
"""

from __future__ import annotations

import pytest

from tests.pages import test_browser as scenario
from tests.pages.axe import require_axe, violations
from tests.pages.test_browser import KECAMATAN, PASSWORD, log_in, no_horizontal_scroll, shot

pytestmark = [pytest.mark.browser, pytest.mark.matrix]

browser, live, page, phone = scenario.browser, scenario.live, scenario.page, scenario.phone

SUPERVISOR_PAGES = ("/review/penugasan?kecamatan=" + KECAMATAN, "/review/putaran",
                    "/review/ekspor?kecamatan=" + KECAMATAN, "/review/cari",
                    "/review/petugas", "/review/petugas/ani", "/review/mutu",
                    "/review/pemantauan")


@pytest.fixture(scope="module")
def people(live):
    live.cli("users", "create", "boss", "--role", "admin", "--password", PASSWORD)
    live.cli("users", "create", "pantau", "--role", "pemantau", "--area", KECAMATAN,
             "--password", PASSWORD)


def _visit(page, live, path: str, width: int) -> list[str]:
    page.goto(live.url + path)
    page.wait_for_load_state("load")
    assert page.url.startswith(live.url + path.split("?")[0]), page.url
    if width == 360:
        no_horizontal_scroll(page)
    name = path.strip("/").split("?")[0].replace("/", "-")
    shot(page, f"matrix-{name}-{width}")
    return violations(page)


@pytest.mark.parametrize("width", [360, 1280])
def test_the_work_pages_at_both_widths(page, live, phone, people, width):
    require_axe()
    page.set_viewport_size({"width": width, "height": 800})
    found: list[str] = []
    log_in(page, live)
    for path in SUPERVISOR_PAGES:
        found += _visit(page, live, path, width)
    page.context.clear_cookies()
    log_in(page, live, "boss")
    found += _visit(page, live, "/review/eskalasi", width)
    page.context.clear_cookies()
    log_in(page, live, "pantau")
    page.wait_for_url("**/review/pemantauan")
    found += _visit(page, live, f"/review/pemantauan?kecamatan={KECAMATAN}", width)
    assert found == []
