"""Benchmark: thumbnail + phash + EXIF of a 12 MP JPEG against Pillow's draft-mode decode alone.

    .venv/bin/python -m bench.photos_thumbnail [--runs 15]

Target (issue): deriving everything from a 12 MP JPEG costs at most 2x a bare draft-mode decode
(``Image.open``, ``draft("RGB", (320, 320))``, ``load()``) of the same file. The image is made
here: 4000x3000, gradients + noise + shapes (not trivially compressible), quality 90, with EXIF
orientation 6, capture time and GPS. The upload's SHA-256 and a whole ``receive_photo`` (hash,
temp file, fsync, thumbnail, link) are timed too, for information only. Exit status 1 on failure.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sync.photos import LocalPhotoStorage, analyse_image, receive_photo

TARGET = 2.0
SIZE = (4000, 3000)


def make_photo(path: Path) -> None:
    """A photo-like 12 MP JPEG with the EXIF a phone writes (orientation, time, GPS)."""
    rng = np.random.default_rng(12)
    width, height = SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    arr = np.stack([
        x / width * 200 + 30 * np.sin(y / 90),
        y / height * 180 + 40 * np.cos(x / 150),
        (x + y) / (width + height) * 160 + 20,
    ], -1)
    arr += rng.normal(0, 18, arr.shape).astype(np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(150):
        x0, y0, side = (int(v) for v in (rng.integers(0, width), rng.integers(0, height),
                                         rng.integers(40, 600)))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x0 + side, y0 + side * 0.7], fill=colour)
        else:
            draw.rectangle([x0, y0, x0 + side * 1.3, y0 + side], outline=colour,
                           width=int(rng.integers(3, 30)))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769).update({0x9003: "2025:03:14 09:26:53", 0x9011: "+07:00"})
    exif.get_ifd(0x8825).update({1: "S", 2: (6.0, 9.0, 1.5), 3: "E", 4: (106.0, 44.0, 2.25)})
    img.save(path, "JPEG", quality=90, exif=exif)


def draft_decode(path: Path) -> None:
    with Image.open(path) as img:
        img.draft("RGB", (320, 320))
        img.load()


def median_ms(*fns: Callable[[], object], runs: int) -> list[float]:
    """Median milliseconds of each function; runs interleave so drift hits all alike."""
    for fn in fns:
        fn()  # warm-up: imports, page cache
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, bucket in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) * 1000 for bucket in times]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-photos-") as tmp:
        path = Path(tmp) / "photo.jpg"
        make_photo(path)
        data = path.read_bytes()
        name = hashlib.sha256(data).hexdigest()

        decode, derive = median_ms(lambda: draft_decode(path), lambda: analyse_image(path),
                                   runs=args.runs)
        (sha,) = median_ms(lambda: hashlib.sha256(data).hexdigest(), runs=args.runs)

        def full_receive() -> None:
            storage = LocalPhotoStorage(Path(tempfile.mkdtemp(dir=tmp)))
            receive_photo(storage, name, io.BytesIO(data), max_bytes=20 * 1024 * 1024)

        (receive,) = median_ms(full_receive, runs=args.runs)
        info = analyse_image(path)

    ratio = derive / decode
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"machine: {cpu_model()}, Python {platform.python_version()}, "
          f"Pillow {Image.__version__}")
    print(f"image: {SIZE[0]}x{SIZE[1]} JPEG q90, {len(data) / 1e6:.2f} MB, "
          f"upright {info.width}x{info.height}, median of {args.runs} runs")
    print(f"(a) draft-mode decode alone          {decode:8.1f} ms")
    print(f"(b) thumbnail + phash + EXIF         {derive:8.1f} ms")
    print(f"    ratio (b)/(a)                    {ratio:8.2f}x  (target <= {TARGET:.0f}x): "
          f"{verdict}")
    print(f"    SHA-256 of the upload            {sha:8.1f} ms  (not in (b))")
    print(f"    whole receive_photo (incl. fsync) {receive:7.1f} ms  (not in (b))")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
