"""photo_mismatch through push, upload and the worker: a re-encoded photo (no EXIF) is judged
by its photos[] entry's taken_at and location, and a photo with EXIF by its EXIF."""

import io

from PIL import Image
from sqlalchemy import select

from sync.models import Conflict, Visit
from tests.push.conftest import jpeg, sha
from tests.worker import conftest as worker

# The worker tests' fixtures: a published form, assigned families, push, upload, reconcile.
field, extract, deliver, located, reconcile = (
    worker.field, worker.extract, worker.deliver, worker.located, worker.reconcile)

# The fixture's visit runs 2026-02-03 09:00-09:25 WIB.
DURING, DAYS_BEFORE = "2026-02-03T09:05:00+07:00", "2026-01-30T09:05:00+07:00"
FAR = {"lat": -6.2, "lon": 106.85, "accuracy_m": 5}


def with_exif(seed: int, when: str, offset: str, south: tuple, east: tuple) -> bytes:
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003], ifd[0x9011] = when, offset
    exif.get_ifd(0x8825).update({1: "S", 2: south, 3: "E", 4: east})
    out = io.BytesIO()
    Image.open(io.BytesIO(jpeg(seed, size=(96, 72)))).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def findings(db, uuid) -> list[tuple]:
    db.commit()
    return sorted((c.field, c.detail["reason"], c.detail["source"]) for c in db.scalars(
        select(Conflict).where(Conflict.visit_uuid == uuid, Conflict.kind == "photo_mismatch")))


def here(db, household_id="KLG-A1") -> dict:
    from sync.models.registry import Keluarga

    k = db.get(Keluarga, household_id)
    return {"lat": k.lat, "lon": k.lon, "accuracy_m": 5}


def test_a_photo_without_exif_is_judged_by_its_entry(db, located, deliver, reconcile):
    v, images = located()
    first, second = v["photos"][0], v["photos"][1]
    first.update(taken_at=DAYS_BEFORE, location=here(db))
    second.update(taken_at=DURING, location=FAR)
    for p in v["photos"][2:]:
        p.update(taken_at=DURING, location=here(db))
    deliver((v, images))
    reconcile()
    assert findings(db, v["uuid"]) == sorted([(first["field"], "taken_before", "app"),
                                              (second["field"], "taken_far", "app")])
    db.commit()
    assert db.get(Visit, v["uuid"]).status == "needs_review"


def test_claims_that_agree_with_the_visit_raise_nothing(db, located, deliver, reconcile):
    v, images = located()
    for p in v["photos"]:
        p.update(taken_at=DURING, location=here(db))
    deliver((v, images))
    reconcile()
    assert findings(db, v["uuid"]) == []


def test_exif_wins_over_the_entry(db, located, deliver, reconcile):
    v, images = located()
    old = with_exif(901, "2026:01:30 09:05:00", "+07:00", (6.0, 12.0, 0.0), (106.0, 51.0, 0.0))
    loc = here(db)
    fresh = with_exif(902, "2026:02:03 09:05:00", "+07:00", _dms(-loc["lat"]), _dms(loc["lon"]))
    first, second = v["photos"][0], v["photos"][1]
    for p, data in ((first, old), (second, fresh)):
        images[p["field"]] = data
        p["sha256"] = sha(data)
    first.update(taken_at=DURING, location=loc)            # the app says now and here
    second.update(taken_at=DAYS_BEFORE, location=FAR)      # the app says days ago, far away
    for p in v["photos"][2:]:
        p.update(taken_at=DURING, location=loc)
    deliver((v, images))
    reconcile()
    # The EXIF of the first says days ago and ~14 km off; of the second, now and here.
    assert findings(db, v["uuid"]) == sorted([(first["field"], "taken_before", "exif"),
                                              (first["field"], "taken_far", "exif")])


def _dms(value: float) -> tuple:
    d = int(value)
    m = int((value - d) * 60)
    return (float(d), float(m), round(((value - d) * 60 - m) * 60, 4))
