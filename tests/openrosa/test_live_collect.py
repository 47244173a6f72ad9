"""A Collect-like client on Node with ODK's own form engine, against a live Tapak server over
real HTTP (tests/openrosa/collect_client.mjs): formList, the form, the manifest and the CSVs,
the visit filled in the engine from the downloaded CSVs, HEAD, and the submission with real JPEGs
split in two POSTs as Collect splits; then the stored visit, its photos and its reconciliation.
Without Node and the tests' packages this skips (fails with CI=true)."""

# ruff: noqa: F811  (pytest fixtures imported from tests/push and tests/worker)
from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from sync.models import Photo, Visit, VisitPhoto
from tests.openrosa.engine import require_engine
from tests.push.conftest import field  # noqa: F401
from tests.worker.conftest import extract, located, reconcile  # noqa: F401

SCRIPT = Path(__file__).with_name("collect_client.mjs")


@pytest.fixture
def live(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _text(f: dict, value) -> str:
    if f["type"] == "boolean":
        return "yes" if value else "no"
    if f["type"] == "select_multiple":
        return " ".join(str(v) for v in value)
    if f["type"] == "geopoint":
        return f"{value['lat']} {value['lon']} 0 {value.get('accuracy_m', 0)}"
    return str(value)


def steps_of(definition: dict, visit: dict, images: dict[str, bytes]) -> list[dict]:
    """The engine steps that answer the form as ``visit`` does (photos: real JPEG bytes)."""
    steps = [{"set": "/data/_keluarga", "value": visit["household_id"]}]

    def walk(fields, answers, ref, path):
        for f in fields:
            name, value = f["name"], answers.get(f["name"])
            if f["type"] == "note" or value is None:
                continue
            if f["type"] == "group":
                walk(f["fields"], value, f"{ref}/{name}", f"{path}{name}.")
            elif f["type"] == "repeat":
                for i, entry in enumerate(value):
                    walk(f["fields"], entry, f"{ref}/{name}[{i + 1}]", f"{path}{name}[{i}].")
            elif f["type"] == "photo":
                key = f"{path}{name}"
                steps.append({"set": f"{ref}/{name}", "value": f"{key.replace('.', '_')}.jpg",
                              "base64": base64.b64encode(images[key]).decode()})
            else:
                steps.append({"set": f"{ref}/{name}", "value": _text(f, value)})

    walk(definition["fields"], visit["answers"], "/data", "")
    return steps


def test_collect_on_odks_engine_against_a_live_server(live, field, located, db, reconcile):
    from server.models import User
    from server.openrosa.keys import new_key

    require_engine()
    token = new_key(db, db.scalar(select(User).where(User.username == "ani")))
    v, images = located("KLG-A1")
    request = {"server": f"{live}/openrosa/key/{token}", "form_id": "verifikasi_keluarga",
               "today": v["started_at"][:10], "split": True,
               "steps": steps_of(field.form.definition, v, images)}
    done = subprocess.run(["node", str(SCRIPT)], input=json.dumps(request), text=True,
                          capture_output=True, timeout=120, cwd=SCRIPT.parent,
                          env={**os.environ, "TZ": "Asia/Jakarta"})
    answer = json.loads(done.stdout or "{}") if done.stdout else {"error": done.stderr}
    assert answer.get("ok"), answer.get("error")
    assert answer["form_hash_ok"]
    media = {m["name"]: m for m in answer["media"]}
    assert all(m["hash_ok"] for m in media.values())
    assert "KLG-A1" in media["households.csv"]["text"]
    assert "KLG-A2" not in media["households.csv"]["text"]  # budi's family
    assert answer["payload_status"] == "ready"
    assert answer["head"]["status"] == 204 and int(answer["head"]["accept"]) > 0
    assert [p["status"] for p in answer["posts"]] == [201, 201], answer["posts"]
    assert all(p["version"] == "1.0" for p in answer["posts"])
    db.commit()
    row = db.get(Visit, v["uuid"]) or db.scalar(select(Visit))
    assert row.channel == "openrosa" and row.status == "queued"
    assert row.device_id == "collect:NodeHarness000001"
    shas = db.scalars(select(VisitPhoto.sha256).where(VisitPhoto.visit_uuid == row.uuid)).all()
    assert len(shas) == len(images)
    assert all(db.get(Photo, s).phash for s in shas)
    assert reconcile() == 1
    db.commit()
    row = db.get(Visit, row.uuid)
    from sync.models import Conflict
    kinds = db.scalars(select(Conflict.kind).where(Conflict.visit_uuid == row.uuid)).all()
    assert row.status == "verified", (row.status, kinds, row.started_at, row.ended_at)
