"""A small demo instance for monitoring: the real bootstrap (areas, forms, a generated extract,
demo users with the pemantau, a running round, simulated visits pushed and reconciled), then
review decisions so that every measure has something to count: visits approved and returned,
conflicts upheld and not, and verified records changed the way reviews change them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from server.models import User
from server.services import ServiceError
from server.services.review import resolve_conflict, review_visit
from sync.db import write_transaction
from sync.models import Conflict, Keluarga, KeluargaVersion, VerifiedRecord, Visit
from sync.registry import apply_changes

MONITORED = ("inclusion_error", "exclusion_error", "deceased_receiving_aid",
             "moved_receiving_aid")


def _user(db, username: str) -> User:
    return db.scalar(select(User).where(User.username == username))


@pytest.fixture
def demo(app, db, runner):
    """Bootstrap a demo instance and review part of it; the pemantau's password is reset to
    ``password123``. Returns the logins' usernames."""
    result = runner.invoke(args=["bootstrap", "--households", "600",
                                 "--visits-per-kecamatan", "8"])
    assert result.exit_code == 0, result.output
    with write_transaction(db):
        for name in ("pemantau-bappeda", "admin", "spv-cengkareng"):
            _user(db, name).set_password("password123")
    admin = _user(db, "admin")
    # Conflicts of the monitored kinds: alternately upheld (accept_visit) and not
    # (keep_registry); a few left open.
    conflicts = db.scalars(select(Conflict).where(Conflict.kind.in_(MONITORED),
                                                  Conflict.status == "open")
                           .order_by(Conflict.id)).all()
    for i, c in enumerate(conflicts):
        if i % 3 == 2:
            continue
        resolve_conflict(db, admin, c.id, "accept_visit" if i % 3 == 0 else "keep_registry",
                         note="monitoring test")
    # Visits under review: most approved (their removals and additions of members applied),
    # every fifth returned.
    uuids = db.scalars(select(Visit.uuid).where(Visit.status == "needs_review")
                       .order_by(Visit.uuid)).all()
    for i, uuid in enumerate(uuids):
        try:
            review_visit(db, admin, uuid, "return" if i % 5 == 4 else "approve", note="uji")
        except ServiceError:  # hard conflicts open: decide them first, then approve
            for c in db.scalars(select(Conflict).where(Conflict.visit_uuid == uuid,
                                                       Conflict.status == "open")).all():
                resolve_conflict(db, admin, c.id, "accept_visit", note="uji")
            review_visit(db, admin, uuid, "approve", note="uji")
    # Eligibility: three verified families of desil 1-4 without a car where the visit's review
    # found one (losses); three more whose registry record carried a car that the verified
    # record no longer has (gains: the registry snapshot is given the car here).
    verified = db.scalars(select(Visit).where(Visit.status.in_(("verified", "approved")))
                          .order_by(Visit.uuid)).all()
    chosen = []
    for visit in verified:
        record = db.get(VerifiedRecord, visit.household_id)
        desil = db.get(Keluarga, visit.household_id).desil
        if isinstance(desil, int) and desil <= 4 \
                and (record.doc.get("aset") or {}).get("mobil") is not True:
            chosen.append((visit, record))
    assert len(chosen) >= 6
    for visit, _record in chosen[:3]:
        with write_transaction(db):
            apply_changes(db, visit.household_id, {"aset.mobil": True}, source="review",
                          actor_id=admin.id, visit_uuid=visit.uuid, note="monitoring test")
    for visit, record in chosen[3:6]:
        with write_transaction(db):
            row = db.scalar(select(KeluargaVersion).where(
                KeluargaVersion.keluarga_id == visit.household_id,
                KeluargaVersion.version == record.registry_version))
            row.snapshot = {**row.snapshot, "aset": {**(row.snapshot.get("aset") or {}),
                                                     "mobil": True}}
            apply_changes(db, visit.household_id, {"alamat": "Jl. Verifikasi 1"},
                          source="review", actor_id=admin.id, visit_uuid=visit.uuid,
                          note="monitoring test")
    # A member who died, reported by an approved visit and removed from the verified record
    # by the review (as approving a change_died visit does): the demo's few visits may hold
    # none.
    for visit, record in chosen[6:]:
        members = record.doc.get("anggota") or []
        niks = [m.get("nik") for m in members]
        entries = visit.answers.get("anggota") or []
        if len(members) < 2 or not niks[-1] or niks.count(niks[-1]) != 1 \
                or not any(e.get("nik") == niks[-1] for e in entries):
            continue
        with write_transaction(db):
            answers = dict(visit.answers)
            answers["anggota"] = [dict(e, status_keberadaan=2) if e.get("nik") == niks[-1]
                                  else e for e in entries]
            db.get(Visit, visit.uuid).answers = answers
            apply_changes(db, visit.household_id, {f"anggota[NIK={niks[-1]}]": None},
                          source="review", actor_id=admin.id, visit_uuid=visit.uuid,
                          note="monitoring test")
        break
    else:
        raise AssertionError("no verified family to record a death on")
    db.commit()
    return {"pemantau": "pemantau-bappeda", "admin": "admin", "supervisor": "spv-cengkareng"}


@pytest.fixture
def token(app, db):
    """``token(username)``: bearer headers for a user (password ``password123``)."""
    from server.services.users import login

    def make(username: str) -> dict:
        with write_transaction(db):
            plain, _ = login(db, username, "password123", "monitoring-test",
                             app.config["TOKEN_TTL"])
        return {"Authorization": f"Bearer {plain}"}

    return make


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def page_login(client, username: str):
    page = client.get("/review/masuk").get_data(as_text=True)
    token = _TOKEN.search(page).group(1)
    return client.post("/review/masuk", data={"username": username, "password": "password123",
                                              "csrf_token": token})


def csrf_of(client, path: str = "/review/pemantauan") -> str:
    return _TOKEN.search(client.get(path).get_data(as_text=True)).group(1)
