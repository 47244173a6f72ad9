"""Hostile bytes: whatever arrives, the only failure is a ``PhotoError`` (never a 500)."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.photos import PhotoError, analyse_image

from .conftest import encode, photo_like

SMALL_JPEG = encode(photo_like(30, (48, 32)), "JPEG", quality=70)
SMALL_PNG = encode(photo_like(31, (48, 32)), "PNG")


@st.composite
def damaged(draw) -> bytes:
    """A real small JPEG or PNG, cut short and with a few bytes overwritten."""
    data = bytearray(draw(st.sampled_from([SMALL_JPEG, SMALL_PNG])))
    del data[draw(st.integers(8, len(data))):]
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(damaged(), st.binary(max_size=200)))
def test_damaged_or_random_bytes_raise_only_photo_errors(data):
    try:
        info = analyse_image(io.BytesIO(data))
    except PhotoError:
        return
    assert info.width > 0 and info.thumbnail.startswith(b"\xff\xd8")
