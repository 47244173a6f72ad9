"""A published v1 form, an enumerator with two assigned families, real JPEG photos."""

import hashlib
import io
import uuid as uuidlib

import pytest
from PIL import Image

import forms
from server.cli.forms import FORMS_DIR
from sync import forms as form_store
from sync.models.registry import VerifiedRecord


def jpeg(seed: int, size=(64, 48)) -> bytes:
    """A small real JPEG, different for each seed."""
    image = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    for x in range(0, size[0], 4):
        image.putpixel((x, (x * seed) % size[1]), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def field(client, runner, db, make_user, login, imported):
    """Everything a phone needs to push: token, assignments, form, and a visit maker."""
    result = runner.invoke(args=["forms", "publish",
                                 str(FORMS_DIR / "verifikasi_keluarga" / "v1.json")])
    assert result.exit_code == 0, result.output
    make_user("spv", role="supervisor", areas=("31.73.01",))
    make_user("ani", areas=("31.73.01",))
    make_user("budi", areas=("31.73.01",))
    headers = {n: login(n, device_id=f"{n}-phone") for n in ("spv", "ani", "budi")}
    round_id = client.post("/api/v1/rounds", headers=headers["spv"], json={
        "name": "Round one", "starts_on": "2026-01-01", "ends_on": "2026-12-31"}).get_json()["id"]
    client.post("/api/v1/assignments", headers=headers["spv"], json={
        "round_id": round_id, "enumerator": "ani", "household_ids": ["KLG-A1"]})
    client.post("/api/v1/assignments", headers=headers["spv"], json={
        "round_id": round_id, "enumerator": "budi", "household_ids": ["KLG-A2"]})
    row = form_store.latest_open_version(db, "verifikasi_keluarga")
    form = form_store.compiled_form(row)

    class Field:
        pass

    f = Field()
    f.headers, f.round_id, f.form = headers, round_id, form
    f.seed = 0

    def visit(household_id="KLG-A1", *, with_photos=True, **changes):
        record = db.get(VerifiedRecord, household_id).doc
        v = forms.example_visit(form, record, uuid=str(uuidlib.uuid4()),
                                started_at="2026-02-03T09:00:00+07:00")
        v["base_version"] = db.get(VerifiedRecord, household_id).version
        v["ended_at"] = "2026-02-03T09:25:00+07:00"
        v["location"] = {"lat": -6.1402, "lon": 106.7361, "accuracy_m": 8}
        images = {}
        if with_photos:
            for p in v["photos"]:
                f.seed += 1
                data = jpeg(f.seed)
                images[p["field"]] = data
                p["sha256"] = sha(data)
        v.update(changes)
        return v, images

    def push(visits, who="ani", batch_id=None):
        return client.post("/api/v1/sync/push", headers=headers[who], json={
            "batch_id": batch_id or str(uuidlib.uuid4()), "device_id": f"{who}-phone",
            "visits": visits})

    def upload(data, who="ani", name=None, content_type="image/jpeg"):
        return client.put(f"/api/v1/photos/{name or sha(data)}", data=data,
                          headers={**headers[who], "Content-Type": content_type})

    f.visit, f.push, f.upload = visit, push, upload
    return f
