"""Derived data: upright thumbnail, EXIF capture time and GPS, perceptual hash."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from sync.photos import analyse_image, phash_distance, sniff_mime_type

from .conftest import encode, photo_like, receive


def with_exif(orientation=None, taken=None, offset=None, gps=None) -> Image.Exif:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if taken:
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = taken
        if offset:
            sub[0x9011] = offset
    if gps:
        exif.get_ifd(0x8825).update(gps)
    return exif


def thumbnail(storage, name) -> Image.Image:
    with storage.open(name, "thumb") as fh:
        img = Image.open(fh)
        img.load()
    return img


def test_orientation_6_gives_an_upright_thumbnail(storage):
    img = Image.new("RGB", (400, 200), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 100, 50))  # top-left as stored → top-right when upright
    data = encode(img, "JPEG", quality=95, exif=with_exif(orientation=6))

    result = receive(storage, data)

    assert (result.width, result.height) == (200, 400)
    thumb = thumbnail(storage, result.sha256)
    assert thumb.size == (160, 320)
    red, _, blue = thumb.getpixel((thumb.width - 10, 10))
    assert red > 200 and blue < 60
    assert storage.path(result.sha256).read_bytes() == data  # the original keeps its EXIF


def test_thumbnail_size_is_configurable_and_never_upscales(storage, jpeg_bytes):
    result = receive(storage, jpeg_bytes, thumb_size=200)
    assert thumbnail(storage, result.sha256).size == (200, 150)
    small = encode(photo_like(5, (120, 90)), "PNG")
    assert thumbnail(storage, receive(storage, small).sha256).size == (120, 90)


def test_thumbnail_carries_no_exif_so_no_gps(storage):
    gps = {1: "S", 2: (6.0, 8.0, 24.0), 3: "E", 4: (106.0, 45.0, 0.0)}
    data = encode(photo_like(6), "JPEG", exif=with_exif(taken="2024:05:06 09:30:00", gps=gps))
    result = receive(storage, data)
    with storage.open(result.sha256, "thumb") as fh:
        raw = fh.read()
    assert b"Exif" not in raw
    assert not Image.open(io.BytesIO(raw)).getexif()


def test_capture_time_with_offset_and_gps_are_read_back(storage):
    gps = {1: "S", 2: (6.0, 8.0, 24.0), 3: "E", 4: (106.0, 45.0, 36.0)}
    data = encode(photo_like(7), "JPEG",
                  exif=with_exif(taken="2025:03:14 15:09:26", offset="+08:00", gps=gps))

    result = receive(storage, data)

    assert result.taken_at == datetime(2025, 3, 14, 15, 9, 26, tzinfo=timezone(timedelta(hours=8)))
    assert result.taken_at_has_offset is True
    assert result.gps_lat == pytest.approx(-(6 + 8 / 60 + 24 / 3600))
    assert result.gps_lon == pytest.approx(106 + 45 / 60 + 36 / 3600)
    assert "gps" not in repr(result) and "106.7" not in repr(result)  # kept out of logs


def test_capture_time_without_offset_stays_naive(storage):
    data = encode(photo_like(8), "JPEG", exif=with_exif(taken="2025:03:14 15:09:26"))
    result = receive(storage, data)
    assert result.taken_at == datetime(2025, 3, 14, 15, 9, 26)
    assert result.taken_at.tzinfo is None and result.taken_at_has_offset is False
    assert (result.gps_lat, result.gps_lon) == (None, None)


@pytest.mark.parametrize("exif", [
    with_exif(taken="0000:00:00 00:00:00"),
    with_exif(taken="    :  :     :  :  "),
    with_exif(gps={1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)}),
    with_exif(gps={9: "V", 1: "N", 2: (1.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)}),
    with_exif(gps={1: "N", 3: "E", 4: (10.0, 0.0, 0.0)}),
])
def test_unusable_exif_values_are_dropped_not_fatal(exif):
    info = analyse_image(io.BytesIO(encode(photo_like(9, (80, 60)), "JPEG", exif=exif)))
    assert (info.taken_at, info.gps_lat, info.gps_lon) == (None, None, None)


def test_phash_survives_reencoding_and_tells_pictures_apart():
    img = photo_like(10, (1024, 768))
    high = analyse_image(io.BytesIO(encode(img, "JPEG", quality=95))).phash
    low = analyse_image(io.BytesIO(encode(img, "JPEG", quality=40))).phash
    png = analyse_image(io.BytesIO(encode(img.resize((512, 384)), "PNG"))).phash
    other = analyse_image(io.BytesIO(encode(photo_like(11, (1024, 768)), "JPEG"))).phash

    assert phash_distance(high, low) <= 4
    assert phash_distance(high, png) <= 6
    assert phash_distance(high, other) >= 16


def test_phash_distance():
    assert phash_distance("0" * 16, "f" * 16) == 64
    assert phash_distance("00000000000000ff", "00000000000000FE") == 1
    with pytest.raises(ValueError):
        phash_distance("abc", "0" * 16)


def test_rotated_copy_has_the_same_phash_as_the_upright_one():
    upright = photo_like(12)
    stored_sideways = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 undoes this
    a = analyse_image(io.BytesIO(encode(upright, "JPEG"))).phash
    b = analyse_image(io.BytesIO(encode(stored_sideways, "JPEG",
                                        exif=with_exif(orientation=6)))).phash
    assert phash_distance(a, b) <= 4


@pytest.mark.parametrize("img", [
    Image.new("RGBA", (64, 48), (255, 0, 0, 0)),
    Image.new("LA", (64, 48), (0, 0)),
    Image.new("P", (64, 48), 3),
    Image.new("I;16", (64, 48), 40000),
    Image.new("1", (64, 48), 1),
    Image.new("L", (64, 48), 90),
], ids=lambda img: img.mode)
def test_png_modes_make_a_plain_thumbnail(img):
    info = analyse_image(io.BytesIO(encode(img, "PNG")))
    thumb = Image.open(io.BytesIO(info.thumbnail))
    assert thumb.mode in ("RGB", "L") and thumb.size == (64, 48)
    if img.mode in ("RGBA", "LA"):  # transparent → white, not black
        assert thumb.convert("L").getpixel((0, 0)) > 250
    if img.mode == "I;16":  # 40000 of 65535 → mid grey, not clipped to white
        assert 140 < thumb.getpixel((0, 0)) < 170


def test_sniffing_looks_at_bytes_not_names():
    assert sniff_mime_type(b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic") == "image/heic"
    assert sniff_mime_type(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf") is None
    assert sniff_mime_type(b"GIF89a") is None


def test_analyse_accepts_a_path(tmp_path, jpeg_bytes):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes)
    assert analyse_image(path).width == 640
