"""Every review page a supervisor uses has no serious or critical accessibility violation
(axe-core, WCAG 2.1 A and AA), at phone width (360 px) and laptop width (1280 px).

The live server and its data (imported, synced by the reference client, reconciled) are
test_browser.py's fixtures.
"""

from __future__ import annotations

import pytest

from tests.pages import test_browser as scenario
from tests.pages.axe import require_axe, violations
from tests.pages.test_browser import KECAMATAN, log_in

pytestmark = pytest.mark.browser

browser, live, phone, page = scenario.browser, scenario.live, scenario.phone, scenario.page


@pytest.mark.parametrize("width", [360, 1280])
def test_the_supervisor_pages_have_no_serious_accessibility_violation(page, live, phone, width):
    require_axe()
    page.set_viewport_size({"width": width, "height": 800})
    first, second = phone.families
    conflict = live.sql("SELECT min(id) FROM conflicts WHERE household_id = :h", h=first)[0][0]
    page.goto(live.url + "/review/masuk")
    found = violations(page)
    log_in(page, live)
    paths = ["/review/antrean", f"/review/antrean?kecamatan={KECAMATAN}&status=all",
             f"/review/konflik/{conflict}", f"/review/kunjungan/{phone.visits[first]}",
             f"/review/keluarga/{first}", "/review/dasbor"]
    for path in paths:
        page.goto(live.url + path)
        page.wait_for_load_state("load")
        found += violations(page)
    assert found == []


def test_the_check_does_see_a_violation(page, live, phone):
    """The test above would pass vacuously if axe saw nothing: an image without alternative
    text and a button without a name are serious violations."""
    require_axe()
    page.goto(live.url + "/review/masuk")
    assert violations(page) == []
    page.evaluate("""() => {
        const img = document.createElement('img'); img.src = '/static/none.png';
        const button = document.createElement('button');
        document.querySelector('main, body').append(img, button);
    }""")
    found = violations(page)
    assert any("image-alt" in v for v in found) and any("button-name" in v for v in found)
