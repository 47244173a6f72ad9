"""Benchmark: OpenRosa (issue 16): an enumerator's manifest and CSVs at province scale, the
XForm, and submissions from 50 Collect clients against JSON pushes of the same visits.

    .venv/bin/python -m bench.openrosa [--households 1000000] [--enumerators 1000]
        [--per-enumerator 300] [--sample 20] [--database-url URL]
        [--clients 50] [--visits 10] [--rounds 3] [--rate-families 5000] [--workers 2]
        [--skip-scale] [--skip-rate] [--keep]

Prints figures; asserts no timing.

**Scale** (in-process through Flask's test client, so only server time counts): the families,
verified records (drawn from the synthetic generator, members included), ``--enumerators`` x
``--per-enumerator`` assignments and their change-feed entries are loaded with bulk SQL by
``bench.pull_feed.build``; a tenth of the assignments are then ``visited`` and a tenth
``returned`` with a note. Form v1 is published through the real command. For ``--sample``
enumerators, each with its own device key:
- the manifest, ``households.csv`` and ``members.csv`` the first time (the CSVs are built and
  stored in ``openrosa_media``) and the next time (served from it);
- the unchanged manifest with ``If-None-Match`` (304);
- the manifest and ``households.csv`` after one of the enumerator's families was returned with
  a note (the CSVs are built again);
- where a build spends its time (the assignments and records query, ``prefill_csvs``);
- the XForm of v1: generated (``build_xform``, stored), read back from ``openrosa_xforms`` by a
  fresh process, and from the process cache.

**Rate** (real HTTP to gunicorn, ``--workers`` sync workers on 127.0.0.1, a database of its
own with ``--rate-families`` families imported by the real importer, as ``bench.push_load``
sets it up; not 1,000,000: loading them a second time takes 2.5 minutes on SQLite and about
half an hour on PostgreSQL here, and both channels share the database, so their ratio is
measured alike): ``--clients`` threads, one enumerator each, each sending ``--visits`` complete v1
visits with 3 photos of 1600x1200 px (a JPEG of ~190 KiB, each photo's bytes unique to the
visit) per phase, every visit for a family of its own:
- *JSON*: for each photo ``HEAD /api/v1/photos/<sha256>`` (404) and ``PUT``, then
  ``POST /api/v1/sync/push`` with the visit;
- *OpenRosa*: ``HEAD /openrosa/key/<key>/submission`` (204), then one multipart ``POST``
  (``xml_submission_file`` and the 3 photos, as Collect sends them).
Phases alternate (JSON, OpenRosa, ``--rounds`` times) so that other load on the machine falls
on both. Visits a second per channel, and their ratio. Then from the database: every
acknowledged visit stored once with exactly its 3 photos, nothing stored that was not
acknowledged.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.pull_feed import OUT, percentile

ROOT = Path(__file__).resolve().parents[1]
FORM_PATH = ROOT / "forms/verifikasi_keluarga/v1.json"
RETURN_NOTE = "Foto rumah buram; mohon kunjungi ulang dan foto dari depan."


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):>9.2f} {percentile(values, 95):>9.2f}"


# --------------------------------------------------------------------------- scale


def scale_setup(app, households: int, enumerators: int, per_enumerator: int) -> None:
    from bench.pull_feed import build

    build(app, households, enumerators, per_enumerator)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forms", "publish", str(FORM_PATH)])  # after build: its seqs
    if result.exit_code != 0:
        raise SystemExit(f"forms publish failed: {result.output}")
    from server.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("UPDATE assignments SET status = 'visited' WHERE id % 10 = 3"))
        conn.execute(text("UPDATE assignments SET status = 'returned', note = :n "
                          "WHERE id % 10 = 7"), {"n": RETURN_NOTE})
        conn.execute(text("ANALYZE"))


def measure_scale(app, enumerators: int, sample: int) -> dict:
    from server.extensions import db
    from server.models import User
    from server.openrosa import service
    from server.openrosa.keys import new_key
    from sync.assignments import set_status
    from sync.db import write_transaction
    from sync.forms import get_form_version
    from sync.models.openrosa import OpenRosaXForm

    client = app.test_client()
    rng = random.Random(16)
    chosen = rng.sample(range(enumerators), min(sample, enumerators))
    with app.app_context():
        keys = {}
        for e in chosen:
            user = db.session.query(User).filter_by(username=f"enum-{e:04d}").one()
            keys[e] = (user.id, new_key(db.session, user))
    out: dict[str, list[float]] = {k: [] for k in (
        "xform_first", "xform_stored", "xform_cached", "build_xform", "manifest_first",
        "households_first", "members_first", "manifest_next", "households_next", "members_next",
        "manifest_304", "changed_manifest", "changed_households", "state", "families_query",
        "prefill_csvs", "formlist")}
    sizes = {}

    # The XForm: generated once and stored, then read back, then from the process cache.
    base = f"/openrosa/key/{keys[chosen[0]][1]}"
    form_url = f"{base}/forms/verifikasi_keluarga/1/form.xml"
    for _ in range(3):
        with app.app_context(), write_transaction(db.session):
            db.session.query(OpenRosaXForm).delete()
        service._XFORMS.clear()
        t0 = time.perf_counter()
        response = client.get(form_url)
        out["xform_first"].append(ms(t0))
        assert response.status_code == 200, response.data[:300]
        sizes["xform"] = len(response.data)
        service._XFORMS.clear()  # as a new worker process would find it
        t0 = time.perf_counter()
        assert client.get(form_url).status_code == 200
        out["xform_stored"].append(ms(t0))
        for _ in range(10):
            t0 = time.perf_counter()
            assert client.get(form_url).status_code == 200
            out["xform_cached"].append(ms(t0))
    with app.app_context():
        from forms.xform import build_xform

        definition = get_form_version(db.session, "verifikasi_keluarga", 1).definition
        for _ in range(3):
            t0 = time.perf_counter()
            build_xform(definition)
            out["build_xform"].append(ms(t0))

    def get(url, expect=200, **headers):
        t0 = time.perf_counter()
        response = client.get(url, headers=headers)
        elapsed = ms(t0)
        assert response.status_code == expect, (url, response.status_code, response.data[:300])
        return response, elapsed

    for e in chosen:
        user_id, token = keys[e]
        root = f"/openrosa/key/{token}/forms/verifikasi_keluarga/1"
        response, t = get(f"/openrosa/key/{token}/formList")
        out["formlist"].append(t)
        manifest, t = get(f"{root}/manifest")
        out["manifest_first"].append(t)
        households, t = get(f"{root}/media/households.csv")
        out["households_first"].append(t)
        members, t = get(f"{root}/media/members.csv")
        out["members_first"].append(t)
        sizes["households"], sizes["members"] = len(households.data), len(members.data)
        sizes["rows"] = households.data.count(b"\n") - 1
        _r, t = get(f"{root}/manifest")
        out["manifest_next"].append(t)
        _r, t = get(f"{root}/media/households.csv")
        out["households_next"].append(t)
        _r, t = get(f"{root}/media/members.csv")
        out["members_next"].append(t)
        for _ in range(5):
            _r, t = get(f"{root}/manifest", 304, **{"If-None-Match": manifest.headers["ETag"]})
            out["manifest_304"].append(t)
        with app.app_context():  # the supervisor sends one family back with a note
            hid = db.session.execute(text(
                "SELECT household_id FROM assignments WHERE enumerator_id = :u AND status IN "
                "('pending', 'visited') ORDER BY household_id LIMIT 1"), {"u": user_id}).scalar()
            with write_transaction(db.session):
                set_status(db.session, 1, hid, "returned", note=RETURN_NOTE)
        changed, t = get(f"{root}/manifest", 200, **{"If-None-Match": manifest.headers["ETag"]})
        out["changed_manifest"].append(t)
        assert changed.data != manifest.data
        _r, t = get(f"{root}/media/households.csv")
        out["changed_households"].append(t)
        with app.app_context():  # the parts of a build, in-process
            user = db.session.get(User, user_id)
            row = get_form_version(db.session, "verifikasi_keluarga", 1)
            t0 = time.perf_counter()
            service.media_state(db.session, user, row)
            out["state"].append(ms(t0))
            t0 = time.perf_counter()
            fams = service.families(db.session, user)
            out["families_query"].append(ms(t0))
            t0 = time.perf_counter()
            service.prefill_csvs(service.compiled_form(row), fams)
            out["prefill_csvs"].append(ms(t0))
            db.session.rollback()
    return {"times": out, "sizes": sizes}


def report_scale(result: dict, args, backend: str) -> None:
    t, sizes = result["times"], result["sizes"]
    first = [a + b for a, b in zip(t["manifest_first"], t["households_first"], strict=True)]
    nxt = [a + b for a, b in zip(t["manifest_next"], t["households_next"], strict=True)]
    changed = [a + b for a, b in zip(t["changed_manifest"], t["changed_households"],
                                     strict=True)]
    print()
    print(f"OpenRosa at scale: {args.households:,} families, {args.enumerators:,} enumerators x "
          f"{args.per_enumerator} assigned, {backend}, {len(t['manifest_first'])} enumerators "
          f"sampled; households.csv {sizes['rows']} rows, {sizes['households'] / 1024:.0f} KiB; "
          f"members.csv {sizes['members'] / 1024:.0f} KiB; XForm {sizes['xform'] / 1024:.0f} KiB")
    print(f"{'measure (server time, ms)':<58} {'median':>9} {'p95':>9} {'target':>8}")
    rows = [
        ("manifest + households.csv, first (CSVs built)", first, "<= 50"),
        ("  manifest, first", t["manifest_first"], ""),
        ("  households.csv, first", t["households_first"], ""),
        ("  members.csv, first", t["members_first"], ""),
        ("manifest + households.csv, next (from openrosa_media)", nxt, "<= 50"),
        ("  members.csv, next", t["members_next"], ""),
        ("unchanged manifest, If-None-Match (304)", t["manifest_304"], "<= 5"),
        ("manifest + households.csv after a family was returned", changed, "<= 50"),
        ("formList", t["formlist"], ""),
        ("a build's parts: media_state (2 queries)", t["state"], ""),
        ("  assignments + verified records query (families)", t["families_query"], ""),
        ("  prefill_csvs (both CSVs)", t["prefill_csvs"], ""),
        ("XForm v1, first GET (build_xform, stored)", t["xform_first"], "report"),
        ("XForm v1, GET in a fresh process (from openrosa_xforms)", t["xform_stored"], ""),
        ("XForm v1, GET cached in the process", t["xform_cached"], "report"),
        ("build_xform(v1) alone", t["build_xform"], ""),
    ]
    for name, values, target in rows:
        print(f"{name:<58} {stats(values)} {target:>8}")


# --------------------------------------------------------------------------- rate


class Photos:
    """Unique 1600x1200 JPEGs: one encoded image, and a COM segment numbering each copy."""

    def __init__(self):
        from PIL import Image, ImageDraw, ImageFilter

        rng = random.Random(1600)
        image = Image.effect_noise((1600, 1200), 40).convert("RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(60):
            x, y = rng.randrange(1600), rng.randrange(1200)
            draw.rectangle((x, y, x + rng.randrange(40, 400), y + rng.randrange(40, 300)),
                           fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        image = image.filter(ImageFilter.GaussianBlur(1.2))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85)
        self.base = buf.getvalue()
        self.n = 0
        self.lock = threading.Lock()

    def next(self) -> bytes:
        with self.lock:
            self.n += 1
            n = self.n
        payload = f"tapak bench photo {n}".encode()
        segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
        return self.base[:2] + segment + self.base[2:]


def rate_setup(url: str, workdir: Path, families: int, clients: int) -> dict:
    """push_load's setup (schema, areas, v1, families by the importer, enumerators and their
    shares), plus a device key for each enumerator."""
    from bench import push_load

    prepared = push_load.setup(url, workdir, families, clients, seed=5)
    import config
    from server import create_app
    from server.extensions import db
    from server.models import User
    from server.openrosa.keys import new_key

    settings = config.for_testing(str(workdir / "instance"), url, str(workdir / "photos"))
    settings.update(TESTING=False, LOG_LEVEL="WARNING")
    app = create_app(settings)
    with app.app_context():
        keys = [new_key(db.session, db.session.query(User).filter_by(username=name).one())
                for name in prepared["usernames"][:clients]]
        definition = db.session.execute(text(
            "SELECT definition FROM form_versions WHERE form_id = 'verifikasi_keluarga' "
            "AND version = 1")).scalar()
        definition = json.loads(definition) if isinstance(definition, str) else definition
        db.session.remove()
        db.engine.dispose()
    return {**prepared, "keys": keys, "definition": definition}


def visit_templates(records: list[dict], definition: dict) -> list[dict]:
    """Complete v1 visits with exactly 3 photos, as JSON text (placeholders ``@UUID@``,
    ``@HH@``, ``@P0@``..``@P2@``) and as Collect's XML (placeholders ``@UUID@``, ``@HH@``);
    each checked once against the OpenRosa conversion and the visit validation."""
    import forms
    from bench import push_load
    from forms.xform import submission_to_visit
    from tests.openrosa.collect import instance_xml

    form = forms.load_form(definition)
    out = []
    for text_ in push_load.templates(records, ["@P0@", "@P1@", "@P2@"], seed=5):
        visit = json.loads(text_)
        if len(visit["photos"]) != 3:
            continue
        for i, photo in enumerate(visit["photos"]):
            photo["sha256"] = f"@P{i}@"
        filenames = {p["field"]: f"17675791234{i:02d}.jpg" for i, p in enumerate(visit["photos"])}
        xml = instance_xml(definition, visit, filenames).decode()
        probe = xml.replace("@UUID@", str(uuidlib.uuid4())).replace("@HH@", "KLG-PROBE")
        converted, problems = submission_to_visit(definition, probe.encode())
        converted["photos"] = [{**p, "sha256": "0" * 64} for p in converted["photos"]]
        _answers, errors = forms.validate_visit(form, converted)
        if problems or errors:
            continue
        out.append({"json": json.dumps(visit, ensure_ascii=False, separators=(",", ":")),
                    "xml": xml, "files": [filenames[p["field"]] for p in visit["photos"]]})
    if not out:
        raise SystemExit("no visit template converts cleanly to an OpenRosa submission")
    return out


class Client(threading.Thread):
    """One enumerator's phone sending ``count`` visits over one channel, then stopping."""

    def __init__(self, n: int, mode: str, base: str, credential: str, families: list[str],
                 templates: list[dict], photos: Photos, count: int, start: threading.Barrier):
        super().__init__(daemon=True)
        import requests

        self.n, self.mode, self.base, self.credential = n, mode, base, credential
        self.families, self.templates, self.photos = families, templates, photos
        self.count, self.start_barrier = count, start
        self.http = requests.Session()
        if mode == "json":
            self.http.headers["Authorization"] = f"Bearer {credential}"
        self.rng = random.Random(n)
        self.acked: dict[str, set[str]] = {}  # uuid -> the photo hashes sent with it
        self.sent: set[str] = set()
        self.errors: list[str] = []
        self.latencies: list[float] = []

    def run(self) -> None:
        self.start_barrier.wait()
        for i in range(self.count):
            family = self.families[i]
            template = self.templates[self.rng.randrange(len(self.templates))]
            uuid = str(uuidlib.uuid4())
            images = [self.photos.next() for _ in range(3)]
            shas = [hashlib.sha256(b).hexdigest() for b in images]
            self.sent.add(uuid)
            t0 = time.perf_counter()
            try:
                ok = (self.json_visit if self.mode == "json" else self.openrosa_visit)(
                    template, uuid, family, images, shas)
            except Exception as exc:  # noqa: BLE001  (a lost answer counts as an error)
                self.errors.append(f"{type(exc).__name__}: {exc}")
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - t0)
                self.acked[uuid] = set(shas)

    def json_visit(self, template, uuid, family, images, shas) -> bool:
        for sha, data in zip(shas, images, strict=True):
            head = self.http.head(f"{self.base}/api/v1/photos/{sha}", timeout=120)
            if head.status_code == 404:
                put = self.http.put(f"{self.base}/api/v1/photos/{sha}", data=data, timeout=120,
                                    headers={"Content-Type": "image/jpeg"})
                if put.status_code not in (200, 201):
                    self.errors.append(f"PUT photo {put.status_code}: {put.text[:200]}")
                    return False
            elif head.status_code != 200:
                self.errors.append(f"HEAD photo {head.status_code}")
                return False
        visit = template["json"].replace("@UUID@", uuid, 1).replace("@HH@", family, 1)
        for i, sha in enumerate(shas):
            visit = visit.replace(f"@P{i}@", sha, 1)
        body = (f'{{"batch_id":"{uuidlib.uuid4()}","device_id":"bench-json-{self.n}",'
                f'"visits":[{visit}]}}')
        response = self.http.post(f"{self.base}/api/v1/sync/push", data=body.encode(),
                                  timeout=120, headers={"Content-Type": "application/json"})
        if response.status_code != 200:
            self.errors.append(f"push {response.status_code}: {response.text[:200]}")
            return False
        result = response.json()["results"][0]
        if result["status"] != "accepted":
            self.errors.append(f"push {uuid}: {result['status']} {result.get('errors')}")
        return result["status"] in ("accepted", "duplicate", "waiting_photos")

    def openrosa_visit(self, template, uuid, family, images, shas) -> bool:
        from tests.openrosa import collect

        url = (f"{self.base}/openrosa/key/{self.credential}/submission"
               f"?deviceID=collect:bench{self.n}")
        head = self.http.head(url, headers=collect.headers(), timeout=120)
        if head.status_code != 204:
            self.errors.append(f"HEAD submission {head.status_code}")
            return False
        xml = template["xml"].replace("@UUID@", uuid, 1).replace("@HH@", family, 1).encode()
        parts = [("xml_submission_file", "Verifikasi_2026-02-03_09-00-00.xml", "text/xml", xml)]
        parts += [(name, name, "image/jpeg", data)
                  for name, data in zip(template["files"], images, strict=True)]
        body, ctype = collect.multipart(parts)
        response = self.http.post(url, data=body, timeout=120,
                                  headers={**collect.headers(), "Content-Type": ctype})
        if response.status_code != 201:
            self.errors.append(f"POST submission {response.status_code}: {response.text[:300]}")
            return response.status_code == 202
        return True


def run_phase(mode: str, server, credentials: list[str], shares: list[list[str]],
              templates: list[dict], photos: Photos, count: int) -> dict:
    from bench.push_load import cpu_seconds

    barrier = threading.Barrier(len(credentials) + 1)
    clients = [Client(i, mode, server.base, credentials[i], shares[i], templates, photos, count,
                      barrier) for i in range(len(credentials))]
    for c in clients:
        c.start()
    cpu0 = cpu_seconds(server.pids())
    barrier.wait()
    t0 = time.perf_counter()
    for c in clients:
        c.join(timeout=1800)
    elapsed = time.perf_counter() - t0
    acked = {u: s for c in clients for u, s in c.acked.items()}
    return {"mode": mode, "seconds": elapsed, "acked": acked,
            "sent": set().union(*(c.sent for c in clients)),
            "errors": [e for c in clients for e in c.errors],
            "latencies": [x for c in clients for x in c.latencies],
            "cpu_server": cpu_seconds(server.pids()) - cpu0}


def account(url: str, phases: list[dict]) -> dict:
    """From the database: acknowledged visits missing or stored with other photos, visits
    stored that no client had acknowledged, photos missing."""
    import config

    engine = create_engine(config.normalise_database_url(url))
    with engine.connect() as conn:
        visits = Counter(conn.execute(text("SELECT uuid, channel FROM visits")).all())
        links: dict[str, set[str]] = {}
        for uuid, sha in conn.execute(text("SELECT visit_uuid, sha256 FROM visit_photos")):
            links.setdefault(uuid, set()).add(sha)
        link_rows = Counter(u for (u,) in conn.execute(text("SELECT visit_uuid FROM "
                                                            "visit_photos")))
        photos = {sha for (sha,) in conn.execute(text("SELECT sha256 FROM photos"))}
        submissions = dict(conn.execute(text(
            "SELECT instance_id, ingested_at IS NOT NULL FROM openrosa_submissions")).all())
    engine.dispose()
    out = {}
    for mode in ("json", "openrosa"):
        acked = {u: s for p in phases if p["mode"] == mode for u, s in p["acked"].items()}
        sent = set().union(*(p["sent"] for p in phases if p["mode"] == mode))
        stored = {u for (u, ch), _n in visits.items() if ch == mode}
        out[mode] = {
            "acked": len(acked),
            "stored": len(stored),
            "lost": len(set(acked) - stored),
            "doubled": sum(n - 1 for (u, ch), n in visits.items() if ch == mode and n > 1)
            + sum(1 for u in acked if link_rows.get(u, 0) > 3),
            "unacked_stored": len(stored - set(acked)),
            "unsent_stored": len(stored - sent),
            "wrong_photos": sum(1 for u, s in acked.items() if links.get(u) != s),
            "photos_missing": sum(len(s - photos) for s in acked.values()),
        }
        if mode == "openrosa":
            out[mode]["not_ingested"] = sum(1 for u in acked if not submissions.get(u))
    return out


def measure_rate(args, workdir: Path) -> dict:
    from bench.push_load import Server, scratch_database

    rate_dir = workdir / "rate"
    rate_dir.mkdir()
    url, drop = scratch_database(args.database_url, rate_dir)
    server = None
    try:
        log(f"rate: setting up {args.rate_families:,} families, {args.clients} enumerators ...")
        prepared = rate_setup(url, rate_dir, args.rate_families, args.clients)
        need = args.visits * args.rounds * 2
        if min(len(s) for s in prepared["shares"][:args.clients]) < need:
            raise SystemExit(f"--rate-families too small: each client needs {need} families")
        templates = visit_templates(prepared["records"], prepared["definition"])
        photos = Photos()
        log(f"  {len(templates)} visit templates; a photo is {len(photos.base) / 1024:.0f} KiB "
            "(1600x1200 JPEG)")
        server = Server(url, rate_dir, args.workers)
        import requests

        tokens = []
        for name in prepared["usernames"][:args.clients]:
            r = requests.post(server.base + "/api/v1/auth/token", timeout=60, json={
                "username": name, "password": "bench-password", "device_id": f"{name}-phone"})
            r.raise_for_status()
            tokens.append(r.json()["token"])
        phases = []
        used = 0
        for n in range(args.rounds):
            for mode, credentials in (("json", tokens), ("openrosa", prepared["keys"])):
                shares = [s[used:used + args.visits] for s in prepared["shares"]]
                used += args.visits
                log(f"  round {n + 1}: {mode}, {args.clients} clients x {args.visits} visits ...")
                phase = run_phase(mode, server, credentials, shares, templates, photos,
                                  args.visits)
                log(f"    {len(phase['acked'])} acknowledged in {phase['seconds']:.1f} s, "
                    f"{len(phase['errors'])} errors")
                phases.append(phase)
        books = account(url, phases)
    finally:
        if server is not None:
            server.stop()
        drop()
    return {"phases": phases, "books": books, "photo_kib": len(photos.base) / 1024}


def report_rate(result: dict, args, backend: str) -> None:
    phases, books = result["phases"], result["books"]
    print()
    print(f"submissions: {backend}, gunicorn {args.workers} sync workers, {args.clients} clients"
          f", {args.visits} visits each per phase, {args.rounds} rounds of JSON then OpenRosa, "
          f"3 photos of 1600x1200 ({result['photo_kib']:.0f} KiB each) a visit, "
          f"{args.rate_families:,} families, {os.cpu_count()} cores")
    rates = {}
    print(f"{'channel':<10} {'visits':>7} {'seconds':>8} {'visits/s':>9} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'server CPU s':>13} {'errors':>7}")
    for mode in ("json", "openrosa"):
        mine = [p for p in phases if p["mode"] == mode]
        acked = sum(len(p["acked"]) for p in mine)
        seconds = sum(p["seconds"] for p in mine)
        lat = [x * 1000 for p in mine for x in p["latencies"]]
        rates[mode] = acked / seconds if seconds else 0.0
        per_round = ", ".join(f"{len(p['acked']) / p['seconds']:.1f}" for p in mine)
        print(f"{mode:<10} {acked:>7} {seconds:>8.1f} {rates[mode]:>9.2f} "
              f"{percentile(lat, 50) if lat else float('nan'):>8.0f} "
              f"{percentile(lat, 95) if lat else float('nan'):>8.0f} "
              f"{sum(p['cpu_server'] for p in mine):>13.0f} "
              f"{sum(len(p['errors']) for p in mine):>7}   (rounds: {per_round})")
        for error in [e for p in mine for e in p["errors"]][:5]:
            print("   error:", error)
    ratio = rates["openrosa"] / rates["json"] if rates["json"] else float("nan")
    print(f"OpenRosa / JSON rate: {ratio:.2f}x (target >= 0.5x)")
    print(f"{'from the database':<44} {'json':>8} {'openrosa':>9} {'target':>7}")
    for key, label in (("acked", "visits acknowledged"), ("stored", "visits stored"),
                       ("lost", "acknowledged, not stored (lost)"),
                       ("doubled", "stored twice or with extra photos"),
                       ("unacked_stored", "stored, not acknowledged"),
                       ("wrong_photos", "stored without exactly their 3 photos"),
                       ("photos_missing", "acknowledged photos not in photos")):
        target = "" if key in ("acked", "stored", "unacked_stored") else "0"
        print(f"{label:<44} {books['json'][key]:>8} {books['openrosa'][key]:>9} {target:>7}")
    print(f"{'OpenRosa submissions acked, not ingested':<44} {'':>8} "
          f"{books['openrosa']['not_ingested']:>9} {'0':>7}")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--enumerators", type=int, default=1000)
    parser.add_argument("--per-enumerator", type=int, default=300)
    parser.add_argument("--sample", type=int, default=20, help="enumerators measured")
    parser.add_argument("--database-url", default=None,
                        help="A PostgreSQL server URL: scratch databases are made on it and "
                             "dropped (SQLite files by default).")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--visits", type=int, default=10, help="visits a client sends a phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate-families", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-rate", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = parser.parse_args()
    if args.enumerators * args.per_enumerator > args.households:
        parser.error("not enough families for that many assignments")

    import config
    from server import create_app
    from sync.db import scratch_postgres

    OUT.mkdir(exist_ok=True)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="openrosa-", dir=OUT))
    backend = "postgresql" if args.database_url else "sqlite"
    try:
        if not args.skip_scale:
            if args.database_url:
                url, drop = scratch_postgres(args.database_url, f"bench_openrosa_{os.getpid()}")
            else:
                url, drop = f"sqlite:///{workdir / 'scale.db'}", (lambda: None)
            try:
                settings = config.for_testing(str(workdir), url, str(workdir / "photos"))
                settings.update(TESTING=False, LOG_LEVEL="WARNING")
                app = create_app(settings)
                with app.app_context():
                    from flask_migrate import upgrade

                    from server.extensions import db
                    from sync.areas import load_areas

                    upgrade()
                    load_areas(db.session)
                    db.session.commit()
                log(f"scale: building {args.households:,} families, {args.enumerators:,} "
                    f"enumerators x {args.per_enumerator} on {backend} ...")
                t0 = time.perf_counter()
                scale_setup(app, args.households, args.enumerators, args.per_enumerator)
                log(f"  setup {time.perf_counter() - t0:.0f} s")
                scale = measure_scale(app, args.enumerators, args.sample)
                with app.app_context():
                    from server.extensions import db

                    db.session.remove()
                    db.engine.dispose()
            finally:
                drop()
            report_scale(scale, args, backend)
        if not args.skip_rate:
            rate = measure_rate(args, workdir)
            report_rate(rate, args, backend)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
