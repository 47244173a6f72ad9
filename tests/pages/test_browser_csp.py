"""The review pages under their Content-Security-Policy in a real browser: every page a
supervisor uses renders without a single violation (no inline style, no inline script,
nothing from another host), including the inline SVG map and charts.

The live server, its data (imported, synced by the reference client, reconciled) and the
phone-sized page that refuses foreign requests are test_browser.py's fixtures. Violations are
caught twice: a ``securitypolicyviolation`` listener added before any page script runs, and
Chromium's own console messages about the policy.
"""

from __future__ import annotations

import pytest

from server.security import CONTENT_SECURITY_POLICY
from tests.pages import test_browser as scenario
from tests.pages.test_browser import KECAMATAN, log_in

pytestmark = pytest.mark.browser

# The scenario's fixtures, shared by name (module-scoped: this module gets a server of its own).
browser, live, phone, page = scenario.browser, scenario.live, scenario.phone, scenario.page

LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => {
  const text = 'Content Security Policy violation: ' + e.violatedDirective + ' '
    + e.blockedURI + ' ' + (e.sample || '');
  window.__csp.push(text);
  console.error(text);
});
"""


class Watch:
    """Collects the policy violations of every page opened in ``page``."""

    def __init__(self, page):
        self.page = page
        self.found: list[str] = []
        page.add_init_script(LISTENER)
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.found.append(f"{self.page.url}: {message.text}")

    def settle(self) -> list[str]:
        """Let the page load every image (lazy ones too) and report what its listener saw."""
        page = self.page
        page.wait_for_load_state("load")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("() => [...document.images].every(i => i.complete)",
                               timeout=10_000)
        # Violation events are queued tasks: let them run before reading them.
        seen = page.evaluate("new Promise(r => setTimeout(() => r(window.__csp || []), 100))")
        self.found.extend(f"{page.url}: {text}" for text in seen if text not in self.found)
        return self.found


@pytest.fixture
def watch(page):
    return Watch(page)


def test_no_page_a_supervisor_uses_violates_the_policy(page, live, phone, watch):
    first, second = phone.families
    conflict = live.sql("SELECT min(id) FROM conflicts WHERE household_id = :h", h=first)[0][0]

    page.goto(live.url + "/review/masuk")
    watch.settle()
    response = page.request.get(live.url + "/review/masuk")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    log_in(page, live)
    assert page.url.startswith(live.url + "/review/antrean")
    watch.settle()

    paths = ["/review/antrean?status=all", f"/review/antrean?kecamatan={KECAMATAN}",
             f"/review/konflik/{conflict}", f"/review/kunjungan/{phone.visits[first]}",
             f"/review/kunjungan/{phone.visits[second]}", f"/review/keluarga/{first}",
             "/review/dasbor", f"/review/dasbor?kecamatan={KECAMATAN}",
             "/review/konflik/99999999"]
    for path in paths:
        page.goto(live.url + path)
        watch.settle()
        if path.startswith("/review/konflik/") and path != "/review/konflik/99999999":
            assert page.locator(".map svg").count() == 1  # the inline SVG map is there
            assert page.locator(".photos img").count() >= 1
        if path.startswith("/review/dasbor"):
            assert page.locator("svg.chart").count() >= 1  # and the inline SVG charts

    # A decision: the redirect back shows the flash message on the conflict page.
    page.goto(live.url + f"/review/konflik/{conflict}")
    page.fill("#note", "Diperiksa di peramban.")
    page.click("button:has-text('Pertahankan data registri')")
    assert page.locator(".flash").count() == 1
    watch.settle()

    assert watch.found == []


def test_the_watch_does_see_a_violation(page, live, phone, watch):
    """The check above would pass vacuously if violations went unseen: an inline style
    attribute must be refused by the policy and reported."""
    page.goto(live.url + "/review/masuk")
    watch.settle()
    assert watch.found == []
    page.evaluate("document.body.setAttribute('style', 'background: red')")
    found = watch.settle()
    assert any("style-src" in text for text in found), found
    colour = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert colour != "rgb(255, 0, 0)"  # and the browser refused to apply it
