"""A real Tapak server on 127.0.0.1 for the sync client's end-to-end tests.

One server per test module: gunicorn with two workers in its own process group (so it can be
killed with SIGKILL as a whole, as a crash would), over a database of its own: a SQLite file,
or, with TEST_DATABASE_URL, a PostgreSQL database created beside that one for this module and
dropped afterwards. The suite's ``app`` fixture is not used: it empties the tables after each
test, under the live server's feet. The schema and reference data are made by the real CLI
commands (in-process through Flask's CLI runner, which is quicker than one process each);
everything after that goes over HTTP. Tests look at the database with a plain SQLAlchemy
engine.

Each test takes its own enumerators and families (``live.enumerator(n)``), so tests never
share state on the one server.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from PIL import Image
from sqlalchemy import create_engine, text

import config
import forms

ROOT = Path(__file__).resolve().parents[2]
KECAMATAN = "31.73.01"
PASSWORD = "client-test-pw"
MAX_PHOTO_BYTES = 300_000  # small, so that the 413 path is cheap to reach
FAMILIES = 400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# --------------------------------------------------------------------------- the database


def _scratch_database(tmp: Path) -> tuple[str, Callable[[], None]]:
    """(url, drop) of a database for this module's server."""
    from tests.conftest import scratch_test_database

    if not os.environ.get("TEST_DATABASE_URL"):
        return f"sqlite:///{tmp / 'live.db'}", lambda: None
    return scratch_test_database("tapak_client")


def _prepare(url: str, instance: Path, photo_dir: Path) -> list[str]:
    """Migrate, load areas, publish v1, import an extract, create the staff; return the
    families' ids. Real CLI commands, run in-process."""
    from server import create_app
    from sync.generator import generate

    app = create_app(config.for_testing(str(instance), url, str(photo_dir)))
    runner = app.test_cli_runner()
    extract = instance / "extract"
    generate(extract, FAMILIES, 11, "jsonl", [KECAMATAN])
    for args in (["db", "upgrade"], ["areas", "load"],
                 ["forms", "publish", str(ROOT / "forms/verifikasi_keluarga/v1.json")],
                 ["registry", "import", str(extract / "keluarga.jsonl"), "--no-progress"],
                 ["users", "create", "admin", "--role", "admin", "--password", PASSWORD],
                 ["assignments", "round-create", "Client tests", "--starts", "2026-01-01",
                  "--ends", "2026-12-31"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    from server.extensions import db

    with app.app_context():
        ids = [r[0] for r in db.session.execute(text("SELECT id FROM keluarga ORDER BY id"))]
        db.session.remove()
        db.engine.dispose()
    return ids


# --------------------------------------------------------------------------- the server


class LiveServer:
    """gunicorn over the module's database; ``kill()`` is a crash, ``start()`` a reboot."""

    def __init__(self, url: str, tmp: Path, families: list[str]):
        self.database_url = url
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = tmp / "gunicorn.log"
        self.engine = create_engine(config.normalise_database_url(url))
        self.pool = list(families)
        self._names = itertools.count(1)
        self.admin = requests.Session()
        self.round_id = 1
        self._admin_token = None
        self._form = None

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(DATABASE_URL=self.database_url, TAPAK_INSTANCE=str(self.tmp / "instance"),
                   PHOTO_DIR=str(self.tmp / "photos"), SECRET_KEY="client-tests-secret",
                   PASSWORD_HASH_METHOD="pbkdf2:sha256:1000",
                   LOGIN_RATE_LIMIT="1000 per minute", LOG_LEVEL="WARNING",
                   MAX_PHOTO_BYTES=str(MAX_PHOTO_BYTES), PYTHONUNBUFFERED="1")
        return env

    def start(self, timeout: float = 30) -> None:
        assert self.proc is None or self.proc.poll() is not None
        log = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", "--bind",
             f"127.0.0.1:{self.port}", "--timeout", "60", "--graceful-timeout", "3",
             "server:create_app()"],
            cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not come up: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL to gunicorn and its workers at once: a crash, no cleanup of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    # --- administration over HTTP

    def _admin(self, method: str, path: str, **kw) -> requests.Response:
        if self._admin_token is None:
            r = self.admin.post(self.url + "/api/v1/auth/token", json={
                "username": "admin", "password": PASSWORD, "device_id": "admin-laptop"},
                timeout=10)
            assert r.status_code == 201, r.text
            self._admin_token = r.json()["token"]
        return self.admin.request(method, self.url + path, timeout=30, headers={
            "Authorization": f"Bearer {self._admin_token}"}, **kw)

    def enumerator(self, families: int = 1, name: str | None = None) -> tuple[str, list[str]]:
        """A new enumerator with ``families`` families of their own: (username, ids)."""
        name = name or f"enum{next(self._names):03d}"
        r = self._admin("POST", "/api/v1/users", json={
            "username": name, "password": PASSWORD, "role": "enumerator",
            "areas": [KECAMATAN]})
        assert r.status_code == 201, r.text
        if len(self.pool) < families:
            raise RuntimeError("the module's family pool is used up; raise FAMILIES")
        ids, self.pool = self.pool[:families], self.pool[families:]
        if ids:
            self.assign(name, ids)
        return name, ids

    def assign(self, name: str, ids: list[str]) -> dict:
        r = self._admin("POST", "/api/v1/assignments", json={
            "round_id": self.round_id, "enumerator": name, "household_ids": ids})
        assert r.status_code == 201, r.text
        return r.json()

    # --- looking at the database

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def stored(self, uuids) -> dict[str, str]:
        """uuid -> content_hash of the given visits that are stored (each row once)."""
        uuids = list(uuids)
        out: dict[str, str] = {}
        for i in range(0, len(uuids), 500):
            chunk = uuids[i:i + 500]
            marks = ", ".join(f":u{n}" for n in range(len(chunk)))
            for uuid, digest in self.rows(f"SELECT uuid, content_hash FROM visits WHERE uuid IN "
                                          f"({marks})", **{f"u{n}": u for n, u in
                                                           enumerate(chunk)}):
                assert uuid not in out, f"visit {uuid} stored twice"
                out[uuid] = digest
        return out

    def form(self):
        if self._form is None:
            r = self._admin("GET", "/api/v1/forms/verifikasi_keluarga/versions/1")
            self._form = forms.load_form(r.json())
        return self._form


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    (tmp / "instance").mkdir()
    url, drop = _scratch_database(tmp)
    try:
        families = _prepare(url, tmp / "instance", tmp / "photos")
        server = LiveServer(url, tmp, families)
        server.start()
        try:
            yield server
        finally:
            server.stop()
            server.engine.dispose()
    finally:
        drop()


# --------------------------------------------------------------------------- visits


class Visits:
    """Builds valid v1 visits for an enumerator's families, as the phone would: from the
    household records and the form definition in the client's local store."""

    def __init__(self, live: LiveServer):
        self.live = live
        self.seed = 1000

    def make(self, household_id: str, record: dict, base_version: int, *, photos: bool = True,
             photo_pool: list[bytes] | None = None, **changes) -> tuple[dict, dict]:
        visit = forms.example_visit(self.live.form(), record, uuid=str(uuidlib.uuid4()),
                                    started_at="2026-02-03T09:00:00+07:00")
        visit["base_version"] = base_version
        visit["ended_at"] = "2026-02-03T09:25:00+07:00"
        visit["location"] = {"lat": -6.14, "lon": 106.73, "accuracy_m": 8}
        images = {}
        if photos:
            for i, entry in enumerate(visit["photos"]):
                if photo_pool:
                    images[entry["field"]] = photo_pool[(self.seed + i) % len(photo_pool)]
                else:
                    self.seed += 1
                    images[entry["field"]] = jpeg(self.seed)
                entry["sha256"] = sha(images[entry["field"]])
            self.seed += 1
        visit.update(changes)
        return visit, images

    def for_client(self, client, count: int | None = None, per_family: int = 1,
                   **kw) -> list[tuple[dict, dict]]:
        """Visits for the families in the client's local store (pull first)."""
        households = client.households()
        out = []
        for household_id, h in households.items():
            for _ in range(per_family):
                out.append(self.make(household_id, h["record"], h["base_version"], **kw))
        return out[:count] if count is not None else out


@pytest.fixture(scope="module")
def visits(live):
    return Visits(live)


@pytest.fixture
def make_client(live, tmp_path):
    """A SyncClient on its own outbox file; closed after the test."""
    from sync.client import RetryPolicy, SyncClient

    made = []

    def make(user, device=None, outbox=None, server=None, **kw):
        kw.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.5,
                                           timeout=(2.0, 30.0)))
        client = SyncClient(server or live.url, user, PASSWORD, device or f"{user}-phone",
                            outbox or tmp_path / f"{user}-{len(made)}.outbox", **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            client.close()


# --------------------------------------------------------------------------- a faulty network


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a client's hang-up (they are on purpose)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class FaultyProxy:
    """An HTTP proxy on 127.0.0.1 in a thread that injects faults before the real server.

    ``plan(prefix, *faults)`` queues faults for requests whose path starts with ``prefix``;
    each request takes the next one (none left: forward). A fault is:

    - ``503``, ``429``, ... (an int): answer that status without forwarding, optionally
      ``(status, retry_after)``;
    - ``"reset"``: close the connection without an answer, before forwarding;
    - ``"lose"``: forward, let the server answer, then close without passing the answer on
      (the server did the work; the client never hears of it).
    """

    def __init__(self, upstream_port: int | None):
        self.upstream_port = upstream_port
        self.faults: list[tuple[str, object]] = []
        self.log: list[tuple[str, str, object]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._take(self.path)
                proxy.log.append((self.command, self.path, fault))
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(fault, tuple | int):
                    status, retry_after = fault if isinstance(fault, tuple) else (fault, None)
                    payload = json.dumps({"error": {"code": "injected", "message": "injected",
                                                    "details": {}}}).encode()
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("Retry-After", str(retry_after))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if fault == "lose":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "server",
                                           "date"):
                        self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def plan(self, prefix: str, *faults) -> None:
        with self.lock:
            self.faults += [(prefix, f) for f in faults]

    def _take(self, path: str):
        with self.lock:
            for i, (prefix, fault) in enumerate(self.faults):
                if path.startswith(prefix):
                    del self.faults[i]
                    return fault
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(live):
    p = FaultyProxy(live.port)
    yield p
    p.close()


def run_client_cli(args: list[str], **popen) -> subprocess.Popen:
    """``python -m sync.client ...`` in a subprocess (started, not waited for)."""
    return subprocess.Popen([sys.executable, "-m", "sync.client", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
