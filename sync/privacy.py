"""Masking personal identifiers (UU PDP No. 27/2022) for lists, exports and logs."""

from __future__ import annotations


def mask_number(value: str | None) -> str | None:
    """Keep the region code (6 digits) and the last 2 of a NIK or KK number; hide the rest.

    The region and a short tail are enough to tell rows apart on a list; the birth date and
    serial in the middle, which identify a person, are hidden.
    """
    if not value:
        return value
    if len(value) <= 8:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 8) + value[-2:]


def mask_name(value: str | None) -> str | None:
    """``Siti Aminah`` → ``S*** A*****``: initials, so a supervisor can still tell rows apart."""
    if not value:
        return value
    return " ".join(word[0] + "*" * (len(word) - 1) for word in value.split())


def exception_summary(error: BaseException, depth: int = 8) -> dict:
    """What a log line may say of an exception: its type and where it was raised, never its
    message (which may quote a NIK, a name or a whole row)."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    return {"exception": type(error).__name__,
            "frames": [f"{f.filename}:{f.lineno} {f.name}" for f in frames[-depth:]]}
