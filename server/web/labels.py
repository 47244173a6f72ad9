"""Indonesian words for the pages, and the Jinja filters that format values for people."""

from __future__ import annotations

import datetime as dt
import json

from flask import Flask

WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

KINDS = {
    "field_mismatch": "Nilai berbeda",
    "concurrent_update": "Perubahan bersamaan",
    "invalid_identity": "NIK/KK tidak valid",
    "duplicate_identity": "NIK ganda",
    "deceased_receiving_aid": "Meninggal menerima bansos",
    "moved_receiving_aid": "Pindah menerima bansos",
    "inclusion_error": "Salah sasaran (inklusi)",
    "exclusion_error": "Terlewat (eksklusi)",
    "location_outside_area": "Lokasi di luar wilayah",
    "location_far": "Lokasi jauh dari alamat",
    "photo_reused": "Foto dipakai ulang",
    "photo_mismatch": "Waktu/tempat foto tidak cocok",
    "visit_too_short": "Kunjungan terlalu singkat",
    "impossible_travel": "Perjalanan mustahil",
    "duplicate_visit": "Kunjungan ganda",
    "household_not_found": "Keluarga tidak ditemukan",
    "upstream_changed": "Registri berubah",
}

CONFLICT_STATUSES = {"open": "Terbuka", "resolved": "Diputuskan", "dismissed": "Diabaikan"}

SEVERITIES = {"hard": "Berat", "soft": "Sedang", "info": "Info"}

DECISIONS = {
    "accept_visit": "Terima nilai kunjungan",
    "keep_registry": "Pertahankan data registri",
    "set_value": "Tetapkan nilai",
    "dismiss": "Abaikan temuan (sah)",
}

VISIT_STATUSES = {
    "waiting_photos": "Menunggu foto", "queued": "Antre", "processing": "Diproses",
    "held": "Ditahan", "verified": "Terverifikasi", "needs_review": "Perlu ditinjau",
    "approved": "Disetujui", "rejected": "Ditolak", "returned": "Dikembalikan",
    "failed": "Gagal",
}

REVIEW_DECISIONS = {
    "approve": "Setujui",
    "reject": "Tolak",
    "return": "Kembalikan ke enumerator",
}

LAYERS = {"registry": "Registri DTSEN", "verified": "Data terverifikasi"}

SOURCES = {"registry_import": "Impor registri", "visit": "Kunjungan (otomatis)",
           "review": "Keputusan peninjau"}

REGISTRY_KINDS = {"created": "baru", "changed": "berubah", "removed": "dihapus"}


def kind_label(kind: str | None) -> str:
    return KINDS.get(kind or "", kind or "—")


def when(value) -> str:
    """A time in Jakarta's clock (WIB), short: ``03-02-2026 09:25 WIB``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")
    return str(value)


def show(value) -> str:
    """A field's value as a person reads it: Ya/Tidak, a dash for nothing, JSON for groups."""
    if value is None or value == "":
        return "—"
    if value is True:
        return "Ya"
    if value is False:
        return "Tidak"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def number(value) -> str:
    """Thousands with a dot, as Indonesians write them: ``120.431``."""
    if value is None:
        return "0"
    return f"{int(value):,}".replace(",", ".")


def percent(value) -> str:
    """``12,5%`` with a decimal comma; whole numbers without one."""
    value = float(value or 0)
    text = f"{value:.0f}" if value.is_integer() else f"{value:.1f}".replace(".", ",")
    return text + "%"


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        kind=kind_label, when=when, show=show, number=number, percent=percent,
        conflict_status=lambda s: CONFLICT_STATUSES.get(s, s),
        severity=lambda s: SEVERITIES.get(s, s),
        decision=lambda s: DECISIONS.get(s, REVIEW_DECISIONS.get(s, s or "—")),
        visit_status=lambda s: VISIT_STATUSES.get(s, s or "—"),
        layer=lambda s: LAYERS.get(s, s),
        source=lambda s: SOURCES.get(s, s or "—"),
        registry_kind=lambda s: REGISTRY_KINDS.get(s, s or "—"),
    )
    from server.web.values import Card, indonesian_date

    app.jinja_env.filters["tanggal"] = lambda d: "—" if d is None else indonesian_date(d)
    app.jinja_env.tests["card"] = lambda v: isinstance(v, Card)
