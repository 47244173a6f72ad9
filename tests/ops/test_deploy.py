"""The deployment guide's files and commands, checked where they can be (docs/deploy.md).

systemd units parse (``systemd-analyze verify``, when present), the proxies' body limits are
MAX_REQUEST_BYTES, the gunicorn config loads and does what it says, every ``flask --app server``
command the guide and the units name exists with the options given, Redis gives every worker
one login count, and what the guide says a SECRET_KEY rotation breaks is what breaks.
"""

from __future__ import annotations

import re
import runpy
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from flask.cli import FlaskGroup, ScriptInfo

import config
import server.metrics  # noqa: F401  (prometheus_client's mode is fixed at import: before a test sets PROMETHEUS_MULTIPROC_DIR)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
GUIDE = ROOT / "docs" / "deploy.md"
VENV_BIN = Path(sys.executable).parent


def default_max_request_bytes(monkeypatch, tmp_path) -> int:
    monkeypatch.delenv("MAX_REQUEST_BYTES", raising=False)
    monkeypatch.setenv("SECRET_KEY", "x")
    return config.from_environment(str(tmp_path))["MAX_CONTENT_LENGTH"]


# --- systemd ------------------------------------------------------------------------------------

def test_there_are_units_for_the_web_the_workers_and_the_scheduler():
    assert {u.name for u in UNITS} == {"tapak-web.service", "tapak-scheduler.service",
                                       "tapak-reconcile@.service"}


def _rewritten(unit: Path, tmp_path: Path) -> str:
    """The unit with the server's paths pointed at this checkout, so that verify can check the
    binaries exist (it refuses an ExecStart that does not) and only syntax is left to judge."""
    env = tmp_path / "tapak.env"
    env.write_text((DEPLOY / "tapak.env.example").read_text())
    text = unit.read_text()
    text = text.replace("/srv/tapak/app/.venv/bin", str(VENV_BIN))
    text = text.replace("/srv/tapak/app", str(ROOT)).replace("/etc/tapak/tapak.env", str(env))
    for folder in ("photos", "instance", "backups"):
        (tmp_path / folder).mkdir(exist_ok=True)
        text = text.replace(f"/srv/tapak/{folder}", str(tmp_path / folder))
    assert "/srv/tapak" not in text
    return text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_units_parse_with_systemd_analyze_verify(unit, tmp_path):
    # a template is verified as one of its instances
    name = unit.name.replace("@.service", "@1.service")
    (tmp_path / name).write_text(_rewritten(unit, tmp_path))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # systemd ignores what it cannot parse, with a warning and exit status 0
    assert not re.search(r"Unknown (key|section)|Failed to parse|ignoring", output), output


def test_verify_would_catch_a_bad_unit(tmp_path):
    """The check above is not blind: a misspelt key is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    bad = tmp_path / "bad.service"
    bad.write_text(f"[Service]\nExecStart={sys.executable} -V\nRestrat=always\n")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert "Unknown key" in result.stdout + result.stderr


def test_only_the_web_unit_gets_the_metrics_folder():
    """Other processes writing into it would be summed with the web workers' counts."""
    for unit in UNITS:
        has = "PROMETHEUS_MULTIPROC_DIR" in unit.read_text()
        assert has == (unit.name == "tapak-web.service"), unit.name
    assert "PROMETHEUS_MULTIPROC_DIR" not in (DEPLOY / "tapak.env.example").read_text()


# --- the reverse proxies ------------------------------------------------------------------------

NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
CADDY_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2,
               "gib": 1024**3}


def test_nginx_body_limit_is_max_request_bytes(monkeypatch, tmp_path):
    text = (DEPLOY / "nginx" / "tapak.conf").read_text()
    [(number, unit)] = re.findall(r"^\s*client_max_body_size\s+(\d+)([kmgKMG]?);", text, re.M)
    assert int(number) * NGINX_UNITS[unit.lower()] == default_max_request_bytes(monkeypatch,
                                                                                tmp_path)
    assert re.search(r"^\s*proxy_request_buffering\s+on;", text, re.M)
    assert re.search(r"location = /metrics \{\s*return 404;", text)


def test_caddy_body_limit_is_max_request_bytes(monkeypatch, tmp_path):
    text = (DEPLOY / "caddy" / "Caddyfile").read_text()
    limit = default_max_request_bytes(monkeypatch, tmp_path)
    sizes = re.findall(r"^\s*(max_size|request_buffers)\s+(\d+)([A-Za-z]+)\s*$", text, re.M)
    assert {name for name, _, _ in sizes} == {"max_size", "request_buffers"}
    for _name, number, unit in sizes:
        assert int(number) * CADDY_UNITS[unit.lower()] == limit
    assert re.search(r"^\s*respond /metrics 404", text, re.M)


def test_proxies_wait_longer_than_gunicorn():
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    nginx = (DEPLOY / "nginx" / "tapak.conf").read_text()
    caddy = (DEPLOY / "caddy" / "Caddyfile").read_text()
    [read] = re.findall(r"proxy_read_timeout\s+(\d+)s;", nginx)
    [caddy_read] = re.findall(r"read_timeout\s+(\d+)s", caddy)
    assert int(read) > settings["timeout"] and int(caddy_read) > settings["timeout"]


# --- gunicorn -----------------------------------------------------------------------------------

def test_gunicorn_config_loads_and_keeps_the_metrics_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert settings["bind"] == "127.0.0.1:5000" and settings["workers"] == 4
    folder = tmp_path / "metrics"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    settings["on_starting"](None)
    stale = folder / "counter_4242.db"
    stale.write_bytes(b"")
    settings["on_starting"](None)
    assert folder.is_dir() and not stale.exists()

    class Worker:
        pid = 4242

    (folder / "gauge_livesum_4242.db").write_bytes(b"")
    settings["child_exit"](None, Worker())  # prometheus_client's mark_process_dead
    assert not (folder / "gauge_livesum_4242.db").exists()


def test_the_env_example_lists_the_settings_the_guide_needs():
    text = (DEPLOY / "tapak.env.example").read_text()
    names = set(re.findall(r"^([A-Z_]+)=", text, re.M))
    assert {"DATABASE_URL", "SECRET_KEY", "PHOTO_DIR", "TAPAK_INSTANCE", "RATELIMIT_STORAGE_URI",
            "SESSION_COOKIE_SECURE", "METRICS_TOKEN"} <= names
    assert not re.search(r"^[A-Z_]+=.*[ \t]#", text, re.M)  # systemd keeps end-of-line comments


# --- the commands the guide names ---------------------------------------------------------------

COMMAND = re.compile(r"flask --app server ((?:[a-z][\w-]*|--[\w-]+)(?: (?:[a-z][\w-]*|--[\w-]+))*)")


def named_commands() -> dict[str, list[str]]:
    """Every ``flask --app server ...`` in the guide and the units, as words up to an argument."""
    found = {}
    for path in (GUIDE, *UNITS):
        for match in COMMAND.finditer(path.read_text()):
            found.setdefault(match.group(1), match.group(1).split())
    return found


def _resolve(cli, info, words):
    ctx = click.Context(cli, obj=info)
    command, path = cli, []
    for word in words:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        sub = command.get_command(ctx, word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return command, path


def test_every_command_the_guide_names_exists(app):
    commands = named_commands()
    assert {"db upgrade", "scheduler run", "reconcile run", "backup run"} <= set(commands)
    cli = FlaskGroup(create_app=lambda: app)  # `flask --app server`, plugins (db) included
    info = ScriptInfo(create_app=lambda: app)
    runner = app.test_cli_runner()
    for line, words in commands.items():
        command, path = _resolve(cli, info, words)
        assert path and not isinstance(command, click.Group) or words == path, line
        result = runner.invoke(cli=cli, args=[*path, "--help"], obj=info)
        assert result.exit_code == 0, (line, result.output)
        options = {opt for param in command.params for opt in param.opts}
        for word in words[len(path):]:
            if word.startswith("--"):
                assert word in options, f"{line}: {word} is not an option of {path}"


# --- Redis for the rate limits ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server here")
def test_with_redis_every_worker_counts_the_same_logins(app, database_url, tmp_path,
                                                        make_user):
    """Two gunicorn workers and RATELIMIT_STORAGE_URI=redis://: the limit holds across them."""
    import urllib.error
    import urllib.request

    make_user("ani")
    redis_port, port = _free_port(), _free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "",
                              "--appendonly", "no", "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "SECRET_KEY": "redis-test",
           "TAPAK_INSTANCE": str(tmp_path / "instance"), "PHOTO_DIR": str(tmp_path / "photos"),
           "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), "GUNICORN_WORKERS": "2",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "LOGIN_RATE_LIMIT": "3 per minute",
           "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{redis_port}",
           "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"}
    server = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c",
                               str(DEPLOY / "gunicorn.conf.py"), "server:create_app()"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v1/auth/token"

    def attempt() -> int:
        body = b'{"username": "ani", "password": "wrong-password", "device_id": "d"}'
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        statuses = [attempt() for _ in range(8)]
    finally:
        server.terminate()
        redis.terminate()
        server.wait(timeout=15)
        redis.wait(timeout=15)
    # each new connection goes to whichever worker accepts it: with per-process memory://
    # counts more than 3 would get through
    assert statuses[:3] == [401, 401, 401] and set(statuses[3:]) == {429}, statuses


# --- what rotating SECRET_KEY breaks ------------------------------------------------------------

def test_rotating_secret_key_what_breaks_and_what_the_fallback_keeps(app, client, make_user,
                                                                     login):
    """As docs/deploy.md says: without SECRET_KEY_FALLBACKS a review-page session, a pull
    cursor (400) and a signed media URL (403) signed with the old key are refused; with the old
    key as a fallback all three still verify, and new cursors are signed with the new key.
    Bearer tokens are stored hashed, not signed: they go on working."""
    from flask import g

    from server.pagination import encode_cursor
    from server.services.media import signed_url

    make_user("spv", role="supervisor")
    ani = make_user("ani")
    supervisors = [client, app.test_client()]  # two browsers, logged in with the old key
    for browser in supervisors:
        g.pop("csrf_token", None)  # Flask-WTF caches it in g, which the test's app context keeps
        page = browser.get("/review/masuk").get_data(as_text=True)
        [csrf] = re.findall(r'name="csrf_token" value="([^"]+)"', page)
        assert browser.post("/review/masuk", data={
            "username": "spv", "password": "password123", "csrf_token": csrf}).status_code == 303
        assert browser.get("/review/antrean").status_code == 200
    token = login("ani")
    with app.test_request_context():
        old_cursor = encode_cursor("pull", {"u": ani.id, "s": 0, "e": 1})
        old_media = signed_url("ab" * 32)
    old_key = app.config["SECRET_KEY"]
    try:
        app.config.update(SECRET_KEY="a-new-key", SECRET_KEY_FALLBACKS=[])
        assert supervisors[0].get("/review/antrean").status_code in (302, 303)  # to log in
        pulled = client.get(f"/api/v1/sync/pull?cursor={old_cursor}", headers=token)
        assert pulled.status_code == 400  # a phone's stored cursor, with no fallback
        assert pulled.get_json()["error"]["code"] == "invalid_cursor"
        assert client.get(old_media).status_code == 403
        app.config.update(SECRET_KEY_FALLBACKS=[old_key])
        assert supervisors[1].get("/review/antrean").status_code == 200  # kept by the fallback
        pulled = client.get(f"/api/v1/sync/pull?cursor={old_cursor}", headers=token)
        assert pulled.status_code == 200  # the phone syncs on by itself
        fresh = pulled.get_json()["next_cursor"]
        app.config.update(SECRET_KEY_FALLBACKS=[])  # the rotation's end: the new key alone
        assert client.get(f"/api/v1/sync/pull?cursor={fresh}", headers=token).status_code == 200
        assert client.get("/api/v1/sync/pull", headers=token).status_code == 200  # token: kept
        app.config.update(SECRET_KEY_FALLBACKS=[old_key])
        assert client.get(old_media).status_code != 403  # verifies (404: no such photo here)
    finally:
        app.config.update(SECRET_KEY=old_key, SECRET_KEY_FALLBACKS=[])


def test_logins_still_work_while_redis_is_down(tmp_path):
    """The limiter falls back to per-process counts instead of failing every login with 500."""
    from flask_migrate import upgrade

    from server import create_app
    from server.extensions import db

    settings = config.for_testing(str(tmp_path), f"sqlite:///{tmp_path / 'tapak.db'}",
                                  str(tmp_path / "photos"))
    settings["RATELIMIT_STORAGE_URI"] = f"redis://127.0.0.1:{_free_port()}/0"  # nobody there
    settings["LOGIN_RATE_LIMIT"] = "2 per minute"
    app = create_app(settings)
    with app.app_context():
        upgrade()
        client = app.test_client()
        statuses = [client.post("/api/v1/auth/token", json={
            "username": "nobody", "password": "wrong", "device_id": "d"}).status_code
            for _ in range(3)]
        db.engine.dispose()
    assert statuses == [401, 401, 429]


def test_the_last_migration_goes_down_and_up_and_ready_follows(tmp_path):
    """The guide's rollback: `db downgrade <previous head>` with the new code, then `db
    upgrade` again; /api/v1/ready says `migrations` failed while the schema is behind."""
    from alembic.script import ScriptDirectory
    from flask_migrate import downgrade, upgrade

    from server import create_app
    from server.extensions import db

    app = create_app(config.for_testing(str(tmp_path), f"sqlite:///{tmp_path / 'tapak.db'}",
                                        str(tmp_path / "photos")))
    with app.app_context():
        [head] = ScriptDirectory(app.extensions["migrate"].directory).get_heads()
        previous = ScriptDirectory(app.extensions["migrate"].directory).get_revision(head)
        client = app.test_client()
        upgrade()
        assert client.get("/api/v1/ready").status_code == 200
        downgrade(revision=previous.down_revision)
        behind = client.get("/api/v1/ready")
        assert behind.status_code == 503
        assert behind.get_json()["error"]["details"]["failed"] == ["migrations"]
        upgrade()
        assert client.get("/api/v1/ready").status_code == 200
        db.engine.dispose()
