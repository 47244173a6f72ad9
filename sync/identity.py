"""Identity checks for NIK and KK numbers, with reasons instead of a yes/no.

Used on import (an invalid NIK is stored and flagged, never dropped) and by reconciliation. A
check returns a list of :class:`Issue`; an empty list means the number passed. Messages never
contain the number itself: they may be logged or shown to people who may not see personal data.

NIK layout: region (6, the Kemendagri kecamatan code without dots), birth date DDMMYY with 40
added to the day for women (6), serial (4). KK layout: region (6), date of entry DDMMYY (6),
serial (4). Two-digit years are resolved to the latest century that does not put the date in
the future (``resolve_year``).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from dataclasses import dataclass

from sync.areas import WILAYAH_CSV

# Kemendagri province codes (38 provinces, Kepmendagri 2025). A NIK issued outside Jakarta is
# only checked for a plausible province and non-zero kabupaten and kecamatan digits.
PROVINCE_CODES = frozenset(
    "11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36 51 52 53 61 62 63 64 65 "
    "71 72 73 74 75 76 81 82 91 92 93 94 95 96".split()
)
JAKARTA = "31"
# KK numbers in use carry entry dates from the civil registry's computerisation on; a two-digit
# year that would be in the future and also before this year is read as a future date.
KK_EARLIEST_YEAR = 1970


@dataclass(frozen=True, slots=True)
class Issue:
    """One reason a number fails a check: a stable ``code`` and a human message."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class NikParts:
    """What a well-formed NIK says: region, birth date (None if impossible), sex, serial."""

    region: str
    birth_date: dt.date | None
    sex: str
    serial: str


@functools.cache
def jakarta_kecamatan() -> frozenset[str]:
    """Six-digit codes of Jakarta's 44 kecamatan, the region part of a Jakarta NIK."""
    with open(WILAYAH_CSV, newline="", encoding="utf-8") as fh:
        return frozenset(
            row["kode_kemendagri"].replace(".", "")
            for row in csv.DictReader(fh)
            if row["tingkat"] == "kecamatan"
        )


@functools.lru_cache(maxsize=8192)  # a few thousand kecamatan codes; pure
def region_known(region: str) -> bool:
    """A Jakarta kecamatan that exists, or elsewhere a plausible province/kabupaten/kecamatan."""
    if region[:2] == JAKARTA:
        return region in jakarta_kecamatan()
    return region[:2] in PROVINCE_CODES and region[2:4] != "00" and region[4:6] != "00"


def resolve_year(yy: int, month: int, day: int, today: dt.date) -> int:
    """The 4-digit year of a DDMMYY date: this century unless that is after ``today``."""
    year = today.year - today.year % 100 + yy
    if (year, month, day) > (today.year, today.month, today.day):
        year -= 100
    return year


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _is_16_digits(number) -> bool:
    """A str of 16 ASCII digits, nothing to strip: the usual NIK or KK number."""
    return type(number) is str and len(number) == 16 and number.isdigit() and number.isascii()


# "00".."99" -> 0..99: int() of two ASCII digits, for check_nik (a lookup costs less).
_TWO_DIGITS = {f"{i:02d}": i for i in range(100)}
# Days of each month in a year that is not a leap year (index 1-12).
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _date_valid(yy: int, month: int, day: int, today: dt.date) -> bool:
    """``_date(resolve_year(yy, month, day, today), month, day) is not None``, in one call."""
    if 1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[month] and today.year >= 200:
        # A day every year has (not 29 February), and the resolved year is one dt.date takes
        # (100-9999): valid whichever century resolve_year picks, so none is worked out.
        return True
    year = today.year - today.year % 100 + yy
    if (year, month, day) > (today.year, today.month, today.day):
        year -= 100
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _shape(number, prefix: str, label: str) -> tuple[str | None, list[Issue]]:
    """The 16-digit string, or the issues that make it no such string."""
    if _is_16_digits(number):
        return number, []  # the usual case: nothing to strip
    if number is None or (isinstance(number, str) and not number.strip()):
        return None, [Issue(f"{prefix}_missing", f"{label} is empty")]
    text = str(number).strip()
    if not text.isdigit() or not text.isascii():
        return None, [Issue(f"{prefix}_not_digits", f"{label} has characters other than digits")]
    if len(text) != 16:
        return None, [Issue(f"{prefix}_wrong_length", f"{label} has {len(text)} digits, not 16")]
    return text, []


def parse_nik(nik, today: dt.date | None = None) -> NikParts | None:
    """Split a 16-digit NIK into its parts; None when it is not 16 digits."""
    text, issues = _shape(nik, "nik", "NIK")
    if issues:
        return None
    today = today or dt.date.today()
    day, month, yy = int(text[6:8]), int(text[8:10]), int(text[10:12])
    sex = "P" if day > 40 else "L"
    if day > 40:
        day -= 40
    birth = _date(resolve_year(yy, month, day, today), month, day) if day else None
    return NikParts(text[:6], birth, sex, text[12:])


def check_nik(
    nik,
    *,
    sex: str | None = None,
    birth_date: dt.date | str | None = None,
    today: dt.date | None = None,
) -> list[Issue]:
    """Check a NIK, and that it agrees with the member's own sex (L/P) and birth date.

    Codes: ``nik_missing``, ``nik_not_digits``, ``nik_wrong_length``, ``nik_region_unknown``,
    ``nik_birth_date_invalid``, ``nik_serial_zero``, ``nik_sex_mismatch``,
    ``nik_birth_date_mismatch``. The birth date is compared on day, month and the two-digit
    year, so the century guess never causes a mismatch.
    """
    text, issues = _shape(nik, "nik", "NIK")
    if issues:
        return issues
    if not region_known(text[:6]):
        issues.append(Issue("nik_region_unknown",
                            "NIK digits 1-6 are not a known kecamatan or province code"))
    day, month, yy = _TWO_DIGITS[text[6:8]], _TWO_DIGITS[text[8:10]], _TWO_DIGITS[text[10:12]]
    nik_sex = "P" if day > 40 else "L"
    real_day = day - 40 if day > 40 else day
    today = today or dt.date.today()
    if real_day < 1 or not _date_valid(yy, month, real_day, today):
        issues.append(Issue("nik_birth_date_invalid",
                            "NIK digits 7-12 are not a date (day 1-31, or 41-71 for women)"))
    elif birth_date is not None:
        if isinstance(birth_date, str):
            birth_date = dt.date.fromisoformat(birth_date)
        if (birth_date.day, birth_date.month, birth_date.year % 100) != (real_day, month, yy):
            issues.append(Issue("nik_birth_date_mismatch",
                                "the birth date in the NIK differs from the member's"))
    if text[12:] == "0000":
        issues.append(Issue("nik_serial_zero", "NIK digits 13-16 are 0000"))
    if sex is not None and sex != nik_sex:
        issues.append(Issue("nik_sex_mismatch", "the sex in the NIK differs from the member's"))
    return issues


def check_kk(no_kk, *, today: dt.date | None = None) -> list[Issue]:
    """Check a KK number: region, a real date of entry not in the future, non-zero serial.

    Codes: ``kk_missing``, ``kk_not_digits``, ``kk_wrong_length``, ``kk_region_unknown``,
    ``kk_date_invalid``, ``kk_date_future``, ``kk_serial_zero``.
    """
    text, issues = _shape(no_kk, "kk", "KK number")
    if issues:
        return issues
    if not region_known(text[:6]):
        issues.append(Issue("kk_region_unknown",
                            "KK digits 1-6 are not a known kecamatan or province code"))
    day, month, yy = int(text[6:8]), int(text[8:10]), int(text[10:12])
    today = today or dt.date.today()
    year = resolve_year(yy, month, day, today)
    if _date(year, month, day) is None:
        issues.append(Issue("kk_date_invalid", "KK digits 7-12 are not a date"))
    elif year < KK_EARLIEST_YEAR:
        # 010130 read in 2026: 2030 is ahead and 1930 predates any KK number in use.
        issues.append(Issue("kk_date_future", "the date of entry in the KK is in the future"))
    if text[12:] == "0000":
        issues.append(Issue("kk_serial_zero", "KK digits 13-16 are 0000"))
    return issues


def issues_as_json(issues: list[Issue]) -> list[dict[str, str]] | None:
    """The stored form of a check: a list of ``{code, message}``, or None when it passed."""
    return [i.as_dict() for i in issues] or None
