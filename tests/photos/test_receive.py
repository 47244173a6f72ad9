"""Receiving uploads: storing, idempotence, and every refusal, with no temp file left behind."""

from __future__ import annotations

import dataclasses
import io
import threading
import warnings

import pillow_heif
import pytest
from PIL import Image, ImageFile

from sync.photos import (
    PhotoError,
    PhotoHashMismatch,
    PhotoInvalidImage,
    PhotoInvalidName,
    PhotoTooLarge,
    PhotoTooManyPixels,
    PhotoUnsupportedType,
    normalise_sha256,
    receive_photo,
)

from .conftest import encode, photo_like, receive, sha, stored_files


def heic_bytes() -> bytes:
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("libheif in this pillow-heif build has no HEVC encoder: cannot make a HEIC")
    return encode(photo_like(3, (320, 240)), "HEIF", quality=80)


@pytest.mark.parametrize("kind, mime", [("jpeg", "image/jpeg"), ("png", "image/png"),
                                        ("heic", "image/heic")])
def test_stores_once_then_reports_already_stored(storage, jpeg_bytes, png_bytes, kind, mime):
    data = {"jpeg": lambda: jpeg_bytes, "png": lambda: png_bytes, "heic": heic_bytes}[kind]()
    name = sha(data)

    first = receive(storage, data)
    again = receive(storage, data)

    assert (first.created, again.created) == (True, False)
    assert first == dataclasses.replace(again, created=True)
    assert first.sha256 == name and first.size_bytes == len(data) and first.mime_type == mime
    assert (first.width, first.height) == Image.open(io.BytesIO(data)).size
    assert len(first.phash) == 16
    original = storage.root / "originals" / name[:2] / name[2:4] / name
    assert original.read_bytes() == data  # byte for byte, metadata and all
    assert storage.path(name) == original
    assert stored_files(storage) == [
        original.relative_to(storage.root),
        (storage.root / "thumbs" / name[:2] / name[2:4] / f"{name}.jpg").relative_to(storage.root),
    ]
    assert storage.exists(name)


def test_hash_mismatch_is_refused_with_both_hashes(storage, jpeg_bytes):
    wrong = "ab" * 32
    with pytest.raises(PhotoHashMismatch) as caught:
        receive(storage, jpeg_bytes, name=wrong)
    err = caught.value
    assert (err.code, err.status, err.expected, err.actual) == (
        "hash_mismatch", 422, wrong, sha(jpeg_bytes))
    assert stored_files(storage) == []


def test_hash_mismatch_against_a_stored_photo(storage, jpeg_bytes, png_bytes):
    receive(storage, jpeg_bytes)
    with pytest.raises(PhotoHashMismatch):
        receive(storage, png_bytes, name=sha(jpeg_bytes))


class CountingStream:
    """An endless upload that counts what was read from it."""

    def __init__(self) -> None:
        self.delivered = 0

    def read(self, n: int = -1) -> bytes:
        assert n > 0, "must read in bounded chunks"
        self.delivered += n
        return b"\xff" * n


def test_too_large_stops_reading_just_past_the_limit(storage):
    stream = CountingStream()
    with pytest.raises(PhotoTooLarge) as caught:
        receive_photo(storage, "0" * 64, stream, max_bytes=200_000, chunk_size=64 * 1024)
    assert caught.value.limit == 200_000
    assert (caught.value.code, caught.value.status) == ("too_large", 413)
    assert stream.delivered == 200_001
    assert stored_files(storage) == []


def test_exactly_max_bytes_is_accepted(storage, jpeg_bytes):
    assert receive(storage, jpeg_bytes, max_bytes=len(jpeg_bytes), chunk_size=1000).created


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "TIFF"])
def test_other_image_types_are_refused(storage, fmt):
    data = encode(photo_like(4, (64, 48)), fmt)
    with pytest.raises(PhotoUnsupportedType) as caught:
        receive(storage, data)
    assert (caught.value.code, caught.value.status) == ("unsupported_type", 422)
    assert stored_files(storage) == []


@pytest.mark.parametrize("data", [b"hello, this is not a photo\n", b"", b"\x00" * 100])
def test_non_images_are_refused(storage, data):
    with pytest.raises(PhotoUnsupportedType):
        receive(storage, data)
    assert stored_files(storage) == []


def test_truncated_jpeg_is_refused(storage, jpeg_bytes):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(PhotoInvalidImage) as caught:
        receive(storage, jpeg_bytes[: len(jpeg_bytes) * 2 // 3])
    assert caught.value.code == "invalid_image"
    assert stored_files(storage) == []


def test_truncated_png_is_refused(storage, png_bytes):
    with pytest.raises(PhotoInvalidImage):
        receive(storage, png_bytes[: len(png_bytes) // 2])


@pytest.mark.parametrize("head", [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n",
                                  b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"])
def test_right_magic_but_garbage_is_refused(storage, head):
    with pytest.raises(PhotoInvalidImage):
        receive(storage, head + bytes(range(256)) * 4)
    assert stored_files(storage) == []


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    """72 MP of one bit compresses to ~9 kB."""
    return encode(Image.new("1", (9000, 8000)), "PNG")


def test_decompression_bomb_is_refused_before_decoding(storage, bomb_png):
    assert len(bomb_png) < 20_000
    with pytest.raises(PhotoTooManyPixels) as caught:
        receive(storage, bomb_png, max_pixels=64_000_000)
    err = caught.value
    assert (err.code, err.status, err.limit, err.pixels) == (
        "too_many_pixels", 422, 64_000_000, 72_000_000)
    assert stored_files(storage) == []


def test_pillow_bomb_warning_becomes_a_refusal_and_filters_are_restored(
        storage, jpeg_bytes, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # lower than ours: Pillow warns first
    filters = list(warnings.filters)
    with pytest.raises(PhotoTooManyPixels):
        receive(storage, jpeg_bytes)
    assert warnings.filters == filters


@pytest.mark.parametrize("name", ["../../etc/passwd", "ab" * 31, "ab" * 33, "g" * 64,
                                  "ab" * 32 + "\n", ""])
def test_invalid_names_are_refused_before_reading(storage, name):
    stream = CountingStream()
    with pytest.raises(PhotoInvalidName) as caught:
        receive_photo(storage, name, stream, max_bytes=1000)
    assert (caught.value.code, caught.value.status, stream.delivered) == ("invalid_name", 422, 0)


def test_upper_case_names_are_normalised(storage, jpeg_bytes):
    result = receive(storage, jpeg_bytes, name=sha(jpeg_bytes).upper())
    assert result.sha256 == sha(jpeg_bytes) == normalise_sha256(sha(jpeg_bytes).upper())


def test_every_refusal_is_a_photo_error_with_a_message(storage):
    with pytest.raises(PhotoError) as caught:
        receive(storage, b"GIF89a not really")
    assert caught.value.message and str(caught.value) == caught.value.message


def test_concurrent_uploads_of_one_photo_both_succeed_once_created(storage, jpeg_bytes):
    barrier = threading.Barrier(2)
    results, errors = [], []

    def upload():
        barrier.wait()
        try:
            results.append(receive(storage, jpeg_bytes, chunk_size=4096))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(r.created for r in results) == [False, True]
    assert [p.parts[0] for p in stored_files(storage)] == ["originals", "thumbs"]
    assert storage.path(sha(jpeg_bytes)).read_bytes() == jpeg_bytes


def test_no_file_of_any_kind_is_left_after_any_refusal(storage, jpeg_bytes, png_bytes, bomb_png):
    bad = [
        (jpeg_bytes, {"name": "cd" * 32}),
        (jpeg_bytes, {"max_bytes": 1000}),
        (b"plain text", {}),
        (encode(photo_like(5, (32, 32)), "GIF"), {}),
        (jpeg_bytes[:3000], {}),
        (png_bytes[:-200], {}),
        (bomb_png, {}),
    ]
    for data, options in bad:
        with pytest.raises(PhotoError):
            receive(storage, data, **options)
    assert stored_files(storage) == []
    assert list(storage.temp_dir.iterdir()) == []
