"""The worker's in-memory index of perceptual hashes: what it finds, and that it keeps up with
the photos table (new photos, and late ones inside the overlap)."""

import datetime as dt

from sync.db import utcnow
from sync.models.visit import Photo
from sync.reconcile.near_copies import OVERLAP, PhashIndex, index_for

BASE = "0123456789abcdef"


def flip(phash: str, *bits: int) -> str:
    value = int(phash, 16)
    for b in bits:
        value ^= 1 << b
    return f"{value:016x}"


def test_hashes_are_found_as_they_are_stored():
    index = PhashIndex()
    index.add(BASE.upper(), "a")
    assert index.near(BASE, 0) == sorted([BASE, BASE.upper()])


def test_near_finds_hashes_within_the_distance_and_sharing_a_band():
    index = PhashIndex()
    close, far = flip(BASE, 1, 2, 3), flip(BASE, *range(0, 64, 4))  # 3 bits, 16 bits
    for ph, sha in ((BASE, "a"), (close, "b"), (far, "c")):
        index.add(ph, sha)
    assert index.near(BASE, 8) == sorted([BASE, close])
    assert index.near(BASE, 2) == [BASE]
    assert index.near(flip(BASE, 60), 8) == sorted([BASE, close])  # not stored itself
    for bad in ("not-a-hash", "0x23456789abcdef", " 123456789abcdef", None, 12):
        assert index.near(bad, 8) == []


def test_others_is_empty_only_for_a_hash_no_other_photo_is_near():
    index, at = PhashIndex(), utcnow()
    index.add(BASE, "a", at)
    index.add(BASE, "a", at)  # the same photo read twice (the overlap) is counted once
    assert index.others(BASE, 8) == []
    index.add(BASE, "b", at)  # another photo, the same hash: a copy
    assert index.others(BASE, 8) == [BASE]
    lone = "fedcba9876543210"
    index.add(lone, "c")
    assert index.others(lone, 8) == []
    index.add(flip(lone, 5, 9), "d")
    assert index.others(lone, 8) == sorted([lone, flip(lone, 5, 9)])


def _photo(sha: str, phash: str, at: dt.datetime) -> Photo:
    return Photo(sha256=sha * 64, size_bytes=1, mime_type="image/jpeg", width=1, height=1,
                 phash=phash, received_at=at)


def test_index_keeps_up_with_new_and_late_photos(db):
    now = utcnow()
    db.add(_photo("1", "1111222233334444", now))
    db.commit()
    index = index_for(db)
    assert index.near("1111222233334444", 0) == ["1111222233334444"]

    db.add(_photo("2", "5555666677778888", now + dt.timedelta(seconds=5)))
    db.commit()
    assert index_for(db).near("5555666677778888", 0) == ["5555666677778888"]

    # A photo whose received_at is older than the newest seen (its transaction committed
    # late), but inside the overlap: found at the next refresh.
    late = now + dt.timedelta(seconds=5) - OVERLAP / 2
    db.add(_photo("3", "9999aaaabbbbcccc", late))
    db.commit()
    assert index_for(db).near("9999aaaabbbbcccc", 0) == ["9999aaaabbbbcccc"]
    db.rollback()


def _brute_near(stored: list[int], value: int, distance: int) -> set[int]:
    """Stored hashes within ``distance`` bits of ``value`` and sharing a 16-bit band with it."""
    def parts(v):
        return [(v >> s) & 0xFFFF for s in (48, 32, 16, 0)]
    return {o for o in stored if (o ^ value).bit_count() <= distance
            and any(a == b for a, b in zip(parts(o), parts(value), strict=True))}


def test_the_sorted_arrays_and_the_recent_buckets_find_what_a_full_search_finds():
    import random

    rng = random.Random(7)
    base = [rng.getrandbits(64) for _ in range(3000)]
    # near copies (1 to 6 bits off), exact copies, and hashes sharing a band but far apart
    stored = base + [b ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for b in base[:300]]
    stored += base[300:400] + [(b & ~0xFFFF) | rng.getrandbits(16) for b in base[400:500]]
    index = PhashIndex()
    for i, v in enumerate(stored[:3000]):
        index.add(f"{v:016x}", f"a{i}", bucket=False)
    index._merge(force=True)  # the first 3,000 in the arrays, the rest in buckets
    for i, v in enumerate(stored[3000:]):
        index.add(f"{v:016x}", f"b{i}")
    assert len(index.sorted) == 3000 and len(index.pending) == len(stored) - 3000
    asked = base[:600] + [rng.getrandbits(64) for _ in range(50)]
    names = [f"{v:016x}" for v in asked]
    for distance in (0, 2, 3, 8):
        others = index.others_of(names, distance)
        for name, value in zip(names, asked, strict=True):
            near = _brute_near(stored, value, distance)
            assert index.near(name, distance) == sorted(f"{v:016x}" for v in near)
            alone = near == {value} and stored.count(value) == 1
            assert others[name] == ([] if alone else sorted(f"{v:016x}" for v in near))


def test_enough_recent_hashes_join_the_arrays():
    index = PhashIndex()
    values = [f"{i * 7919:016x}" for i in range(1, 1101)]
    for i, ph in enumerate(values):
        index.add(ph, str(i))
    index._merge()  # more than 1,000 recent ones and no arrays yet: merged
    assert len(index.sorted) == 1100 and len(index.pending) == 0
    assert index.by_band[0] == {}
    assert index.near(values[5], 0) == [values[5]]
    assert index.others(values[5], 0) == []
