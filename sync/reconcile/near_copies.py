"""Near copies of photos: every stored perceptual hash kept in memory by 16-bit band.

Asking the database for the photos that share a band with each of a batch's hashes costs a
search per hash and band (about 2,400 a batch of 200 visits) and was most of what loading a
batch cost. The worker instead keeps the hashes of all stored photos in memory: for each of the
four 16-bit bands, band value -> an array of the 64-bit hashes of the photos having it, one
8-byte entry per photo and band (32 bytes a photo, plus about 40 MB of arrays and dicts once
every band value is in use: 53 MB measured for 300,000 photos, about 400 MB for 10 million).
It asks the database only for the hashes within the distance the rule accepts. Any two hashes
at most 3 bits apart share a band.

The index is a filter, the database stays the truth: a hash the index has but the database no
longer has finds nothing. It is brought up to date before each batch with the photos received
since the last update, less ``OVERLAP``: ``received_at`` is set when a photo is added, before
its transaction commits (and a SQLite writer may wait up to its busy timeout for the lock), so a
photo can become visible later than a newer one; the photos of that window already read are
remembered by SHA-256, so none is counted twice. It is built again from scratch every
``REBUILD_AFTER``, which also forgets photos removed since.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from array import array

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
        # band -> band value -> the hash of every photo with that band value (repeated for
        # photos sharing a hash)
        self.by_band: list[dict[int, array]] = [{} for _ in range(BANDS)]
        self.spellings: dict[int, set[str]] = {}  # hashes not stored as 16 lowercase digits
        self.recent: dict[str, dt.datetime] = {}  # SHA-256 -> received_at, of the window
        self.since: dt.datetime | None = None
        self.window_count = -1
        self.built = time.monotonic()

    def add(self, phash: str | None, sha256: str = "",
            received_at: dt.datetime | None = None) -> None:
        """Count one photo's hash (a photo of the overlap already counted is skipped)."""
        value = _value(phash)
        if value is None:
            return
        if sha256 and received_at is not None:
            if sha256 in self.recent:
                return
            self.recent[sha256] = received_at
        if phash != f"{value:016x}":
            self.spellings.setdefault(value, set()).add(phash)
        for band, part in zip(self.by_band, _parts(value), strict=True):
            bucket = band.get(part)
            if bucket is None:
                band[part] = array("Q", (value,))
            else:
                bucket.append(value)

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
        stmt = select(Photo.sha256, Photo.phash, Photo.received_at).where(
            Photo.phash.is_not(None))
        if self.since is not None:
            stmt = stmt.where(Photo.received_at >= self.since - OVERLAP)
        first = self.since is None
        for sha256, phash, received_at in session.execute(stmt):
            # the first read has each photo once: only the window's are remembered
            keep = not first or received_at >= newest - OVERLAP
            self.add(phash, sha256, received_at if keep else None)
        self.since, self.window_count = newest, window_count
        start = newest - OVERLAP  # the next read starts here or later: forget what is before
        self.recent = {sha: at for sha, at in self.recent.items() if at >= start}

    def others(self, phash: str, max_distance: int) -> list[str]:
        """``near``, or nothing when ``phash`` is stored for one photo only and no other hash
        is near it: that photo has no near copy, and the database need not be asked."""
        value = _value(phash)
        if value is None:
            return []
        found = self._near(value, max_distance)
        if found == {value} and self.by_band[0][value >> 48].count(value) == 1:
            return []
        return self._spelled(found)

    def near(self, phash: str, max_distance: int) -> list[str]:
        """Stored hashes (as stored) sharing a band with ``phash`` and within
        ``max_distance`` bits of it, ``phash`` itself included when stored."""
        value = _value(phash)
        return [] if value is None else self._spelled(self._near(value, max_distance))

    def _near(self, value: int, max_distance: int) -> set[int]:
        found = set()
        for band, part in zip(self.by_band, _parts(value), strict=True):
            bucket = band.get(part)
            if bucket:
                for other in bucket:
                    if (other ^ value).bit_count() <= max_distance:
                        found.add(other)
        return found

    def _spelled(self, values: set[int]) -> list[str]:
        out = []
        for v in values:
            out.append(f"{v:016x}")
            out += self.spellings.get(v, ())
        return sorted(set(out))


def _parts(value: int) -> tuple[int, int, int, int]:
    return value >> 48, (value >> 32) & 0xFFFF, (value >> 16) & 0xFFFF, value & 0xFFFF


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
        return index
