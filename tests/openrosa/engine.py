"""ODK's form engine in one long-running Node process (tests/openrosa_engine/engine.mjs).

Needs Node (20.19 or later) and the tests' Node packages (``npm ci`` in tests/); without them the
tests that use it skip, and with ``CI=true`` they fail (``tests.pages.conftest.skip_or_fail``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.pages.conftest import skip_or_fail

TESTS = Path(__file__).resolve().parents[1]
SCRIPT = TESTS / "openrosa_engine" / "engine.mjs"
PACKAGE = TESTS / "node_modules" / "@getodk" / "xforms-engine" / "package.json"


def engine_missing() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "no node on PATH (ODK's form engine runs on Node 20)"
    if not PACKAGE.is_file() or not (TESTS / "node_modules" / "jsdom").is_dir():
        return f"{PACKAGE.parent} or jsdom is missing: run `npm ci` in tests/"
    return None


def require_engine() -> None:
    """Skip without Node and the engine's packages, or fail when CI=true."""
    skip_or_fail("ODK form engine test", engine_missing())


class OdkEngine:
    """Requests to the Node process, one JSON line each way."""

    def __init__(self) -> None:
        env = dict(os.environ, TZ="Asia/Jakarta")
        self.proc = subprocess.Popen(
            ["node", str(SCRIPT)],
            cwd=SCRIPT.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
        )

    def request(self, req: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"the engine process stopped: {err[-2000:]}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"the engine refused {req.get('op')}: {answer.get('error')}")
        return answer

    def load(self, name: str, xform: bytes | str, attachments: dict | None = None) -> None:
        if isinstance(xform, bytes):
            xform = xform.decode("utf-8")
        self.request({"op": "load", "form": name, "xform": xform, "attachments": attachments or {}})

    def run(self, name: str, steps: list, today: str = "2026-01-05", payload: bool = False) -> dict:
        answer = self.request(
            {"op": "run", "form": name, "steps": steps, "today": today, "payload": payload}
        )
        answer["by_ref"] = {n["ref"]: n for n in answer["nodes"]}
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
