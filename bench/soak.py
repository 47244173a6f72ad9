"""Soak: the whole system for a while, under a day's shape of load, with faults (issue 19).

    .venv/bin/python -m bench.soak --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --template tapak_bench_3m --minutes 20
    .venv/bin/python -m bench.soak --ci          # 2 minutes, SQLite, 20,000 families

The real processes, as subprocesses over one database and one photo folder (in a work folder
under bench/out/): gunicorn with 4 sync workers, 2 reconciliation workers
(``flask reconcile run``) and the scheduler (``flask scheduler run``, with
``SCHEDULER_RECONCILE=false``: the dedicated workers reconcile), as deploy/systemd runs them
(gunicorn with deploy/gunicorn.conf.py). A process that exits is started again 5 s later, as
the units' ``Restart=always`` does.

Database: with ``--template NAME`` on PostgreSQL, ``soak_run`` is made a copy of it (``CREATE
DATABASE ... TEMPLATE``) and migrated; otherwise an instance of ``--families`` families is
built by ``bench.dataset`` (one enumerator a phone, up to 300 families each, with their feed
entries; the supervisors), in ``soak_run`` on PostgreSQL or a SQLite file. Supervisors are
added when missing, and the Collect phones get their device keys.

Load (loopback only), for ``--minutes``:
- ``--phones`` phones on the reference client's code path (``sync.client.SyncClient``): each
  pulls its feed, then, after a think time (shorter at midday: the load rises to 1.6 times its
  mean in the middle of the run and falls to 0.4 at its ends, a working day), adds 5-20
  visits of its own families (built from the records it pulled) each with its photos as
  unique real JPEGs, and syncs (HEAD, PUT only the missing, push), then pulls again. 2% of
  batches lose their answer (the client raises after the server answered; the next sync
  resends them: ``duplicate``), 1% of photo uploads are cut off half-way (a socket closed
  mid-body) and then retried whole;
- a tenth of the phones are Collect instead: the manifest, then one multipart submission a
  visit (``xml_submission_file`` and its photos), with the same resend and cut-off shares;
- ``--supervisors`` supervisors work the queue through the review API: list, open, resolve,
  and approve the visit;
- in the middle, ``flask registry import --partial`` of a changed extract of
  ``--import-families`` families (their current snapshots, a tenth with a new address).

Faults, at set shares of the run: ``kill -9`` of a gunicorn worker (20%), ``kill -9`` of a
reconciliation worker while it is busy (35%), a restart of PostgreSQL (``pg_ctlcluster``,
PostgreSQL only, 60%), the scheduler stopped and started 15 s later (75%).

Figures, printed and written to bench/out/soak-*.json: errors by kind (a request that failed
and whose client's retry succeeded is counted apart, as retried), acknowledged visits lost and
visits stored twice (by uuid, by content hash, by family), reconciliation lag (receipt to a
decided status) p50/p95, the queue's drain after the end, p95 latency of push, pull and the
queue page, each process's RssAnon every 10 s and its growth over the last 10 minutes, the CPU
split, database size and WAL per 1,000 visits. ``--ci`` asserts only the zero counts (exit
status 1 otherwise); figures are never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import bindparam, create_engine, text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
BIN = ROOT / ".venv" / "bin"
KECAMATAN = "31.73.01"
PASSWORD = "bench-password"
SOAK_DB = "soak_run"
FORM_ID = "verifikasi_keluarga"
RESTART_SEC = 5  # deploy/systemd's RestartSec
RESEND_SHARE = 0.02
CUT_SHARE = 0.01
DONE_STATES = ("accepted", "duplicate", "waiting_photos")
DECIDED = ("verified", "needs_review", "approved", "rejected", "returned")
# (share of the run, fault); the PostgreSQL restart only on PostgreSQL.
FAULTS = [(0.20, "gunicorn_worker_kill"), (0.35, "reconcile_worker_kill"),
          (0.45, "import"), (0.60, "postgres_restart"), (0.75, "scheduler_stop_start")]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- /proc


def proc_status(pid: int, key: str) -> int | None:
    """A kB field of /proc/<pid>/status (RssAnon), None when the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def proc_cpu(pid: int) -> float | None:
    """utime + stime of a process in seconds."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def proc_state(pid: int) -> str | None:
    """R (running), S (sleeping), D (waiting on I/O)..."""
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return None


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(x) for x in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def postgres_pids(dbname: str | None) -> list[int]:
    """The cluster's own processes and the backends of our database (not other databases'
    backends: the server is shared with other work)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            # "postgres: 15/main: checkpointer", "postgres: 15/main: postgres soak_run ..."
            parts = cmd.split(":", 2)
            rest = parts[2].strip() if len(parts) == 3 else ""
            words = rest.split()
            is_backend = len(words) >= 2 and "(" in rest
            if not is_backend or (dbname and words[1] == dbname):
                out.append(int(entry.name))
    return out


# --------------------------------------------------------------------------- statistics


class Stats:
    """Every request's outcome and latency by kind, final errors by kind, counters."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.errors: Counter = Counter()
        self.error_samples: dict[str, str] = {}
        self.retried: Counter = Counter()  # attempts that failed and were retried
        self.counters: Counter = Counter()
        self.refused: Counter = Counter()  # 4xx answers that are part of the work (races)

    def request(self, kind: str, status, seconds: float | None) -> None:
        with self.lock:
            self.statuses[kind][status] += 1
            if not isinstance(status, int) or status >= 500 or status == 429:
                self.retried[kind] += 1  # a failed attempt; its client retries it
            if seconds is not None and isinstance(status, int) and status < 500:
                self.latency[kind].append(seconds)

    def error(self, kind: str, detail: str = "") -> None:
        with self.lock:
            self.errors[kind] += 1
            self.error_samples.setdefault(kind, detail[:300])

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n


def request_kind(method: str, url: str) -> str:
    path = urlsplit(url).path
    if path.startswith("/openrosa/"):
        tail = path.split("/", 4)[-1]
        if tail.startswith("submission"):
            return "openrosa_head" if method == "HEAD" else "openrosa_submit"
        return "openrosa_" + tail.split("/")[-1].replace(".", "_")
    path = path.removeprefix("/api/v1")
    if path == "/sync/push":
        return "push"
    if path == "/sync/pull":
        return "pull"
    if path.startswith("/photos/"):
        return "photo_" + method.lower()
    if path == "/conflicts":
        return "queue_page"
    if path.startswith("/conflicts/"):
        return "conflict_resolve" if path.endswith("/resolve") else "conflict_open"
    if path.startswith("/visits/"):
        return "visit_review" if path.endswith("/review") else "visit_open"
    if path.startswith("/auth/"):
        return "login"
    if path.startswith("/forms/"):
        return "form"
    return path


class TimedSession(requests.Session):
    """A requests session that records every attempt's status and latency in Stats."""

    def __init__(self, stats: Stats):
        super().__init__()
        self.stats = stats

    def request(self, method, url, *args, **kwargs):
        kind = request_kind(method, url)
        t0 = time.perf_counter()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            self.stats.request(kind, type(exc).__name__, None)
            raise
        self.stats.request(kind, response.status_code, time.perf_counter() - t0)
        return response


def with_retry(session: TimedSession, method: str, url: str, attempts: int = 6,
               **kwargs) -> requests.Response | None:
    """The reference client's rule for the supervisors and Collect: network errors, 5xx and
    429 retried with full-jitter backoff (0.5 s doubling, at most 30 s)."""
    failure = ""
    for attempt in range(attempts):
        try:
            response = session.request(method, url, timeout=(5, 120), **kwargs)
        except requests.RequestException as exc:
            failure = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 500 and response.status_code != 429:
                return response
            failure = f"HTTP {response.status_code}: {response.text[:200]}"
        if attempt + 1 < attempts:
            time.sleep(random.random() * min(30.0, 0.5 * 2 ** attempt))
    session.stats.error(f"{request_kind(method, url)}: gave up after {attempts} attempts",
                        failure)
    return None


# --------------------------------------------------------------------------- photos


class Jpegs:
    """Unique small real JPEGs (640x480), each its own picture so that every perceptual hash
    differs (copies of one picture would all be near copies of each other)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def next(self) -> bytes:
        from PIL import Image

        cells = Image.frombytes("RGB", (8, 6), self.rng.randbytes(8 * 6 * 3))
        image = cells.resize((640, 480), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        return buf.getvalue()


def cut_off_upload(base: str, path: str, headers: dict, body: bytes) -> None:
    """Send a request's headers and half its body, then close the connection (a phone that
    lost its signal mid-upload)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("PUT" if "/photos/" in path else "POST", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[: len(body) // 2])
    except OSError:
        pass
    finally:
        conn.close()


# --------------------------------------------------------------------------- the load


class Clock:
    """The run's stop signal and its day's shape: phones think shorter at midday."""

    def __init__(self, seconds: float = 0.0):
        self.stop = threading.Event()
        self.seconds = seconds
        self.started = time.monotonic()

    def intensity(self) -> float:
        """The rate against the mean: 0.4 at the start and the end of the run, 1.6 in the
        middle (a working day's rise and fall), 1.16 on average."""
        import math

        if not self.seconds:
            return 1.0
        frac = min(1.0, max(0.0, (time.monotonic() - self.started) / self.seconds))
        return 0.4 + 1.2 * math.sin(math.pi * frac)

    def think(self, mean: float, rng: random.Random) -> bool:
        """Wait a think time (uniform around ``mean`` at the mean rate; the wait advances
        faster when the day is busy, second by second); True when the run stopped."""
        left = mean * (0.5 + rng.random())
        while left > 0:
            step = min(1.0, left / self.intensity())
            if self.stop.wait(step):
                return True
            left -= step * self.intensity()
        return False


class LostAnswer(Exception):
    """Raised after the server answered a batch, before the phone recorded the answer."""


_FORMS: dict[str, object] = {}
_FORMS_LOCK = threading.Lock()


def form_for(definition: dict):
    import forms

    key = f"{definition['form_id']}:{definition['version']}"
    with _FORMS_LOCK:
        if key not in _FORMS:
            _FORMS[key] = forms.load_form(definition)
        return _FORMS[key]


WIB = dt.timezone(dt.timedelta(hours=7))


class VisitClock:
    """A phone's visits one after another, 25 minutes apart, from two days ago: realistic
    times (no impossible travel between two of an enumerator's visits), never in the future."""

    def __init__(self, rng: random.Random):
        start = dt.datetime.now(WIB) - dt.timedelta(days=2, minutes=rng.randrange(600))
        self.next = start.replace(microsecond=0)

    def take(self) -> dt.datetime:
        started, self.next = self.next, self.next + dt.timedelta(minutes=25)
        return started


def make_visit(form, record: dict, household_id: str, base_version: int, clock: VisitClock,
               rng: random.Random) -> dict:
    """A complete visit of the family as its record says (forms.example_visit), at the
    family's registered place, at the phone's next visit time."""
    import forms

    started = clock.take()
    visit = forms.example_visit(form, record, uuid=str(uuidlib.uuid4()),
                                started_at=started.isoformat())
    visit["household_id"] = household_id
    # A first visit of the family on this phone: its chain starts at the version pulled.
    visit["base_version"] = visit["trunk_version"] = base_version
    visit["ended_at"] = (started + dt.timedelta(minutes=20)).isoformat()
    lat, lon = record.get("lat"), record.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        visit["location"] = {"lat": lat + (rng.random() - 0.5) / 5000,
                             "lon": lon + (rng.random() - 0.5) / 5000, "accuracy_m": 8}
    return visit


def soak_client_class():
    from sync.client import SyncClient

    class SoakClient(SyncClient):
        """The reference client, with 1% of its photo uploads cut off half-way first."""

        phone: Phone

        def _upload(self, photo, report):
            if self.phone.rng.random() < CUT_SHARE:
                self.phone.stats.count("photo_uploads_cut_off")
                body = Path(photo["path"]).read_bytes()
                cut_off_upload(self.server, f"/api/v1/photos/{photo['sha256']}",
                               {"Authorization": f"Bearer {self._token()}",
                                "Content-Type": "image/jpeg"}, body)
            return super()._upload(photo, report)

    return SoakClient


class Phone(threading.Thread):
    """A phone on the reference client's code path, syncing batch after batch."""

    def __init__(self, n: int, base: str, username: str, workdir: Path, stats: Stats,
                 clock: Clock, think: float, start_within: float):
        super().__init__(daemon=True, name=f"phone-{n}")
        self.n, self.base, self.username, self.stats, self.clock = n, base, username, stats, clock
        self.think, self.start_within = think, start_within
        self.outbox_path = workdir / "phones" / f"{username}.db"
        self.rng = random.Random(1000 + n)
        self.jpegs = Jpegs(2000 + n)
        self.visit_clock = VisitClock(self.rng)
        self.client = None
        self.sent_for: dict[str, str] = {}  # uuid -> household id

    def on_step(self, step: str, detail: dict) -> None:
        if step == "push:answered" and self.rng.random() < RESEND_SHARE:
            self.stats.count("batches_answer_lost")
            raise LostAnswer(detail.get("batch_id"))

    def run(self) -> None:
        from sync.client import SyncError

        if self.clock.stop.wait(self.rng.random() * self.start_within):
            return
        cls = soak_client_class()
        self.client = cls(self.base, self.username, PASSWORD, f"soak-{self.username}",
                          self.outbox_path, http=TimedSession(self.stats),
                          on_step=self.on_step)
        self.client.phone = self
        try:
            self.pull()
            todo = [r[0] for r in self.client.outbox.db.execute(
                "SELECT household_id FROM assignments WHERE status IN ('pending', 'returned') "
                "ORDER BY household_id")]
            self.rng.shuffle(todo)
            while not self.clock.stop.is_set():
                if self.clock.think(self.think, self.rng):
                    break
                for _ in range(self.rng.randint(5, 20)):
                    if not todo:
                        break
                    self.add_visit(todo.pop())
                self.sync()
                self.pull()
            # Before the end: what is still unsent or unanswered goes once more.
            if self.client.outbox.visits(["pending", "sent"]):
                self.sync()
        except (SyncError, ValueError, OSError, KeyError) as exc:
            self.stats.error(f"phone: {type(exc).__name__}", str(exc))

    def pull(self) -> None:
        from sync.client import HTTPError, OfflineError, ServerBusy

        try:
            self.client.pull()
        except (OfflineError, ServerBusy) as exc:
            self.stats.error(f"pull: {type(exc).__name__}", str(exc))
        except HTTPError as exc:
            self.stats.error(f"pull: HTTP {exc.status} {exc.code}", str(exc))

    def add_visit(self, household_id: str) -> None:
        db = self.client.outbox.db
        row = db.execute("SELECT base_version, record FROM households WHERE household_id = ?",
                         [household_id]).fetchone()
        frow = db.execute("SELECT definition FROM forms WHERE form_id = ? AND definition IS NOT "
                          "NULL ORDER BY version DESC LIMIT 1", [FORM_ID]).fetchone()
        if row is None or frow is None:
            self.stats.count("visits_skipped_no_record")
            return
        form = form_for(json.loads(frow[0]))
        visit = make_visit(form, json.loads(row[1]), household_id, row[0], self.visit_clock,
                           self.rng)
        photos = {p["field"]: self.jpegs.next() for p in visit.get("photos") or []}
        self.client.add_visit(visit, photos)
        self.sent_for[visit["uuid"]] = household_id
        self.stats.count("visits_made")

    def sync(self) -> None:
        from sync.client import HTTPError, OfflineError, ServerBusy

        for _ in range(3):  # a lost answer: the app syncs again at once
            try:
                report = self.client.sync()
            except LostAnswer:
                continue
            except (OfflineError, ServerBusy) as exc:
                self.stats.error(f"sync: {type(exc).__name__}", str(exc))
                return
            except HTTPError as exc:
                self.stats.error(f"sync: HTTP {exc.status} {exc.code}", str(exc))
                return
            for status, n in report.results.items():
                self.stats.count(f"push_result_{status}", n)
            for item in report.rejected:
                self.stats.error("visit rejected", json.dumps(item["errors"])[:300])
            for item in report.photos_failed:
                self.stats.error(f"photo refused: {item['code']}", item["message"])
            if report.uuid_reused:
                self.stats.error("uuid_reused", str(report.uuid_reused[:3]))
            return

    def acked(self) -> dict[str, str]:
        """uuid -> state of the visits this phone holds acknowledged, and the others."""
        if self.client is None:
            return {}
        return dict(self.client.outbox.db.execute("SELECT uuid, state FROM visits").fetchall())


class Collect(threading.Thread):
    """A phone on ODK Collect: the manifest, then one multipart submission a visit."""

    def __init__(self, n: int, base: str, key: str, families: dict[str, tuple[int, dict]],
                 definition: dict, stats: Stats, clock: Clock, think: float,
                 start_within: float):
        super().__init__(daemon=True, name=f"collect-{n}")
        self.n, self.base, self.key = n, base, key
        self.records, self.families = families, sorted(families)
        self.definition, self.stats, self.clock = definition, stats, clock
        self.think, self.start_within = think, start_within
        self.rng = random.Random(3000 + n)
        self.jpegs = Jpegs(4000 + n)
        self.visit_clock = VisitClock(self.rng)
        self.http = TimedSession(stats)
        self.states: dict[str, str] = {}  # uuid -> "acked" | "sent" | "refused"
        self.sent_for: dict[str, str] = {}
        self.etag = None

    def url(self, tail: str) -> str:
        return f"{self.base}/openrosa/key/{self.key}/{tail}"

    def run(self) -> None:
        from tests.openrosa import collect

        self.collect = collect
        if self.clock.stop.wait(self.rng.random() * self.start_within):
            return
        self.rng.shuffle(self.families)
        while not self.clock.stop.is_set():
            self.manifest()
            if self.clock.think(self.think, self.rng):
                break
            for _ in range(self.rng.randint(5, 20)):
                if not self.families or self.clock.stop.is_set():
                    break
                self.submit(self.families.pop())

    def manifest(self) -> None:
        headers = self.collect.headers()
        if self.etag:
            headers["If-None-Match"] = self.etag
        response = with_retry(self.http, "GET", self.url(f"forms/{FORM_ID}/1/manifest"),
                              headers=headers)
        if response is not None and response.status_code == 200:
            self.etag = response.headers.get("ETag")
            response.content  # noqa: B018  (read, as Collect does)

    def submit(self, family: str) -> None:
        version, record = self.records[family]
        visit = make_visit(form_for(self.definition), record, family, version,
                           self.visit_clock, self.rng)
        uuid = visit["uuid"]
        self.sent_for[uuid] = family
        self.states[uuid] = "sent"
        stamp = int(time.time() * 1000)
        filenames = {p["field"]: f"{stamp + i}.jpg" for i, p in enumerate(visit["photos"])}
        xml = self.collect.instance_xml(self.definition, visit, filenames)
        parts = [("xml_submission_file", f"Verifikasi_{stamp}.xml", "text/xml", xml)]
        parts += [(name, name, "image/jpeg", self.jpegs.next()) for name in filenames.values()]
        body, ctype = self.collect.multipart(parts)
        url = self.url(f"submission?deviceID=collect:soak{self.n}")
        headers = {**self.collect.headers(), "Content-Type": ctype}
        if with_retry(self.http, "HEAD", url, headers=self.collect.headers()) is None:
            return
        if self.rng.random() < CUT_SHARE:
            self.stats.count("openrosa_submissions_cut_off")
            cut_off_upload(self.base, urlsplit(url).path + "?" + urlsplit(url).query,
                           headers, body)
        response = with_retry(self.http, "POST", url, data=body, headers=headers)
        if response is None:
            return
        if response.status_code in (201, 202):
            self.states[uuid] = "acked"
            self.stats.count(f"openrosa_{response.status_code}")
            if self.rng.random() < RESEND_SHARE:  # the answer was lost: Collect sends again
                self.stats.count("openrosa_resent")
                again = with_retry(self.http, "POST", url, data=body, headers=headers)
                if again is not None and again.status_code != 202:
                    self.stats.error(f"openrosa resend: HTTP {again.status_code}",
                                     again.text[:300])
        else:
            self.states[uuid] = "refused"
            self.stats.error(f"openrosa_submit: HTTP {response.status_code}",
                             response.text[:300])


class Supervisor(threading.Thread):
    """A supervisor working the review queue: list, open, resolve, approve."""

    def __init__(self, n: int, base: str, username: str, password: str, stats: Stats,
                 clock: Clock, think: float):
        super().__init__(daemon=True, name=f"supervisor-{n}")
        self.n, self.base, self.username, self.password = n, base, username, password
        self.stats, self.clock, self.think = stats, clock, think
        self.rng = random.Random(5000 + n)
        self.http = TimedSession(stats)

    def call(self, method: str, path: str, **kwargs):
        response = with_retry(self.http, method, self.base + path, **kwargs)
        if response is not None and response.status_code == 401:
            self.login()
            response = with_retry(self.http, method, self.base + path, **kwargs)
        return response

    def login(self) -> None:
        response = with_retry(self.http, "POST", self.base + "/api/v1/auth/token", json={
            "username": self.username, "password": self.password,
            "device_id": f"soak-{self.username}"})
        if response is None or response.status_code != 201:
            raise RuntimeError(f"login {self.username}: "
                               f"{response.status_code if response is not None else 'gave up'}")
        self.http.headers["Authorization"] = f"Bearer {response.json()['token']}"

    def refused(self, kind: str, response) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            code = response.json()["error"]["code"]
            self.stats.refused[f"{kind} {response.status_code} {code}"] += 1
            return
        self.stats.error(f"{kind}: HTTP {response.status_code}", response.text[:300])

    def run(self) -> None:
        if self.clock.stop.wait(self.rng.random() * 10):
            return
        try:
            self.login()
        except RuntimeError as exc:
            self.stats.error("supervisor login", str(exc))
            return
        while not self.clock.think(self.think, self.rng):
            page = self.call("GET", "/api/v1/conflicts", params={"limit": 25})
            if page is None:
                continue
            if page.status_code != 200:
                self.refused("queue_page", page)
                continue
            items = page.json()["items"]
            if not items:
                continue
            item = items[self.rng.randrange(len(items))]
            detail = self.call("GET", f"/api/v1/conflicts/{item['id']}")
            if detail is None or detail.status_code != 200:
                if detail is not None:
                    self.refused("conflict_open", detail)
                continue
            decision = self.rng.choice(["accept_visit", "keep_registry"])
            resolved = self.call("POST", f"/api/v1/conflicts/{item['id']}/resolve",
                                 json={"decision": decision, "note": "soak"})
            if resolved is None:
                continue
            if resolved.status_code == 200:
                self.stats.count("conflicts_resolved")
            else:
                self.refused("conflict_resolve", resolved)
            uuid = item.get("visit_uuid")
            if uuid and self.rng.random() < 0.5:
                visit = self.call("GET", f"/api/v1/visits/{uuid}")
                if visit is None or visit.status_code != 200 \
                        or visit.json().get("status") != "needs_review":
                    continue
                review = self.call("POST", f"/api/v1/visits/{uuid}/review",
                                   json={"decision": "approve", "note": "soak"})
                if review is None:
                    continue
                if review.status_code == 200:
                    self.stats.count("visits_approved")
                else:
                    self.refused("visit_review", review)


# --------------------------------------------------------------------------- processes


class Proc:
    """One of the system's processes; started again after it exits unless stopped on
    purpose (Restart=always, RestartSec=5, as deploy/systemd's units say)."""

    def __init__(self, name: str, argv: list[str], env: dict, logdir: Path):
        self.name, self.argv, self.env = name, argv, env
        self.logfile = logdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.wanted = False
        self.restart_at: float | None = None
        self.exits: list[dict] = []
        self.starts = 0

    def start(self) -> None:
        with open(self.logfile, "ab") as fh:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=fh,
                                         stderr=fh, start_new_session=True)
        self.wanted = True
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def pids(self) -> list[int]:
        pid = self.pid
        return [pid, *children(pid)] if pid else []

    def stop(self, timeout: float = 30) -> None:
        self.wanted = False
        self.restart_at = None
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def watch(self, t0: float) -> None:
        """Called every second: note an exit, start again when wanted."""
        if self.proc is None or not self.wanted:
            return
        if self.restart_at is not None:
            if time.monotonic() >= self.restart_at:
                self.restart_at = None
                self.start()
            return
        code = self.proc.poll()
        if code is None:
            return
        self.exits.append({"at_s": round(time.monotonic() - t0, 1), "code": code})
        tail = self.logfile.read_text(errors="replace")[-400:]
        log(f"  {self.name} exited ({code}); starting it again in {RESTART_SEC} s. "
            f"Log tail: {tail!r}")
        self.restart_at = time.monotonic() + RESTART_SEC


STARTED: list[System] = []  # stopped on the way out, whatever happens


class System:
    """gunicorn (4 workers), 2 reconciliation workers and the scheduler."""

    def __init__(self, url: str, workdir: Path, workers: int, reconcilers: int):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        env = dict(os.environ, DATABASE_URL=url, TAPAK_INSTANCE=str(workdir / "instance"),
                   PHOTO_DIR=str(workdir / "photos"), SECRET_KEY="soak-secret-key",
                   PASSWORD_HASH_METHOD="pbkdf2:sha256:1000",
                   LOGIN_RATE_LIMIT="100000 per minute", LOG_LEVEL="WARNING",
                   SCHEDULER_RECONCILE="false", FLASK_APP="server")
        self.env = env
        flask = [str(BIN / "flask"), "--app", "server"]
        # As deploy/systemd/tapak-web.service runs it: deploy/gunicorn.conf.py, 4 sync workers,
        # Prometheus' multiprocess folder for the web server only.
        web_env = dict(env, GUNICORN_BIND=f"127.0.0.1:{self.port}", GUNICORN_WORKERS=str(workers),
                       PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"))
        self.web = Proc("gunicorn", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                                     "--backlog", "2048", "server:create_app()"], web_env, logs)
        self.reconcilers = [Proc(f"reconcile-{i + 1}", [*flask, "reconcile", "run"], env, logs)
                            for i in range(reconcilers)]
        self.scheduler = Proc("scheduler", [*flask, "scheduler", "run"], env, logs)
        self.importer: Proc | None = None
        self.t0 = time.monotonic()
        self.watching = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)

    def all(self) -> list[Proc]:
        return [self.web, *self.reconcilers, self.scheduler]

    def start(self) -> None:
        STARTED.append(self)
        self.web.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.web.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited: {self.web.logfile.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base + "/api/v1/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            raise SystemExit("gunicorn did not come up")
        for proc in [*self.reconcilers, self.scheduler]:
            proc.start()
        self.t0 = time.monotonic()
        self.watching.set()
        self.watcher.start()

    def _watch(self) -> None:
        while self.watching.is_set():
            for proc in self.all():
                proc.watch(self.t0)
            time.sleep(1)

    def stop(self) -> None:
        self.watching.clear()
        for proc in [self.scheduler, *self.reconcilers, self.web]:
            proc.stop()

    def roles(self) -> dict[str, int]:
        """role -> pid of every process now running (gunicorn's workers by pid)."""
        out = {}
        if self.web.pid:
            out["gunicorn master"] = self.web.pid
            for pid in children(self.web.pid):
                out[f"gunicorn worker {pid}"] = pid
        for proc in [*self.reconcilers, self.scheduler]:
            if proc.pid:
                out[f"{proc.name} {proc.pid}"] = proc.pid
        if self.importer is not None and self.importer.pid:
            out[f"import {self.importer.pid}"] = self.importer.pid
        return out


# --------------------------------------------------------------------------- setup


def settings_app(url: str, workdir: Path):
    import config
    from server import create_app

    settings = config.for_testing(str(workdir / "instance"), url, str(workdir / "photos"))
    settings.update(TESTING=False, LOG_LEVEL="WARNING")
    return create_app(settings)


def read_ready_note(path: Path) -> dict:
    """The template's note (bench_3m_ready): JSON, or key=value / key: value lines."""
    raw = path.read_text()
    with contextlib.suppress(ValueError):
        return json.loads(raw)
    out = {}
    for line in raw.splitlines():
        for sep in ("=", ":"):
            if sep in line:
                key, value = line.split(sep, 1)
                out.setdefault(key.strip().lower(), value.strip())
                break
    return out


def copy_template(server_url: str, template: str) -> str:
    """soak_run as a copy of the template (dropping an old one); its URL."""
    from sqlalchemy.engine import make_url

    import config

    url = make_url(config.normalise_database_url(server_url))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SOAK_DB}" WITH (FORCE)'))
        t0 = time.perf_counter()
        for attempt in range(60):  # a template someone is connected to cannot be copied
            try:
                conn.execute(text(f'CREATE DATABASE "{SOAK_DB}" TEMPLATE "{template}" '
                                  'STRATEGY FILE_COPY'))  # not 15 GB through the WAL
                break
            except Exception as exc:  # noqa: BLE001
                if "being accessed by other users" not in str(exc) or attempt == 59:
                    raise
                time.sleep(5)
        log(f"  {SOAK_DB} copied from {template} in {time.perf_counter() - t0:.0f} s")
    admin.dispose()
    return url.set(database=SOAK_DB).render_as_string(hide_password=False)


def build_instance(url: str, families: int, phones: int, supervisors: int) -> None:
    """``bench.dataset``'s instance: families of every kecamatan, one enumerator a phone with
    up to 300 families (their feed entries too), the supervisors."""
    from bench import dataset

    per = max(20, min(300, families // 2 // max(1, phones)))
    dataset.build_instance(url, families, enumerators=phones, per_enumerator=per,
                           supervisors=supervisors, seed=19)


def prepare(url: str, workdir: Path, args) -> dict:
    """Migrate; users, supervisors and device keys; the changed extract; the Collect phones
    families and records. Returns what the load needs."""
    from server.extensions import db
    from server.models import User
    from server.openrosa.keys import new_key
    from server.services.users import create_user
    from sync.db import write_transaction

    app = settings_app(url, workdir)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    if result.exit_code != 0:
        raise SystemExit(f"db upgrade failed: {result.output} {result.exception}")
    with app.app_context():
        s = db.session
        enumerators = [r[0] for r in s.execute(text(
            "SELECT u.username FROM users u WHERE u.role = 'enumerator' AND u.active AND EXISTS "
            "(SELECT 1 FROM assignments a WHERE a.enumerator_id = u.id AND a.status = 'pending')"
            " ORDER BY u.username"))]
        if len(enumerators) < args.phones:
            log(f"  only {len(enumerators)} enumerators with pending assignments: "
                f"{len(enumerators)} phones")
        enumerators = enumerators[: args.phones]
        # The supervisors share the phones' kecamatan between them (the template's each have
        # one of their own, maybe not the phones'): supervisor i also gets every n-th.
        kecamatan = sorted({r[0] for r in s.execute(text(
            "SELECT ua.area_code FROM user_areas ua JOIN users u ON u.id = ua.user_id "
            "WHERE u.username IN :names").bindparams(bindparam("names", expanding=True)),
            {"names": enumerators})})
        supervisors = [r[0] for r in s.execute(text(
            "SELECT username FROM users WHERE role = 'supervisor' AND active "
            "ORDER BY username"))][: args.supervisors]
        with write_transaction(s):
            for i in range(len(supervisors), args.supervisors):
                name = f"soak-sup-{i:02d}"
                if s.execute(text("SELECT 1 FROM users WHERE username = :u"),
                             {"u": name}).first() is None:
                    create_user(s, name, "supervisor", PASSWORD, areas=tuple(kecamatan[:1]))
                supervisors.append(name)
            s.flush()
            for i, name in enumerate(supervisors):
                uid = s.execute(text("SELECT id FROM users WHERE username = :u"),
                                {"u": name}).scalar()
                have = {r[0] for r in s.execute(text(
                    "SELECT area_code FROM user_areas WHERE user_id = :u"), {"u": uid})}
                mine = set(kecamatan[i::len(supervisors)]) or {kecamatan[i % len(kecamatan)]}
                for code in sorted(mine - have):
                    s.execute(text("INSERT INTO user_areas (user_id, area_code) "
                                   "VALUES (:u, :c)"), {"u": uid, "c": code})
        sup_password = args.supervisor_password or PASSWORD
        sup_passwords = {name: (PASSWORD if name.startswith("soak-sup-") else sup_password)
                         for name in supervisors}
        n_collect = int(round(len(enumerators) * args.openrosa_share))
        collect_names = enumerators[len(enumerators) - n_collect:]
        keys, families = {}, {}
        with write_transaction(s):
            for name in collect_names:
                user = s.query(User).filter_by(username=name).one()
                keys[name] = new_key(s, user)
                families[name] = {
                    hid: (version, json.loads(doc) if isinstance(doc, str) else doc)
                    for hid, version, doc in s.execute(text(
                        "SELECT a.household_id, r.version, r.doc FROM assignments a JOIN "
                        "verified_records r ON r.household_id = a.household_id WHERE "
                        "a.enumerator_id = :u AND a.status = 'pending'"), {"u": user.id})}
        definition = s.execute(text(
            "SELECT definition FROM form_versions WHERE form_id = :f ORDER BY version LIMIT 1"),
            {"f": FORM_ID}).scalar()
        definition = json.loads(definition) if isinstance(definition, str) else definition
        extract = changed_extract(s, workdir, args.import_families)
        # Any earlier password hashing speed: the template's users log in as they are.
        counts = dict(s.execute(text("SELECT 'families', count(*) FROM keluarga UNION ALL "
                                     "SELECT 'assignments', count(*) FROM assignments "
                                     "UNION ALL SELECT 'visits', count(*) FROM visits")).all())
        s.remove()
        db.engine.dispose()
    return {"enumerators": enumerators, "collect": collect_names, "keys": keys,
            "families": families, "supervisors": sup_passwords, "definition": definition,
            "extract": extract, "counts": counts}


def changed_extract(session, workdir: Path, n: int) -> Path:
    """A changed extract of ``n`` families: their current snapshots, one in ten with a new
    address (imported with --partial: the others stay as they are)."""
    rows = session.execute(text(
        "SELECT v.snapshot FROM keluarga k JOIN keluarga_versions v ON v.keluarga_id = k.id "
        "AND v.version = k.registry_version WHERE k.removed_at IS NULL ORDER BY k.id "
        "LIMIT :n"), {"n": n})
    path = workdir / "changed_extract.jsonl"
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as fh:
        for (snapshot,) in rows:
            rec = json.loads(snapshot) if isinstance(snapshot, str) else snapshot
            if rng.random() < 0.1:
                rec["alamat"] = f"{rec.get('alamat') or 'Jl.'} (pindah {rng.randint(1, 99)})"
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------- faults


class Faults(threading.Thread):
    def __init__(self, system: System, seconds: float, backend: str, extract: Path,
                 engine, stats: Stats, clock: Clock):
        super().__init__(daemon=True, name="faults")
        self.system, self.seconds, self.backend, self.extract = system, seconds, backend, extract
        self.engine, self.stats, self.clock = engine, stats, clock
        self.skip: set[str] = set()
        self.done: list[dict] = []
        self.import_result: dict = {}
        self.import_thread: threading.Thread | None = None
        self.wal: WalMeter | None = None
        self.sqlite_path: Path | None = None

    def run(self) -> None:
        t0 = time.monotonic()
        for share, name in FAULTS:
            if (name == "postgres_restart" and self.backend != "postgresql") \
                    or name in self.skip:
                continue
            if self.clock.stop.wait(max(0.0, t0 + share * self.seconds - time.monotonic())):
                return
            log(f"fault: {name}")
            at = time.monotonic() - t0
            try:
                detail = getattr(self, "import_start" if name == "import" else name)()
            except Exception as exc:  # noqa: BLE001  (recorded; the run goes on)
                detail = f"failed: {type(exc).__name__}: {exc}"
            self.done.append({"fault": name, "at_s": round(at, 1), "detail": detail})
            log(f"  {name}: {detail}")

    def gunicorn_worker_kill(self) -> str:
        workers = children(self.system.web.pid or 0)
        if not workers:
            return "no worker"
        pid = random.choice(workers)
        os.kill(pid, signal.SIGKILL)
        return f"killed worker {pid}"

    def reconcile_worker_kill(self) -> str:
        """kill -9 a reconciliation worker in the middle of a batch (visits queued, and the
        worker seen running on a CPU rather than asleep between polls), start it again 2 s
        later."""
        proc = self.system.reconcilers[0]
        deadline = time.monotonic() + min(60.0, self.seconds / 10)
        how = "not caught running: killed anyway"
        while time.monotonic() < deadline and how.startswith("not"):
            if queued(self.engine) <= 0:
                time.sleep(0.2)
                continue
            for _ in range(300):
                if proc_state(proc.pid or 0) == "R":
                    how = "caught running with visits queued"
                    break
                time.sleep(0.005)
        pid = proc.pid
        proc.wanted = False
        os.kill(pid, signal.SIGKILL)
        proc.proc.wait()
        time.sleep(RESTART_SEC)
        proc.start()
        return f"killed {proc.name} {pid} ({how}), started again {RESTART_SEC} s later"

    def postgres_restart(self) -> str:
        t0 = time.perf_counter()
        out = subprocess.run(["pg_ctlcluster", "15", "main", "restart"], capture_output=True,
                             text=True, timeout=120)
        return (f"pg_ctlcluster 15 main restart: exit {out.returncode} in "
                f"{time.perf_counter() - t0:.1f} s {out.stderr.strip()[:200]}")

    def scheduler_stop_start(self) -> str:
        self.system.scheduler.stop()
        time.sleep(15)
        self.system.scheduler.start()
        return "stopped (SIGTERM), started again 15 s later"

    def import_(self) -> None:
        proc = Proc("import", [str(BIN / "flask"), "--app", "server", "registry", "import",
                               str(self.extract), "--partial", "--label", "soak changed extract",
                               "--no-progress", "--json"], self.system.env,
                    self.system.web.logfile.parent)
        self.system.importer = proc
        size0 = self.db_size()
        if self.wal is not None:
            self.wal.step()
            wal0 = self.wal.ours
        t0 = time.perf_counter()
        proc.start()
        proc.wanted = False
        cpu = 0.0
        while proc.proc.poll() is None:
            cpu = proc_cpu(proc.proc.pid) or cpu
            time.sleep(0.5)
        code = proc.proc.wait()
        seconds = time.perf_counter() - t0
        text_ = proc.logfile.read_text(errors="replace")
        summary = {}
        for line in text_.splitlines():
            with contextlib.suppress(ValueError):
                summary = json.loads(line)
        self.import_result = {"exit": code, "seconds": round(seconds, 1), "summary": summary,
                              "cpu_s": round(cpu, 1), "db_bytes": self.db_size() - size0}
        if self.wal is not None:
            self.wal.step()
            self.import_result["wal_bytes"] = self.wal.ours - wal0
        if code != 0:
            self.stats.error("import failed", text_[-300:])
        log(f"  import done: exit {code} in {seconds:.0f} s {summary}")

    def db_size(self) -> int:
        """The database's size now (the import's share of the growth)."""
        if self.sqlite_path is not None:
            return self.sqlite_path.stat().st_size
        with contextlib.suppress(Exception), self.engine.connect() as conn:
            return conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        return 0

    def import_start(self) -> str:
        self.import_thread = threading.Thread(target=self.import_, daemon=True)
        self.import_thread.start()
        return f"flask registry import --partial {self.extract.name} started"



def queued(engine) -> int:
    with contextlib.suppress(Exception), engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM visits WHERE status IN "
                                 "('queued', 'processing')")).scalar()
    return -1


# --------------------------------------------------------------------------- sampling


class Sampler(threading.Thread):
    """Every 10 s: each process's RssAnon and CPU time, the queue by status."""

    def __init__(self, system: System, engine, backend: str, dbname: str | None,
                 every: float = 10.0):
        super().__init__(daemon=True, name="sampler")
        self.system, self.engine, self.backend, self.dbname = system, engine, backend, dbname
        self.every = every
        self.running = threading.Event()
        self.running.set()
        self.t0 = time.monotonic()
        self.rss: dict[str, list[tuple[float, int]]] = defaultdict(list)  # role -> (t, kB)
        self.cpu: dict[tuple[str, str, int], float] = {}  # (group, kind, pid) -> seconds
        self.queue: list[tuple[float, dict]] = []

    def groups(self) -> dict[str, dict[str, int]]:
        roles = self.system.roles()
        out = {"server": roles, "loadgen": {"load generator": os.getpid()}}
        if self.backend == "postgresql":
            out["postgresql"] = {f"postgres {p}": p for p in postgres_pids(self.dbname)}
        return out

    def sample(self) -> None:
        t = time.monotonic() - self.t0
        for group, roles in self.groups().items():
            for role, pid in roles.items():
                cpu = proc_cpu(pid)
                if cpu is not None:
                    kind = role.split()[0].split("-")[0]  # gunicorn, reconcile, scheduler...
                    self.cpu[(group, kind, pid)] = cpu
                if group == "postgresql":
                    continue
                kb = proc_status(pid, "RssAnon")
                if kb is not None:
                    self.rss[role].append((t, kb))
        with contextlib.suppress(Exception), self.engine.connect() as conn:
            counts = dict(conn.execute(text(
                "SELECT status, count(*) FROM visits GROUP BY status")).all())
            self.queue.append((t, counts))

    def run(self) -> None:
        while self.running.is_set():
            self.sample()
            time.sleep(self.every)

    def cpu_by_group(self, started: dict[tuple[str, str, int], float]) -> dict:
        """CPU seconds by group and by kind of process since ``started`` (a process first
        seen later counts from 0: it started during the run; one that died counts up to its
        last sample)."""
        out: Counter = Counter()
        for (group, kind, pid), value in self.cpu.items():
            spent = value - started.get((group, kind, pid), 0.0)
            out[group] += spent
            if group == "server":
                out[f"server: {kind}"] += spent
        return dict(out)


def memory_growth(rss: dict[str, list[tuple[float, int]]], end: float,
                  window: float = 600.0) -> dict:
    """Per process: RssAnon at the start and end of the last ``window`` seconds (means of a
    minute's samples), and the growth; processes that lived less than half the window are
    marked so (restarted by a fault)."""
    out = {}
    for role, samples in rss.items():
        first_t = samples[0][0]
        start = max(first_t, end - window)
        inside = [(t, kb) for t, kb in samples if t >= start]
        if len(inside) < 2:
            continue
        head = [kb for t, kb in inside if t <= start + 60]
        tail = [kb for t, kb in inside if t >= inside[-1][0] - 60]
        a, b = sum(head) / len(head), sum(tail) / len(tail)
        out[role] = {"start_mb": round(a / 1024, 1), "end_mb": round(b / 1024, 1),
                     "max_mb": round(max(kb for _t, kb in samples) / 1024, 1),
                     "growth": round((b - a) / a, 3) if a else None,
                     "window_s": round(inside[-1][0] - start),
                     "short_lived": inside[-1][0] - first_t < window / 2}
    return out


class WalMeter(threading.Thread):
    """Our database's share of PostgreSQL's WAL: every 20 s, ``pg_waldump`` over the WAL
    written since the last look, summing the records that touch a relation of our database
    (the cluster is shared with other work, so the LSN difference alone says little)."""

    WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"
    WALDIR = "/var/lib/postgresql/15/main/pg_wal"

    def __init__(self, engine):
        super().__init__(daemon=True, name="wal")
        self.engine = engine
        self.running = threading.Event()
        self.running.set()
        with engine.connect() as conn:
            self.oid = conn.execute(text(
                "SELECT oid FROM pg_database WHERE datname = current_database()")).scalar()
            self.last = str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar())
        self.ours = 0
        self.total = 0
        self.failures = 0
        self.marker = f"/{self.oid}/"
        self.lock = threading.Lock()

    def step(self) -> None:
        with self.lock:
            self._step()

    def _step(self) -> None:
        try:
            with self.engine.connect() as conn:
                now = str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar())
        except Exception:  # noqa: BLE001  (PostgreSQL restarting: next time)
            return
        if now == self.last:
            return
        proc = subprocess.Popen([self.WALDUMP, "-p", self.WALDIR, "-s", self.last, "-e", now],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in proc.stdout:
            if not line.startswith("rmgr:"):
                continue
            try:
                size = int(line.split("len (rec/tot):", 1)[1].split("/", 1)[1].split(",", 1)[0])
            except (IndexError, ValueError):
                continue
            self.total += size
            if self.marker in line:
                self.ours += size
        if proc.wait() != 0:
            self.failures += 1
        self.last = now

    def run(self) -> None:
        while self.running.is_set():
            time.sleep(20)
            self.step()

    def finish(self) -> dict:
        self.running.clear()
        self.step()
        return {"ours": self.ours, "cluster": self.total, "waldump_failures": self.failures}


# --------------------------------------------------------------------------- the run


def database_figures(engine, backend: str, sqlite_path: Path | None) -> dict:
    with engine.connect() as conn:
        if backend == "postgresql":
            return {"db_bytes": conn.execute(text(
                        "SELECT pg_database_size(current_database())")).scalar(),
                    "wal_lsn": str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar())}
    size = sqlite_path.stat().st_size if sqlite_path and sqlite_path.exists() else 0
    wal = Path(f"{sqlite_path}-wal")
    return {"db_bytes": size, "wal_bytes": wal.stat().st_size if wal.exists() else 0}


def wal_diff(engine, a: str, b: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_wal_lsn_diff(:b, :a)"), {"a": a, "b": b})
                   .scalar())


def as_utc(value) -> dt.datetime | None:
    """A timestamp as the database gives it (datetime, or SQLite's text) in naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def account(engine, acked: dict[str, str], sent: dict[str, str], started: dt.datetime) -> dict:
    """From the database: acknowledged visits missing, visits stored twice (by uuid, by
    content hash, more visits of a family than were sent for it), the lag."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT uuid, content_hash, household_id, status, received_at, processed_at "
            "FROM visits")).all()
        photos_missing = conn.execute(text(
            "SELECT count(*) FROM visit_photos vp LEFT JOIN photos p ON p.sha256 = vp.sha256 "
            "WHERE p.sha256 IS NULL")).scalar()
    start = as_utc(started)
    rows = [r for r in rows if r[0] in sent or as_utc(r[4]) >= start]
    stored = Counter(r[0] for r in rows)
    by_hash = Counter(r[1] for r in rows)
    by_family = Counter(r[2] for r in rows)
    sent_by_family = Counter(sent.values())
    status = Counter(r[3] for r in rows)
    lag = [(as_utc(r[5]) - as_utc(r[4])).total_seconds() for r in rows
           if r[3] in DECIDED and r[4] is not None and r[5] is not None]
    lost = set(acked) - set(stored)
    return {
        "stored": len(rows),
        "lost": sorted(lost)[:20],
        "lost_count": len(lost),
        "doubled_uuid": sum(n - 1 for n in stored.values() if n > 1),
        "doubled_content": sum(n - 1 for n in by_hash.values() if n > 1),
        "doubled_family": sum(max(0, n - sent_by_family.get(h, 0)) for h, n in by_family.items()),
        "stored_not_sent": len(set(stored) - set(sent)),
        "by_status": dict(status),
        "lag_p50_s": percentile(lag, 50), "lag_p95_s": percentile(lag, 95),
        "lag_max_s": max(lag, default=None), "lag_n": len(lag),
        "photo_links_without_photo": photos_missing,
    }


def run(args) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="soak-", dir=OUT))
    (workdir / "phones").mkdir()
    backend = "postgresql" if args.database_url else "sqlite"
    sqlite_path = None
    t_setup = time.perf_counter()
    if backend == "postgresql":
        if args.template:
            url = copy_template(args.database_url, args.template)
        else:
            from sync.db import scratch_postgres

            url, _drop = scratch_postgres(args.database_url, SOAK_DB)
            log(f"building {args.families:,} families in {SOAK_DB} ...")
            build_instance(url, args.families, args.phones, args.supervisors)
    else:
        sqlite_path = workdir / "soak.db"
        url = f"sqlite:///{sqlite_path}"
        log(f"building {args.families:,} families in {sqlite_path} ...")
        build_instance(url, args.families, args.phones, args.supervisors)
    log("preparing (migrations, supervisors, device keys, the changed extract) ...")
    prepared = prepare(url, workdir, args)
    setup_s = time.perf_counter() - t_setup
    log(f"  setup took {setup_s:.0f} s: {prepared['counts']}")

    import config

    engine = create_engine(config.normalise_database_url(url), pool_pre_ping=True)
    stats, clock = Stats(), Clock()  # the day's shape starts with the load, below
    system = System(url, workdir, args.workers, args.reconcilers)
    log(f"starting gunicorn ({args.workers} workers), {args.reconcilers} reconciliation "
        "workers, the scheduler ...")
    system.start()
    seconds = args.minutes * 60
    n_collect = len(prepared["collect"])
    json_names = prepared["enumerators"][: len(prepared["enumerators"]) - n_collect]
    start_within = min(60.0, seconds / 6)
    phones = [Phone(i, system.base, name, workdir, stats, clock, args.think, start_within)
              for i, name in enumerate(json_names)]
    collects = [Collect(i, system.base, prepared["keys"][name], prepared["families"][name],
                        prepared["definition"], stats, clock, args.think, start_within)
                for i, name in enumerate(prepared["collect"])]
    supervisors = [Supervisor(i, system.base, name, password, stats, clock,
                              args.supervisor_think)
                   for i, (name, password) in enumerate(prepared["supervisors"].items())]
    dbname = SOAK_DB if backend == "postgresql" else None
    sampler = Sampler(system, engine, backend, dbname)
    before = database_figures(engine, backend, sqlite_path)
    started_at = dt.datetime.now(dt.UTC)
    faults = Faults(system, seconds, backend, prepared["extract"], engine, stats, clock)
    faults.skip = set(args.skip_fault)
    faults.sqlite_path = sqlite_path
    log(f"load: {len(phones)} phones, {len(collects)} Collect phones, {len(supervisors)} "
        f"supervisors for {args.minutes} min ...")
    wal = WalMeter(engine) if backend == "postgresql" and Path(WalMeter.WALDUMP).exists() \
        else None
    if wal is not None:
        wal.start()
    faults.wal = wal
    sampler.start()
    time.sleep(0.2)
    cpu_at_start = dict(sampler.cpu)
    clock.seconds, clock.started = seconds, time.monotonic()
    for thread in [*phones, *collects, *supervisors]:
        thread.start()
    faults.start()
    t0 = time.monotonic()
    last = t0
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        if time.monotonic() - last >= 60:
            last = time.monotonic()
            q = sampler.queue[-1][1] if sampler.queue else {}
            log(f"  {(last - t0) / 60:.0f} min: visits made {stats.counters['visits_made']}, "
                f"openrosa {stats.counters['openrosa_201']}, queue {q.get('queued', 0)}, "
                f"errors {sum(stats.errors.values())}")
    load_end = time.monotonic()
    clock.stop.set()
    log("load stopped; waiting for the phones' last sync ...")
    for thread in [*phones, *collects, *supervisors]:
        thread.join(timeout=180)
    last_syncs_s = time.monotonic() - load_end
    # The queue of queued visits must be empty within 60 s of the end (of the last sync).
    end = time.monotonic()
    drained_after = None
    while time.monotonic() - end < 300:
        n = queued(engine)
        if n == 0:
            drained_after = time.monotonic() - end
            break
        time.sleep(1)
    if faults.import_thread is not None:
        faults.import_thread.join(timeout=900)
    faults.join(timeout=60)
    sampler.running.clear()
    sampler.sample()
    end_t = time.monotonic() - sampler.t0
    cpu = sampler.cpu_by_group(cpu_at_start)
    after = database_figures(engine, backend, sqlite_path)
    wal_figures = wal.finish() if wal is not None else None
    system.stop()

    acked, sent = {}, {}
    unacked_states: Counter = Counter()
    for phone in phones:
        sent.update(phone.sent_for)
        for uuid, state in phone.acked().items():
            if state in DONE_STATES:
                acked[uuid] = state
            else:
                unacked_states[state] += 1
        if phone.client is not None:
            phone.client.close()
    for c in collects:
        sent.update(c.sent_for)
        for uuid, state in c.states.items():
            if state == "acked":
                acked[uuid] = state
            else:
                unacked_states[f"openrosa {state}"] += 1
    books = account(engine, acked, sent, started_at)
    final_status = dict(sampler.queue[-1][1]) if sampler.queue else {}
    visits_run = books["stored"]
    figures = {
        "backend": backend, "args": vars(args), "setup_s": round(setup_s),
        "instance": prepared["counts"], "cores": os.cpu_count(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "phones": len(phones), "collect_phones": len(collects),
        "supervisors": len(supervisors),
        "visits_acknowledged": len(acked), "visits_stored": visits_run,
        "unacknowledged_at_end": dict(unacked_states),
        "lost": books["lost_count"], "lost_sample": books["lost"],
        "doubled_uuid": books["doubled_uuid"], "doubled_content": books["doubled_content"],
        "doubled_family": books["doubled_family"], "stored_not_sent": books["stored_not_sent"],
        "photo_links_without_photo": books["photo_links_without_photo"],
        "status_at_end": books["by_status"],
        "last_syncs_s": round(last_syncs_s, 1),
        "queue_drained_after_s": None if drained_after is None else round(drained_after, 1),
        "held_at_end": final_status.get("held", 0),
        "waiting_photos_at_end": final_status.get("waiting_photos", 0),
        "failed_at_end": final_status.get("failed", 0),
        "lag_s": {"p50": books["lag_p50_s"], "p95": books["lag_p95_s"],
                  "max": books["lag_max_s"], "n": books["lag_n"]},
        "latency_p95_ms": {k: round(percentile(v, 95) * 1000, 1)
                           for k, v in sorted(stats.latency.items()) if v},
        "latency_p50_ms": {k: round(percentile(v, 50) * 1000, 1)
                           for k, v in sorted(stats.latency.items()) if v},
        "requests": {k: {str(s): n for s, n in v.items()} for k, v in stats.statuses.items()},
        "errors": dict(stats.errors), "error_samples": stats.error_samples,
        "retried_attempts": dict(stats.retried), "refused_in_review": dict(stats.refused),
        "counters": dict(stats.counters),
        "faults": faults.done, "import": faults.import_result,
        "process_exits": {p.name: p.exits for p in system.all() if p.exits},
        "memory": memory_growth(sampler.rss, end_t),
        "cpu_s": {k: round(v, 1) for k, v in cpu.items()},
        "run_s": round(load_end - t0),
        "db": {"before": before, "after": after},
        "queue_samples": sampler.queue,
        "rss_samples": {k: v for k, v in sampler.rss.items()},
        "workdir": str(workdir),
    }
    with engine.connect() as conn:
        photos = conn.execute(text("SELECT count(*) FROM photos")).scalar()
    figures["photos_stored"] = photos
    figures["phash_index_expected_mb"] = round((40 * photos + 2 * 1024 * 1024) / 2**20, 1)
    figures["photo_store_bytes"] = sum(p.stat().st_size for p in (workdir / "photos").rglob("*")
                                       if p.is_file())
    if visits_run:
        per = 1000 / visits_run
        imported = faults.import_result
        grow = after["db_bytes"] - before["db_bytes"]
        figures["db_bytes_per_1000_visits"] = round(grow * per)
        figures["db_bytes_per_1000_visits_without_import"] = round(
            (grow - imported.get("db_bytes", 0)) * per)
        figures["photo_bytes_per_1000_visits"] = round(figures["photo_store_bytes"] * per)
        if backend == "postgresql":
            cluster = wal_diff(engine, before["wal_lsn"], after["wal_lsn"])
            figures["wal_cluster_bytes"] = cluster
            figures["wal_cluster_bytes_per_1000_visits"] = round(cluster * per)
            if wal_figures is not None:
                figures["wal"] = wal_figures
                figures["wal_bytes_per_1000_visits"] = round(wal_figures["ours"] * per)
                figures["wal_bytes_per_1000_visits_without_import"] = round(
                    (wal_figures["ours"] - imported.get("wal_bytes", 0)) * per)
        else:
            figures["wal_bytes_at_end"] = after["wal_bytes"]
    engine.dispose()
    if not args.keep and not args.ci:
        shutil.rmtree(workdir / "phones", ignore_errors=True)
    if backend == "postgresql" and not args.keep:  # a copy of the template: gigabytes
        drop_soak_db(args.database_url)
    return figures


def drop_soak_db(server_url: str) -> None:
    from sqlalchemy.engine import make_url

    import config

    url = make_url(config.normalise_database_url(server_url))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SOAK_DB}" WITH (FORCE)'))
    admin.dispose()


def report(f: dict) -> None:
    print()
    print(f"soak: {f['backend']}, {f['instance']}, {f['args']['minutes']} min, "
          f"{f['phones']} phones + {f['collect_phones']} Collect, {f['supervisors']} "
          f"supervisors, {f['cores']} cores")
    print(f"  visits acknowledged {f['visits_acknowledged']:,}, stored {f['visits_stored']:,};"
          f" lost {f['lost']}, stored twice: by uuid {f['doubled_uuid']}, by content "
          f"{f['doubled_content']}, by family {f['doubled_family']}; stored but never sent "
          f"{f['stored_not_sent']}")
    print(f"  unacknowledged at the end: {f['unacknowledged_at_end']}")
    print(f"  queue empty {f['queue_drained_after_s']} s after the end (the phones' last syncs "
          f"took {f['last_syncs_s']} s after the load stopped); held "
          f"{f['held_at_end']}, waiting_photos {f['waiting_photos_at_end']}, failed "
          f"{f['failed_at_end']}; status {f['status_at_end']}")
    lag = f["lag_s"]

    def fmt(x):
        return "-" if x is None else f"{x:.1f}"

    print(f"  reconciliation lag (receipt -> decided): p50 {fmt(lag['p50'])} s, p95 "
          f"{fmt(lag['p95'])} s, max {fmt(lag['max'])} s over {lag['n']:,} visits")
    p95 = f["latency_p95_ms"]
    print(f"  p95 latency: push {p95.get('push')} ms, pull {p95.get('pull')} ms, queue page "
          f"{p95.get('queue_page')} ms; all p95: {p95}")
    print(f"  errors by kind: {f['errors'] or 'none'}")
    for kind, sample in f["error_samples"].items():
        print(f"    {kind}: {sample[:200]}")
    print(f"  retried attempts (retry succeeded unless counted above): {f['retried_attempts']}")
    print(f"  review refusals (races between supervisors, expected): {f['refused_in_review']}")
    print(f"  counters: {f['counters']}")
    for fault in f["faults"]:
        print(f"  fault at {fault['at_s']:.0f} s: {fault['fault']}: {fault['detail']}")
    print(f"  import: {f['import']}")
    print(f"  process exits: {f['process_exits'] or 'none but the faults'}")
    capacity = f["run_s"] * f["cores"]
    print("  CPU (utime + stime) over the run, share of the machine's "
          f"{f['cores']} cores x {f['run_s']} s:")
    for k, v in f["cpu_s"].items():
        print(f"    {k:<22} {v:>8.0f} s  {v / capacity:6.1%}")
    print(f"  photos stored {f['photos_stored']:,}: phash index expected "
          f"{f['phash_index_expected_mb']} MB per reconciliation worker")
    print("  RssAnon (MB) over the last 10 minutes:")
    idx = (f"  [phash index, grows by design: {f['phash_index_expected_mb']} MB expected for "
           f"{f['photos_stored']:,} photos]")
    for role, m in sorted(f["memory"].items()):
        flag = ""
        if m["growth"] is not None and m["growth"] > 0.10 and not m["short_lived"]:
            flag = "  > 10%"
        print(f"    {role:<28} {m['start_mb']:>8} -> {m['end_mb']:>8} (max {m['max_mb']}) "
              f"{'' if m['growth'] is None else format(m['growth'], '+.1%')}"
              f"{' (lived under 5 min of the window)' if m['short_lived'] else ''}{flag}"
              f"{idx if role.startswith('reconcile') else ''}")
    print(f"  database: {f['db']}")
    print(f"  per 1,000 visits: database {f.get('db_bytes_per_1000_visits')} bytes "
          f"({f.get('db_bytes_per_1000_visits_without_import')} without the import's share), "
          f"WAL of this database {f.get('wal_bytes_per_1000_visits')} bytes "
          f"({f.get('wal_bytes_per_1000_visits_without_import')} without the import), the "
          f"cluster's WAL {f.get('wal_cluster_bytes_per_1000_visits')} (shared with other "
          f"work), photos {f.get('photo_bytes_per_1000_visits')} bytes; SQLite -wal at the end "
          f"{f.get('wal_bytes_at_end')}; {f.get('wal')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None,
                        help="A PostgreSQL server URL (soak_run is made on it); SQLite else.")
    parser.add_argument("--template", default=None,
                        help="A PostgreSQL database to copy into soak_run (e.g. tapak_bench_3m).")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--openrosa-share", type=float, default=0.1)
    parser.add_argument("--supervisors", type=int, default=20)
    parser.add_argument("--supervisor-password", default=None,
                        help="The template's supervisors' password (theirs, if they exist).")
    parser.add_argument("--families", type=int, default=20_000,
                        help="Families of the instance built when there is no --template.")
    parser.add_argument("--import-families", type=int, default=100_000)
    parser.add_argument("--think", type=float, default=240.0,
                        help="A phone's mean think time between syncs, seconds.")
    parser.add_argument("--supervisor-think", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--reconcilers", type=int, default=2)
    parser.add_argument("--skip-fault", action="append", default=[],
                        choices=[name for _share, name in FAULTS],
                        help="Leave out a fault (repeat); for trying the script out.")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the phones' outboxes and, on PostgreSQL, soak_run.")
    parser.add_argument("--ci", action="store_true",
                        help="2 minutes on SQLite, 20,000 families, 40 phones; assert only "
                             "the zero counts.")
    args = parser.parse_args(argv)
    if args.ci:
        args.database_url, args.template, args.minutes = None, None, 2
        args.families, args.phones, args.supervisors = 20_000, 40, 5
        args.import_families, args.think = 5_000, 20.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        figures = run(args)
    finally:
        for system in STARTED:
            system.stop()
    report(figures)
    name = f"soak-{figures['backend']}-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    (OUT / name).write_text(json.dumps(figures, indent=1, default=str))
    print(f"  figures: bench/out/{name}")
    ok = (figures["lost"] == 0 and figures["doubled_uuid"] == 0
          and figures["doubled_content"] == 0 and figures["doubled_family"] == 0
          and figures["queue_drained_after_s"] is not None
          and figures["queue_drained_after_s"] <= 60)
    print("zero counts: PASS" if ok else "zero counts: FAIL")
    if args.ci and not args.keep:
        shutil.rmtree(figures["workdir"], ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
