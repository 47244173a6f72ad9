"""Reading a push request: limits, JSON, shape; then the core's ingest."""

from __future__ import annotations

from flask import Request, current_app

from server import metrics
from server.jsonutil import loads_strict
from server.models import User
from server.services import ServiceError
from sync.ingest import ingest_batch


def _bad(message: str) -> ServiceError:
    return ServiceError(400, message + " Nothing of this batch was stored.", code="bad_batch")


def read_batch(req: Request, max_bytes: int, max_visits: int) -> tuple[bytes, dict]:
    """The raw body and the parsed batch, or 413/400 before anything is stored."""
    if req.content_length is not None and req.content_length > max_bytes:
        raise ServiceError(413, f"A push batch may have at most {max_bytes} bytes; "
                           "send fewer visits per batch.", code="batch_too_large",
                           details={"max_bytes": max_bytes})
    raw = req.get_data(cache=False)
    if len(raw) > max_bytes:
        raise ServiceError(413, f"A push batch may have at most {max_bytes} bytes; "
                           "send fewer visits per batch.", code="batch_too_large",
                           details={"max_bytes": max_bytes})
    try:
        batch = loads_strict(raw)
    except ValueError:  # and UnicodeDecodeError; NaN, too deep: see loads_strict
        raise _bad("The body is not valid JSON.") from None
    if not isinstance(batch, dict):
        raise _bad("The body must be an object with batch_id, device_id and visits.")
    for key in ("batch_id", "device_id"):
        if (not isinstance(batch.get(key), str) or not 1 <= len(batch[key]) <= 128
                or "\x00" in batch[key]):  # PostgreSQL text cannot hold a NUL
            raise _bad(f"{key} must be a string of 1-128 characters, without NUL.")
    visits = batch.get("visits")
    if not isinstance(visits, list) or not all(isinstance(v, dict) for v in visits):
        raise _bad("visits must be a list of objects.")
    if len(visits) > max_visits:
        raise ServiceError(413, f"A push batch may carry at most {max_visits} visits; "
                           f"this one has {len(visits)}.", code="too_many_visits",
                           details={"max_visits": max_visits})
    return raw, batch


def push(session, user: User, req: Request) -> dict:
    raw, batch = read_batch(req, current_app.config["MAX_PUSH_BYTES"],
                            current_app.config["MAX_PUSH_VISITS"])
    results = ingest_batch(session, user_id=user.id, device_id=batch["device_id"],
                           batch_id=batch["batch_id"], raw_body=raw, visits=batch["visits"])
    metrics.count_push(r.status for r in results)
    return {"batch_id": batch["batch_id"], "results": [r.as_dict() for r in results]}
