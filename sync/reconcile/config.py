"""Every threshold of reconciliation, in one frozen dataclass with documented defaults.

``Config()`` is the default; change one value with ``dataclasses.replace(Config(), x=...)`` or
``Config(x=...)``. Paths are *generic* field paths: ``rumah.luas_lantai_m2`` for a family field,
``anggota[].nama`` for a member field, ``anggota[]`` for a member's presence (added/removed).
See ``docs/reconciliation.md`` for the reasons behind each default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(d)


@dataclass(frozen=True)
class Config:
    # --- comparing values --------------------------------------------------------------------
    # Numeric tolerance per generic path: (relative, absolute); two numbers are equal when
    # |a - b| <= max(relative * max(|a|, |b|), absolute). Paths not listed compare exactly.
    numeric_tolerance: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: _frozen({"rumah.luas_lantai_m2": (0.10, 2.0)})
    )
    # Paths compared as personal names: rapidfuzz, ignoring case, spaces and diacritics.
    name_paths: frozenset[str] = frozenset({"anggota[].nama"})
    # Minimum name similarity (rapidfuzz 0-100) for two names to be the same value.
    name_threshold: float = 90.0
    # Text paths holding a zero-padded number ("3" == "003").
    numeric_text_paths: frozenset[str] = frozenset({"rt", "rw"})

    # --- matching members ---------------------------------------------------------------------
    # Minimum name similarity when members are matched on name + birth date (after NIK).
    member_name_threshold: float = 85.0

    # --- three-way outcome ---------------------------------------------------------------------
    # Generic paths whose proposed changes are applied without review; any other proposed change
    # becomes a soft ``field_mismatch``. None of these bears on aid eligibility.
    auto_accept: frozenset[str] = frozenset(
        {"alamat", "rt", "rw", "anggota[].sekolah", "anggota[].status_kawin"}
    )
    # Generic paths whose *fills* (the record holds the field blank, at the visit's base too,
    # and the visit gives a value) are still proposed changes, raised as ``field_mismatch``
    # unless auto-accepted. A fill of any other path is ``filled``: applied like an
    # auto-accepted change, no conflict. Settings: ``REVIEW_FILLS`` (``from_settings``).
    review_fills: frozenset[str] = frozenset()

    # --- codes of the form (verifikasi_keluarga v1) ----------------------------------------------
    # hasil_kunjungan: the family was found (the questionnaire was asked).
    found_codes: frozenset[int] = frozenset({1, 2, 9})
    # hasil_kunjungan codes that make ``household_not_found`` (3 not found, 4 moved within
    # Indonesia, 5 moved abroad, 6 building gone, 10 duplicate record). 7 (refused) and 8 (no
    # respondent) are not: the family is there, it needs another visit.
    not_found_codes: frozenset[int] = frozenset({3, 4, 5, 6, 10})
    # hasil_kunjungan codes meaning the whole family moved away (for ``moved_receiving_aid``).
    family_moved_codes: frozenset[int] = frozenset({4, 5})
    # status_keberadaan (item 404) of a member: 1 lives here, 2 died, 3 moved within Indonesia,
    # 4 moved abroad, 5 new member, 6 not found.
    member_died_codes: frozenset[int] = frozenset({2})
    member_moved_codes: frozenset[int] = frozenset({3, 4})
    member_gone_codes: frozenset[int] = frozenset({2, 3, 4, 6})

    # --- rules -------------------------------------------------------------------------------
    # Aid flags (``program.<name>``) that count as "receives aid".
    aid_programs: tuple[str, ...] = ("pkh", "bpnt", "pbi_jk", "bansos_daerah")
    # inclusion_error: the highest desil each program may go to.
    pkh_max_desil: int = 4
    bpnt_max_desil: int = 5      # Sembako / BPNT
    pbi_max_desil: int = 5       # PBI-JK
    # exclusion_error: families at or below this desil should receive some aid.
    exclusion_max_desil: int = 4
    # exclusion_error: minimum steps on the housing badness scale (see rules.HOUSING_RANK).
    housing_worse_min_steps: int = 1
    # location_outside_area: slack beyond the GPS accuracy (polygons are simplified).
    area_margin_m: float = 25.0
    # Accuracy assumed when the visit gives none.
    default_accuracy_m: float = 30.0
    # location_far: the greatest distance from the registered point, plus the GPS accuracy.
    far_distance_m: float = 300.0
    # photo_reused: the greatest perceptual-hash distance (of 64 bits) still counted as the same
    # picture (docs/photos.md suggests ~8).
    phash_max_distance: int = 8
    # visit_too_short: minimum duration of an interview, and of a visit without interview.
    min_interview_seconds: float = 300.0
    min_visit_seconds: float = 30.0
    # impossible_travel: the greatest believable speed between consecutive visits, and the
    # distance under which it is not checked (GPS jitter, neighbours).
    max_speed_kmh: float = 60.0
    travel_min_distance_m: float = 500.0
    # photo_mismatch: how long before the visit started (or after it ended) a photo may have
    # been taken, and the UTC offset assumed for an EXIF time written without one (WIB; the
    # slack covers WITA and WIT). A photo farther than far_distance_m plus its accuracy from
    # the registered point is taken_far.
    photo_time_slack_seconds: float = 6 * 3600.0
    photo_naive_utc_offset_hours: float = 7.0

    # --- the worker ----------------------------------------------------------------------------
    # A visit whose predecessor in its offline chain (same branch_id, base_version - 1) has not
    # been reconciled is held; after this many days it is forced through and flagged
    # ``out_of_order`` (ODK Central holds its backlog for 5 days too).
    backlog_hold_days: float = 5.0
    # A visit whose processing raised this many times is set aside as ``failed``.
    max_attempts: int = 5

    # Severity of each conflict kind ("hard" | "soft" | "info").
    severity: Mapping[str, str] = field(default_factory=lambda: _frozen({
        "field_mismatch": "soft",
        "invalid_identity": "hard",          # malformed NIK / KK
        "invalid_identity_mismatch": "soft",  # sex or birth date disagree with the NIK
        "duplicate_identity": "hard",
        "deceased_receiving_aid": "hard",
        "moved_receiving_aid": "soft",
        "inclusion_error": "soft",
        "exclusion_error": "soft",
        "location_outside_area": "soft",
        "location_far": "soft",
        "photo_reused": "hard",              # same bytes
        "photo_reused_similar": "soft",      # perceptual hash within phash_max_distance
        "photo_mismatch": "soft",            # taken long before/after the visit, or far away
        "visit_too_short": "soft",
        "impossible_travel": "hard",
        "duplicate_visit": "soft",
        "household_not_found": "hard",
        "upstream_changed": "hard",
        "out_of_order": "soft",              # forced through without its chain predecessor
    }))
    # Rules to run (names of rules.RULES); None runs them all.
    enabled_rules: frozenset[str] | None = None


DEFAULT = Config()


def parse_paths(text: str | None) -> frozenset[str]:
    """``"aset.lahan, anggota[].disabilitas"`` -> the paths, blanks dropped."""
    return frozenset(p.strip() for p in (text or "").split(",") if p.strip())


def from_settings(settings: Mapping) -> Config:
    """The reconciliation config of an app's settings (``REVIEW_FILLS``); ``DEFAULT`` when
    they change nothing. A path that names no record field is refused (ValueError): a typo
    would otherwise leave fills of the field it meant unreviewed."""
    fills = settings.get("REVIEW_FILLS") or ()
    fills = parse_paths(fills) if isinstance(fills, str) else frozenset(fills)
    if not fills:
        return DEFAULT
    from sync.models.registry import FAMILY_FIELDS, MEMBER_FIELDS

    known = {path for path, _c, _t in FAMILY_FIELDS}
    known.update(f"anggota[].{key}" for key, _c, _t in MEMBER_FIELDS)
    unknown = sorted(fills - known)
    if unknown:
        raise ValueError(f"REVIEW_FILLS: not a generic field path: {', '.join(unknown)} "
                         "(e.g. aset.lahan, anggota[].disabilitas)")
    return Config(review_fills=fills)
