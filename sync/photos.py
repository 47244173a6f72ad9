"""Photos: content-addressed storage, upload checks and derived data (thumbnail, phash, EXIF).

Phones name a photo by the SHA-256 of its bytes and upload it when they are back online, maybe
twice, maybe from two requests at once. This module is what the HTTP layer and the scheduler
call: it streams an upload to disk with flat memory, refuses anything that is not a sound JPEG,
PNG or HEIC of sane size, and moves the original into place atomically, byte for byte. The
thumbnail, perceptual hash, capture time and GPS are derived from one (draft-mode) decode.

Photos are personal data: nothing here logs their contents, GPS or capture time; only hashes,
sizes and error codes. See ``docs/photos.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import re
import tempfile
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Literal

import imagehash
import pillow_heif
from PIL import Image, ImageOps

log = logging.getLogger("tapak.photos")  # under "tapak": the app's JSON log handler

# HEIC support comes from pillow-heif; registering is idempotent and adds only the opener.
pillow_heif.register_heif_opener()

Size = Literal["full", "thumb"]

DEFAULT_MAX_PIXELS = 64_000_000  # 64 MP: a 50 MP phone photo passes, a pixel bomb does not
DEFAULT_THUMB_SIZE = 320
DEFAULT_THUMB_QUALITY = 80
DEFAULT_CHUNK_SIZE = 64 * 1024

MIME_JPEG, MIME_PNG, MIME_HEIC = "image/jpeg", "image/png", "image/heic"
# Which Pillow formats may open a file whose first bytes claim a type (MPO is a phone JPEG).
_PIL_FORMATS = {MIME_JPEG: ("JPEG", "MPO"), MIME_PNG: ("PNG",), MIME_HEIC: ("HEIF",)}
# ISO-BMFF brands of HEVC-coded HEIF; a bare ``mif1`` may be AVIF or JPEG-in-HEIF, so not enough.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_SNIFF_BYTES = 64

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_PHASH_RE = re.compile(r"[0-9a-f]{16}")

# EXIF tags (numbers rather than names: Pillow's enums moved between releases).
_TAG_ORIENTATION = 0x0112
_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825
_TAG_DATETIME_ORIGINAL, _TAG_OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_STATUS = 1, 2, 3, 4, 9

# ``warnings.catch_warnings`` swaps process-wide state; serialise our use of it so two uploads in
# two threads cannot restore each other's filters. Held only while Pillow reads the header.
_WARNINGS_LOCK = threading.Lock()


# --------------------------------------------------------------------------- errors


class PhotoError(Exception):
    """A refused photo: ``code`` for clients, ``message`` for people, ``status`` for HTTP."""

    code = "invalid_photo"
    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PhotoInvalidName(PhotoError):
    """The name is not a SHA-256 in hex, so it cannot address a file (and must not reach a path)."""

    code = "invalid_name"


class PhotoTooLarge(PhotoError):
    """More than ``limit`` bytes arrived; reading stopped there."""

    code = "too_large"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"Photo is larger than the limit of {limit} bytes.")
        self.limit = limit


class PhotoHashMismatch(PhotoError):
    """The bytes do not hash to the name: a damaged upload, which the phone should send again."""

    code = "hash_mismatch"

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"Photo bytes hash to {actual}, not to {expected}.")
        self.expected = expected
        self.actual = actual


class PhotoUnsupportedType(PhotoError):
    """Not a JPEG, PNG or HEIC. 422 rather than 415: the contract says 422 for "no valid image"."""

    code = "unsupported_type"


class PhotoInvalidImage(PhotoError):
    """Looks like a supported type but does not decode (truncated, corrupt)."""

    code = "invalid_image"


class PhotoTooManyPixels(PhotoError):
    """Width × height over the limit: decoding it could exhaust memory (a decompression bomb)."""

    code = "too_many_pixels"

    def __init__(self, limit: int, pixels: int | None = None) -> None:
        what = f"{pixels} pixels" if pixels is not None else "Too many pixels"
        super().__init__(f"{what}: the limit is {limit} pixels.")
        self.limit = limit
        self.pixels = pixels


def normalise_sha256(name: str) -> str:
    """The canonical (lower-case hex) form of a photo name; ``PhotoInvalidName`` otherwise.

    Every path is built from a name that passed here, so a name can never walk out of the root.
    """
    lowered = name.lower() if isinstance(name, str) else ""
    if not _SHA256_RE.fullmatch(lowered):
        raise PhotoInvalidName("Photo name must be the SHA-256 of its bytes: 64 hex characters.")
    return lowered


# --------------------------------------------------------------------------- storage


class PhotoStorage(ABC):
    """Where originals and thumbnails live, addressed by SHA-256.

    ``receive_photo`` writes an upload into ``temp_dir`` and hands the finished file to
    ``put_original``, which must make it appear whole or not at all.
    """

    @property
    @abstractmethod
    def temp_dir(self) -> Path:
        """A folder for uploads in progress, on the same filesystem as the originals."""

    @abstractmethod
    def path(self, sha: str, size: Size = "full") -> Path:
        """Where the original (or its thumbnail) of ``sha`` is or would be."""

    @abstractmethod
    def exists(self, sha: str) -> bool:
        """Whether the original is stored (its thumbnail may still need deriving)."""

    @abstractmethod
    def open(self, sha: str, size: Size = "full") -> BinaryIO:
        """The stored bytes for reading; ``FileNotFoundError`` when absent."""

    @abstractmethod
    def delete(self, sha: str) -> bool:
        """Remove the original and its thumbnail; whether anything was there."""

    @abstractmethod
    def iter_hashes(self, size: Size = "full") -> Iterator[str]:
        """The hashes of every stored original (or thumbnail), in no particular order."""

    @abstractmethod
    def put_original(self, sha: str, temp_path: Path) -> bool:
        """Move a complete, synced temp file into place; False if it was already there."""

    @abstractmethod
    def put_thumb(self, sha: str, data: bytes) -> None:
        """Store (or replace) the thumbnail, atomically."""

    @abstractmethod
    def modified_at(self, sha: str, size: Size = "full") -> float:
        """Last modification (epoch seconds): clean-up's grace period counts from it."""

    @abstractmethod
    def touch(self, sha: str) -> None:
        """Restart the grace period: a phone just sent this photo again, so it is wanted."""


class LocalPhotoStorage(PhotoStorage):
    """Photos in a folder: ``originals/ab/cd/<sha>``, ``thumbs/ab/cd/<sha>.jpg``, ``tmp/``.

    Two levels of 256 shards keep folders small (a million photos is ~15 a folder). Temp files
    live under the same root, so a rename into place never crosses filesystems.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._dirs = {"full": self.root / "originals", "thumb": self.root / "thumbs"}
        self._tmp = self.root / "tmp"
        for folder in (*self._dirs.values(), self._tmp):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def temp_dir(self) -> Path:
        return self._tmp

    def path(self, sha: str, size: Size = "full") -> Path:
        sha = normalise_sha256(sha)
        if size not in self._dirs:
            raise ValueError(f"size must be 'full' or 'thumb', not {size!r}")
        name = sha if size == "full" else f"{sha}.jpg"
        return self._dirs[size] / sha[:2] / sha[2:4] / name

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def open(self, sha: str, size: Size = "full") -> BinaryIO:
        return open(self.path(sha, size), "rb")

    def delete(self, sha: str) -> bool:
        removed = False
        for size in ("full", "thumb"):
            with contextlib.suppress(FileNotFoundError):
                self.path(sha, size).unlink()
                removed = True
        return removed

    def iter_hashes(self, size: Size = "full") -> Iterator[str]:
        suffix = "" if size == "full" else ".jpg"
        base = self._dirs[size]
        for first in _subdirs(base):
            for second in _subdirs(first):
                for entry in os.scandir(second):
                    name = entry.name
                    if suffix:
                        if not name.endswith(suffix):
                            continue
                        name = name[: -len(suffix)]
                    if _SHA256_RE.fullmatch(name) and entry.is_file():
                        yield name

    def put_original(self, sha: str, temp_path: Path) -> bool:
        """Hard-link then unlink: like ``os.replace`` atomic, but it never overwrites.

        ``os.link`` fails when the name exists, which tells exactly one of two racing uploads
        that it created the photo (201) and the other that it was already there (200). On a
        filesystem without hard links it falls back to ``os.replace`` (same bytes either way).
        """
        dest = self.path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(temp_path, dest)
            created = True
        except FileExistsError:
            created = False
        except OSError:  # no hard links here (some network or FAT volumes)
            created = not dest.exists()
            os.replace(temp_path, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_path)
        if created:
            _fsync_dir(dest.parent)
        return created

    def put_thumb(self, sha: str, data: bytes) -> None:
        dest = self.path(sha, "thumb")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=".thumb-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def modified_at(self, sha: str, size: Size = "full") -> float:
        return self.path(sha, size).stat().st_mtime

    def touch(self, sha: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path(sha))


def _subdirs(folder: Path) -> Iterator[Path]:
    for entry in os.scandir(folder):
        if entry.is_dir() and len(entry.name) == 2:
            yield Path(entry.path)


def _fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable: the contract promises 201 means stored."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open folders; NTFS journals anyway
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ImageAnalysis:
    """What one decode of an image yields; GPS and thumbnail stay out of ``repr`` (and logs).

    ``width``/``height`` are of the upright image. ``taken_at`` is aware when the camera wrote
    an offset (``taken_at_has_offset``), otherwise the camera's naive wall-clock time.
    """

    mime_type: str
    width: int
    height: int
    phash: str
    taken_at: datetime | None
    taken_at_has_offset: bool
    gps_lat: float | None = field(repr=False)
    gps_lon: float | None = field(repr=False)
    thumbnail: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PhotoResult:
    """A stored photo, as the HTTP layer records it; ``created`` tells 201 from 200."""

    sha256: str
    created: bool
    size_bytes: int
    mime_type: str
    width: int
    height: int
    phash: str
    taken_at: datetime | None
    gps_lat: float | None = field(repr=False)
    gps_lon: float | None = field(repr=False)
    taken_at_has_offset: bool = False


def _result(sha: str, created: bool, size: int, info: ImageAnalysis) -> PhotoResult:
    return PhotoResult(
        sha256=sha, created=created, size_bytes=size, mime_type=info.mime_type,
        width=info.width, height=info.height, phash=info.phash, taken_at=info.taken_at,
        gps_lat=info.gps_lat, gps_lon=info.gps_lon, taken_at_has_offset=info.taken_at_has_offset,
    )


# --------------------------------------------------------------------------- receiving


def receive_photo(
    storage: PhotoStorage,
    expected_sha256: str,
    stream: BinaryIO,
    *,
    max_bytes: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    thumb_size: int = DEFAULT_THUMB_SIZE,
    thumb_quality: int = DEFAULT_THUMB_QUALITY,
) -> PhotoResult:
    """Store an uploaded photo named by its SHA-256; safe to repeat and to race.

    Checks in this order, each a ``PhotoError``: the name, the size (reading stops just past
    ``max_bytes``), the hash, the type, the pixel count, a full decode. Only then is the original
    moved into place, after its thumbnail, so a stored original always has one. A photo already
    stored is read through and hash-checked, then reported with ``created=False``.
    """
    sha = normalise_sha256(expected_sha256)
    if max_bytes < 0 or chunk_size <= 0:
        raise ValueError("max_bytes must be >= 0 and chunk_size > 0")
    options = {"max_pixels": max_pixels, "thumb_size": thumb_size, "thumb_quality": thumb_quality}
    try:
        if storage.exists(sha):
            _consume(stream, sha, max_bytes, chunk_size, sink=None)
            storage.touch(sha)
            return _from_stored(storage, sha, write_thumb="if_missing", **options)

        fd, tmp_name = tempfile.mkstemp(dir=storage.temp_dir, prefix=".upload-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w+b") as fh:
                size = _consume(stream, sha, max_bytes, chunk_size, sink=fh)
                fh.flush()
                fh.seek(0)
                info = analyse_image(fh, **options)
                os.fsync(fh.fileno())
            storage.put_thumb(sha, info.thumbnail)
            created = storage.put_original(sha, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except PhotoError as exc:
        log.info("photo refused", extra={"sha256": sha, "code": exc.code})
        raise
    if created:
        log.info("photo stored", extra={"sha256": sha, "size_bytes": size})
    else:
        storage.touch(sha)
    return _result(sha, created, size, info)


def _consume(stream: BinaryIO, sha: str, max_bytes: int, chunk_size: int,
             sink: BinaryIO | None) -> int:
    """Read the body in chunks, hashing (and maybe writing) it; never past ``max_bytes + 1``."""
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = stream.read(min(chunk_size, max_bytes - total + 1))
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise PhotoTooLarge(max_bytes)
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    actual = digest.hexdigest()
    if actual != sha:
        raise PhotoHashMismatch(sha, actual)
    return total


def process_existing(
    storage: PhotoStorage,
    sha: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    thumb_size: int = DEFAULT_THUMB_SIZE,
    thumb_quality: int = DEFAULT_THUMB_QUALITY,
) -> PhotoResult:
    """(Re)derive the thumbnail and metadata of a stored original, e.g. after a new thumb size.

    ``FileNotFoundError`` when the original is not stored; the original is never changed.
    """
    return _from_stored(storage, normalise_sha256(sha), write_thumb="always",
                        max_pixels=max_pixels, thumb_size=thumb_size, thumb_quality=thumb_quality)


def _from_stored(storage: PhotoStorage, sha: str, *, write_thumb: Literal["always", "if_missing"],
                 **options: int) -> PhotoResult:
    with storage.open(sha) as fh:
        size = os.fstat(fh.fileno()).st_size
        info = analyse_image(fh, **options)
    if write_thumb == "always" or not storage.path(sha, "thumb").is_file():
        storage.put_thumb(sha, info.thumbnail)
    return _result(sha, False, size, info)


# --------------------------------------------------------------------------- image analysis


def sniff_mime_type(head: bytes) -> str | None:
    """The supported type the first bytes announce, or None: the name of a file proves nothing."""
    if head.startswith(b"\xff\xd8\xff"):
        return MIME_JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MIME_PNG
    if head[4:8] == b"ftyp":
        box_end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[8:12]} | {head[i:i + 4] for i in range(16, box_end - 3, 4)}
        if brands & _HEIC_BRANDS:
            return MIME_HEIC
    return None


def analyse_image(
    source: BinaryIO | Path | str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    thumb_size: int = DEFAULT_THUMB_SIZE,
    thumb_quality: int = DEFAULT_THUMB_QUALITY,
) -> ImageAnalysis:
    """Validate an image and derive everything from one decode; ``PhotoError`` when refused.

    JPEGs decode in draft mode (libjpeg scales by 1/2…1/8 while decoding), which still reads every
    byte of the scan, so truncation is caught, at a fraction of the cost. The thumbnail and phash
    are made from the upright image (``ImageOps.exif_transpose``).
    """
    with contextlib.ExitStack() as stack:
        fh = source if hasattr(source, "read") else stack.enter_context(open(source, "rb"))
        start = fh.tell()
        mime = sniff_mime_type(fh.read(_SNIFF_BYTES))
        fh.seek(start)
        if mime is None:
            raise PhotoUnsupportedType("Photo must be a JPEG, PNG or HEIC image.")
        img = stack.enter_context(_open_image(fh, mime, max_pixels))
        return _analyse_open(img, mime, thumb_size, thumb_quality)


def _open_image(fh: BinaryIO, mime: str, max_pixels: int) -> Image.Image:
    """Read the header only; refuse pixel bombs before a single pixel is decoded.

    Our own limit is checked on ``width * height``; Pillow's global ``MAX_IMAGE_PIXELS`` check
    (a warning, or an error past twice the limit) is turned into the same refusal, so whichever
    is lower wins and the global is never changed.
    """
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fh, formats=_PIL_FORMATS[mime])
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise PhotoTooManyPixels(max_pixels) from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's parsers raise anything on hostile bytes
        raise PhotoInvalidImage("Photo is not a valid image.") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        img.close()
        raise PhotoInvalidImage("Photo has no pixels.")
    if width * height > max_pixels:
        img.close()
        raise PhotoTooManyPixels(max_pixels, width * height)
    return img


def _analyse_open(img: Image.Image, mime: str, thumb_size: int,
                  thumb_quality: int) -> ImageAnalysis:
    width, height = img.size
    try:
        if mime == MIME_JPEG:
            img.draft("RGB", (thumb_size, thumb_size))
        img.load()
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt data surfaces here
        raise PhotoInvalidImage("Photo is truncated or corrupt.") from exc
    exif = img.getexif()
    taken_at, has_offset = _capture_time(exif)
    lat, lon = _gps(exif)
    if exif.get(_TAG_ORIENTATION) in (5, 6, 7, 8):
        width, height = height, width
    ImageOps.exif_transpose(img, in_place=True)
    thumb = _thumbnail(img, thumb_size)
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=thumb_quality, icc_profile=img.info.get("icc_profile"))
    return ImageAnalysis(
        mime_type=mime, width=width, height=height, phash=str(imagehash.phash(thumb)),
        taken_at=taken_at, taken_at_has_offset=has_offset, gps_lat=lat, gps_lon=lon,
        thumbnail=buf.getvalue(),
    )


def _thumbnail(img: Image.Image, size: int) -> Image.Image:
    """An RGB or L image whose longest side is ``size``; transparency flattened onto white."""
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    if img.mode in ("I", "F"):  # 16-bit grey: scale, since a plain convert clips at 255
        img = img.point(lambda v: v / 257).convert("L")
    if img.mode not in ("RGB", "L", "RGBA", "LA"):
        alpha = img.mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if alpha else "RGB")
    thumb = img.copy() if img.width <= size and img.height <= size else img.resize(
        _fit(img.size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if thumb.mode in ("RGBA", "LA"):
        background = Image.new("RGB", thumb.size, (255, 255, 255))
        background.paste(thumb.convert("RGBA"), mask=thumb.getchannel("A"))
        thumb = background
    return thumb


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    width, height = size
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _capture_time(exif: Image.Exif) -> tuple[datetime | None, bool]:
    """DateTimeOriginal, aware when OffsetTimeOriginal is present; naive otherwise.

    No zone is assumed: Indonesia spans UTC+7, +8 and +9, and the server knows the visit's area.
    """
    sub = exif.get_ifd(_IFD_EXIF)
    raw = _text(sub.get(_TAG_DATETIME_ORIGINAL))
    if not raw:
        return None, False
    try:
        taken = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:  # "0000:00:00 00:00:00", blanks, garbage
        return None, False
    offset = re.fullmatch(r"([+-])(\d{2}):(\d{2})", _text(sub.get(_TAG_OFFSET_TIME_ORIGINAL)))
    if offset:
        sign = -1 if offset[1] == "-" else 1
        delta = timedelta(hours=int(offset[2]), minutes=int(offset[3]))
        if delta <= timedelta(hours=14):
            return taken.replace(tzinfo=timezone(sign * delta)), True
    return taken, False


def _gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    """Latitude and longitude in signed degrees, or (None, None) when absent or implausible."""
    gps = exif.get_ifd(_IFD_GPS)
    if not gps or _text(gps.get(_GPS_STATUS)).upper() == "V":  # V: no fix ("void")
        return None, None
    lat = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), "S")
    lon = _degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), "W")
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None, None
    return lat, lon


def _degrees(value: object, ref: object, negative: str) -> float | None:
    """Degrees, minutes, seconds (rationals) to signed degrees."""
    if not isinstance(value, tuple | list) or not 1 <= len(value) <= 3:
        return None
    try:
        parts = [float(v) for v in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(p) for p in parts):  # a rational over zero is NaN
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts))
    return -degrees if _text(ref).upper() == negative else degrees


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""


def phash_distance(a_hex: str, b_hex: str) -> int:
    """Hamming distance of two 64-bit phashes: 0 is the same picture, above ~20 unrelated."""
    a, b = a_hex.lower(), b_hex.lower()
    if not (_PHASH_RE.fullmatch(a) and _PHASH_RE.fullmatch(b)):
        raise ValueError("a phash is 16 hex characters")
    return (int(a, 16) ^ int(b, 16)).bit_count()


# --------------------------------------------------------------------------- clean-up


def remove_stale_temp_files(storage: PhotoStorage, older_than_seconds: float,
                            now: float | None = None) -> int:
    """Delete temp files a crash or a dropped upload left; how many went.

    ``older_than_seconds`` must exceed the slowest upload (a day is safe): a live upload's
    file is touched by every chunk, but one stalled longer than that would lose its file.
    """
    now = time.time() if now is None else now
    removed = 0
    for entry in os.scandir(storage.temp_dir):
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file() and now - entry.stat().st_mtime > older_than_seconds:
                os.unlink(entry.path)
                removed += 1
    if removed:
        log.info("stale photo temp files removed", extra={"count": removed})
    return removed


def remove_unreferenced(
    storage: PhotoStorage,
    referenced: Callable[[str], bool] | Collection[str],
    grace_seconds: float,
    now: float | datetime | None = None,
) -> list[str]:
    """Delete photos no visit references, once untouched for ``grace_seconds``; their hashes.

    The grace period covers the gap between a photo's upload and the push of its visit (photos
    usually come first), and a snapshot of ``referenced`` taken before a new upload. Thumbnails
    whose original is gone (a crash between the two writes) go the same way.
    """
    is_referenced = referenced if callable(referenced) else referenced.__contains__
    if now is None:
        now = time.time()
    elif isinstance(now, datetime):
        now = now.timestamp()
    removed: list[str] = []
    for size in ("full", "thumb"):
        for sha in list(storage.iter_hashes(size)):
            if is_referenced(sha) or (size == "thumb" and storage.exists(sha)):
                continue
            try:
                age = now - storage.modified_at(sha, size)
            except FileNotFoundError:
                continue
            if age > grace_seconds and storage.delete(sha):
                removed.append(sha)
    if removed:
        log.info("unreferenced photos removed", extra={"count": len(removed)})
    return removed
