"""A client generated from the live OpenAPI document drives a whole enumerator's visit.

The document is the contract for phones and tools we do not write, so it must be usable by a
generator as it stands: openapi-python-client (pinned in requirements-dev.txt) makes a client
from ``/api/openapi.json`` fresh on each run, into a temporary folder (never committed, so it
cannot go stale), and the tests talk to the live server through that client only.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

import pytest

import forms
from tests.client.conftest import PASSWORD, jpeg, sha

GENERATOR = Path(sys.executable).parent / "openapi-python-client"

# openapi-python-client 0.29.1 only takes raw bytes as application/octet-stream. Mapping
# image/jpeg onto it gives uploadPhoto a File body sent as image/jpeg (and getPhoto a File
# answer); the other image types stay unsupported by the generator, so they, and only they,
# may be warned about.
CONTENT_TYPE_OVERRIDES = {"image/jpeg": "application/octet-stream"}
EXPECTED_WARNINGS = {
    ("WARNING parsing PUT /api/v1/photos/{name} within photos.",
     f"Unsupported content type {mime}") for mime in ("image/heic", "image/heif", "image/png")}


def _generator_or_skip() -> Path:
    """The generator's binary; skipped without it, except on CI where it must be there."""
    if GENERATOR.exists():
        return GENERATOR
    reason = f"openapi-python-client is not installed ({GENERATOR} is missing)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def document(live):
    """The live document, as a client would first fetch it (the one plain request here)."""
    import requests

    r = requests.get(live.url + "/api/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


class Generated:
    """The generated package, its generator's warnings and the module of each operation."""

    def __init__(self, package, warnings: set[tuple[str, str]], root: Path):
        self.package = package
        self.warnings = warnings
        self.root = root
        self.name = package.__name__

    def api(self, operation_id: str):
        """The module of an operation: ``getMe`` is ``<package>.api.<tag>.get_me``."""
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()
        found = sorted(self.root.glob(f"api/*/{snake}.py"))
        assert found, f"no module generated for operation {operation_id}"
        return importlib.import_module(f"{self.name}.api.{found[0].parent.name}.{snake}")

    def model(self, name: str):
        return getattr(importlib.import_module(f"{self.name}.models"), name)


@pytest.fixture(scope="module")
def generated(document, tmp_path_factory):
    """Generate the client once per module, import it under a name no other run uses, and
    forget it afterwards (sys.path and sys.modules)."""
    binary = _generator_or_skip()
    tmp = tmp_path_factory.mktemp("generated")
    name = f"tapak_generated_{uuidlib.uuid4().hex[:12]}"
    spec = tmp / "spec.json"
    spec.write_text(json.dumps(document))
    config = tmp / "config.json"
    config.write_text(json.dumps({"package_name_override": name, "post_hooks": [],
                                  "content_type_overrides": CONTENT_TYPE_OVERRIDES}))
    result = subprocess.run(
        [str(binary), "generate", "--path", str(spec), "--output-path", str(tmp / name),
         "--meta", "none", "--config", str(config)],
        capture_output=True, text=True, timeout=300, cwd=tmp)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = set(re.findall(r"^((?:WARNING|ERROR) [^\n]*)\n\n([^\n]*)", output, re.M))
    sys.path.insert(0, str(tmp))
    try:
        yield Generated(importlib.import_module(name), warnings, tmp / name)
    finally:
        sys.path.remove(str(tmp))
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def _client(generated, live, token=None):
    """A generated client that raises on any status the document does not list."""
    if token is None:
        return generated.package.Client(base_url=live.url, timeout=60.0,
                                         raise_on_unexpected_status=True)
    return generated.package.AuthenticatedClient(base_url=live.url, token=token, timeout=60.0,
                                                 raise_on_unexpected_status=True)


def _login(generated, live, user, device):
    Login = generated.model("Login")
    r = generated.api("login").sync_detailed(
        client=_client(generated, live), body=Login(username=user, password=PASSWORD,
                                                    device_id=device))
    assert r.status_code == 201, r.content
    assert isinstance(r.parsed, generated.model("Token")), r.parsed
    assert r.parsed.token_type.lower() == "bearer"
    return r.parsed


def _assert_error(generated, response, status, code):
    """An error answer parsed as the envelope model, with the expected status and code."""
    assert response.status_code == status, response.content
    error = response.parsed
    assert isinstance(error, generated.model("Error")), error
    assert error.error.code == code
    assert error.error.message
    assert isinstance(error.error.details, generated.model("ErrorDetailDetails"))


# --------------------------------------------------------------------------- the document


def test_the_document_is_valid_openapi(document):
    """A generator trusts the document; one that is not valid OpenAPI can mislead it."""
    from openapi_spec_validator import validate

    validate(document)


def test_every_operation_is_generated_with_typed_bodies(generated, document):
    """No operation is dropped, the generator warns of nothing unexpected, and every JSON
    body is a model (a body typed ``Any`` means the generator could not read its schema)."""
    assert generated.warnings <= EXPECTED_WARNINGS, generated.warnings - EXPECTED_WARNINGS
    untyped = {}
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            module = generated.api(operation["operationId"])
            body = inspect.signature(module.sync_detailed).parameters.get("body")
            if body is not None and "Any" in str(body.annotation):
                untyped[operation["operationId"]] = str(body.annotation)
    assert untyped == {}


# --------------------------------------------------------------------------- an enumerator


def test_an_enumerators_day_through_the_generated_client(generated, live):
    """Log in, pull, upload a photo, push a visit that uses it and read the visit back."""
    user, [household_id] = live.enumerator(1)
    device = f"{user}-generated"
    token = _login(generated, live, user, device)
    client = _client(generated, live, token.token)

    me = generated.api("getMe").sync_detailed(client=client)
    assert me.status_code == 200
    assert (me.parsed.username, me.parsed.role) == (user, "enumerator")

    # Pull every page; the family, its assignment and the form arrive as changes.
    changes, cursor = [], generated.package.types.UNSET
    while True:
        page = generated.api("pull").sync_detailed(client=client, cursor=cursor)
        assert page.status_code == 200, page.content
        assert isinstance(page.parsed, generated.model("Pull"))
        changes += page.parsed.changes
        cursor = page.parsed.next_cursor
        if not page.parsed.more:
            break
    upserts = {(c.type_.value, c.id): c.data.to_dict() for c in changes if c.op.value == "upsert"}
    household = upserts[("household", household_id)]
    assert {d["household_id"] for (kind, _), d in upserts.items()
            if kind == "assignment"} == {household_id}
    [form_change] = [d for (kind, _), d in upserts.items() if kind == "form"]

    definition = generated.api("getFormVersion").sync_detailed(
        form_change["form_id"], form_change["version"], client=client)
    assert definition.status_code == 200, definition.content
    form = forms.load_form(definition.parsed.to_dict())

    visit = forms.example_visit(form, household["record"], uuid=str(uuidlib.uuid4()),
                                started_at="2026-02-03T09:00:00+07:00")
    visit.update(base_version=household["base_version"], ended_at="2026-02-03T09:25:00+07:00",
                 location={"lat": -6.14, "lon": 106.73, "accuracy_m": 8})
    assert visit["photos"], "the form asks for photos; this test uploads them"

    File = generated.package.types.File
    has_photo, upload = generated.api("hasPhoto"), generated.api("uploadPhoto")
    for seed, entry in enumerate(visit["photos"], start=7000):
        data = jpeg(seed)
        entry["sha256"] = sha(data)
        body = File(payload=data, file_name="IMG_0001.jpg", mime_type="image/jpeg")
        stored = upload.sync_detailed(entry["sha256"], client=client, body=body)
        assert stored.status_code == 201, stored.content
        assert isinstance(stored.parsed, generated.model("StoredPhoto"))
        assert (stored.parsed.sha256, stored.parsed.mime_type, stored.parsed.size_bytes,
                stored.parsed.width, stored.parsed.height) == (
            entry["sha256"], "image/jpeg", len(data), 64, 48)
        assert has_photo.sync_detailed(entry["sha256"], client=client).status_code == 200
        again = upload.sync_detailed(entry["sha256"], client=client,
                                     body=File(payload=data, mime_type="image/jpeg"))
        assert again.status_code == 200 and again.parsed.sha256 == entry["sha256"]

    PushBatch, PushVisit = generated.model("PushBatch"), generated.model("PushVisit")
    typed = PushVisit.from_dict(visit)
    assert typed.to_dict() == visit  # the model carries the whole visit, nothing lost
    batch = PushBatch(batch_id=str(uuidlib.uuid4()), device_id=device, visits=[typed])
    pushed = generated.api("push").sync_detailed(client=client, body=batch)
    assert pushed.status_code == 200, pushed.content
    [result] = pushed.parsed.results
    assert (result.uuid, result.status.value) == (visit["uuid"], "accepted"), result

    stored = generated.api("getVisit").sync_detailed(visit["uuid"], client=client)
    assert stored.status_code == 200, stored.content
    assert isinstance(stored.parsed, generated.model("Visit"))
    assert (stored.parsed.uuid, stored.parsed.household_id, stored.parsed.status,
            stored.parsed.enumerator) == (visit["uuid"], household_id, "queued", user)
    assert sorted(p.to_dict()["sha256"] for p in stored.parsed.photos) == sorted(
        p["sha256"] for p in visit["photos"])


# --------------------------------------------------------------------------- errors


def test_error_answers_parse_as_the_envelope(generated, live):
    """Clients branch on ``error.code``: the generated client must hand it over typed."""
    user, _ = live.enumerator(0)
    Login = generated.model("Login")
    wrong = generated.api("login").sync_detailed(
        client=_client(generated, live),
        body=Login(username=user, password="not-" + PASSWORD, device_id="x-phone"))
    _assert_error(generated, wrong, 401, "invalid_credentials")

    client = _client(generated, live, _login(generated, live, user, "x-phone").token)
    missing = generated.api("getVisit").sync_detailed(str(uuidlib.uuid4()), client=client)
    _assert_error(generated, missing, 404, "not_found")

    bad = _client(generated, live, "not-a-token")
    _assert_error(generated, generated.api("getMe").sync_detailed(client=bad), 401,
                  "unauthorized")


def test_has_photo_of_a_missing_photo_is_a_plain_404(generated, live):
    """HEAD answers carry no body, so the client must not try to parse one."""
    user, _ = live.enumerator(0)
    client = _client(generated, live, _login(generated, live, user, "head-phone").token)
    missing = generated.api("hasPhoto").sync_detailed(sha(b"never uploaded"), client=client)
    assert missing.status_code == 404
    assert missing.content == b""
