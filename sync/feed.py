"""The per-enumerator change feed: emitting changes in the writer's transaction, and pulling.

Every writer that changes what a phone must hold (an assignment, a verified record, a form)
calls ``emit`` inside its own transaction, so an entry commits exactly when its change does.
Sequence numbers come from the single ``feed_state`` row, whose lock serialises emitters until
commit: seqs therefore become visible in order, and a reader that has seen seq N has seen every
committed seq below it. Only the latest entry per (recipient, entity) is kept, so a phone that
was offline for a month downloads each changed family once, not once per change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable

from sqlalchemy import Text, bindparam, cast, delete, insert, select, update
from sqlalchemy.orm import Session

from sync.db import utcnow
from sync.models.assignment import OPEN_STATUSES, Assignment
from sync.models.feed import FeedEntry, FeedState
from sync.models.form import FormVersion
from sync.models.registry import Keluarga, VerifiedRecord


@dataclasses.dataclass(frozen=True)
class Change:
    user_id: int | None  # None: every enumerator
    type: str
    entity_id: str
    op: str


class CursorGone(Exception):
    """The cursor predates a compaction or a reset of the feed: the phone must start again."""


def _state(session: Session) -> FeedState:
    state = session.get(FeedState, 1)
    if state is None:
        state = FeedState(id=1, last_seq=0, compacted_seq=0, epoch=1)
        session.add(state)
        session.flush()
    return state


def emit(session: Session, changes: Iterable[Change]) -> int:
    """Record changes in the caller's transaction; return the last seq used (0 when none)."""
    changes = list(dict.fromkeys(changes))  # same change twice in one transaction: once
    if not changes:
        return 0
    _state(session)
    last = session.execute(
        update(FeedState).where(FeedState.id == 1)
        .values(last_seq=FeedState.last_seq + len(changes))
        .returning(FeedState.last_seq)
    ).scalar_one()
    first = last - len(changes) + 1
    conn = session.connection()
    personal = [c for c in changes if c.user_id is not None]
    if personal:
        conn.execute(
            delete(FeedEntry).where(FeedEntry.user_id == bindparam("u"),
                                    FeedEntry.type == bindparam("t"),
                                    FeedEntry.entity_id == bindparam("e")),
            [{"u": c.user_id, "t": c.type, "e": c.entity_id} for c in personal])
    for c in changes:
        if c.user_id is None:
            conn.execute(delete(FeedEntry).where(FeedEntry.user_id.is_(None),
                                                 FeedEntry.type == c.type,
                                                 FeedEntry.entity_id == c.entity_id))
    now = utcnow()
    conn.execute(insert(FeedEntry), [
        {"seq": first + i, "user_id": c.user_id, "type": c.type, "entity_id": c.entity_id,
         "op": c.op, "created_at": now}
        for i, c in enumerate(changes)])
    return last


def assignment_entity(round_id: int, household_id: str) -> str:
    return f"{round_id}:{household_id}"


def form_entity(form_id: str, version: int) -> str:
    return f"{form_id}:{version}"


def household_changed(session: Session, household_ids: Iterable[str]) -> int:
    """Send a family's new verified record to whoever holds it now (open assignments)."""
    return emit(session, household_changes(session, household_ids))


def household_changes(session: Session, household_ids: Iterable[str]) -> list[Change]:
    """The changes ``household_changed`` emits, for a caller that emits them with others."""
    ids = list(set(household_ids))
    if not ids:
        return []
    a = Assignment.__table__.c
    holders = session.connection().execute(
        select(a.enumerator_id, a.household_id)
        .where(a.household_id.in_(ids), a.status.in_(OPEN_STATUSES))).all()
    return [Change(u, "household", h, "upsert") for u, h in holders]


def form_published(session: Session, form_id: str, version: int) -> int:
    return emit(session, [Change(None, "form", form_entity(form_id, version), "upsert")])


def form_closed(session: Session, form_id: str, version: int) -> int:
    return emit(session, [Change(None, "form", form_entity(form_id, version), "delete")])


# --- pulling --------------------------------------------------------------------------------


@dataclasses.dataclass
class Page:
    changes: list[dict]
    seq: int  # position after this page
    more: bool
    epoch: int


def pull(session: Session, user_id: int, after: int = 0, limit: int = 500,
         epoch: int | None = None) -> Page:
    """The next ``limit`` changes for ``user_id`` after seq ``after``, with their data."""
    state = session.get(FeedState, 1)
    current_epoch = state.epoch if state else 1
    if epoch is not None:
        if epoch != current_epoch or (after and state and after < state.compacted_seq):
            raise CursorGone()
    rows = []
    for who in (FeedEntry.user_id == user_id, FeedEntry.user_id.is_(None)):
        rows += session.execute(
            select(FeedEntry.seq, FeedEntry.type, FeedEntry.entity_id, FeedEntry.op)
            .where(who, FeedEntry.seq > after).order_by(FeedEntry.seq).limit(limit + 1)).all()
    rows.sort()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return Page([], after, False, current_epoch)
    data = _materialise(session, user_id, rows)
    changes = [{"seq": seq, "type": typ, "op": op, "id": entity,
                "data": data.get((typ, entity)) if op == "upsert" else _delete_data(typ, entity)}
               for seq, typ, entity, op in rows]
    return Page(changes, rows[-1][0], more, current_epoch)


def _delete_data(typ: str, entity: str) -> dict:
    if typ == "assignment":
        round_id, household_id = entity.split(":", 1)
        return {"round_id": int(round_id), "household_id": household_id}
    if typ == "form":
        form_id, version = entity.rsplit(":", 1)
        return {"form_id": form_id, "version": int(version)}
    return {"household_id": entity}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


class RawJSON(str):
    """JSON text taken from the database as it is, spliced into the response unparsed."""


def _materialise(session: Session, user_id: int, rows) -> dict:
    """Load the current data of the upserted entities, a query per type.

    Plain column queries, and the verified record's JSON passed through as text: a first pull
    carries hundreds of records, and parsing them only to serialise them again is most of
    the cost of a pull.
    """
    wanted: dict[str, list[str]] = {"assignment": [], "household": [], "form": []}
    for _seq, typ, entity, op in rows:
        if op == "upsert":
            wanted[typ].append(entity)
    data: dict[tuple[str, str], dict] = {}
    if wanted["assignment"]:
        households = [e.split(":", 1)[1] for e in wanted["assignment"]]
        for round_id, household_id, status, note, assigned_at, updated_at in session.execute(
                select(Assignment.round_id, Assignment.household_id, Assignment.status,
                       Assignment.note, Assignment.assigned_at, Assignment.updated_at)
                .where(Assignment.household_id.in_(households),
                       Assignment.enumerator_id == user_id)):
            data[("assignment", assignment_entity(round_id, household_id))] = {
                "round_id": round_id, "household_id": household_id, "status": status,
                "note": note, "assigned_at": _iso(assigned_at), "updated_at": _iso(updated_at)}
    if wanted["household"]:
        for household_id, version, doc, kelurahan in session.execute(
                select(VerifiedRecord.household_id, VerifiedRecord.version,
                       cast(VerifiedRecord.doc, Text), Keluarga.kode_kelurahan)
                .join(Keluarga, Keluarga.id == VerifiedRecord.household_id)
                .where(VerifiedRecord.household_id.in_(wanted["household"]))):
            data[("household", household_id)] = {
                "household_id": household_id, "kode_kelurahan": kelurahan,
                "base_version": version, "record": RawJSON(doc)}
    for entity in wanted["form"]:
        form_id, version = entity.rsplit(":", 1)
        row = session.execute(select(FormVersion.form_id, FormVersion.version, FormVersion.title,
                                     FormVersion.hash)
                              .where(FormVersion.form_id == form_id,
                                     FormVersion.version == int(version))).first()
        if row is not None:
            data[("form", entity)] = {"form_id": row[0], "version": row[1], "title": row[2],
                                      "hash": row[3]}
    return data


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_RAW = "\x00raw\x00"
_RAW_JSON = _encode(_RAW)


def _dump(change: dict) -> str:
    """JSON of a change, with a RawJSON record spliced in as it is."""
    data = change.get("data")
    raw = data.get("record") if isinstance(data, dict) else None
    if not isinstance(raw, RawJSON):
        return _encode(change)
    return _encode({**change, "data": {**data, "record": _RAW}}).replace(_RAW_JSON, raw, 1)


def page_json(page: Page, next_cursor: str) -> str:
    """The pull response body: ``{"changes", "next_cursor", "more"}``."""
    changes = ",".join(_dump(change) for change in page.changes)
    return (f'{{"changes":[{changes}],"next_cursor":{_encode(next_cursor)},'
            f'"more":{"true" if page.more else "false"}}}')


def compact(session: Session, older_than: dt.timedelta) -> int:
    """Purge tombstones older than ``older_than``; cursors before them will get 410."""
    cutoff = utcnow() - older_than
    purged = session.scalar(select(FeedEntry.seq).where(
        FeedEntry.op == "delete", FeedEntry.created_at < cutoff)
        .order_by(FeedEntry.seq.desc()).limit(1))
    if purged is None:
        return 0
    n = session.execute(delete(FeedEntry).where(
        FeedEntry.op == "delete", FeedEntry.seq <= purged)).rowcount
    state = _state(session)
    state.compacted_seq = max(state.compacted_seq, purged)  # a cursor at or past it saw them all
    state.compacted_at = utcnow()
    return n


def reset(session: Session) -> int:
    """Start a new epoch (after a restore, say): every phone's cursor gets 410 and restarts."""
    state = _state(session)
    state.epoch += 1
    return state.epoch
