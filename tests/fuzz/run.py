"""Fuzz the live API with schemathesis, once per role, against real servers on SQLite.

``make fuzz`` (and ``.ci/run``, once) runs this. It builds one small demo instance (the same
bootstrap ``make run`` does, smaller), then for each role (admin, supervisor, enumerator,
pemantau) copies it, so one role's writes never starve another's, serves the copy with
gunicorn on a free loopback port, logs in as that role's demo user and runs ``schemathesis
run --checks all`` with every phase (examples, coverage, fuzzing, stateful), bounded by
``--max-examples``. No operation is left out. The run fails unless every role ends with 0 failures.

CI uses a fixed seed; ``--seed random`` (or ``make fuzz SEED=random``) explores further.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROLES = {"admin": "admin", "supervisor": "spv-cengkareng", "enumerator": "enum-cengkareng-1",
         "pemantau": "pemantau-bappeda"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(instance: Path, secret: str) -> dict:
    # Logins are limited per address and user; the hooks log in afresh for each call that
    # revokes a token, so the run's servers allow more (login itself is still fuzzed).
    return {**os.environ, "TAPAK_INSTANCE": str(instance), "SECRET_KEY": secret,
            "DATABASE_URL": f"sqlite:///{instance / 'tapak.db'}", "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT), "LOGIN_RATE_LIMIT": "100000 per minute"}


def build_template(instance: Path, secret: str, households: int) -> dict[str, str]:
    """Migrate and bootstrap a demo instance; the demo users' passwords by username."""
    env = _env(instance, secret)
    flask = [str(BIN / "flask"), "--app", "server"]
    subprocess.run([*flask, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*flask, "bootstrap", "--households", str(households),
                    "--visits-per-kecamatan", "4"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    with open(instance / "demo-logins.txt", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r and not r[0].startswith("#")]
    return {username: password for username, _role, password in rows}


def _wait_ready(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not start")


def login(url: str, username: str, password: str, device_id: str) -> str:
    body = json.dumps({"username": username, "password": password,
                       "device_id": device_id}).encode()
    request = urllib.request.Request(f"{url}/api/v1/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


def fuzz_role(role: str, template: Path, work: Path, secret: str, logins: dict[str, str],
              args) -> int:
    """Serve a copy of the template and fuzz it as ``role``; schemathesis' exit code."""
    instance = work / role
    shutil.copytree(template, instance)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}",
         "--limit-request-line", "8190", "--timeout", "60", "server:create_app()"],
        env=_env(instance, secret), cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=open(work / f"{role}-server.log", "w"), start_new_session=True)
    try:
        _wait_ready(url)
        username = ROLES[role]
        device = f"fuzz-{role}-{random.getrandbits(48):x}"
        token = login(url, username, logins[username], device)
        enumerators = [u for u in logins if u.startswith("enum-")]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
               "TAPAK_FUZZ_SECRET": secret, "TAPAK_FUZZ_ENUMERATORS": ",".join(enumerators),
               "TAPAK_FUZZ_URL": url, "TAPAK_FUZZ_USER": username, "TAPAK_FUZZ_DEVICE": device,
               "TAPAK_FUZZ_PASSWORD": logins[username], "TAPAK_FUZZ_TOKEN": token}
        command = [str(BIN / "schemathesis"), "run", f"{url}/api/openapi.json",
                   "--checks", "all", "--max-examples", str(args.max_examples),
                   "--workers", "1", "--generation-allow-x00", "false",
                   "--request-timeout", "30", "--no-color",
                   "--report", "junit", "--report-junit-path", str(work / f"{role}.xml")]
        if args.seed != "random":
            command += ["--seed", str(args.seed)]
        print(f"== schemathesis as {role} ({username})", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, env=env, cwd=ROOT)
        print(f"== {role}: exit {result.returncode} in {time.monotonic() - started:.0f} s",
              flush=True)
        return result.returncode
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="20261205", help="a number, or 'random'")
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--households", type=int, default=600)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--keep", help="a folder to keep the instances and logs in")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="tapak-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32).hex()
    started = time.monotonic()
    template = work / "template"
    logins = build_template(template, secret, args.households)
    failed = []
    for role in args.roles.split(","):
        if fuzz_role(role, template, work, secret, logins, args) != 0:
            failed.append(role)
    print(f"== fuzzing done in {time.monotonic() - started:.0f} s; "
          f"{'failed: ' + ', '.join(failed) if failed else 'every role passed'}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
