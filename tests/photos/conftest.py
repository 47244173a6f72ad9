"""Real image files made with Pillow, and a storage in ``tmp_path``; no Flask here."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sync.photos import LocalPhotoStorage, PhotoResult, receive_photo

MAX_BYTES = 5 * 1024 * 1024


def photo_like(seed: int = 1, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Gradients, noise and shapes: enough structure for a meaningful perceptual hash."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6.28, 3)
    channels = [
        127 + 100 * np.sin(x / rng.uniform(40, 120) + phase[0]),
        127 + 100 * np.cos(y / rng.uniform(40, 120) + phase[1]),
        (x + y) / (width + height) * 255,
    ]
    arr = np.stack(channels, -1) + rng.normal(0, 8, (height, width, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        side = int(rng.integers(width // 10, width // 3))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse([x0, y0, x0 + side, y0 + side], fill=colour)
    return img


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def receive(storage: LocalPhotoStorage, data: bytes, name: str | None = None,
            **options) -> PhotoResult:
    options.setdefault("max_bytes", MAX_BYTES)
    return receive_photo(storage, name or sha(data), io.BytesIO(data), **options)


def stored_files(storage: LocalPhotoStorage) -> list[Path]:
    return sorted(p.relative_to(storage.root) for p in storage.root.rglob("*") if p.is_file())


@pytest.fixture
def storage(tmp_path) -> LocalPhotoStorage:
    return LocalPhotoStorage(tmp_path / "photos")


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    return encode(photo_like(1), "JPEG", quality=90)


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    return encode(photo_like(2, (320, 240)), "PNG")
