"""The reference sync client: the phone's side of Tapak's sync protocol, in plain Python.

Tests and the load benchmark drive it, and phone teams read it to learn the protocol, so it is
written to be read top to bottom. It needs only ``requests`` and ``sqlite-utils`` (no Flask, no
SQLAlchemy, nothing of the server). ``docs/sync-client.md`` walks through the same steps.

The shape of it::

    client = SyncClient("http://127.0.0.1:5000", "ani", "secret", "ani-phone", "outbox.db")
    client.pull()                          # assignments, households and forms -> local store
    client.add_visit(visit, {"foto_depan": "IMG_0012.jpg"})    # offline: into the outbox
    report = client.sync()                 # photos, then visits in batches, then what is missing

Everything the client knows lives in one SQLite file, the *outbox*, and every step commits its
state there before the next step starts. The client can therefore be killed at any point (the
battery runs out, Android kills the app) and simply run again: a visit whose answer was lost is
sent again, and the server, which is idempotent on the visit's uuid and content hash, answers
``duplicate``. Nothing acknowledged is lost, nothing is stored twice.

Network rules, in one place (``SyncClient._request``):

- network errors (refused, reset, timeouts, a response cut off), 5xx and 429 are retried with
  exponential backoff and full jitter, a bounded number of times, never longer than
  ``max_delay`` a wait; a ``Retry-After`` is honoured exactly (and when it asks for more than
  ``max_delay`` the client stops and raises ``ServerBusy`` so the app can come back later);
- 401 means the token expired or was revoked: log in once more and repeat the request;
- any other 4xx is an answer, never retried: the caller decides (a refused photo, a bad batch).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import email.utils
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests
from sqlite_utils import Database

__all__ = [
    "AuthError",
    "HTTPError",
    "OfflineError",
    "Outbox",
    "PullReport",
    "RetryPolicy",
    "ServerBusy",
    "SyncClient",
    "SyncError",
    "SyncReport",
    "content_hash",
    "main",
]

API = "/api/v1"

# A visit's life in the outbox. "pending": made offline, never sent. "sent": in a batch whose
# answer has not been recorded (maybe stored, maybe not: it is simply sent again). The other
# states are the server's answer: "accepted" and "duplicate" are done; "waiting_photos" is
# stored and becomes "accepted" here once its missing photos are uploaded; "rejected" is kept
# with its errors for the enumerator to fix; "uuid_reused" needs a new uuid.
VISIT_STATES = ("pending", "sent", "accepted", "waiting_photos", "duplicate", "rejected",
                "uuid_reused")
TO_SEND = ("pending", "sent")
DONE = ("accepted", "duplicate")
# States in which add_visit may replace a visit: the server has not stored it.
REPLACEABLE = ("pending", "rejected")

# Photo states: "pending" (not known to be on the server), "uploaded" (HEAD said 200 or PUT
# said 200/201), "failed" (the server refused the bytes, 413/415/422, or the file is gone:
# permanent, the visits that use it are held back until the enumerator retakes it).
PHOTO_STATES = ("pending", "uploaded", "failed")

DEFAULT_MAX_PHOTO_BYTES = 20 * 1024 * 1024  # the server's default MAX_PHOTO_BYTES
# Acknowledged visits (and their photos) are kept this long: a server restored from a backup
# of up to this age starts a new feed epoch, and the client sends them again (duplicates are
# harmless). Older ones are pruned after a sync.
DEFAULT_KEEP_DAYS = 7
# States the server acknowledged: it stored the visit (maybe still waiting for photos).
ACKNOWLEDGED = ("accepted", "duplicate", "waiting_photos")


# --------------------------------------------------------------------------- errors


class SyncError(Exception):
    """Something stopped a sync; the outbox is consistent and the sync can simply be rerun."""


class OfflineError(SyncError):
    """The server could not be reached (or kept failing) after every allowed attempt."""


class ServerBusy(SyncError):
    """The server asked us (Retry-After) to wait longer than we wait within one sync."""

    def __init__(self, retry_after: float):
        super().__init__(f"The server asks to retry after {retry_after:.0f} s.")
        self.retry_after = retry_after


class HTTPError(SyncError):
    """An answer the client cannot go on with; carries the contract's error envelope."""

    def __init__(self, status: int, code: str | None, message: str, details: Any = None):
        super().__init__(f"HTTP {status} {code or ''}: {message}".strip())
        self.status, self.code, self.message, self.details = status, code, message, details

    @classmethod
    def from_response(cls, response: requests.Response) -> HTTPError:
        code, message, details = _envelope(response)
        return cls(response.status_code, code, message, details)


class AuthError(HTTPError):
    """The login itself was refused (wrong password, inactive user)."""


def _envelope(response: requests.Response) -> tuple[str | None, str, Any]:
    """(code, message, details) of the contract's error envelope, whatever came back."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return (error.get("code"), error.get("message") or response.reason or "",
            error.get("details"))


# --------------------------------------------------------------------------- helpers


def canonical_json(value: Any) -> str:
    """The server's canonical form of a visit: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(visit: dict) -> str:
    """What the server compares a resend with (sync/ingest.py does the same): the same visit
    in any key order or spacing has the same hash."""
    return hashlib.sha256(canonical_json(visit).encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def sniff_mime(head: bytes) -> str:
    """The Content-Type of a photo from its first bytes (the server checks the bytes anyway).

    Unknown bytes are sent as JPEG so that the server's answer (422 ``unsupported_type``)
    names the problem, rather than a 415 about the header.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"heim", b"heis", b"hevc",
                                                b"hevx", b"mif1", b"msf1"):
        return "image/heic"
    return "image/jpeg"


def _retry_after(response: requests.Response) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclasses.dataclass
class RetryPolicy:
    """How hard the client tries before it gives up for this sync.

    Attempt ``n`` (0-based) that failed is followed by a wait drawn uniformly from
    ``[0, min(max_delay, base_delay * 2**n)]`` ("full jitter": a thousand phones coming back
    online after an outage do not all knock at once). ``max_attempts`` counts every try of one
    request, the first included; ``timeout`` is (connect, read) in seconds for each try.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: tuple[float, float] = (5.0, 60.0)

    def delay(self, failed_attempt: int, rng: Callable[[], float]) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** failed_attempt))
        return rng() * cap


@dataclasses.dataclass
class SyncReport:
    """What one ``sync()`` did: counts, and the visits and photos that need a person."""

    batches: int = 0
    results: Counter = dataclasses.field(default_factory=Counter)  # status -> visits
    photos_uploaded: int = 0  # PUT stored it (201) or the server already had it (HEAD/200)
    photos_failed: list[dict] = dataclasses.field(default_factory=list)  # sha256, code, message
    rejected: list[dict] = dataclasses.field(default_factory=list)  # uuid, errors
    uuid_reused: list[str] = dataclasses.field(default_factory=list)
    waiting_photos: list[dict] = dataclasses.field(default_factory=list)  # uuid, missing
    blocked: list[dict] = dataclasses.field(default_factory=list)  # uuid, failed photos
    uploaded: set[str] = dataclasses.field(default_factory=set, repr=False)  # hashes, this sync
    pruned: int = 0  # acknowledged visits older than keep_days forgotten after this sync

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["results"] = dict(self.results)
        del out["uploaded"]
        return out


@dataclasses.dataclass
class PullReport:
    pages: int = 0
    changes: int = 0
    restarted: bool = False  # the cursor was refused with 410 and the feed pulled again
    forms_fetched: int = 0
    resend: int = 0  # acknowledged visits queued again after the 410 (a restored server)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- the outbox


class Outbox:
    """The local SQLite file: visits and photos waiting to go, and the pulled local store.

    Tables (see docs/sync-client.md for every column):

    - ``visits``: one row a visit, its JSON exactly as it will be sent, its state and the last
      answer about it (``errors``, ``missing_photos``), how often it was sent.
    - ``photos``: one row a photo, by SHA-256: where its bytes are and whether the server has
      them. ``visit_photos`` links visits to the hashes they reference.
    - ``assignments``, ``households``, ``forms``: the local store the pull fills, by id.
    - ``meta``: key/value: the pull cursor, the token, whose outbox this is.

    Each method is one transaction: committed when it returns, rolled back if it raises.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.photo_dir = self.path.with_name(self.path.name + ".photos")
        # One connection per client; the client is used by one thread at a time.
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10)
        self.db = Database(conn, execute_plugins=False)
        self.db.enable_wal()
        # A commit is on disk when it returns: a phone loses power, not just the process.
        self.db.execute("PRAGMA synchronous = FULL")
        self._create()

    def close(self) -> None:
        self.db.close()

    def _create(self) -> None:
        with self.db.atomic():
            self.db["visits"].create({
                "uuid": str, "household_id": str, "form_id": str, "json": str,
                "content_hash": str, "state": str, "errors": str, "missing_photos": str,
                "attempts": int, "last_batch_id": str, "created_at": str, "updated_at": str,
                "acknowledged_at": str,
            }, pk="uuid", not_null={"json", "state"}, if_not_exists=True)
            if "acknowledged_at" not in self.db["visits"].columns_dict:
                # An outbox from before resends: its done visits count from their last answer.
                self.db.execute("ALTER TABLE visits ADD COLUMN acknowledged_at TEXT")
                self.db.execute("UPDATE visits SET acknowledged_at = updated_at WHERE state IN "
                                "('accepted', 'duplicate', 'waiting_photos')")
            self.db["photos"].create({
                "sha256": str, "path": str, "size": int, "mime": str, "state": str,
                "error_code": str, "error": str, "updated_at": str,
            }, pk="sha256", if_not_exists=True)
            self.db["visit_photos"].create({"uuid": str, "field": str, "sha256": str},
                                           pk=("uuid", "field"), if_not_exists=True)
            self.db["assignments"].create({
                "id": str, "round_id": int, "household_id": str, "status": str, "data": str,
                "seq": int}, pk="id", if_not_exists=True)
            self.db["households"].create({
                "household_id": str, "base_version": int, "kode_kelurahan": str,
                "record": str, "seq": int}, pk="household_id", if_not_exists=True)
            self.db["forms"].create({
                "id": str, "form_id": str, "version": int, "title": str, "hash": str,
                "definition": str, "seq": int}, pk="id", if_not_exists=True)
            self.db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            self.db["visits"].create_index(["state"], if_not_exists=True)
            self.db["visit_photos"].create_index(["sha256"], if_not_exists=True)

    # --- meta

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set(self, key: str, value: str | None) -> None:
        with self.db.atomic():
            self._set(key, value)

    def _set(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key = ?", [key])
        else:
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            [key, value])

    # --- visits and photos

    def put_visit(self, visit: dict, photos: list[tuple[str, str, str, int, str]]) -> None:
        """Store a visit (new, or replacing one the server has not stored) with its photos.

        ``photos`` is ``[(field, sha256, path, size, mime)]``.
        """
        text = json.dumps(visit, ensure_ascii=False, separators=(",", ":"))
        now = _now()
        with self.db.atomic():
            row = self.db.execute("SELECT state FROM visits WHERE uuid = ?",
                                  [visit["uuid"]]).fetchone()
            if row is not None and row[0] not in REPLACEABLE:
                raise ValueError(
                    f"visit {visit['uuid']} is {row[0]}: the server may have it, so it can no "
                    "longer be replaced (a changed visit needs a new uuid once it is stored)")
            for _field, sha, path, size, mime in photos:
                # A photo already known keeps its state (it may be uploaded already).
                self.db.execute(
                    "INSERT INTO photos (sha256, path, size, mime, state, updated_at) "
                    "VALUES (?, ?, ?, ?, 'pending', ?) ON CONFLICT (sha256) DO UPDATE SET "
                    "path = excluded.path, state = CASE WHEN photos.state = 'failed' "
                    "THEN 'pending' ELSE photos.state END", [sha, path, size, mime, now])
            self.db.execute("DELETE FROM visit_photos WHERE uuid = ?", [visit["uuid"]])
            for entry in visit.get("photos") or []:
                if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
                    self.db.execute("INSERT OR REPLACE INTO visit_photos (uuid, field, sha256) "
                                    "VALUES (?, ?, ?)", [visit["uuid"], str(entry.get("field")),
                                                         entry["sha256"].lower()])
            self.db.execute(
                "INSERT INTO visits (uuid, household_id, form_id, json, content_hash, state, "
                "errors, missing_photos, attempts, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'pending', '[]', '[]', 0, ?, ?) "
                "ON CONFLICT (uuid) DO UPDATE SET household_id = excluded.household_id, "
                "form_id = excluded.form_id, json = excluded.json, "
                "content_hash = excluded.content_hash, state = 'pending', errors = '[]', "
                "missing_photos = '[]', updated_at = excluded.updated_at",
                [visit["uuid"], visit.get("household_id"), visit.get("form_id"), text,
                 content_hash(visit), now, now])

    def visit(self, uuid: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM visits WHERE uuid = ?", [uuid]))
        return _decode_visit(rows[0]) if rows else None

    def visits(self, states: Iterable[str] | None = None) -> list[dict]:
        if states is None:
            rows = self.db.query("SELECT * FROM visits ORDER BY rowid")
        else:
            states = list(states)
            marks = ",".join("?" * len(states))
            rows = self.db.query(f"SELECT * FROM visits WHERE state IN ({marks}) ORDER BY rowid",
                                 states)
        return [_decode_visit(r) for r in rows]

    def blocked(self) -> dict[str, list[str]]:
        """Visits not yet stored that use a photo the server refused: uuid -> hashes."""
        out: dict[str, list[str]] = {}
        for uuid, sha in self.db.execute(
                "SELECT v.uuid, p.sha256 FROM visits v JOIN visit_photos vp ON vp.uuid = v.uuid "
                "JOIN photos p ON p.sha256 = vp.sha256 WHERE p.state = 'failed' "
                "AND v.state IN ('pending', 'sent') ORDER BY v.rowid"):
            out.setdefault(uuid, []).append(sha)
        return out

    def to_send(self, limit: int, skip: set[str]) -> list[dict]:
        """The next visits to push: never sent, or sent without a recorded answer."""
        blocked = self.blocked()
        out = []
        for row in self.db.query("SELECT uuid, json FROM visits WHERE state IN ('pending', "
                                 "'sent') ORDER BY rowid"):
            if row["uuid"] in skip or row["uuid"] in blocked:
                continue
            out.append(row)
            if len(out) == limit:
                break
        return out

    def mark_sent(self, uuids: list[str], batch_id: str) -> None:
        now = _now()
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE visits SET state = 'sent', attempts = attempts + 1, last_batch_id = ?, "
                "updated_at = ? WHERE uuid = ?", [(batch_id, now, u) for u in uuids])

    def record_results(self, results: list[dict]) -> None:
        """The server's answer for a batch, all at once (one transaction)."""
        now = _now()
        with self.db.atomic():
            for r in results:
                status = r.get("status")
                if status not in VISIT_STATES or status in TO_SEND:
                    continue
                # The kept-for-resending period counts from the last acknowledgement.
                self.db.execute(
                    "UPDATE visits SET state = ?, errors = ?, missing_photos = ?, "
                    "updated_at = ?, acknowledged_at = CASE WHEN ? THEN ? "
                    "ELSE acknowledged_at END WHERE uuid = ?",
                    [status, json.dumps(r.get("errors") or [], ensure_ascii=False),
                     json.dumps(r.get("missing_photos") or []), now, status in ACKNOWLEDGED,
                     now, r.get("uuid")])

    def photos_to_upload(self) -> list[dict]:
        """Photos not known to be on the server that an unfinished visit needs."""
        return list(self.db.query(
            "SELECT DISTINCT p.* FROM photos p JOIN visit_photos vp ON vp.sha256 = p.sha256 "
            "JOIN visits v ON v.uuid = vp.uuid WHERE p.state = 'pending' "
            "AND v.state IN ('pending', 'sent', 'waiting_photos') ORDER BY p.rowid"))

    def photo(self, sha256: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM photos WHERE sha256 = ?", [sha256]))
        return rows[0] if rows else None

    def mark_photo(self, sha256: str, state: str, code: str | None = None,
                   message: str | None = None) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE photos SET state = ?, error_code = ?, error = ?, "
                            "updated_at = ? WHERE sha256 = ?",
                            [state, code, message, _now(), sha256])

    def complete_waiting(self) -> list[str]:
        """Visits waiting for photos that are all uploaded now: mark them accepted."""
        done = []
        with self.db.atomic():
            for row in self.visits(["waiting_photos"]):
                states = {sha: (self.photo(sha) or {}).get("state")
                          for sha in row["missing_photos"]}
                if all(s == "uploaded" for s in states.values()):
                    self.db.execute("UPDATE visits SET state = 'accepted', missing_photos = "
                                    "'[]', updated_at = ? WHERE uuid = ?", [_now(), row["uuid"]])
                    done.append(row["uuid"])
        return done

    # --- the local store (pull)

    def apply_page(self, changes: list[dict], next_cursor: str) -> None:
        """Store a page of the change feed and then its cursor, in one transaction: a crash
        leaves either the whole page with its cursor or neither."""
        with self.db.atomic():
            for change in changes:
                self._apply(change)
            self._set("cursor", next_cursor)

    def _apply(self, change: dict) -> None:
        typ, op, entity, seq = change["type"], change["op"], change["id"], change.get("seq")
        data = change.get("data") or {}
        table, key = {"assignment": ("assignments", "id"), "household": ("households",
                      "household_id"), "form": ("forms", "id")}.get(typ, (None, None))
        if table is None:
            return  # a type this client does not know yet: the contract may add some
        if op == "delete":
            self.db.execute(f"DELETE FROM {table} WHERE {key} = ?", [entity])
            return
        if typ == "assignment":
            row = {"id": entity, "round_id": data.get("round_id"),
                   "household_id": data.get("household_id"), "status": data.get("status"),
                   "data": json.dumps(data, ensure_ascii=False), "seq": seq}
        elif typ == "household":
            row = {"household_id": entity, "base_version": data.get("base_version"),
                   "kode_kelurahan": data.get("kode_kelurahan"),
                   "record": json.dumps(data.get("record"), ensure_ascii=False), "seq": seq}
        else:
            old = self.db.execute("SELECT hash, definition FROM forms WHERE id = ?",
                                  [entity]).fetchone()
            keep = old[1] if old and old[0] == data.get("hash") else None
            row = {"id": entity, "form_id": data.get("form_id"), "version": data.get("version"),
                   "title": data.get("title"), "hash": data.get("hash"), "definition": keep,
                   "seq": seq}
        self.db[table].upsert(row, pk=key)

    def reset_feed(self) -> None:
        """Forget the cursor and everything pulled (after a 410): the next pull starts over."""
        with self.db.atomic():
            for table in ("assignments", "households", "forms"):
                self.db.execute(f"DELETE FROM {table}")
            self._set("cursor", None)

    def requeue_acknowledged(self, since: str) -> int:
        """Mark the visits acknowledged at or after ``since`` (ISO UTC) to be sent again, and
        their photos to be asked about again: a server restored from a backup may lack them.

        They become ``sent`` (the server may have them, so they can no longer be replaced);
        the next push answers ``duplicate`` for what the server kept and stores the rest.
        """
        marks = ",".join("?" * len(ACKNOWLEDGED))
        with self.db.atomic():
            uuids = [r[0] for r in self.db.execute(
                f"SELECT uuid FROM visits WHERE state IN ({marks}) AND acknowledged_at >= ?",
                [*ACKNOWLEDGED, since])]
            self.db.conn.executemany(
                "UPDATE visits SET state = 'sent', missing_photos = '[]', updated_at = ? "
                "WHERE uuid = ?", [(_now(), u) for u in uuids])
            self.db.execute(
                "UPDATE photos SET state = 'pending', updated_at = ? WHERE state = 'uploaded' "
                "AND sha256 IN (SELECT vp.sha256 FROM visit_photos vp JOIN visits v "
                "ON v.uuid = vp.uuid WHERE v.state = 'sent')", [_now()])
        return len(uuids)

    def prune(self, before: str) -> int:
        """Forget the done visits acknowledged before ``before`` (ISO UTC), and the photos no
        visit left uses; a photo's file goes only if the outbox made it (given as bytes)."""
        marks = ",".join("?" * len(DONE))
        with self.db.atomic():
            uuids = [r[0] for r in self.db.execute(
                f"SELECT uuid FROM visits WHERE state IN ({marks}) AND acknowledged_at < ?",
                [*DONE, before])]
            if not uuids:
                return 0
            self.db.conn.executemany("DELETE FROM visit_photos WHERE uuid = ?",
                                     [(u,) for u in uuids])
            self.db.conn.executemany("DELETE FROM visits WHERE uuid = ?", [(u,) for u in uuids])
            unused = list(self.db.execute(
                "SELECT sha256, path FROM photos WHERE sha256 NOT IN "
                "(SELECT sha256 FROM visit_photos)"))
            self.db.conn.executemany("DELETE FROM photos WHERE sha256 = ?",
                                     [(sha,) for sha, _path in unused])
        own = self.photo_dir.resolve()
        for _sha, path in unused:
            if path and Path(path).resolve().parent == own:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return len(uuids)

    def forms_without_definition(self) -> list[dict]:
        return list(self.db.query("SELECT id, form_id, version, hash FROM forms "
                                  "WHERE definition IS NULL ORDER BY id"))

    def set_definition(self, form_key: str, definition: dict) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE forms SET definition = ? WHERE id = ?",
                            [json.dumps(definition, ensure_ascii=False), form_key])

    def counts(self) -> dict:
        def count(sql: str) -> dict:
            return dict(self.db.execute(sql).fetchall())

        return {
            "visits": count("SELECT state, count(*) FROM visits GROUP BY state"),
            "photos": count("SELECT state, count(*) FROM photos GROUP BY state"),
            "local_store": {t: self.db[t].count for t in ("assignments", "households", "forms")},
        }


def _decode_visit(row: dict) -> dict:
    row = dict(row)
    row["visit"] = json.loads(row.pop("json"))
    row["errors"] = json.loads(row["errors"] or "[]")
    row["missing_photos"] = json.loads(row["missing_photos"] or "[]")
    return row


# --------------------------------------------------------------------------- the client


class SyncClient:
    """One enumerator's device: an outbox file and a server.

    ``on_step(step, detail)``, when given, is called at the protocol's checkpoints (after the
    state before it is committed); tests raise from it to simulate a crash at that point:

    - ``push:sending``: the batch's visits are marked ``sent``; the POST is next.
    - ``push:answered``: the server answered the batch; nothing of the answer is recorded yet.
    - ``push:recorded``: the answer is recorded.
    - ``photo:answered``: a PUT was answered; the photo's state is not recorded yet.
    - ``pull:page``: a page of changes arrived; nothing of it is stored yet.
    """

    def __init__(self, server: str, username: str | None, password: str | None,
                 device_id: str, outbox: str | os.PathLike | Outbox, *,
                 batch_size: int = 20, retry: RetryPolicy | None = None,
                 http: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random,
                 on_step: Callable[[str, dict], None] | None = None,
                 max_photo_bytes: int = DEFAULT_MAX_PHOTO_BYTES, pull_limit: int = 500,
                 max_pages: int = 10_000, keep_days: float = DEFAULT_KEEP_DAYS):
        if not 1 <= batch_size <= 100:
            raise ValueError("batch_size must be 1-100 (the server's MAX_PUSH_VISITS default)")
        self.server = server.rstrip("/")
        self.username, self.password, self.device_id = username, password, device_id
        self.outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self.http = http or requests.Session()
        self.sleep, self.rng, self.on_step = sleep, rng, on_step
        self.max_photo_bytes, self.pull_limit, self.max_pages = (max_photo_bytes, pull_limit,
                                                                 max_pages)
        self.keep_days = keep_days
        owner = self.outbox.get("username")
        if username and owner and owner != username:
            self.outbox.close()
            raise ValueError(f"this outbox belongs to {owner!r}, not {username!r}")

    def close(self) -> None:
        self.outbox.close()
        self.http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _step(self, name: str, **detail) -> None:
        if self.on_step is not None:
            self.on_step(name, detail)

    # ------------------------------------------------------------------ offline

    def add_visit(self, visit: dict, photo_files: dict[str, str | os.PathLike | bytes]
                  | None = None) -> str:
        """Put a finished visit into the outbox (no network); return its uuid.

        ``photo_files`` maps a photo question (``foto_depan``, ``anggota[0].foto``) to the file
        or the bytes of its photo. Each is hashed and the visit's ``photos`` entry for that
        field gets the SHA-256 (an entry is added when there is none): photos travel and are
        matched by hash only, never by file name. Bytes are kept in a file beside the outbox.
        A visit may be added again under the same uuid (corrected) while the server has not
        stored it (pending or rejected).
        """
        if not isinstance(visit, dict) or not isinstance(visit.get("uuid"), str):
            raise ValueError("a visit is a dict with a uuid (made when the form was opened)")
        visit = json.loads(json.dumps(visit))  # our own copy; the caller's stays as it was
        entries = visit.setdefault("photos", [])
        photos = []
        for field, source in (photo_files or {}).items():
            sha, path, size, head = self._keep_photo(source)
            name = None if isinstance(source, bytes) else Path(source).name
            entry = next((e for e in entries if isinstance(e, dict) and e.get("field") == field),
                         None)
            if entry is None:
                entries.append({"field": field, "sha256": sha, "filename": name})
            else:
                entry["sha256"] = sha
                if name:
                    entry["filename"] = name
            photos.append((field, sha, path, size, sniff_mime(head)))
        self.outbox.put_visit(visit, photos)
        return visit["uuid"]

    def _keep_photo(self, source: str | os.PathLike | bytes) -> tuple[str, str, int, bytes]:
        """(sha256, path of the bytes, size, first bytes) of a photo given as a file or bytes."""
        if isinstance(source, bytes):
            sha = hashlib.sha256(source).hexdigest()
            self.outbox.photo_dir.mkdir(exist_ok=True)
            path = self.outbox.photo_dir / sha
            if not path.exists():  # content-addressed: the same bytes are the same file
                fd, tmp = tempfile.mkstemp(dir=self.outbox.photo_dir, suffix=".part")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(source)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            return sha, str(path), len(source), source[:16]
        path = Path(source).resolve()
        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as fh:
            head = fh.read(16)
            fh.seek(0)
            for chunk in iter(lambda: fh.read(1 << 16), b""):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), str(path), size, head

    def status(self) -> dict:
        """Counts by state, and what needs the enumerator: rejected, blocked, reused uuids."""
        out = self.outbox.counts()
        out["rejected"] = [{"uuid": v["uuid"], "household_id": v["household_id"],
                            "errors": v["errors"]} for v in self.outbox.visits(["rejected"])]
        out["uuid_reused"] = [v["uuid"] for v in self.outbox.visits(["uuid_reused"])]
        out["waiting_photos"] = [{"uuid": v["uuid"], "missing": v["missing_photos"]}
                                 for v in self.outbox.visits(["waiting_photos"])]
        out["blocked"] = [{"uuid": u, "photos": shas} for u, shas in
                          self.outbox.blocked().items()]
        out["failed_photos"] = [{"sha256": p["sha256"], "code": p["error_code"],
                                 "message": p["error"]} for p in self.outbox.db.query(
                                     "SELECT * FROM photos WHERE state = 'failed'")]
        out["cursor"] = self.outbox.get("cursor") is not None
        return out

    # ------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, *, auth: bool = True,
                 headers: dict | None = None, **kwargs) -> requests.Response:
        """One request with the client's retry rules (see the module docstring).

        Returns any response that is not retried: 2xx, 3xx, and 4xx other than 401 and 429
        (the caller handles those). Raises OfflineError when attempts run out, ServerBusy when
        the server asks for a longer wait than ``max_delay``.
        """
        relogged = False
        attempt = 0
        while True:
            sent = dict(headers or {})
            if auth:
                sent["Authorization"] = f"Bearer {self._token()}"
            try:
                response = self.http.request(method, self.server + path, headers=sent,
                                             timeout=self.retry.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                # Refused, reset, timed out, or the answer was cut off: the request may or may
                # not have been processed. Every request this client makes is safe to repeat.
                failure, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code == 401 and auth and not relogged:
                    relogged = True  # an expired or revoked token: log in again, once
                    response.close()
                    self.outbox.set("token", None)
                    self.login()
                    continue
                if response.status_code != 429 and response.status_code < 500:
                    return response
                failure, wait = f"HTTP {response.status_code}", _retry_after(response)
                response.close()
            attempt += 1
            if attempt >= self.retry.max_attempts:
                raise OfflineError(f"{method} {path}: gave up after {attempt} attempts "
                                   f"({failure})")
            if wait is not None:
                if wait > self.retry.max_delay:
                    raise ServerBusy(wait)
                delay = wait  # honoured as asked: jitter could come back too early
            else:
                delay = self.retry.delay(attempt - 1, self.rng)
            self.sleep(delay)

    def _token(self) -> str:
        token = self.outbox.get("token")
        if token is None:
            token = self.login()["token"]
        return token

    def login(self) -> dict:
        """POST /auth/token; the token is kept in the outbox, so a restart needs no login."""
        if not self.username or not self.password:
            raise AuthError(401, "no_credentials", "a username and password are needed online")
        response = self._request("POST", f"{API}/auth/token", auth=False, json={
            "username": self.username, "password": self.password, "device_id": self.device_id})
        if response.status_code != 201:
            error = HTTPError.from_response(response)
            raise AuthError(error.status, error.code, error.message, error.details)
        body = response.json()
        with self.outbox.db.atomic():
            self.outbox._set("token", body["token"])
            self.outbox._set("username", self.username)
        return body

    def logout(self) -> None:
        """DELETE /auth/token (revokes it on the server) and forget it here."""
        if self.outbox.get("token") is not None:
            with contextlib.suppress(SyncError):
                self._request("DELETE", f"{API}/auth/token")
        self.outbox.set("token", None)

    # ------------------------------------------------------------------ sync

    def sync(self) -> SyncReport:
        """Photos first, then the visits in batches, then any photo the server still misses.

        Photos go first so that visits are usually ``accepted`` at once (a visit whose photo
        is not on the server yet is stored as ``waiting_photos`` and completed by the last
        step). A visit using a photo the server refused for good (413/415/422, or a file gone
        from the phone) is held back (``blocked``) until the enumerator retakes the photo and
        adds the visit again. Safe to call again at any time; a network failure raises
        ``OfflineError`` with the outbox consistent.
        """
        report = SyncReport()
        self._token()  # log in first (when there is no token yet): fail before touching state
        self.upload_photos(report)
        self.push(report)
        self.upload_missing(report)
        report.blocked = [{"uuid": u, "photos": s} for u, s in self.outbox.blocked().items()]
        report.pruned = self.outbox.prune(self._keep_since())
        return report

    def _keep_since(self) -> str:
        """The oldest acknowledgement still kept for resending (ISO UTC, as stored)."""
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.keep_days)
        return since.isoformat(timespec="milliseconds")

    def upload_photos(self, report: SyncReport | None = None) -> SyncReport:
        """HEAD each photo an unfinished visit needs; PUT the ones the server lacks."""
        report = report or SyncReport()
        for photo in self.outbox.photos_to_upload():
            self._upload(photo, report)
        return report

    def _upload(self, photo: dict, report: SyncReport) -> bool:
        sha = photo["sha256"]
        head = self._request("HEAD", f"{API}/photos/{sha}")
        if head.status_code == 200:
            self.outbox.mark_photo(sha, "uploaded")
            report.photos_uploaded += 1
            report.uploaded.add(sha)
            return True
        if head.status_code != 404:
            raise HTTPError.from_response(head)
        try:
            data = Path(photo["path"]).read_bytes()
        except OSError as exc:
            return self._photo_failed(sha, "file_missing", f"cannot read the photo: {exc}",
                                      report)
        if hashlib.sha256(data).hexdigest() != sha:
            return self._photo_failed(sha, "file_changed",
                                      "the file no longer has the bytes it was added with",
                                      report)
        if len(data) > self.max_photo_bytes:
            return self._photo_failed(sha, "too_large", f"the photo has {len(data)} bytes, "
                                      f"more than the {self.max_photo_bytes} allowed", report)
        # The body is bytes, not a file, so that every retry sends it whole again.
        response = self._request("PUT", f"{API}/photos/{sha}", data=data,
                                 headers={"Content-Type": photo["mime"] or "image/jpeg"})
        self._step("photo:answered", sha256=sha, status=response.status_code)
        if response.status_code in (200, 201):
            self.outbox.mark_photo(sha, "uploaded")
            report.photos_uploaded += 1
            report.uploaded.add(sha)
            return True
        if response.status_code in (413, 415, 422):
            code, message, _ = _envelope(response)
            return self._photo_failed(sha, code or str(response.status_code), message, report)
        raise HTTPError.from_response(response)

    def _photo_failed(self, sha: str, code: str, message: str, report: SyncReport) -> bool:
        self.outbox.mark_photo(sha, "failed", code, message)
        report.photos_failed.append({"sha256": sha, "code": code, "message": message})
        return False

    def push(self, report: SyncReport | None = None) -> SyncReport:
        """POST the visits still to send, ``batch_size`` at a time, recording each answer.

        Before a batch goes, its visits are marked ``sent`` (committed); the answer replaces
        that state with the server's. A crash in between leaves them ``sent``, and the next
        push sends them again: the server answers ``duplicate`` for what it already has.
        """
        report = report or SyncReport()
        size = self.batch_size
        tried: set[str] = set()  # each visit at most once per call: the loop always ends
        while True:
            rows = self.outbox.to_send(size, skip=tried)
            if not rows:
                return report
            uuids = [r["uuid"] for r in rows]
            batch_id = str(uuidlib.uuid4())  # a new id for each attempt is fine
            self.outbox.mark_sent(uuids, batch_id)
            self._step("push:sending", batch_id=batch_id, uuids=uuids)
            # The visits' JSON is sent exactly as stored, so every resend is the same visit.
            visits = ",".join(r["json"] for r in rows)
            body = (f'{{"batch_id":{json.dumps(batch_id)},'
                    f'"device_id":{json.dumps(self.device_id)},"visits":[{visits}]}}')
            response = self._request("POST", f"{API}/sync/push", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
            if response.status_code == 413 and len(rows) > 1:
                size = max(1, len(rows) // 2)  # too big for this server: smaller batches
                continue
            if response.status_code == 413:
                code, message, details = _envelope(response)
                self.outbox.record_results([{"uuid": uuids[0], "status": "rejected", "errors": [
                    {"path": "", "code": code or "too_large", "message": message}]}])
                tried.add(uuids[0])
                continue
            if response.status_code != 200:
                raise HTTPError.from_response(response)
            results = response.json()["results"]
            self._step("push:answered", batch_id=batch_id, uuids=uuids, results=results)
            if len(results) != len(rows):
                raise SyncError(f"the server answered {len(results)} results for "
                                f"{len(rows)} visits")
            for row, result in zip(rows, results, strict=True):
                result["uuid"] = row["uuid"]  # one result a visit, in order
            self.outbox.record_results(results)
            self._step("push:recorded", batch_id=batch_id, uuids=uuids)
            tried.update(uuids)
            report.batches += 1
            for result in results:
                report.results[result["status"]] += 1
                if result["status"] == "rejected":
                    report.rejected.append({"uuid": result["uuid"],
                                            "errors": result.get("errors") or []})
                elif result["status"] == "uuid_reused":
                    report.uuid_reused.append(result["uuid"])

    def upload_missing(self, report: SyncReport | None = None) -> SyncReport:
        """Upload the photos the server listed as missing; complete the visits waiting."""
        report = report or SyncReport()
        for visit in self.outbox.visits(["waiting_photos"]):
            for sha in visit["missing_photos"]:
                photo = self.outbox.photo(sha)
                if photo is None:
                    continue  # referenced, but never given to add_visit: nothing to send
                if photo["state"] == "uploaded" and sha not in report.uploaded:
                    # Up before this push, yet missing (a server restored from a backup, say):
                    # ask again.
                    self.outbox.mark_photo(sha, "pending")
                    photo["state"] = "pending"
                if photo["state"] == "pending":
                    self._upload(photo, report)
        self.outbox.complete_waiting()
        report.waiting_photos = [{"uuid": v["uuid"], "missing": v["missing_photos"]}
                                 for v in self.outbox.visits(["waiting_photos"])]
        return report

    # ------------------------------------------------------------------ pull

    def pull(self) -> PullReport:
        """Follow the change feed from the stored cursor into the local store.

        Each page is stored together with its cursor (one transaction), so a crash repeats at
        most one page, and the same cursor gives the same page. A 410 means the feed was reset
        or compacted past our cursor: the cursor and the local store are dropped and the feed
        is pulled again from the start (once per call). A reset follows a restore from a
        backup, which may have lost what we sent since: the visits acknowledged in the last
        ``keep_days`` are marked to be sent again by the next ``sync`` (``resend``).
        """
        report = PullReport()
        while report.pages < self.max_pages:
            cursor = self.outbox.get("cursor")
            params = {"limit": self.pull_limit}
            if cursor:
                params["cursor"] = cursor
            response = self._request("GET", f"{API}/sync/pull", params=params)
            if response.status_code == 410:
                if report.restarted:
                    raise HTTPError.from_response(response)
                self.outbox.reset_feed()
                report.resend = self.outbox.requeue_acknowledged(self._keep_since())
                report.restarted = True
                continue
            if response.status_code != 200:
                raise HTTPError.from_response(response)
            page = response.json()
            self._step("pull:page", changes=page["changes"], cursor=page["next_cursor"])
            self.outbox.apply_page(page["changes"], page["next_cursor"])
            report.pages += 1
            report.changes += len(page["changes"])
            if not page["more"]:
                break
        for form in self.outbox.forms_without_definition():
            # Definitions are immutable once published, so each is downloaded once.
            response = self._request("GET", f"{API}/forms/{form['form_id']}/versions/"
                                            f"{form['version']}")
            if response.status_code == 200:
                self.outbox.set_definition(form["id"], response.json())
                report.forms_fetched += 1
        return report

    # ------------------------------------------------------------------ the local store

    def households(self) -> dict[str, dict]:
        """household_id -> {"base_version", "kode_kelurahan", "record"} from the last pull."""
        return {r["household_id"]: {"base_version": r["base_version"],
                                    "kode_kelurahan": r["kode_kelurahan"],
                                    "record": json.loads(r["record"])}
                for r in self.outbox.db.query("SELECT * FROM households ORDER BY household_id")}

    def assignments(self) -> dict[str, dict]:
        return {r["id"]: json.loads(r["data"]) for r in
                self.outbox.db.query("SELECT id, data FROM assignments ORDER BY id")}

    def forms(self) -> dict[str, dict]:
        """"form_id:version" -> {"form_id", "version", "title", "hash", "definition"}."""
        out = {}
        for r in self.outbox.db.query("SELECT * FROM forms ORDER BY id"):
            r = dict(r)
            r["definition"] = json.loads(r["definition"]) if r["definition"] else None
            out[r.pop("id")] = r
        return out


# --------------------------------------------------------------------------- the CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sync.client",
        description="Tapak's reference sync client: an offline outbox, push and pull.")
    parser.add_argument("--server", default=os.environ.get("TAPAK_SERVER"),
                        help="Base URL, e.g. http://127.0.0.1:5000 (env TAPAK_SERVER).")
    parser.add_argument("--user", default=os.environ.get("TAPAK_USER"))
    parser.add_argument("--password", default=os.environ.get("TAPAK_PASSWORD"),
                        help="Or env TAPAK_PASSWORD (keeps it out of the process list).")
    parser.add_argument("--device", default=os.environ.get("TAPAK_DEVICE", "cli"))
    parser.add_argument("--outbox", required=True, help="The outbox file (SQLite).")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--max-attempts", type=int, default=6)
    parser.add_argument("--max-delay", type=float, default=30.0)
    parser.add_argument("--keep-days", type=float, default=DEFAULT_KEEP_DAYS,
                        help="Keep acknowledged visits and their photos this long, to send "
                             "again to a server restored from a backup.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="Put a visit (JSON file) and its photos into the outbox.")
    add.add_argument("visit", help="The visit as JSON (the push format).")
    add.add_argument("--photo", action="append", default=[], metavar="FIELD=PATH",
                     help="A photo for a question; repeat.")
    sub.add_parser("sync", help="Upload photos, push visits, upload missing photos.")
    sub.add_parser("pull", help="Pull assignments, households and forms into the outbox.")
    sub.add_parser("status", help="What is in the outbox (offline).")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done; 1 something needs the enumerator (rejected, refused photos);
    2 the server could not be reached or refused us (rerun later)."""
    args = _parser().parse_args(argv)
    online = args.command in ("sync", "pull")
    if online and not (args.server and args.user and args.password):
        print("sync and pull need --server, --user and --password", file=sys.stderr)
        return 2
    retry = RetryPolicy(max_attempts=args.max_attempts, max_delay=args.max_delay)
    try:
        client = SyncClient(args.server or "http://127.0.0.1", args.user, args.password,
                            args.device, args.outbox, batch_size=args.batch_size, retry=retry,
                            keep_days=args.keep_days)
    except ValueError as exc:
        print(json.dumps({"error": "ValueError", "message": str(exc)}), file=sys.stderr)
        return 2
    try:
        if args.command == "add":
            visit = json.loads(Path(args.visit).read_text(encoding="utf-8"))
            photos = {}
            for item in args.photo:
                field, sep, path = item.partition("=")
                if not sep:
                    print(f"--photo wants FIELD=PATH, not {item!r}", file=sys.stderr)
                    return 2
                photos[field] = path
            out: dict = {"added": client.add_visit(visit, photos)}
            code = 0
        elif args.command == "status":
            out, code = client.status(), 0
        elif args.command == "pull":
            out, code = client.pull().as_dict(), 0
        else:
            report = client.sync()
            out = report.as_dict()
            code = 1 if (report.rejected or report.uuid_reused or report.photos_failed
                         or report.blocked) else 0
    except (SyncError, ValueError, OSError) as exc:  # offline, refused, or a bad visit file
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), file=sys.stderr)
        return 2
    finally:
        client.close()
    print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
