"""Near copies of photos: every stored perceptual hash kept in memory by 16-bit band.

Asking the database for the photos that share a band with each of a batch's hashes costs a
search per hash and band (about 2,400 a batch of 200 visits) and is most of what loading a batch
costs. The worker instead keeps the hashes of all stored photos in memory, four dicts of band
value -> hashes (about 100 bytes a photo: 30 MB for 300,000 photos), and asks the database only
for the photos whose hash is within the distance the rule accepts. Any two hashes at most 3
bits apart share a band, as with the band indexes of ``photos``.

The index is a filter, the database stays the truth: a hash the index has but the database no
longer has finds nothing. It is brought up to date before each batch with the photos received
since the last update, less ``OVERLAP``: ``received_at`` is set when a photo is added, before
its transaction commits (and a SQLite writer may wait up to its busy timeout for the lock), so a
photo can become visible later than a newer one. It is built again from scratch every
``REBUILD_AFTER``, which also forgets photos removed since.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.models.visit import Photo

OVERLAP = dt.timedelta(seconds=60)
REBUILD_AFTER = 1800.0  # seconds
BANDS = 4


def _value(phash) -> int | None:
    """The 64-bit value of a 16-hex-digit phash, None for anything else."""
    # int() would also take a sign, spaces, underscores or 0x: isalnum and [1] rule them out
    if type(phash) is not str or len(phash) != 16 or not (phash.isascii() and phash.isalnum()) \
            or phash[1] in "xX":
        return None
    try:
        return int(phash, 16)
    except ValueError:
        return None


class PhashIndex:
    """The perceptual hashes of one database's photos, by band."""

    def __init__(self) -> None:
        self.by_band: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
        self.known: dict[int, list[str]] = {}  # value -> the hash as stored (its spellings)
        self.photos: dict[int, int] = {}  # value -> how many photos (SHA-256s) have it
        self.shas: set[int] = set()  # hash() of each SHA-256 counted
        self.since: dt.datetime | None = None
        self.window_count = -1
        self.built = time.monotonic()

    def add(self, phash: str | None, sha256: str = "") -> None:
        value = _value(phash)
        if value is None:
            return
        if sha256:
            key = hash(sha256)
            if key not in self.shas:
                self.shas.add(key)
                self.photos[value] = self.photos.get(value, 0) + 1
        spellings = self.known.get(value)
        if spellings is not None:
            if phash not in spellings:
                spellings.append(phash)
            return
        self.known[value] = [phash]
        b0, b1, b2, b3 = self.by_band
        b0[value >> 48].append(value)
        b1[(value >> 32) & 0xFFFF].append(value)
        b2[(value >> 16) & 0xFFFF].append(value)
        b3[value & 0xFFFF].append(value)

    def refresh(self, session: Session) -> None:
        """Add the photos received since the last refresh (all of them the first time).

        The photos of the last ``OVERLAP`` are read again only when there are more of them
        than last time (counted first, so a photo committed meanwhile is read next time)."""
        newest = session.scalar(select(func.max(Photo.received_at)))
        if newest is None:
            return
        window_count = session.scalar(select(func.count()).select_from(Photo)
                                      .where(Photo.received_at >= newest - OVERLAP))
        if newest == self.since and window_count == self.window_count:
            return
        stmt = select(Photo.sha256, Photo.phash).where(Photo.phash.is_not(None))
        if self.since is not None:
            stmt = stmt.where(Photo.received_at >= self.since - OVERLAP)
        for sha256, phash in session.execute(stmt):
            self.add(phash, sha256)
        self.since, self.window_count = newest, window_count

    def others(self, phash: str, max_distance: int) -> list[str]:
        """``near``, or nothing when ``phash`` is stored for one photo only and no other hash
        is near it: that photo has no near copy, and the database need not be asked."""
        near = self.near(phash, max_distance)
        if near == [phash] and self.photos.get(int(phash, 16)) == 1:
            return []
        return near

    def near(self, phash: str, max_distance: int) -> list[str]:
        """Stored hashes (as stored) sharing a band with ``phash`` and within
        ``max_distance`` bits of it, ``phash`` itself included when stored."""
        value = _value(phash)
        if value is None:
            return []
        found = set()
        b0, b1, b2, b3 = self.by_band
        for bucket in (b0.get(value >> 48), b1.get((value >> 32) & 0xFFFF),
                       b2.get((value >> 16) & 0xFFFF), b3.get(value & 0xFFFF)):
            if bucket:
                for other in bucket:
                    if (other ^ value).bit_count() <= max_distance:
                        found.add(other)
        known = self.known
        if len(found) == 1:
            return list(known[found.pop()])
        return sorted(s for v in found for s in known[v])


_indexes: dict[str, PhashIndex] = {}
_lock = threading.Lock()


def index_for(session: Session) -> PhashIndex:
    """This process's up-to-date index of the session's database."""
    key = session.get_bind().url.render_as_string(hide_password=True)
    with _lock:
        index = _indexes.get(key)
        if index is None or time.monotonic() - index.built > REBUILD_AFTER:
            index = _indexes[key] = PhashIndex()
            index.refresh(session)
            # Hundreds of thousands of long-lived lists: left to the collector, every full
            # collection would walk them (tens of ms each, a few a batch).
            gc.freeze()
        else:
            index.refresh(session)
        return index
