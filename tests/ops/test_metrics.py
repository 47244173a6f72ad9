"""/metrics: who may scrape, what it counts, the figures read from the database, and gunicorn's
workers summed through the multiprocess folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import record_job_runs

ROOT = Path(__file__).resolve().parents[2]


def parse(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(client, **kw) -> dict[tuple, float]:
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


def value(figures, name, **labels) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


# --- who may scrape ---------------------------------------------------------------------------

def test_loopback_may_scrape_by_default(client):
    figures = scrape(client)
    assert value(figures, "tapak_database_up") == 1


@pytest.mark.parametrize("environ, headers, status, code", [
    ({"REMOTE_ADDR": "10.1.2.3"}, {}, 403, "forbidden"),
    # through the proxy a request seems to come from loopback: the allow-list does not apply
    ({}, {"X-Forwarded-For": "203.0.113.9"}, 403, "forbidden"),
])
def test_others_are_refused_with_the_envelope(client, environ, headers, status, code):
    response = client.get("/metrics", environ_base=environ, headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_a_token_lets_a_scraper_in_from_anywhere(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-token")
    outside = {"REMOTE_ADDR": "10.1.2.3"}
    assert scrape(client, environ_base=outside,
                  headers={"Authorization": "Bearer s3cret-token"})
    wrong = client.get("/metrics", environ_base=outside,
                       headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "unauthorized"
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", environ_base=outside).status_code == 401
    # a wrong token is refused even from an allowed address
    assert client.get("/metrics", headers={"Authorization": "Bearer guess"}).status_code == 401


def test_the_allow_list_takes_networks(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_ALLOW", ("10.0.0.0/8",))
    assert scrape(client, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert client.get("/metrics").status_code == 403  # loopback is no longer listed


# --- what web workers count ---------------------------------------------------------------------

def test_requests_are_counted_by_url_rule_never_by_path(client, field):
    missing = "ab" * 32
    before = scrape(client)
    for _ in range(3):
        assert client.head(f"/api/v1/photos/{missing}",
                           headers=field.headers["ani"]).status_code == 404
    client.get("/no/such/page/3173014508850003")
    text = client.get("/metrics").get_data(as_text=True)
    after = parse(text)
    rule = "/api/v1/photos/<sha256:name>"
    assert value(after, "tapak_http_requests_total", method="HEAD", route=rule,
                 status="404") - value(before, "tapak_http_requests_total", method="HEAD",
                                       route=rule, status="404") == 3
    assert value(after, "tapak_http_request_duration_seconds_count", method="HEAD",
                 route=rule) >= 3
    assert value(after, "tapak_http_requests_total", method="GET", route="<unmatched>",
                 status="404") >= 1
    assert missing not in text and "3173014508850003" not in text


def test_visits_pushed_photos_stored_and_the_queue(client, field, db):
    before = scrape(client)
    accepted, images = field.visit("KLG-A1")
    for data in images.values():
        assert field.upload(data).status_code == 201
    assert field.upload(next(iter(images.values()))).status_code == 200  # a repeat: not stored
    waiting, _ = field.visit("KLG-A1")
    results = field.push([accepted, waiting]).get_json()["results"]
    assert [r["status"] for r in results] == ["accepted", "waiting_photos"]
    assert field.push([accepted]).get_json()["results"][0]["status"] == "duplicate"
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tapak_push_visits_total", result="accepted") == 1
    assert delta("tapak_push_visits_total", result="waiting_photos") == 1
    assert delta("tapak_push_visits_total", result="duplicate") == 1
    assert delta("tapak_photos_stored_total") == len(images)
    assert delta("tapak_photo_stored_bytes_total") == sum(len(d) for d in images.values())
    # read from the database
    assert value(after, "tapak_visits", status="queued") == 1
    assert value(after, "tapak_visits", status="waiting_photos") == 1
    assert value(after, "tapak_visits", status="held") == 0
    assert 0 <= value(after, "tapak_queue_oldest_age_seconds", status="queued") < 60
    assert value(after, "tapak_import_status", status="done") == 1
    assert value(after, "tapak_import_families", kind="read") == 3
    assert value(after, "tapak_photo_store_free_bytes") > 0


def test_reconciliation_lag_after_the_worker_decides(client, field, app, db):
    from sync.reconcile.config import from_settings
    from sync.reconcile.worker import drain

    visit, images = field.visit("KLG-A1")
    for data in images.values():
        field.upload(data)
    field.push([visit])
    assert value(scrape(client), "tapak_reconcile_lag_sample") == 0
    assert drain(db, worker="test", config=from_settings(app.config)) == 1
    figures = scrape(client)
    assert value(figures, "tapak_visits", status="queued") == 0
    assert value(figures, "tapak_reconcile_lag_sample") == 1
    p50 = value(figures, "tapak_reconcile_lag_seconds", quantile="0.5")
    assert 0 < p50 < 60
    assert value(figures, "tapak_reconcile_lag_seconds", quantile="1.0") == p50


def test_scheduler_job_runs_and_failures_are_read_from_the_database(client, app):
    """A real APScheduler with the listener the scheduler installs; the scrape reads the rows."""
    done = threading.Event()
    calls = []

    def ok():
        calls.append("ok")

    def broken():
        calls.append("broken")
        raise RuntimeError("a job that fails, with 3173014508850003 in its message")

    scheduler = BackgroundScheduler(timezone="UTC")
    record_job_runs(scheduler, app)
    scheduler.add_listener(lambda event: done.set() if len(calls) >= 3 else None)
    scheduler.start()
    try:
        for job_id, func in (("ok_job", ok), ("ok_job_again", ok), ("broken_job", broken)):
            scheduler.add_job(func, id=job_id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            figures = scrape(client)
            if sum(value(figures, "tapak_job_runs_total", job=j)
                   for j in ("ok_job", "ok_job_again", "broken_job")) == 3:
                break
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert value(figures, "tapak_job_runs_total", job="ok_job") == 1
    assert value(figures, "tapak_job_failures_total", job="ok_job") == 0
    assert value(figures, "tapak_job_runs_total", job="broken_job") == 1
    assert value(figures, "tapak_job_failures_total", job="broken_job") == 1
    assert value(figures, "tapak_job_last_success_timestamp_seconds", job="ok_job") > 0
    assert ("tapak_job_last_success_timestamp_seconds", (("job", "broken_job"),)) not in figures
    from server.extensions import db
    from server.metrics.jobs import JobRun

    db.session.expire_all()
    assert db.session.get(JobRun, "broken_job").last_error == "RuntimeError"


# --- several gunicorn workers -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _worker_pids(master: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True,
                         text=True).stdout
    return {int(p) for p in out.split()}


def test_gunicorn_workers_are_summed_and_survive_a_killed_worker(app, database_url, tmp_path):
    """2 workers, the deploy config, one PROMETHEUS_MULTIPROC_DIR: requests served by both
    are summed in one scrape, and a worker killed with -9 takes none of its counts along."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"left by an earlier run")
    port = _free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "GUNICORN_WORKERS": "2",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "DATABASE_URL": database_url,
           "TAPAK_INSTANCE": str(tmp_path / "instance"), "PHOTO_DIR": str(tmp_path / "photos"),
           "SECRET_KEY": "metrics-test", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen([str(gunicorn), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                               "server:create_app()"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while len(_worker_pids(server.pid)) < 2 or not _up(url):
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        assert not (folder / "counter_999999.db").exists()  # emptied at start

        def hit(n):
            for _ in range(n):
                assert _get(f"{url}/api/v1/health")[0] == 200

        sent = 0
        while len({p.name.split("_")[-1] for p in folder.glob("counter_*.db")}) < 2:
            threads = [threading.Thread(target=hit, args=(10,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent += 40
            assert sent <= 400, "one worker served everything"

        def served() -> float:
            status, body = _get(f"{url}/metrics")
            assert status == 200
            return value(parse(body.decode()), "tapak_http_requests_total", method="GET",
                         route="/api/v1/health", status="200")

        probes = served() - sent  # the start-up probes (_up) are health requests too
        assert probes >= 1
        victim = min(_worker_pids(server.pid))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while victim in _worker_pids(server.pid) or len(_worker_pids(server.pid)) < 2:
            assert time.monotonic() < deadline, "gunicorn did not replace the worker"
            time.sleep(0.1)
        assert served() == sent + probes
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        stderr = server.stderr.read().decode(errors="replace")
        server.stderr.close()
    assert "Traceback" not in stderr, stderr


def _up(url: str) -> bool:
    try:
        return _get(f"{url}/api/v1/health")[0] == 200
    except OSError:
        return False


def test_the_scheduler_records_its_job_runs(client, app):
    """``build_scheduler`` (what ``scheduler run`` starts) has the listener: a job it runs is
    in the scrape."""
    from server.jobs import build_scheduler

    scheduler = build_scheduler(app)
    scheduler.add_job(lambda: None, id="probe")  # no trigger: runs at once
    thread = threading.Thread(target=scheduler.start, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while value(scrape(client), "tapak_job_runs_total", job="probe") < 1:
            assert time.monotonic() < deadline, "the probe job's run was not recorded"
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        thread.join(10)


def test_a_job_a_standby_skips_is_not_counted_as_a_run(client, app):
    """Another scheduler holds the leader lock: this one's job starts, finds it does not lead,
    and does nothing, which the scrape must not count as a run."""
    from server.extensions import db
    from server.jobs import SKIPPED, _led
    from sync.leader import leader_lock

    leader = leader_lock(db.engine, name="metrics-test")
    standby = leader_lock(db.engine, name="metrics-test")
    calls = []
    assert leader.try_acquire()
    try:
        assert not standby.try_acquire()
        skipped = _led(lambda: calls.append("ran"), standby, "standby_job")
        led = _led(lambda: calls.append("ran"), leader, "leader_job")
        done = threading.Event()
        scheduler = BackgroundScheduler(timezone="UTC")
        record_job_runs(scheduler, app)
        scheduler.add_listener(lambda event: done.set() if event.job_id == "leader_job" else None)
        scheduler.start()
        try:
            scheduler.add_job(skipped, id="standby_job")
            time.sleep(0.3)  # the standby's job has run (and returned SKIPPED) by now
            scheduler.add_job(led, id="leader_job")
            assert done.wait(10)
            time.sleep(0.3)  # the listener records after the event
        finally:
            scheduler.shutdown(wait=True)
    finally:
        leader.release()
        standby.release()
    assert calls == ["ran"] and skipped() == SKIPPED
    figures = scrape(client)
    assert value(figures, "tapak_job_runs_total", job="leader_job") == 1
    assert ("tapak_job_runs_total", (("job", "standby_job"),)) not in figures
