"""Storage layout, re-deriving, and clean-up of temp files and unreferenced photos."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from sync.photos import (
    LocalPhotoStorage,
    PhotoInvalidName,
    process_existing,
    remove_stale_temp_files,
    remove_unreferenced,
)

from .conftest import encode, photo_like, receive, stored_files

GRACE = 7 * 24 * 3600


@pytest.fixture
def three(storage):
    """Three stored photos, all last modified at t=1_000_000."""
    names = [receive(storage, encode(photo_like(20 + i, (96, 64)), "JPEG")).sha256
             for i in range(3)]
    for name in names:
        for size in ("full", "thumb"):
            os.utime(storage.path(name, size), (1_000_000, 1_000_000))
    return names


def test_iterates_opens_and_deletes(storage, three):
    assert sorted(storage.iter_hashes()) == sorted(three)
    assert sorted(storage.iter_hashes("thumb")) == sorted(three)
    with storage.open(three[0], "thumb") as fh:
        assert fh.read(3) == b"\xff\xd8\xff"
    assert storage.delete(three[0]) is True
    assert storage.delete(three[0]) is False
    assert not storage.exists(three[0])
    with pytest.raises(FileNotFoundError):
        storage.open(three[0])
    (storage.root / "originals" / "ab" / "cd").mkdir(parents=True)
    (storage.root / "originals" / "ab" / "cd" / "notes.txt").write_text("not a photo")
    assert sorted(storage.iter_hashes()) == sorted(three[1:])


def test_paths_never_leave_the_root(storage):
    with pytest.raises(PhotoInvalidName):
        storage.path("../" * 10 + "etc/passwd")
    with pytest.raises(ValueError):
        storage.path("a" * 64, "huge")


def test_unreferenced_photos_go_only_after_the_grace_period(storage, three):
    kept, orphan, also_kept = three
    referenced = {kept, also_kept}

    assert remove_unreferenced(storage, referenced, GRACE, now=1_000_000 + GRACE - 1) == []
    assert sorted(storage.iter_hashes()) == sorted(three)

    assert remove_unreferenced(storage, referenced, GRACE, now=1_000_000 + GRACE + 1) == [orphan]
    assert sorted(storage.iter_hashes()) == sorted(referenced)
    assert sorted(storage.iter_hashes("thumb")) == sorted(referenced)


def test_referenced_may_be_a_callable_and_now_a_datetime(storage, three):
    later = datetime.fromtimestamp(1_000_000 + GRACE + 1, UTC)
    removed = remove_unreferenced(storage, lambda h: h == three[0], GRACE, now=later)
    assert sorted(removed) == sorted(three[1:])


def test_uploading_again_restarts_the_grace_period(storage, three):
    data = storage.path(three[1]).read_bytes()
    assert receive(storage, data).created is False
    removed = remove_unreferenced(storage, set(), GRACE, now=1_000_000 + GRACE + 1)
    assert sorted(removed) == sorted([three[0], three[2]])
    assert list(storage.iter_hashes()) == [three[1]]


def test_orphan_thumbnails_are_removed_too(storage, three):
    storage.path(three[0]).unlink()  # as if a crash came between thumbnail and original
    removed = remove_unreferenced(storage, set(three[1:]), GRACE, now=1_000_000 + GRACE + 1)
    assert removed == [three[0]]
    assert sorted(storage.iter_hashes("thumb")) == sorted(three[1:])


def test_stale_temp_files_are_removed_fresh_ones_kept(storage):
    old, fresh = storage.temp_dir / ".upload-old.part", storage.temp_dir / ".upload-new.part"
    old.write_bytes(b"half a photo")
    fresh.write_bytes(b"an upload in progress")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    assert remove_stale_temp_files(storage, older_than_seconds=86400) == 1
    assert [p.name for p in storage.temp_dir.iterdir()] == [fresh.name]


def test_process_existing_rederives_a_lost_thumbnail(storage, three):
    thumb = storage.path(three[0], "thumb")
    thumb.unlink()
    result = process_existing(storage, three[0], thumb_size=48)
    assert result.created is False and (result.width, result.height) == (96, 64)
    assert thumb.is_file()
    with pytest.raises(FileNotFoundError):
        process_existing(storage, "0" * 64)


def test_repeat_upload_restores_a_lost_thumbnail(storage, three):
    storage.path(three[2], "thumb").unlink()
    assert receive(storage, storage.path(three[2]).read_bytes()).created is False
    assert storage.path(three[2], "thumb").is_file()


def test_a_second_storage_on_the_same_root_sees_the_same_photos(storage, three):
    assert sorted(LocalPhotoStorage(storage.root).iter_hashes()) == sorted(three)
    assert len(stored_files(storage)) == 6


def _temp_copy(storage, data: bytes):
    path = storage.temp_dir / f".upload-{len(list(storage.temp_dir.iterdir()))}.part"
    path.write_bytes(data)
    return path


def test_put_original_never_overwrites_and_tells_who_created(storage):
    name = "a" * 64
    assert storage.put_original(name, _temp_copy(storage, b"first")) is True
    assert storage.put_original(name, _temp_copy(storage, b"first")) is False
    assert storage.path(name).read_bytes() == b"first"
    assert list(storage.temp_dir.iterdir()) == []


def test_put_original_without_hard_links_falls_back_to_replace(storage, monkeypatch):
    def no_links(src, dst):
        raise PermissionError("hard links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    name = "b" * 64
    assert storage.put_original(name, _temp_copy(storage, b"bytes")) is True
    assert storage.put_original(name, _temp_copy(storage, b"bytes")) is False
    assert storage.path(name).read_bytes() == b"bytes"
    assert list(storage.temp_dir.iterdir()) == []
