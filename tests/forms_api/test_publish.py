"""Publishing, closing and serving form versions (CLI and API)."""

import copy
import json

import pytest

from server.cli.forms import FORMS_DIR
from sync import forms as form_store

V1 = FORMS_DIR / "verifikasi_keluarga" / "v1.json"


@pytest.fixture
def definition():
    return json.loads(V1.read_text(encoding="utf-8"))


def test_publish_is_idempotent_and_versions_are_immutable(runner, definition, tmp_path):
    first = runner.invoke(args=["forms", "publish", str(V1)])
    assert first.exit_code == 0, first.output
    assert "verifikasi_keluarga v1 published" in first.output
    again = runner.invoke(args=["forms", "publish", str(V1)])
    assert "already published, unchanged" in again.output
    changed = copy.deepcopy(definition)
    changed["title"] = {"id": "Judul lain"}
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    refused = runner.invoke(args=["forms", "publish", str(path)])
    assert refused.exit_code != 0
    assert "already published with other content" in refused.output


def test_a_broken_definition_is_refused_with_its_problems(runner, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"form_id": "x", "version": 1, "title": "x",
                                "fields": [{"name": "a", "type": "nonsense"}]}))
    result = runner.invoke(args=["forms", "publish", str(path)])
    assert result.exit_code != 0
    assert "fields" in result.output


def test_api_lists_open_forms_and_serves_a_version_with_etag(client, runner, make_user, login,
                                                            db):
    runner.invoke(args=["forms", "publish", str(V1)])
    make_user("ani")
    headers = login("ani")
    listing = client.get("/api/v1/forms", headers=headers).get_json()
    assert len(listing) == 1
    assert listing[0]["form_id"] == "verifikasi_keluarga" and listing[0]["version"] == 1
    response = client.get("/api/v1/forms/verifikasi_keluarga/versions/1", headers=headers)
    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{listing[0]["hash"]}"'
    assert response.get_json()["form_id"] == "verifikasi_keluarga"
    cached = client.get("/api/v1/forms/verifikasi_keluarga/versions/1",
                        headers={**headers, "If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304 and cached.data == b""
    missing = client.get("/api/v1/forms/verifikasi_keluarga/versions/9", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/forms").status_code == 401


def test_closing_hides_a_form_from_the_list(client, runner, make_user, login, db):
    runner.invoke(args=["forms", "publish", str(V1)])
    result = runner.invoke(args=["forms", "close", "verifikasi_keluarga"])
    assert "closed verifikasi_keluarga v1" in result.output
    make_user("ani")
    headers = login("ani")
    assert client.get("/api/v1/forms", headers=headers).get_json() == []
    response = client.get("/api/v1/forms/verifikasi_keluarga/versions/1", headers=headers)
    assert response.status_code == 200 and response.headers["X-Form-State"] == "closed"
    assert runner.invoke(args=["forms", "close", "verifikasi_keluarga"]).exit_code != 0
    assert [r.form_id for r in form_store.published_forms(db, include_closed=True)] == [
        "verifikasi_keluarga"]


def test_example_prints_a_valid_visit_for_a_household(runner, db, imported):
    import forms as engine

    runner.invoke(args=["forms", "publish", str(V1)])
    result = runner.invoke(args=["forms", "example", "verifikasi_keluarga",
                                 "--household", "KLG-A1"])
    assert result.exit_code == 0, result.output
    visit = json.loads(result.output)
    assert visit["household_id"] == "KLG-A1" and visit["base_version"] == 1
    assert visit["form_id"] == "verifikasi_keluarga" and visit["form_version"] == 1
    row = form_store.latest_open_version(db, "verifikasi_keluarga")
    assert engine.validate_visit(form_store.compiled_form(row), visit).errors == []
    synthetic = runner.invoke(args=["forms", "example", "verifikasi_keluarga"])
    assert synthetic.exit_code == 0 and json.loads(synthetic.output)["photos"]
    missing = runner.invoke(args=["forms", "example", "nope"])
    assert missing.exit_code != 0


def test_prefill_comes_from_the_verified_record(client, runner, db, make_user, login, imported):
    from sync.db import write_transaction
    from sync.registry import apply_changes

    runner.invoke(args=["forms", "publish", str(V1)])
    make_user("spv", role="supervisor", areas=("31.73.01",))
    with write_transaction(db):
        apply_changes(db, "KLG-A1", {"rumah.lantai": 2}, source="test", actor_id=None)
    response = client.get("/api/v1/households/KLG-A1/prefill?form_id=verifikasi_keluarga",
                          headers=login("spv"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["base_version"] == 2 and body["version"] == 1
    assert body["answers"]["rumah"]["lantai"] == 2
    assert body["answers"]["anggota"][0]["nik"] == "3173014508850003"
    unknown = client.get("/api/v1/households/KLG-A1/prefill?form_id=nope",
                         headers=login("spv"))
    assert unknown.status_code == 404
