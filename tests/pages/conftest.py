"""Fixtures for the review pages: a logged-in page session on Flask's test client, the worker
tests' families and visits (pushed through the API, reconciled by the real worker), and the
rule for browser tests.

Browser tests (marker ``browser``) need Debian's Chromium and the ``playwright`` package. When
either is missing they are skipped, unless ``CI=true``: then they fail, so that CI never passes
without having driven a browser.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.push.conftest import field, jpeg, sha  # noqa: F401  (fixtures and helpers)
from tests.worker.conftest import deliver, extract, located, reconcile  # noqa: F401

CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def chromium_missing() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def skip_or_fail(what: str, reason: str | None) -> None:
    """Skip a test whose tool is missing; with CI=true, fail it instead."""
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} cannot run with CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    if item.get_closest_marker("browser") is not None:
        skip_or_fail("browser test", chromium_missing())


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


class Web:
    """A person on the pages through Flask's test client: logs in, posts forms with the token."""

    def __init__(self, client):
        self.client = client

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def login(self, username: str, password: str = "password123"):
        token = csrf_token(self.client.get("/review/masuk").get_data(as_text=True))
        return self.client.post("/review/masuk", data={
            "username": username, "password": password, "csrf_token": token})

    def post(self, path: str, data: dict | None = None, *, form_page: str | None = None,
             token: bool = True):
        """POST a form; the token comes from ``form_page`` (default: the queue)."""
        data = dict(data or {})
        if token:
            page = self.client.get(form_page or "/review/antrean").get_data(as_text=True)
            data["csrf_token"] = csrf_token(page)
        return self.client.post(path, data=data)


@pytest.fixture
def web(client):
    return Web(client)


@pytest.fixture
def flagged(db, field, located, deliver, reconcile):  # noqa: F811
    """Two visits needing review, one per family of supervisor ``spv``'s kecamatan: KLG-A1's
    floor changed (a field_mismatch), KLG-A2's head of family's occupation changed (a path
    naming a member by NIK). Returns ``{household_id: visit_uuid}``."""
    out = {}
    v, images = located("KLG-A1")
    v["answers"]["rumah"]["lantai"] = 8
    deliver((v, images))
    out["KLG-A1"] = v["uuid"]
    v, images = located("KLG-A2")
    v["answers"]["anggota"][0]["pekerjaan"] = 3
    deliver((v, images), who="budi")
    out["KLG-A2"] = v["uuid"]
    assert reconcile() == 2
    db.commit()
    return out
