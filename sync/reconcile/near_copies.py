"""Near copies of photos: every stored perceptual hash kept in memory by 16-bit band.

Asking the database for the photos that share a band with each of a batch's hashes costs a
search per hash and band (about 2,400 a batch of 200 visits) and was most of what loading a
batch cost. The worker instead keeps the hashes of all stored photos in memory: for each of the
four 16-bit bands, every hash sorted by that band's value (numpy arrays, with where each band
value's run starts), so that a whole batch's hashes find the hashes sharing a band with them in
a few vector operations (about 4 µs a photo for 300,000 stored). That is 40 bytes a photo
(the four sorted copies and the list they are made from) and 2 MB of run starts: 14 MB
measured for 300,000 photos, about 400 MB for 10 million. Photos added since the arrays were
made wait in dict buckets (band value -> hashes), searched in Python, until there are enough
to make the arrays again.
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

import numpy as np
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
    """The perceptual hashes of one database's photos, by band.

    Most hashes sit in ``_Sorted`` arrays (numpy), which answer a whole batch's hashes in a few
    vectorised passes; those added since the arrays were last made sit in small dict buckets
    until there are ``MERGE_AT`` of them (or a tenth of the arrays), then join the arrays."""

    MERGE_AT = 50_000

    def __init__(self) -> None:
        self.sorted = _Sorted(array("Q"))
        # band -> band value -> the hash of every recent photo with that band value (repeated
        # for photos sharing a hash)
        self.by_band: list[dict[int, array]] = [{} for _ in range(BANDS)]
        self.pending = array("Q")  # the same hashes, in the order added
        self.spellings: dict[int, set[str]] = {}  # hashes not stored as 16 lowercase digits
        self.recent: dict[str, dt.datetime] = {}  # SHA-256 -> received_at, of the window
        self.since: dt.datetime | None = None
        self.window_count = -1
        self.built = time.monotonic()

    def add(self, phash: str | None, sha256: str = "",
            received_at: dt.datetime | None = None, bucket: bool = True) -> None:
        """Count one photo's hash (a photo of the overlap already counted is skipped);
        ``bucket`` False leaves it out of the buckets, for the arrays made right after."""
        value = _value(phash)
        if value is None:
            return
        if sha256 and received_at is not None:
            if sha256 in self.recent:
                return
            self.recent[sha256] = received_at
        if phash != f"{value:016x}":
            self.spellings.setdefault(value, set()).add(phash)
        self.pending.append(value)
        if not bucket:
            return
        for band, part in zip(self.by_band, _parts(value), strict=True):
            bucket = band.get(part)
            if bucket is None:
                band[part] = array("Q", (value,))
            else:
                bucket.append(value)

    def _merge(self, force: bool = False) -> None:
        """Move the recent hashes into the sorted arrays when there are enough of them."""
        if force or len(self.pending) >= min(self.MERGE_AT, max(1_000, len(self.sorted) // 10)):
            self.sorted = _Sorted(self.sorted.values + self.pending)
            self.by_band = [{} for _ in range(BANDS)]
            self.pending = array("Q")

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
            self.add(phash, sha256, received_at if keep else None, bucket=not first)
        self._merge(force=first)
        self.since, self.window_count = newest, window_count
        start = newest - OVERLAP  # the next read starts here or later: forget what is before
        self.recent = {sha: at for sha, at in self.recent.items() if at >= start}

    def others_of(self, phashes: list, max_distance: int) -> dict[str, list[str]]:
        """``others`` of each of ``phashes``, in one pass over the arrays."""
        values = {ph: _value(ph) for ph in phashes}
        wanted = sorted({v for v in values.values() if v is not None})
        found, copies = self._near_all(wanted, max_distance, alone_empty=True)
        return {ph: [] if value is None or value not in found else self._spelled(found[value])
                for ph, value in values.items()}

    def others(self, phash: str, max_distance: int) -> list[str]:
        """``near``, or nothing when ``phash`` is stored for one photo only and no other hash
        is near it: that photo has no near copy, and the database need not be asked."""
        return self.others_of([phash], max_distance)[phash]

    def near(self, phash: str, max_distance: int) -> list[str]:
        """Stored hashes (as stored) sharing a band with ``phash`` and within
        ``max_distance`` bits of it, ``phash`` itself included when stored."""
        value = _value(phash)
        if value is None:
            return []
        found, _copies = self._near_all([value], max_distance)
        return self._spelled(found.get(value, set()))

    def _near_all(self, values: list[int], max_distance: int,
                  alone_empty: bool = False) -> tuple[dict[int, set[int]], dict[int, int]]:
        """For each value with any, the stored hashes sharing a band with it within
        ``max_distance`` bits, and how many photos have exactly that hash; with
        ``alone_empty``, a value found only as itself, for one photo, is left out (most of
        a batch's: the arrays tell them apart without a set each)."""
        which, near, copies = self.sorted.near(values, max_distance)
        if alone_empty and not self.pending:
            itself = near == np.array(values, dtype=np.uint64)[which]
            others = np.bincount(which[~itself], minlength=len(values))
            keep = (others > 0) | (copies > 1)
            pairs = keep[which]
            which, near = which[pairs], near[pairs]
        found: dict[int, set[int]] = {}
        for i, other in zip(which.tolist(), near.tolist(), strict=True):
            found.setdefault(values[i], set()).add(other)
        counts = dict(zip(values, copies.tolist(), strict=True))
        if self.pending:
            for value in values:
                for band, part in zip(self.by_band, _parts(value), strict=True):
                    bucket = band.get(part)
                    if bucket:
                        for other in bucket:
                            if (other ^ value).bit_count() <= max_distance:
                                found.setdefault(value, set()).add(other)
                bucket = self.by_band[0].get(value >> 48)
                if bucket:
                    counts[value] += bucket.count(value)
            if alone_empty:
                for value in values:
                    if found.get(value) == {value} and counts[value] == 1:
                        del found[value]
        return found, counts

    def _spelled(self, values: set[int]) -> list[str]:
        out = []
        for v in values:
            out.append(f"{v:016x}")
            out += self.spellings.get(v, ())
        return sorted(set(out))


class _Sorted:
    """Hashes sorted by each band's value (numpy): the candidates of many hashes at once are
    the runs ``searchsorted`` finds, compared in one vector operation per band."""

    def __init__(self, values: array) -> None:
        self.values = values  # as given (an array('Q')), to make the next _Sorted from
        hashes = np.frombuffer(values, dtype=np.uint64) if len(values) else \
            np.zeros(0, dtype=np.uint64)
        self.bands = []
        for shift in _SHIFTS:
            keys = ((hashes >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.uint16)
            order = np.argsort(keys, kind="stable")
            # where each band value's run starts (and the next one's), for every value
            starts = np.searchsorted(keys[order], np.arange((1 << 16) + 1), "left")
            self.bands.append((starts, hashes[order]))

    def __len__(self) -> int:
        return len(self.values)

    def near(self, values: list[int], max_distance: int) -> tuple:
        """(query index, hash) of each stored hash sharing a band with one of ``values``
        and within ``max_distance`` bits of it (repeated: a hash is found in each band it
        shares, and once for each photo holding it); and per query, how many stored hashes
        equal it."""
        q = np.array(values, dtype=np.uint64)
        copies = np.zeros(len(values), dtype=np.int64)
        if not values or not len(self.values):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.astype(np.uint64), copies
        whiches, nears = [], []
        for band, (shift, (starts, hashes)) in enumerate(zip(_SHIFTS, self.bands,
                                                             strict=True)):
            part = ((q >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64)
            lo = starts[part]
            count = starts[part + 1] - lo
            total = int(count.sum())
            if not total:
                continue
            which = np.repeat(np.arange(len(q)), count)  # the query of each candidate
            at = np.arange(total) - np.repeat(np.cumsum(count) - count, count) \
                + np.repeat(lo, count)
            candidates = hashes[at]
            asked = q[which]
            if band == 0:  # an equal hash shares every band: count its photos in one
                copies += np.bincount(which[candidates == asked], minlength=len(q))
            close = np.bitwise_count(candidates ^ asked) <= max_distance
            whiches.append(which[close])
            nears.append(candidates[close])
        if not whiches:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.astype(np.uint64), copies
        return np.concatenate(whiches), np.concatenate(nears), copies


_SHIFTS = (48, 32, 16, 0)


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
