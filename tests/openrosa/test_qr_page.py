"""The supervisor's page with an enumerator's Collect settings QR code (inline SVG)."""

# ruff: noqa: F811  (pytest fixtures imported from tests/push and tests/pages)
from __future__ import annotations

import re

from tests.pages.conftest import Web
from tests.push.conftest import field  # noqa: F401


def test_a_supervisor_makes_an_enumerators_qr_code_and_the_old_key_dies(field, client, db,
                                                                         make_user):
    from sqlalchemy import select

    from server.models import User
    from server.openrosa.keys import new_key

    old = new_key(db, db.scalar(select(User).where(User.username == "ani")))
    web = Web(client)
    assert web.login("spv").status_code in (302, 303)
    page = "/review/petugas/ani/collect"
    got = web.get(page)
    assert got.status_code == 200 and "<svg" not in got.get_data(as_text=True)
    made = web.post(page, form_page=page)
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    assert re.search(r'<figure class="card" id="collect-qr"><svg', html)
    url = re.search(r'id="collect-url">([^<]+)<', html).group(1)
    token = url.rsplit("/", 1)[1]
    assert client.get(f"/openrosa/key/{token}/formList").status_code == 200
    assert client.get(f"/openrosa/key/{old}/formList").status_code == 403
    # only enumerators, and only those the supervisor manages
    assert web.get("/review/petugas/spv/collect").status_code in (404, 422)


def test_another_kecamatans_supervisor_cannot_make_the_code(field, client, make_user):
    make_user("other-spv", role="supervisor", areas=("31.72.01",))
    web = Web(client)
    assert web.login("other-spv").status_code in (302, 303)
    page = "/review/petugas/ani/collect"
    assert web.get(page).status_code == 404
    assert web.post(page, form_page="/review/petugas").status_code == 404


def test_the_member_page_links_an_enumerator_to_the_qr_page(field, client):
    web = Web(client)
    assert web.login("spv").status_code in (302, 303)
    html = web.get("/review/petugas/ani").get_data(as_text=True)
    link = re.search(r'<p class="card" id="collect"><a href="([^"]+)">', html)
    assert link and link.group(1) == "/review/petugas/ani/collect"
    assert web.get(link.group(1)).status_code == 200
    spv = web.get("/review/petugas/spv")  # not an enumerator: no Collect link
    assert spv.status_code != 200 or 'id="collect"' not in spv.get_data(as_text=True)
