# ruff: noqa: F811  (pytest fixtures imported from tests/push and tests/worker)
"""The OpenRosa endpoints through Flask's test client, as ODK Collect uses them (real HTTP
semantics, real JPEGs): formList, the form, the manifest and its CSVs, HEAD and POST of
submissions (split, resent, refused), device keys, and the visit after the worker ran."""

from __future__ import annotations

import hashlib
import logging
import re
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from sync.models import Photo, SyncBatch, Visit, VisitPhoto
from sync.models.openrosa import OpenRosaFile, OpenRosaKey, OpenRosaSubmission
from tests.openrosa import collect
from tests.push.conftest import field  # noqa: F401  (fixtures)
from tests.worker.conftest import extract, located, reconcile  # noqa: F401

FL = "{http://openrosa.org/xforms/xformsList}"
MF = "{http://openrosa.org/xforms/xformsManifest}"
RS = "{http://openrosa.org/http/response}"


class Device:
    """One enumerator's Collect: the key's base path and the requests Collect makes."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token
        self.base = f"/openrosa/key/{token}"

    def get(self, path: str, **kw):
        url = path if path.startswith("/") else f"{self.base}/{path}"
        return self.client.get(url, headers={**collect.headers(), **kw.pop("headers", {})}, **kw)

    def head(self):
        return self.client.head(f"{self.base}/submission?deviceID={collect.DEVICE_ID}",
                                headers=collect.headers())

    def post(self, parts):
        body, ctype = collect.multipart(parts)
        return self.client.post(f"{self.base}/submission?deviceID={collect.DEVICE_ID}",
                                data=body, headers={**collect.headers(), "Content-Type": ctype})

    def send(self, xml: bytes, files: list[tuple[str, bytes]], accept: int | None = None):
        """HEAD, then the POSTs Collect would make; the responses."""
        head = self.head()
        assert head.status_code == 204
        limit = accept or int(head.headers["X-OpenRosa-Accept-Content-Length"])
        responses = []
        for parts in collect.split_posts("Verifikasi_2026-02-03_09-00-00.xml", xml, files, limit):
            responses.append(self.post(parts))
            if responses[-1].status_code not in (201, 202):
                break
        return responses


def url_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def message(response) -> tuple[str, str]:
    root = ElementTree.fromstring(response.data)
    assert root.tag == f"{RS}OpenRosaResponse"
    m = root.find(f"{RS}message")
    return m.get("nature"), m.text or ""


@pytest.fixture
def devices(field, client, db):
    from server.models import User
    from server.openrosa.keys import new_key

    out = {}
    for name in ("ani", "budi"):
        user = db.scalar(select(User).where(User.username == name))
        out[name] = Device(client, new_key(db, user))
    return out


@pytest.fixture
def submission(field, db, located):
    """A filled visit for a family as Collect would hold it: (visit, xml, files)."""

    def make(household_id="KLG-A1", **changes):
        v, images = located(household_id, **changes)
        names, files = {}, []
        for i, p in enumerate(v["photos"]):
            name = f"17675791234{i:02d}.jpg"
            names[p["field"]] = name
            files.append((name, images[p["field"]]))
        xml = collect.instance_xml(field.form.definition, v, names)
        return v, xml, files

    return make


# --------------------------------------------------------------------------- keys


def test_a_bad_or_revoked_key_gets_403_and_a_new_key_revokes_the_old(devices, client, db,
                                                                       runner):
    assert devices["ani"].get("formList").status_code == 200
    for bad in ("nope", "x" * 43, devices["ani"].token + "x"):
        response = client.get(f"/openrosa/key/{bad}/formList", headers=collect.headers())
        assert response.status_code == 403
        assert response.headers["X-OpenRosa-Version"] == "1.0"
        assert message(response)[0] == "error"
    result = runner.invoke(args=["openrosa", "qr", "ani", "--url", "https://tapak.example",
                                 "--out", str(runner.app.instance_path) + "/ani.png"])
    assert result.exit_code == 0, result.output
    assert devices["ani"].get("formList").status_code == 403  # the QR code made a new key
    rows = db.scalars(select(OpenRosaKey)).all()
    assert all(len(r.token_hash) == 64 for r in rows)
    assert devices["ani"].token not in {r.token_hash for r in rows}  # stored hashed
    assert devices["budi"].get("formList").status_code == 200  # another user's key lives on
    assert runner.invoke(args=["openrosa", "revoke", "budi"]).exit_code == 0
    assert devices["budi"].get("formList").status_code == 403


def test_the_qr_command_writes_collects_settings_png_with_the_key(field, runner, tmp_path,
                                                                  client):
    import json

    from PIL import Image

    from server.openrosa.qr import decode, payload

    out = tmp_path / "ani.png"
    result = runner.invoke(args=["openrosa", "qr", "ani", "--url", "https://tapak.example/",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout[result.stdout.index("{"):result.stdout.rindex("}") + 1])
    url = settings["general"]["server_url"]
    assert url.startswith("https://tapak.example/openrosa/key/")
    assert decode(payload(settings)) == settings
    assert Image.open(out).format == "PNG"
    token = url.rsplit("/", 1)[1]
    assert client.get(f"/openrosa/key/{token}/formList").status_code == 200
    assert runner.invoke(args=["openrosa", "qr", "spv"]).exit_code != 0  # enumerators only


def test_the_key_never_reaches_a_log_line(devices, caplog):
    from server.logging import JsonFormatter

    with caplog.at_level(logging.INFO, logger="tapak"):
        devices["ani"].get("formList")
        devices["ani"].client.get("/openrosa/key/not-a-valid-key-at-all-000/formList")
    lines = [r for r in caplog.records if r.name == "tapak.request"]
    assert lines
    for record in lines:
        assert devices["ani"].token not in record.path
        assert "not-a-valid-key" not in record.path
        assert record.path.startswith("/openrosa/key/***/")
        assert devices["ani"].token not in JsonFormatter().format(record)


# --------------------------------------------------------------------------- forms and media


def test_formlist_form_and_manifest_as_collect_reads_them(devices, field, client, db):
    ani = devices["ani"]
    response = ani.get("formList")
    assert response.status_code == 200
    assert response.headers["X-OpenRosa-Version"] == "1.0"
    assert response.content_type.startswith("text/xml")
    xform = ElementTree.fromstring(response.data).find(f"{FL}xform")
    info = {c.tag.removeprefix(FL): c.text for c in xform}
    assert info["formID"] == "verifikasi_keluarga" and info["version"] == "1" and info["name"]
    form = ani.get(url_path(info["downloadUrl"]))
    assert form.status_code == 200
    assert info["hash"] == "md5:" + hashlib.md5(form.data).hexdigest()
    again = ani.get(url_path(info["downloadUrl"]))
    assert again.data == form.data  # generated once, stored: the bytes never change
    assert ani.get(url_path(info["downloadUrl"]),
                   headers={"If-None-Match": form.headers["ETag"]}).status_code == 304
    manifest = ani.get(url_path(info["manifestUrl"]))
    assert manifest.status_code == 200 and manifest.headers["X-OpenRosa-Version"] == "1.0"
    files = {m.find(f"{MF}filename").text: (m.find(f"{MF}hash").text,
                                            m.find(f"{MF}downloadUrl").text)
             for m in ElementTree.fromstring(manifest.data).findall(f"{MF}mediaFile")}
    assert set(files) == {"households.csv", "members.csv"}
    csvs = {}
    for name, (md5, url) in files.items():
        got = ani.get(url_path(url))
        assert got.status_code == 200
        assert md5 == "md5:" + hashlib.md5(got.data).hexdigest()
        assert ani.get(url_path(url), headers={"If-None-Match": got.headers["ETag"]}
                       ).status_code == 304
        csvs[name] = got.data.decode()
    assert csvs["households.csv"].splitlines()[1].startswith("KLG-A1,")
    assert "KLG-A2" not in csvs["households.csv"] and "KLG-A2" not in csvs["members.csv"]
    assert ani.get(url_path(info["manifestUrl"]),
                   headers={"If-None-Match": manifest.headers["ETag"]}).status_code == 304


def test_a_closed_form_is_not_listed_and_not_served(devices, runner):
    runner.invoke(args=["forms", "close", "verifikasi_keluarga"])
    ani = devices["ani"]
    assert ElementTree.fromstring(ani.get("formList").data).findall(f"{FL}xform") == []
    for path in ("forms/verifikasi_keluarga/1/form.xml", "forms/verifikasi_keluarga/1/manifest",
                 "forms/verifikasi_keluarga/1/media/households.csv"):
        assert ani.get(path).status_code == 403
    assert ani.get("forms/nope/1/form.xml").status_code == 404


def test_the_csvs_change_their_hash_when_the_assignments_change(devices, field, client):
    budi = devices["budi"]
    before = budi.get("forms/verifikasi_keluarga/1/manifest")
    client.post("/api/v1/assignments", headers=field.headers["spv"], json={
        "round_id": field.round_id, "enumerator": "budi", "household_ids": ["KLG-A1"]})
    after = budi.get("forms/verifikasi_keluarga/1/manifest",
                     headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.data != before.data
    assert "KLG-A1" in budi.get("forms/verifikasi_keluarga/1/media/households.csv").data.decode()
    assert "KLG-A1" not in devices["ani"].get(
        "forms/verifikasi_keluarga/1/media/households.csv").data.decode()


# --------------------------------------------------------------------------- submissions


def test_head_submission_is_204_with_the_accepted_length(devices, app):
    response = devices["ani"].head()
    assert response.status_code == 204
    assert response.headers["X-OpenRosa-Version"] == "1.0"
    assert int(response.headers["X-OpenRosa-Accept-Content-Length"]) == \
        app.config["MAX_CONTENT_LENGTH"]


def test_a_submission_is_stored_reconciled_and_marked_openrosa(devices, submission, db,
                                                                reconcile):
    v, xml, files = submission()
    responses = devices["ani"].send(xml, files)
    assert [r.status_code for r in responses] == [201]
    assert message(responses[0])[0] == "submit_success"
    assert responses[0].headers["X-OpenRosa-Version"] == "1.0"
    row = db.get(Visit, v["uuid"])
    assert row.channel == "openrosa" and row.status == "queued"
    assert row.device_id == collect.DEVICE_ID
    assert (row.lat, row.lon, row.accuracy_m) == (v["location"]["lat"], v["location"]["lon"],
                                                  v["location"]["accuracy_m"])
    assert row.branch_id == v["uuid"] and row.trunk_version == row.base_version
    linked = dict(db.execute(select(VisitPhoto.field, VisitPhoto.sha256)
                             .where(VisitPhoto.visit_uuid == v["uuid"])).all())
    assert linked == {p["field"]: p["sha256"] for p in v["photos"]}
    for p in v["photos"]:
        photo = db.get(Photo, p["sha256"])
        assert photo.phash and photo.width == 64 and photo.mime_type == "image/jpeg"
    assert reconcile() == 1
    db.commit()
    assert db.get(Visit, v["uuid"]).status == "verified"


def test_the_stored_visit_is_the_json_visit_it_was_filled_from(devices, submission, field,
                                                                 db):
    import forms

    v, xml, files = submission()
    assert devices["ani"].send(xml, files)[-1].status_code == 201
    row = db.get(Visit, v["uuid"])
    answers, errors = forms.validate_visit(field.form, v)
    assert errors == []
    # Photo answers are the files' SHA-256, as in a JSON push; a geopoint from Collect always
    # has four parts, so it also carries the altitude.
    stored = dict(row.answers)
    assert stored.pop("lokasi") == {**answers.pop("lokasi"), "altitude_m": 0}
    assert stored == answers
    assert (row.household_id, row.base_version, row.form_id, row.form_version) == (
        v["household_id"], v["base_version"], v["form_id"], v["form_version"])


def test_a_split_submission_is_queued_only_when_its_last_file_arrived(devices, submission, db,
                                                                      reconcile):
    v, xml, files = submission()
    assert len(files) >= 2
    limit = len(xml) + len(files[0][1]) + 10  # the second file would go over: split
    posts = collect.split_posts("x.xml", xml, files, limit)
    assert len(posts) == len(files)
    assert all(p[-1][0] == "*isIncomplete*" for p in posts[:-1])
    first = devices["ani"].post(posts[0])
    assert first.status_code == 201
    assert "menunggu foto" in message(first)[1] or "setelah foto" in message(first)[1]
    assert db.get(Visit, v["uuid"]) is None  # not in the pipeline until every file is here
    assert db.scalar(select(func.count()).select_from(OpenRosaFile)) == 1
    for parts in posts[1:]:
        assert devices["ani"].post(parts).status_code == 201
    db.commit()
    assert db.get(Visit, v["uuid"]).status == "queued"
    assert reconcile() == 1


def test_a_resend_is_202_and_never_doubles(devices, submission, db):
    v, xml, files = submission()
    assert devices["ani"].send(xml, files)[-1].status_code == 201
    again = devices["ani"].send(xml, files)
    assert [r.status_code for r in again] == [202]
    db.commit()
    assert db.scalar(select(func.count()).select_from(Visit)) == 1
    assert db.scalar(select(func.count()).select_from(SyncBatch)) == 1


def test_an_instance_id_reused_with_other_xml_is_409(devices, submission, db):
    v, xml, files = submission()
    assert devices["ani"].send(xml, files)[-1].status_code == 201
    other = xml.replace(b"</catatan>", b" lagi</catatan>") if b"</catatan>" in xml else \
        xml.replace(b"<_base_version>", b"<!-- x --><_base_version>")
    response = devices["ani"].send(other, files)[-1]
    assert response.status_code == 409
    assert "instanceID" in message(response)[1]
    db.commit()
    assert db.scalar(select(func.count()).select_from(Visit)) == 1


def _nothing_stored(db):
    db.commit()
    assert db.scalar(select(func.count()).select_from(Visit)) == 0
    assert db.scalar(select(func.count()).select_from(OpenRosaSubmission)) == 0
    assert db.scalar(select(func.count()).select_from(Photo)) == 0
    assert db.scalar(select(func.count()).select_from(SyncBatch)) == 0


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<data id="verifikasi_keluarga" version="1">&lol2;</data>')


@pytest.mark.parametrize("case", ["not_xml", "bomb", "unknown_form", "unknown_version",
                                  "no_instance_id", "not_an_image", "too_large",
                                  "not_assigned", "invalid_answer", "no_xml_part"])
def test_bad_submissions_get_a_clear_4xx_and_store_nothing(devices, submission, db, app, case):
    v, xml, files = submission()
    expected = 400
    if case == "not_xml":
        xml = b"<data id='verifikasi_keluarga' version='1'><oops></data>"
    elif case == "bomb":
        xml = BOMB
    elif case == "unknown_form":
        xml = xml.replace(b'id="verifikasi_keluarga"', b'id="lain"')
        expected = 404
    elif case == "unknown_version":
        xml = xml.replace(b'version="1"', b'version="9"')
        expected = 404
    elif case == "no_instance_id":
        xml = re.sub(rb"<meta>.*</meta>", b"", xml)
    elif case == "not_an_image":
        files = [(files[0][0], b"%PDF-1.4 not a photo")] + files[1:]
        expected = 422
    elif case == "too_large":
        app.config["MAX_PHOTO_BYTES"], saved = 1000, app.config["MAX_PHOTO_BYTES"]
        expected = 413
    elif case == "not_assigned":
        v2, xml, files = submission("KLG-A2")  # budi's family
        expected = 403
    elif case == "invalid_answer":
        xml = xml.replace(b"<persetujuan>yes</persetujuan>", b"<persetujuan>ya</persetujuan>")
    try:
        if case == "no_xml_part":
            response = devices["ani"].post([("berkas", "a.jpg", "image/jpeg", files[0][1])])
        else:
            response = devices["ani"].send(xml, files, accept=10**8)[-1]
    finally:
        if case == "too_large":
            app.config["MAX_PHOTO_BYTES"] = saved
    assert response.status_code == expected, (case, response.data)
    nature, text = message(response)
    assert nature == "error" and text
    _nothing_stored(db)


def test_a_revoked_key_cannot_submit(devices, submission, db):
    from server.models import User
    from server.openrosa.keys import revoke_keys

    v, xml, files = submission()
    revoke_keys(db, db.scalar(select(User).where(User.username == "ani")))
    parts = collect.split_posts("x.xml", xml, files, 10**8)[0]
    response = devices["ani"].post(parts)
    assert response.status_code == 403
    _nothing_stored(db)


def test_an_invalid_answer_is_explained_in_indonesian(devices, submission):
    v, xml, files = submission()
    xml = xml.replace(b"<persetujuan>yes</persetujuan>", b"<persetujuan>ya</persetujuan>")
    response = devices["ani"].send(xml, files)[-1]
    assert response.status_code == 400
    text = message(response)[1]
    assert text.startswith("Kiriman ditolak") and "persetujuan" in text


# --------------------------------------------------------------------------- scoping (IDOR)


def test_one_enumerators_key_never_reaches_another_enumerators_families(devices, submission,
                                                                         db):
    ani, budi = devices["ani"], devices["budi"]
    for name in ("households.csv", "members.csv"):
        mine = budi.get(f"forms/verifikasi_keluarga/1/media/{name}").data.decode()
        assert "KLG-A1" not in mine
        assert "KLG-A1" in ani.get(f"forms/verifikasi_keluarga/1/media/{name}").data.decode()
    assert budi.get("forms/verifikasi_keluarga/1/media/../households.csv").status_code == 404
    assert budi.get("forms/verifikasi_keluarga/1/media/x.csv").status_code == 404
    # budi cannot submit for ani's family, nor add files to ani's submission
    v, xml, files = submission("KLG-A1")
    assert budi.send(xml, files)[-1].status_code == 403
    assert ani.send(xml, files)[-1].status_code == 201
    assert budi.send(xml, files)[-1].status_code == 403
    db.commit()
    assert db.get(Visit, v["uuid"]).enumerator_id == db.get(OpenRosaSubmission,
                                                            v["uuid"]).user_id


def test_submissions_are_not_in_the_openapi_document(client):
    spec = client.get("/api/openapi.json").get_json()
    assert not [p for p in spec["paths"] if "openrosa" in p]


def test_a_resend_after_reconciliation_is_still_202(devices, submission, db, reconcile):
    v, xml, files = submission()
    assert devices["ani"].send(xml, files)[-1].status_code == 201
    assert reconcile() == 1  # the assignment is done: the family is no longer open to ani
    assert [r.status_code for r in devices["ani"].send(xml, files)] == [202]
    fresh, xml2, files2 = submission()
    assert devices["ani"].send(xml2, files2)[-1].status_code == 403  # a new visit is refused
