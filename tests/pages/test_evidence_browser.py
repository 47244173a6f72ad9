"""Each conflict kind's page in headless Chromium at 360 px and 1280 px: the evidence is there,
no serious or critical accessibility violation (axe-core), no Content-Security-Policy violation,
nothing scrolls sideways on a phone,
and a screenshot of every kind at both widths is kept under ``test-artifacts/screenshots/``
(``evidence-<kind>-<width>.png``), with the queue's bulk form.

The live server, the phone and its two synced and reconciled visits are test_browser.py's
fixtures (a server of this module's own); the conflicts are stored by
``test_evidence.add_cases`` with the ``detail`` each rule writes, and a ``photo_reused`` whose
other photo is the second family's (the same bytes).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.pages import test_browser as scenario
from tests.pages.axe import require_axe, violations
from tests.pages.test_browser import SHOTS, log_in
from tests.pages.test_browser_csp import Watch
from tests.pages.test_evidence import KINDS, add_cases, shows

pytestmark = [pytest.mark.browser, pytest.mark.matrix]

browser, live, phone, page = scenario.browser, scenario.live, scenario.phone, scenario.page


@pytest.fixture(scope="module")
def cases(live, phone):
    from server.extensions import db
    from server.web.evidence import head_name
    from sync.db import utcnow
    from sync.models import Conflict, Keluarga, VerifiedRecord, Visit, VisitPhoto

    first, second = phone.families
    with live.app.app_context():
        session = db.session
        out = add_cases(session, phone.visits[first], phone.visits[second])
        visit = session.get(Visit, phone.visits[first])
        front = session.scalar(select(VisitPhoto.sha256).where(
            VisitPhoto.visit_uuid == visit.uuid, VisitPhoto.field == "foto_depan"))
        # the second family's visit holds the same bytes (as a fabricator's phone would)
        session.add(VisitPhoto(visit_uuid=phone.visits[second], field="foto_depan",
                               sha256=front))
        family = session.get(Keluarga, first)
        c = Conflict(household_id=first, visit_uuid=visit.uuid, round_id=visit.round_id,
                     kecamatan=family.kode_kelurahan[:8], kelurahan=family.kode_kelurahan,
                     key="evidence-photo", kind="photo_reused", severity="hard",
                     field="foto_depan", visit_value=front, registry_value=[second],
                     message="the same photo was taken at 1 other families",
                     detail={"other_household_ids": [second], "match": "sha256"},
                     record_version=1, status="open", created_at=utcnow(),
                     updated_at=utcnow())
        session.add(c)
        session.flush()
        name = head_name(session.get(VerifiedRecord, second).doc)
        out["photo_reused"] = (c.id, ["Foto kunjungan ini", name, "Jarak hash: 0 dari 64 bit",
                                      "Foto sah", "Kembalikan kunjungan"])
        session.commit()
        session.remove()
    assert set(out) == set(KINDS)
    return out


@pytest.mark.parametrize("width", [360, 1280])
def test_every_kind_in_the_browser(page, live, phone, cases, width):
    require_axe()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 800})
    csp = Watch(page)  # no Content-Security-Policy violation on any of these pages
    log_in(page, live)
    found, missing = [], {}
    for kind in KINDS:
        conflict_id, wanted = cases[kind]
        page.goto(f"{live.url}/review/konflik/{conflict_id}")
        page.wait_for_load_state("load")
        assert page.locator("#evidence").count() == 1, kind
        html = page.content()
        gone = [w for w in wanted if not shows(html, w)]
        if gone:
            missing[kind] = gone
        if kind == "photo_reused":
            page.locator("#photo-pair").scroll_into_view_if_needed()
            page.wait_for_function("[...document.querySelectorAll('#photo-pair img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)",
                                   timeout=10_000)
            assert page.locator("#photo-pair img").count() == 2
        if kind in ("location_outside_area", "location_far"):
            assert page.locator("#evidence-map svg").count() == 1
            assert page.locator("#map-legend li").count() == 5
        if width == 360:
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{kind}: {scroll}px wide at {width}px"
        csp.settle()
        page.screenshot(path=str(SHOTS / f"evidence-{kind}-{width}.png"), full_page=True)
        found += violations(page)
    # the queue's bulk form, filtered to one kind
    page.goto(f"{live.url}/review/antrean?kind=visit_too_short")
    assert page.locator("#bulk input[name=ids]").count() >= 1
    page.screenshot(path=str(SHOTS / f"evidence-bulk-queue-{width}.png"), full_page=True)
    csp.settle()
    found += violations(page)
    assert missing == {}
    assert found == []
    assert csp.found == []


def test_the_bulk_form_works_in_the_browser(page, live, phone, cases):
    """Check two conflicts of one kind, keep the registry with one note: both decided, one
    flash reports them, no script involved."""
    log_in(page, live)
    page.goto(f"{live.url}/review/antrean?kind=location_far")
    boxes = page.locator("#bulk input[name=ids]")
    assert boxes.count() >= 1
    ids = [boxes.nth(i).get_attribute("value") for i in range(boxes.count())]
    for i in range(boxes.count()):
        boxes.nth(i).check()
    page.fill("#bulk-note", "Titik GPS meleset, rumah dikenal ketua RT.")
    page.click("button:has-text('Pertahankan data registri (terpilih)')")
    flash = page.inner_text(".flash")
    assert f"{len(ids)} dari {len(ids)} konflik diputuskan" in flash
    rows = live.sql("SELECT status, note FROM conflicts WHERE kind = 'location_far'")
    assert {r[0] for r in rows} == {"resolved"}
    assert {r[1] for r in rows} == {"Titik GPS meleset, rumah dikenal ketua RT."}
