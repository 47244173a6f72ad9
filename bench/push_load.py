"""Benchmark: push under load, through gunicorn, as 50 phones syncing at once.

    .venv/bin/python -m bench.push_load [--database-url URL] [--seconds 60] [--clients 50]
        [--batch 20] [--families 100000] [--workers 2] [--profile]

Server: gunicorn, ``--workers`` sync workers on 127.0.0.1, over a fresh SQLite file, or, with
``--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, over a scratch
database ``bench_push_<pid>`` that the benchmark creates on that server and drops afterwards.

Setup (untimed): migrations, areas and form v1 through the real code; ``--families`` families
of one kecamatan from the synthetic generator (cached under bench/out/), imported by the real
importer; ``--clients`` enumerators, each holding a disjoint share of the families (bulk SQL
into ``assignments``); a few real JPEGs uploaded once (photos are content-addressed, so every
visit may reuse their hashes and every visit is ``accepted``, not ``waiting_photos``).

Load: one thread a client, each logged in once with its own token and a requests session,
pushing batches of ``--batch`` complete v1 visits (families with their members) for
``--seconds`` after a 3 s warm-up, each visit for a family of its own assignment with a new
uuid. The visits are built before the run from ``forms.example_visit`` over real records, as
JSON text templates: a batch is a few string substitutions, so the load generator, which
shares the 2 cores with the server, does as little as possible. A share of batches
(``--resend``, 2%) is sent twice, as phones do when an answer is lost: the second answer must
be all ``duplicate``.

Afterwards, from the database: every visit a client saw acknowledged is stored exactly once,
and nothing else is stored. Printed: accepted visits per second (target >= 500), errors
(target 0), lost and doubled visits (target 0), batch latency percentiles, CPU seconds by
process group. ``--profile`` then profiles the server's push path in-process over the same
database and prints where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from collections import Counter
from pathlib import Path

import requests
from sqlalchemy import bindparam, create_engine, text

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parents[1]
KECAMATAN = "31.73.01"
PASSWORD = "bench-password"
TARGET_PER_SECOND = 500
WARMUP_SECONDS = 3.0
STARTED_AT = "2026-02-03T09:00:00+07:00"


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- setup


def scratch_database(url: str | None, workdir: Path) -> tuple[str, callable]:
    """(url, drop): a SQLite file in the work folder, or a new database on the given server."""
    from sync.db import scratch_postgres

    if not url:
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    try:
        return scratch_postgres(url, f"bench_push_{os.getpid()}")
    except ValueError:
        raise SystemExit("--database-url must be a PostgreSQL URL (SQLite is the default)"
                         ) from None


def extract(families: int, seed: int) -> Path:
    """The synthetic extract, generated once and kept under bench/out/."""
    from sync.generator import generate

    folder = OUT / f"push_extract_{families}_{seed}_{KECAMATAN.replace('.', '')}"
    if not (folder / ".complete").exists():
        t0 = time.perf_counter()
        generate(folder, families, seed, "jsonl", [KECAMATAN])
        (folder / ".complete").write_text("")
        log(f"  generated {families:,} families in {time.perf_counter() - t0:.0f} s")
    return folder / "keluarga.jsonl"


def setup(url: str, workdir: Path, families: int, clients: int, seed: int) -> dict:
    """Schema, areas, form, families, enumerators and their assignments; return what the
    load needs: the clients' family lists and the visit templates' records."""
    import config
    from server import create_app
    from server.extensions import db
    from server.services.users import create_user
    from sync.db import write_transaction
    from sync.importer import import_extract

    settings = config.for_testing(str(workdir / "instance"), url, str(workdir / "photos"))
    settings.update(TESTING=False, LOG_LEVEL="WARNING")
    app = create_app(settings)
    runner = app.test_cli_runner()
    for args in (["db", "upgrade"], ["areas", "load"],
                 ["forms", "publish", str(ROOT / "forms/verifikasi_keluarga/v1.json")],
                 ["assignments", "round-create", "Bench", "--starts", "2026-01-01", "--ends",
                  "2026-12-31"]):
        result = runner.invoke(args=args)
        if result.exit_code != 0:
            raise SystemExit(f"{' '.join(args)} failed: {result.output} {result.exception}")
    path = extract(families, seed)
    with app.app_context():
        t0 = time.perf_counter()
        summary = import_extract(db.session, path, label="bench", progress=False,
                                 rejects=workdir / "rejects.jsonl")
        log(f"  imported {summary.inserted:,} families in {time.perf_counter() - t0:.0f} s")
        with write_transaction(db.session):
            users = [create_user(db.session, f"bench-{i:03d}", "enumerator", PASSWORD,
                                 areas=(KECAMATAN,)) for i in range(clients + 1)]
            db.session.flush()
            user_ids = [u.id for u in users]
        ids = [r[0] for r in db.session.execute(text(
            "SELECT id FROM keluarga WHERE removed_at IS NULL ORDER BY id"))]
        random.Random(seed).shuffle(ids)
        shares = [ids[i::clients] for i in range(clients)]
        now = dt.datetime.now(dt.UTC)
        if db.engine.dialect.name == "sqlite":
            now = now.replace(tzinfo=None)
        rows = [{"h": h, "u": user_ids[i], "now": now}
                for i, share in enumerate(shares) for h in share]
        with db.engine.begin() as conn:
            for i in range(0, len(rows), 10_000):
                conn.execute(text(
                    "INSERT INTO assignments (round_id, household_id, enumerator_id, status, "
                    "assigned_at, updated_at) VALUES (1, :h, :u, 'pending', :now, :now)"),
                    rows[i:i + 10_000])
            conn.execute(text("ANALYZE assignments"))  # only what this setup filled: stats
            # of a still empty table (feed_entries) would steer SQLite to full scans later
        sample = ids[:400]
        query = text("SELECT doc FROM verified_records WHERE household_id IN :ids")
        records = [json.loads(doc) if isinstance(doc, str) else doc for (doc,) in
                   db.session.execute(query.bindparams(bindparam("ids", expanding=True)),
                                      {"ids": sample})]
        db.session.remove()
        db.engine.dispose()
    return {"shares": shares, "records": records, "usernames":
            [f"bench-{i:03d}" for i in range(clients + 1)]}


def templates(records: list[dict], photo_hashes: list[str], seed: int) -> list[str]:
    """Visits as JSON text with ``@UUID@`` and ``@HH@`` to fill in: complete, valid v1 visits
    of real families (their members, housing, assets), about a third with changes."""
    import forms
    from server.cli.forms import FORMS_DIR

    form = forms.load_form(FORMS_DIR / "verifikasi_keluarga" / "v1.json")
    rng = random.Random(seed)
    out = []
    for n, record in enumerate(records):
        visit = forms.example_visit(form, record, uuid="@UUID@", started_at=STARTED_AT)
        answers = visit["answers"]
        if n % 3 == 1 and answers.get("rumah"):  # found with changes: housing and assets
            answers["hasil_kunjungan"] = 2
            answers["rumah"]["luas_lantai_m2"] = rng.randint(18, 90)
            if isinstance(answers.get("aset"), dict):
                answers["aset"]["sepeda_motor"] = not answers["aset"].get("sepeda_motor")
        visit["household_id"] = "@HH@"
        visit["base_version"] = 1
        visit["ended_at"] = "2026-02-03T09:25:00+07:00"
        visit["location"] = {"lat": -6.14, "lon": 106.73, "accuracy_m": 8}
        for i, entry in enumerate(visit["photos"]):
            entry["sha256"] = photo_hashes[(n + i) % len(photo_hashes)]
        out.append(json.dumps(visit, ensure_ascii=False, separators=(",", ":")))
    return out


def jpegs(count: int) -> list[bytes]:
    import io

    from PIL import Image

    out = []
    for seed in range(count):
        image = Image.new("RGB", (640, 480), ((seed * 53) % 256, (seed * 97) % 256, 120))
        for x in range(0, 640, 7):
            image.putpixel((x, (x * (seed + 3)) % 480), (255, 255, 255))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


# --------------------------------------------------------------------------- the server


class Server:
    def __init__(self, url: str, workdir: Path, workers: int):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "gunicorn.log"
        env = dict(os.environ, DATABASE_URL=url, TAPAK_INSTANCE=str(workdir / "instance"),
                   PHOTO_DIR=str(workdir / "photos"), SECRET_KEY="bench-secret",
                   PASSWORD_HASH_METHOD="pbkdf2:sha256:1000",
                   LOGIN_RATE_LIMIT="1000 per minute")
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [str(ROOT / ".venv/bin/gunicorn"), "--workers", str(workers), "--bind",
                 f"127.0.0.1:{self.port}", "--timeout", "120", "--backlog", "2048",
                 "server:create_app()"], cwd=ROOT, env=env, stdout=fh, stderr=fh,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base + "/api/v1/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise SystemExit("gunicorn did not come up")

    def pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            children = ""
        return [self.proc.pid, *map(int, children.split())]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def cpu_seconds(pids) -> float:
    """utime + stime of the given processes, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


# --------------------------------------------------------------------------- the load


class Phone(threading.Thread):
    """One enumerator's phone, pushing batch after batch until told to stop."""

    def __init__(self, n: int, base: str, token: str, families: list[str], templates: list[str],
                 batch: int, resend: float, clock: dict):
        super().__init__(daemon=True)
        self.n, self.base, self.families, self.templates = n, base, families, templates
        self.batch, self.resend, self.clock = batch, resend, clock
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
        self.rng = random.Random(n)
        self.next_family = 0
        self.acked: set[str] = set()  # uuids this phone saw accepted / waiting / duplicate
        self.sent: set[str] = set()
        self.latencies: list[float] = []  # measured batches only
        self.accepted = 0  # measured window only
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.resent = 0

    def body(self) -> tuple[str, list[str]]:
        uuids, parts = [], []
        for _ in range(self.batch):
            family = self.families[self.next_family % len(self.families)]
            self.next_family += 1
            uuid = str(uuidlib.uuid4())
            uuids.append(uuid)
            template = self.templates[self.rng.randrange(len(self.templates))]
            parts.append(template.replace("@UUID@", uuid, 1).replace("@HH@", family, 1))
        batch_id = str(uuidlib.uuid4())
        return (f'{{"batch_id":"{batch_id}","device_id":"bench-phone-{self.n}",'
                f'"visits":[{",".join(parts)}]}}'), uuids

    def post(self, body: str, uuids: list[str], expect: str | None) -> None:
        t0 = time.perf_counter()
        try:
            response = self.http.post(self.base + "/api/v1/sync/push", data=body.encode(),
                                      timeout=120)
        except requests.RequestException as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            return
        results = response.json()["results"]
        measured = self.clock["measuring"] and not self.clock["stopping"]
        for uuid, result in zip(uuids, results, strict=True):
            status = result["status"]
            self.statuses[status] += 1
            if result["uuid"] != uuid:
                self.errors.append(f"result for {result['uuid']} in place of {uuid}")
            if status in ("accepted", "waiting_photos", "duplicate"):
                self.acked.add(uuid)
            if expect is not None and status != expect:
                self.errors.append(f"{uuid}: {status} {result.get('errors')}")
            if measured and status == "accepted" and expect == "accepted":
                self.accepted += 1
        if measured:
            self.latencies.append(elapsed)

    def run(self) -> None:
        while not self.clock["stopping"]:
            body, uuids = self.body()
            self.sent.update(uuids)
            self.post(body, uuids, "accepted")
            if self.rng.random() < self.resend and not self.clock["stopping"]:
                self.resent += 1
                self.post(body, uuids, "duplicate")  # the answer was "lost": send it again


def run_load(server: Server, tokens: list[str], shares: list[list[str]], texts: list[str],
             args) -> dict:
    clock = {"measuring": False, "stopping": False}
    phones = [Phone(i, server.base, tokens[i], shares[i], texts, args.batch, args.resend, clock)
              for i in range(args.clients)]
    for phone in phones:
        phone.start()
    time.sleep(WARMUP_SECONDS)
    pg = postgres_pids() if args.database_url else []
    cpu0 = (cpu_seconds(server.pids()), time.process_time(), cpu_seconds(pg))
    clock["measuring"] = True
    t0 = time.perf_counter()
    time.sleep(args.seconds)
    clock["stopping"] = True
    elapsed = time.perf_counter() - t0
    cpu1 = (cpu_seconds(server.pids()), time.process_time(), cpu_seconds(pg))
    for phone in phones:
        phone.join(timeout=180)
    latencies = [x for p in phones for x in p.latencies]
    return {
        "seconds": elapsed,
        "accepted": sum(p.accepted for p in phones),
        "batches": len(latencies),
        "latencies": latencies,
        "errors": [e for p in phones for e in p.errors],
        "statuses": sum((p.statuses for p in phones), Counter()),
        "acked": set().union(*(p.acked for p in phones)),
        "sent": set().union(*(p.sent for p in phones)),
        "resent": sum(p.resent for p in phones),
        "cpu_server": cpu1[0] - cpu0[0], "cpu_load": cpu1[1] - cpu0[1],
        "cpu_postgres": cpu1[2] - cpu0[2],
    }


def account(url: str, acked: set[str], sent: set[str]) -> dict:
    """From the database: acknowledged visits missing, stored twice, or stored unasked."""
    import config

    engine = create_engine(config.normalise_database_url(url))
    with engine.connect() as conn:
        stored = Counter(u for (u,) in conn.execute(text("SELECT uuid FROM visits")))
        batches = conn.execute(text("SELECT count(*) FROM sync_batches")).scalar()
    engine.dispose()
    return {
        "stored": sum(stored.values()),
        "lost": len(acked - set(stored)),
        "doubled": sum(n - 1 for n in stored.values() if n > 1),
        "unexpected": len(set(stored) - sent),
        "unanswered_stored": len((set(stored) & sent) - acked),
        "batches": batches,
    }


# --------------------------------------------------------------------------- profile


def profile(url: str, workdir: Path, shares, texts, batch: int, batches: int = 60) -> str:
    """The push path in-process (Flask test client, same database): cProfile by module."""
    import cProfile
    import io
    import pstats

    import config
    from server import create_app

    settings = config.for_testing(str(workdir / "instance"), url, str(workdir / "photos"))
    settings.update(TESTING=False, LOG_LEVEL="WARNING", LOGIN_RATE_LIMIT="1000 per minute")
    app = create_app(settings)
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={
        "username": "bench-000", "password": PASSWORD, "device_id": "profile"}).get_json()
    headers = {"Authorization": f"Bearer {token['token']}", "Content-Type": "application/json"}
    phone = Phone(0, "", token["token"], shares[0][::-1], texts, batch, 0, {})
    bodies = [phone.body()[0] for _ in range(batches + 5)]
    for body in bodies[:5]:  # warm: form compiled, caches filled
        client.post("/api/v1/sync/push", data=body, headers=headers)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for body in bodies[5:]:
        response = client.post("/api/v1/sync/push", data=body, headers=headers)
        assert response.status_code == 200, response.data[:300]
    prof.disable()
    elapsed = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    by_area: Counter = Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        by_area[_area(filename)] += tottime
    total = sum(by_area.values())
    lines = [f"in-process, profiled: {batches * batch / elapsed:,.0f} visits/s on one core "
             f"({elapsed / batches * 1000:.1f} ms a batch of {batch}, profiler included)",
             "own time by area:"]
    lines += [f"  {area:<44} {t / total:6.1%}" for area, t in by_area.most_common(12)]
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    lines.append(out.getvalue().split("\n", 4)[-1])
    with app.app_context():
        from server.extensions import db

        db.session.remove()
        db.engine.dispose()
    return "\n".join(lines)


def _area(filename: str) -> str:
    for marker, name in (("/forms/", "forms (validation)"), ("/sync/ingest", "sync/ingest.py"),
                         ("sqlalchemy/orm", "SQLAlchemy ORM"), ("sqlalchemy", "SQLAlchemy core"),
                         ("/json/", "json (encode/decode)"), ("psycopg", "psycopg"),
                         ("werkzeug", "werkzeug"), ("flask", "flask + extensions"),
                         ("marshmallow", "marshmallow"), ("/server/", "server/")):
        if marker in filename:
            return name
    if "sqlite3" in filename or filename == "~":
        return "builtins, C code (sqlite3 calls, ...)"
    return "other"


# --------------------------------------------------------------------------- main


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None,
                        help="A PostgreSQL server URL; a scratch database is made on it.")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--resend", type=float, default=0.02,
                        help="Share of batches sent twice (must come back all duplicate).")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the work folder (database, photos, gunicorn.log).")
    args = parser.parse_args()

    OUT.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="push-", dir=OUT))
    url, drop = scratch_database(args.database_url, workdir)
    backend = "postgresql" if args.database_url else "sqlite"
    server = None
    try:
        log(f"setting up {args.families:,} families, {args.clients} enumerators on {backend} "
            f"in {workdir} ...")
        prepared = setup(url, workdir, args.families, args.clients, args.seed)
        server = Server(url, workdir, args.workers)
        tokens = []
        for name in prepared["usernames"]:
            r = requests.post(server.base + "/api/v1/auth/token", timeout=30, json={
                "username": name, "password": PASSWORD, "device_id": f"{name}-phone"})
            r.raise_for_status()
            tokens.append(r.json()["token"])
        hashes = []
        for data in jpegs(8):  # uploaded once by the spare enumerator
            sha = hashlib.sha256(data).hexdigest()
            r = requests.put(f"{server.base}/api/v1/photos/{sha}", data=data, timeout=30,
                             headers={"Authorization": f"Bearer {tokens[-1]}",
                                      "Content-Type": "image/jpeg"})
            assert r.status_code in (200, 201), r.text
            hashes.append(sha)
        texts = templates(prepared["records"], hashes, args.seed)
        size = statistics.mean(len(t) for t in texts)
        log(f"load: {args.clients} clients x batches of {args.batch} ({size / 1024:.1f} KiB a "
            f"visit) for {args.seconds:.0f} s after a {WARMUP_SECONDS:.0f} s warm-up ...")
        result = run_load(server, tokens, prepared["shares"], texts, args)
        books = account(url, result["acked"], result["sent"])
    finally:
        if server is not None:
            server.stop()
    try:
        report = profile(url, workdir, prepared["shares"], texts, args.batch) \
            if args.profile else None
    finally:
        drop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    rate = result["accepted"] / result["seconds"]
    lat = [x * 1000 for x in result["latencies"]]
    errors = len(result["errors"])
    print()
    print(f"push under load: {backend}, gunicorn {args.workers} sync workers, {args.clients} "
          f"clients, batches of {args.batch}, {result['seconds']:.0f} s measured, "
          f"{os.cpu_count()} cores")
    rows = [
        ("accepted visits per second", f"{rate:,.0f}", f">= {TARGET_PER_SECOND}"),
        ("errors (non-200, exceptions, wrong status)", f"{errors}", "0"),
        ("acknowledged visits lost (from the database)", f"{books['lost']}", "0"),
        ("visits stored twice (from the database)", f"{books['doubled']}", "0"),
        ("visits stored that no client sent", f"{books['unexpected']}", "0"),
        ("batch latency p50 (ms)", f"{percentile(lat, 50):,.0f}", ""),
        ("batch latency p95 (ms)", f"{percentile(lat, 95):,.0f}", "report"),
        ("batch latency p99 / max (ms)",
         f"{percentile(lat, 99):,.0f} / {max(lat, default=0):,.0f}", ""),
        ("batches measured", f"{result['batches']:,}", ""),
        ("batches resent (all duplicate)", f"{result['resent']:,}", ""),
        ("visits stored in total", f"{books['stored']:,}", ""),
        ("CPU s: gunicorn / load generator / postgres",
         f"{result['cpu_server']:.0f} / {result['cpu_load']:.0f} / {result['cpu_postgres']:.0f}",
         ""),
    ]
    print(f"{'measure':<48} {'figure':>14} {'target':>8}")
    for name, figure, target in rows:
        print(f"{name:<48} {figure:>14} {target:>8}")
    for error in result["errors"][:10]:
        print("  error:", error)
    ok = (rate >= TARGET_PER_SECOND and errors == 0 and books["lost"] == 0
          and books["doubled"] == 0 and books["unexpected"] == 0)
    print("PASS" if ok else "FAIL")
    if report:
        print()
        print(report)
    (OUT / f"push_load_{backend}_{dt.datetime.now():%Y%m%d-%H%M%S}.json").write_text(json.dumps({
        "backend": backend, "args": vars(args), "accepted_per_second": rate, "errors": errors,
        "lost": books["lost"], "doubled": books["doubled"], "unexpected": books["unexpected"],
        "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99), "batches": result["batches"],
        "statuses": dict(result["statuses"]), "cpu_server_s": result["cpu_server"],
        "cpu_load_s": result["cpu_load"], "cpu_postgres_s": result["cpu_postgres"]}, indent=2))


if __name__ == "__main__":
    main()
