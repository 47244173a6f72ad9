"""The client's retry rules, against a tiny scripted Tapak on 127.0.0.1 (http.server in a
thread): backoff with full jitter on 503, Retry-After on 429, a bounded number of attempts, no
retry of other 4xx, one re-login on 401, network errors and timeouts, smaller batches on 413.
No waiting: the client's ``sleep`` is recorded instead of slept."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import threading
import time
import uuid as uuidlib
from http.server import BaseHTTPRequestHandler

import pytest

from sync.client import (
    AuthError,
    HTTPError,
    OfflineError,
    RetryPolicy,
    ServerBusy,
    SyncClient,
)
from tests.client.conftest import QuietHTTPServer, free_port, jpeg


class FakeTapak:
    """Answers like Tapak (login, push: all accepted, photos, pull) unless a scripted answer
    is queued for the path: an int status, ``(status, headers)``, ``"reset"`` (close without
    answering) or ``("sleep", seconds)`` (answer normally, late)."""

    def __init__(self):
        self.script: list[tuple[str, object]] = []
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.tokens = 0
        self.valid = set()
        self.photos = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body=None, headers=None):
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers), raw))
                action = fake.take(self.path)
                if action == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(action, tuple) and action[0] == "sleep":
                    time.sleep(action[1])
                elif action is not None:
                    status, headers = action if isinstance(action, tuple) else (action, {})
                    self.reply(status, {"error": {"code": "scripted", "message": "scripted",
                                                  "details": {}}}, headers)
                    return
                self.reply(*fake.answer(self.command, self.path, raw, self.headers))

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = handle_one

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def take(self, path):
        for i, (prefix, action) in enumerate(self.script):
            if path.startswith(prefix):
                del self.script[i]
                return action
        return None

    def plan(self, prefix, *actions):
        self.script += [(prefix, a) for a in actions]

    def answer(self, method, path, raw, headers):
        if path == "/api/v1/auth/token" and method == "POST":
            self.tokens += 1
            token = f"token-{self.tokens}"
            self.valid.add(token)
            return 201, {"token": token, "token_type": "Bearer", "expires_at": "2027-01-01",
                         "user": {"username": "ani", "role": "enumerator", "areas": []}}
        if headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return 401, {"error": {"code": "unauthorized", "message": "no", "details": {}}}
        if path == "/api/v1/sync/push":
            batch = json.loads(raw)
            return 200, {"batch_id": batch["batch_id"], "results": [
                {"uuid": v["uuid"], "status": "accepted", "errors": [], "missing_photos": []}
                for v in batch["visits"]]}
        if path.startswith("/api/v1/photos/"):
            name = path.rsplit("/", 1)[1]
            if method == "HEAD":
                return (200 if name in self.photos else 404), None
            created = name not in self.photos
            self.photos.add(name)
            return (201 if created else 200), {"sha256": name}
        if path.startswith("/api/v1/sync/pull"):
            return 200, {"changes": [], "next_cursor": "c1", "more": False}
        return 404, {"error": {"code": "not_found", "message": path, "details": {}}}

    def calls(self, prefix):
        return [r for r in self.requests if r[1].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = FakeTapak()
    yield server
    server.close()


@pytest.fixture
def client_for(tmp_path):
    made = []

    def make(url, rng=lambda: 1.0, **policy):
        slept: list[float] = []
        policy.setdefault("timeout", (1.0, 2.0))
        client = SyncClient(url, "ani", "pw", "ani-phone", tmp_path / f"o{len(made)}.db",
                            retry=RetryPolicy(**policy), sleep=slept.append, rng=rng)
        client.slept = slept
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


def visit(n=0):
    return {"uuid": str(uuidlib.uuid4()), "form_id": "verifikasi_keluarga", "form_version": 1,
            "household_id": f"KLG-{n}", "answers": {}, "photos": []}


def test_503_twice_then_accepted_with_exponential_backoff(fake, client_for):
    client = client_for(fake.url, base_delay=0.5, max_delay=30)
    client.add_visit(visit())
    fake.plan("/api/v1/sync/push", 503, 503)
    report = client.sync()
    assert report.results == {"accepted": 1}
    assert client.slept == [0.5, 1.0]  # rng() = 1: the top of each jitter window
    assert len(fake.calls("/api/v1/sync/push")) == 3


def test_full_jitter_draws_below_a_capped_exponential(fake, client_for):
    draws = iter([0.25, 0.5, 0.75, 0.1, 0.9])
    client = client_for(fake.url, rng=lambda: next(draws), base_delay=1.0, max_delay=3.0,
                        max_attempts=6)
    client.add_visit(visit())
    fake.plan("/api/v1/sync/push", 500, 502, 503, 504, 500)
    assert client.sync().results == {"accepted": 1}
    # caps 1, 2, 3 (max_delay), 3, 3 times the draws
    assert client.slept == pytest.approx([0.25, 1.0, 2.25, 0.3, 2.7])


def test_real_jitter_stays_inside_its_window(fake, client_for):
    import random

    client = client_for(fake.url, rng=random.Random(5).random, base_delay=0.2, max_delay=1.0,
                        max_attempts=8)
    client.add_visit(visit())
    fake.plan("/api/v1/sync/push", *[503] * 7)
    client.sync()
    caps = [min(1.0, 0.2 * 2**n) for n in range(7)]
    assert len(client.slept) == 7
    assert all(0 <= d <= cap for d, cap in zip(client.slept, caps, strict=True))
    assert len(set(client.slept)) == 7  # drawn, not fixed


def test_429_retry_after_is_honoured_exactly(fake, client_for):
    client = client_for(fake.url, base_delay=0.5, max_delay=10)
    client.add_visit(visit())
    later = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4),
                                        usegmt=True)
    fake.plan("/api/v1/sync/push", (429, {"Retry-After": "2"}), (503, {"Retry-After": later}))
    assert client.sync().results == {"accepted": 1}
    assert client.slept[0] == 2.0
    assert 2.0 <= client.slept[1] <= 4.0  # an HTTP date: the time until then


def test_a_retry_after_longer_than_max_delay_stops_the_sync(fake, client_for):
    client = client_for(fake.url, max_delay=5)
    client.add_visit(visit())
    fake.plan("/api/v1/sync/push", (429, {"Retry-After": "600"}))
    with pytest.raises(ServerBusy) as info:
        client.sync()
    assert info.value.retry_after == 600 and client.slept == []
    assert [v["state"] for v in client.outbox.visits()] == ["sent"]  # sent again next time
    assert client.sync().results == {"accepted": 1}


def test_attempts_are_bounded_then_offline(fake, client_for):
    client = client_for(fake.url, max_attempts=4, base_delay=0.1, max_delay=0.4)
    client.add_visit(visit())
    fake.plan("/api/v1/sync/push", *[503] * 10)
    with pytest.raises(OfflineError):
        client.sync()
    assert len(fake.calls("/api/v1/sync/push")) == 4
    assert client.slept == [0.1, 0.2, 0.4]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 415])
def test_other_4xx_are_never_retried(fake, client_for, status):
    client = client_for(fake.url)
    client.add_visit(visit())
    fake.plan("/api/v1/sync/push", status)
    with pytest.raises(HTTPError) as info:
        client.sync()
    assert info.value.status == status and info.value.code == "scripted"
    assert len(fake.calls("/api/v1/sync/push")) == 1 and client.slept == []


def test_401_logs_in_again_once(fake, client_for):
    client = client_for(fake.url)
    client.add_visit(visit())
    client.login()
    fake.valid.clear()  # the token was revoked (or expired)
    assert client.sync().results == {"accepted": 1}
    assert fake.tokens == 2 and client.slept == []
    # A token that keeps failing: one re-login, then the 401 is the answer.
    client.add_visit(visit(1))
    fake.plan("/api/v1/photos/", 401, 401)
    client.add_visit(visit(2), {"foto_depan": jpeg(1)})
    with pytest.raises(HTTPError) as info:
        client.sync()
    assert info.value.status == 401 and fake.tokens == 3


def test_a_wrong_password_is_an_auth_error_not_a_retry(fake, client_for):
    client = client_for(fake.url)
    fake.plan("/api/v1/auth/token", 401)
    with pytest.raises(AuthError):
        client.login()
    assert len(fake.calls("/api/v1/auth/token")) == 1


def test_the_token_survives_a_restart_of_the_app(fake, client_for, tmp_path):
    client = client_for(fake.url)
    client.login()
    again = SyncClient(fake.url, "ani", "pw", "ani-phone", client.outbox.path)
    try:
        again.add_visit(visit())
        assert again.sync().results == {"accepted": 1}
    finally:
        again.close()
    assert fake.tokens == 1


def test_connection_refused_is_retried_then_offline(client_for, tmp_path):
    client = client_for(f"http://127.0.0.1:{free_port()}", max_attempts=3, base_delay=0.1)
    client.add_visit(visit())
    with pytest.raises(OfflineError, match="ConnectionError"):
        client.sync()
    assert client.slept == [0.1, 0.2]
    assert [v["state"] for v in client.outbox.visits()] == ["pending"]  # login failed first


def test_reset_and_read_timeout_are_retried(fake, client_for):
    client = client_for(fake.url, timeout=(1.0, 0.3))
    client.add_visit(visit())
    fake.plan("/api/v1/sync/push", "reset", ("sleep", 0.8))
    assert client.sync().results == {"accepted": 1}
    assert len(fake.calls("/api/v1/sync/push")) == 3 and len(client.slept) == 2


def test_413_makes_the_batches_smaller(fake, client_for):
    client = client_for(fake.url)
    for n in range(4):
        client.add_visit(visit(n))
    fake.plan("/api/v1/sync/push", 413)
    report = client.sync()
    assert report.results == {"accepted": 4} and report.batches == 2
    sizes = [len(json.loads(raw)["visits"]) for *_, raw in fake.calls("/api/v1/sync/push")]
    assert sizes == [4, 2, 2]


def test_a_photo_refused_for_good_is_not_retried(fake, client_for):
    client = client_for(fake.url)
    fake.plan("/api/v1/photos/", 404, 422)  # HEAD: not there; PUT: refused
    client.add_visit(visit(), {"foto_depan": jpeg(3)})
    report = client.sync()
    assert [f["code"] for f in report.photos_failed] == ["scripted"]
    assert len(fake.calls("/api/v1/photos/")) == 2 and client.slept == []
    assert report.batches == 0 and len(report.blocked) == 1
