"""What each conflict kind rests on, for the conflict page: one ``Evidence`` per kind.

``build(session, user, detail, labels)`` reads the conflict's ``detail`` (the rule's
machine-readable extras, ``sync/reconcile/rules.py``) and what it points at: the other
family of a shared NIK, the other visit of a reused photo, the previous visit of an impossible
journey, the desil and the programmes of an eligibility finding, and the map of a location
finding. It also says which decision buttons fit the kind, and whether the visit can be
returned from the page (with what that does to its other open conflicts).

Visibility is decided here, server-side: another family or visit is shown (its name, its
photo, a link) only when the user may see its kelurahan (``User.covers``). Otherwise a reused
photo is one sentence, *foto di keluarga lain, di luar wilayah Anda*, with the distance between
the hashes and the date only: no photo URL, name, family id or kelurahan reaches the page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import User
from server.web.labels import KINDS, VISIT_STATUSES
from server.web.values import FormLabels, indonesian_date, indonesian_datetime, number

OUTSIDE = "foto di keluarga lain, di luar wilayah Anda"
PROGRAMS = {"pkh": "PKH", "bpnt": "BPNT/Sembako", "pbi_jk": "PBI-JK",
            "bansos_daerah": "Bansos daerah"}
IDENTITY_CODES = {
    "nik_missing": "NIK kosong", "nik_not_digits": "NIK bukan angka",
    "nik_wrong_length": "NIK tidak 16 digit",
    "nik_region_unknown": "Kode wilayah NIK (digit 1-6) tidak dikenal",
    "nik_birth_date_invalid": "Digit 7-12 NIK bukan tanggal lahir",
    "nik_serial_zero": "Nomor urut NIK (digit 13-16) 0000",
    "nik_sex_mismatch": "Jenis kelamin di NIK berbeda dengan data anggota",
    "nik_birth_date_mismatch": "Tanggal lahir di NIK berbeda dengan data anggota",
    "kk_missing": "Nomor KK kosong", "kk_not_digits": "Nomor KK bukan angka",
    "kk_wrong_length": "Nomor KK tidak 16 digit",
    "kk_region_unknown": "Kode wilayah KK tidak dikenal",
    "kk_date_invalid": "Digit 7-12 KK bukan tanggal", "kk_date_future":
    "Tanggal KK di masa depan", "kk_serial_zero": "Nomor urut KK 0000",
}
DUPLICATE_CODES = {"nik_other_family": "NIK yang sama terdaftar di keluarga lain",
                   "nik_duplicate_in_family": "NIK yang sama dipakai lebih dari satu anggota "
                                              "keluarga ini",
                   "kk_other_family": "Nomor KK yang sama terdaftar di keluarga lain"}
INCLUSION_REASONS = {"desil": "Desil di atas batas program", "car": "Memiliki mobil",
                     "pns": "Anggota bekerja sebagai PNS/TNI/Polri/BUMN/BUMD",
                     "bottled_water": "Air minum utama air kemasan bermerek",
                     "njop": "NJOP rumah di atas Rp 1 miliar"}
EXCLUSION_REASONS = {"no_aid": "Desil rendah tetapi tidak menerima bantuan apa pun",
                     "housing_worse": "Kondisi rumah terlihat lebih buruk daripada di registri"}
LIMITS = {"pkh": 4, "bpnt": 5, "pbi_jk": 5}

# The buttons that fit each kind: (decision, label, secondary). Kinds with a change of a field
# keep the three decisions; rule findings, whose field is context, get words for what
# accepting means (nothing is written to the record by either).
ACCEPT, KEEP = "accept_visit", "keep_registry"
VALUE_BUTTONS = ((ACCEPT, "Terima nilai kunjungan", False),
                 (KEEP, "Pertahankan data registri", True))
BUTTONS: dict[str, tuple] = {
    "photo_reused": (("dismiss", "Foto sah", False),),
    "photo_mismatch": (("dismiss", "Foto sah", False),),
    "location_outside_area": ((ACCEPT, "Lokasi dapat diterima", False),),
    "location_far": ((ACCEPT, "Lokasi dapat diterima", False),),
    "visit_too_short": ((ACCEPT, "Durasi dapat diterima", False),),
    "impossible_travel": ((ACCEPT, "Perjalanan dapat dijelaskan", False),),
    "duplicate_visit": ((ACCEPT, "Kunjungan ini sah", False),),
    "household_not_found": ((ACCEPT, "Benar, keluarga tidak ditemukan", False),),
    "invalid_identity": ((KEEP, "Identitas sudah dicek, biarkan", False),),
    "duplicate_identity": ((KEEP, "Sudah dicek, biarkan", False),),
    "deceased_receiving_aid": ((ACCEPT, "Benar, teruskan temuan", False),
                               (KEEP, "Temuan tidak berlaku", True)),
    "moved_receiving_aid": ((ACCEPT, "Benar, teruskan temuan", False),
                            (KEEP, "Temuan tidak berlaku", True)),
    "inclusion_error": ((ACCEPT, "Benar, teruskan temuan", False),
                        (KEEP, "Temuan tidak berlaku", True)),
    "exclusion_error": ((ACCEPT, "Benar, teruskan temuan", False),
                        (KEEP, "Temuan tidak berlaku", True)),
}
# Kinds whose values table (registry, base, visit) is the evidence itself.
VALUE_KINDS = frozenset({"field_mismatch", "concurrent_update", "upstream_changed"})
# Kinds where setting a value is a decision that fits (a NIK to correct, a field to fix).
SET_VALUE_KINDS = VALUE_KINDS | {"invalid_identity", "duplicate_identity"}
# Kinds the page offers to send back to the enumerator (the visit's ``return``).
RETURN_KINDS = frozenset({"photo_reused", "photo_mismatch", "location_outside_area", "location_far",
                          "visit_too_short", "impossible_travel", "duplicate_visit",
                          "household_not_found", "invalid_identity", "duplicate_identity"})


@dataclass
class Other:
    """Another family or visit the evidence points at. ``visible``: the user may see it;
    when False, only ``date`` and ``distance`` are filled (and the sentence is shown)."""

    visible: bool
    date: str | None = None
    distance: str | None = None
    household_id: str | None = None
    kelurahan: str | None = None
    name: str | None = None
    link: str | None = None
    thumb_url: str | None = None
    url: str | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Evidence:
    kind: str
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)  # (label, text)
    others: list[Other] = field(default_factory=list)
    others_title: str | None = None
    photo: dict | None = None  # this visit's photo (photo_reused)
    map_svg: str | None = None
    legend: list[tuple[str, str]] = field(default_factory=list)  # (swatch class, text)
    show_values: bool = True
    buttons: tuple = VALUE_BUTTONS
    set_value: bool = True
    can_return: bool = False
    return_effect: list[dict] = field(default_factory=list)  # the visit's other open ones


# --------------------------------------------------------------------------- helpers


def _date(value) -> str | None:
    if value is None:
        return None
    return indonesian_datetime(value) if isinstance(value, dt.datetime) else \
        indonesian_date(value)


def _metres(value) -> str:
    if not isinstance(value, int | float):
        return "—"
    if value >= 10_000:
        return f"{number(round(value / 1000, 1))} km ({number(round(value))} m)"
    return f"{number(round(value))} m"


def _programs(values) -> str:
    if not values:
        return "tidak ada"
    if isinstance(values, str):
        values = [values]
    return ", ".join(PROGRAMS.get(v, str(v)) for v in values)


def _area_names(session: Session, codes) -> dict[str, str]:
    from sync.models import Area

    codes = sorted({c for c in codes if c})
    if not codes:
        return {}
    return dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all())


def head_name(record: dict | None) -> str | None:
    """The family's name: its head's (hubungan 1), else its first member's."""
    members = [m for m in (record or {}).get("anggota") or () if isinstance(m, dict)]
    head = next((m for m in members if m.get("hubungan") == 1), members[0] if members else None)
    return (head or {}).get("nama") or None


def _families(session: Session, ids) -> dict[str, tuple[str, str | None]]:
    """household id -> (kelurahan code, the family's name), in two queries."""
    from sync.models import Keluarga, VerifiedRecord

    ids = sorted({i for i in ids if i})
    if not ids:
        return {}
    kel = dict(session.execute(select(Keluarga.id, Keluarga.kode_kelurahan)
                               .where(Keluarga.id.in_(ids))).all())
    docs = dict(session.execute(select(VerifiedRecord.household_id, VerifiedRecord.doc)
                                .where(VerifiedRecord.household_id.in_(ids))).all())
    return {i: (kel.get(i), head_name(docs.get(i))) for i in ids if i in kel}


def _household_link(hid: str) -> str:
    from flask import url_for

    return url_for("pages.household", household_id=hid)


def _visit_link(uuid: str) -> str:
    from flask import url_for

    return url_for("pages.visit", uuid=uuid)


# --------------------------------------------------------------------------- per kind


def _photo_reused(session, user, c, ev: Evidence) -> None:
    """This visit's photo beside each matching photo of another family's visit.

    The matches are ``conflict_detail``'s ``detail.others`` (``conflicts.photo_matches``),
    already redacted there: an entry outside the user's areas carries the distance and the date
    only, and is shown as the sentence.
    """
    from server.services.media import signed_url

    detail = c.get("detail") or {}
    sha = c.get("visit_value") if isinstance(c.get("visit_value"), str) else None
    if sha:
        ev.photo = {"thumb_url": signed_url(sha, "thumb"), "url": signed_url(sha, "full"),
                    "field": c.get("field")}
    ev.facts.append(("Cara cocok", "berkas foto sama persis (SHA-256)"
                     if detail.get("match") == "sha256" else
                     "foto hampir sama (hash perseptual)"))
    others = detail.get("others")
    if others is None:  # the conflict names no other family
        return
    visible = [o for o in others if o.get("visible")]
    families = _families(session, [o.get("household_id") for o in visible])
    names = _area_names(session, [k for k, _ in families.values()])
    for o in others:
        distance = f"{o.get('distance_bits')} dari 64 bit" + (
            " (berkas sama persis)" if o.get("exact") else "")
        when = dt.datetime.fromisoformat(o["at"]) if o.get("at") else None
        hid = o.get("household_id")
        if o.get("visible") and hid in families:
            kel, name = families[hid]
            ev.others.append(Other(
                True, date=_date(when), distance=distance, household_id=hid,
                kelurahan=names.get(kel, kel), name=name or "(tanpa nama)",
                link=_visit_link(o["visit_uuid"]), thumb_url=signed_url(o["sha256"], "thumb"),
                url=signed_url(o["sha256"], "full")))
        else:  # outside the user's areas: the sentence, the distance and the date only
            ev.others.append(Other(False, date=_date(when), distance=distance))
    if not ev.others:
        ev.facts.append(("Foto pembanding", "tidak ditemukan lagi (kunjungan lain sudah "
                                            "dihapus)"))


PHOTO_REASONS = {"taken_before": "Foto diambil sebelum kunjungan dimulai",
                 "taken_after": "Foto diambil setelah kunjungan selesai",
                 "taken_far": "Foto diambil jauh dari titik rujukan"}


def _photo_mismatch(c, ev: Evidence, labels) -> None:
    """The photo, when and where it says it was taken (EXIF, or the app's claim), and the
    visit's time or the point it was compared with."""
    from server.services.media import signed_url

    detail = c.get("detail") or {}
    sha = detail.get("sha256")
    if isinstance(sha, str):
        ev.photo = {"thumb_url": signed_url(sha, "thumb"), "url": signed_url(sha, "full"),
                    "field": c.get("field")}
    reason = detail.get("reason")
    ev.facts.append(("Foto", labels.label(c.get("field")) or c.get("field") or "—"))
    ev.facts.append(("Temuan", PHOTO_REASONS.get(reason, str(reason))))
    ev.facts.append(("Sumber", "EXIF kamera" if detail.get("source") == "exif"
                     else "keterangan aplikasi (foto tanpa EXIF)"))
    if reason in ("taken_before", "taken_after"):
        when = c.get("visit_value")
        ref = c.get("registry_value")
        ev.facts.append(("Waktu foto", _date(dt.datetime.fromisoformat(when))
                         if isinstance(when, str) else "—"))
        ev.facts.append(("Kunjungan dimulai" if reason == "taken_before"
                         else "Kunjungan selesai",
                         _date(dt.datetime.fromisoformat(ref)) if isinstance(ref, str) else "—"))
        ev.facts.append(("Selisih", _gap(detail.get("seconds"))))
    elif reason == "taken_far":
        point = c.get("visit_value") or {}
        ev.facts.append(("Jarak foto ke titik " + ("terdaftar" if detail.get("reference")
                                                   == "registered" else "kunjungan"),
                         _metres(detail.get("distance_m"))))
        if isinstance(point, dict) and point.get("accuracy_m") is not None:
            ev.facts.append(("Akurasi GPS foto", "±" + _metres(point["accuracy_m"])))


def _location(session, c, ev: Evidence, *, outside: bool) -> None:
    from server.svg import kelurahan_map_svg
    from sync.reconcile.rules import haversine_m

    visit = c.get("visit") or {}
    loc = visit.get("location") or {}
    reg = c.get("registered_location") or {}
    point = (loc["lat"], loc["lon"]) if loc.get("lat") is not None else None
    registered = (reg["lat"], reg["lon"]) if reg.get("lat") is not None else None
    detail = c.get("detail") or {}
    between = (haversine_m(point[0], point[1], registered[0], registered[1])
               if point and registered else None)
    ev.map_svg = kelurahan_map_svg(c["kelurahan"], point=point,
                                   accuracy_m=loc.get("accuracy_m"), registered=registered,
                                   line=True)
    if outside:
        ev.facts.append(("Jarak ke batas kelurahan", _metres(detail.get("distance_m"))))
    ev.facts.append(("Jarak titik kunjungan ke titik terdaftar",
                     _metres(detail.get("distance_m") if not outside and
                             detail.get("distance_m") is not None else between)))
    ev.facts.append(("Akurasi GPS kunjungan", "±" + _metres(loc.get("accuracy_m"))
                     if loc.get("accuracy_m") is not None else "tidak dilaporkan"))
    if point:
        ev.facts.append(("Titik kunjungan", f"{point[0]:.5f}, {point[1]:.5f}"))
    if registered:
        ev.facts.append(("Titik terdaftar", f"{registered[0]:.5f}, {registered[1]:.5f}"))
    ev.legend = [("lg-area", "Batas kelurahan terdaftar"), ("lg-reg", "Titik terdaftar"),
                 ("lg-visit", "Titik kunjungan"), ("lg-acc", "Lingkar akurasi GPS"),
                 ("lg-line", "Jarak antara kedua titik")]


def _travel(session, user, c, ev: Evidence) -> None:
    from sync.models import Keluarga, Visit

    detail = c.get("detail") or {}
    visit = c.get("visit") or {}
    prev = session.get(Visit, detail.get("previous_visit_uuid") or c.get("visit_value") or "")
    ev.facts.append(("Jarak antara kedua kunjungan", _metres(detail.get("distance_m"))))
    speed = detail.get("speed_kmh")
    ev.facts.append(("Kecepatan yang dibutuhkan", f"{number(speed)} km/jam" if speed is not None
                     else "tak terhingga (waktu kunjungan tumpang tindih)"))
    if prev is not None and prev.ended_at and visit.get("started_at"):
        gap = round((visit["started_at"] - prev.ended_at).total_seconds() / 60)
        ev.facts.append(("Jeda antara kunjungan", f"{number(gap)} menit" if gap >= 0 else
                         f"tidak ada: kedua kunjungan tumpang tindih {number(-gap)} menit"))
    ev.others_title = "Dua kunjungan enumerator yang sama"
    ev.others.append(Other(True, name="Kunjungan ini",
                           lines=[("Mulai", _date(visit.get("started_at")) or "—"),
                                  ("Selesai", _date(visit.get("ended_at")) or "—")]))
    if prev is None:
        return
    kel = session.scalar(select(Keluarga.kode_kelurahan).where(Keluarga.id == prev.household_id))
    names = _area_names(session, [kel])
    seen = bool(kel and user.covers(kel))
    ev.others.append(Other(
        seen, name="Kunjungan sebelumnya",
        household_id=prev.household_id if seen else None,
        kelurahan=names.get(kel, kel) if seen else None,
        link=_visit_link(prev.uuid) if seen else None,
        lines=[("Mulai", _date(prev.started_at) or "—"),
               ("Selesai", _date(prev.ended_at) or "—")]))


def _duplicate_identity(session, user, c, ev: Evidence, labels: FormLabels) -> None:
    detail = c.get("detail") or {}
    code = detail.get("code")
    ev.facts.append(("Temuan", DUPLICATE_CODES.get(code, code or "—")))
    number_kind = "Nomor KK" if c.get("field") == "no_kk" else "NIK"
    if c.get("visit_value"):
        ev.facts.append((number_kind, str(c["visit_value"])))
    others = [h for h in detail.get("other_household_ids") or () if isinstance(h, str)]
    families = _families(session, others)
    names = _area_names(session, [k for k, _ in families.values()])
    ev.others_title = "Keluarga lain dengan nomor yang sama"
    for hid in others:
        kel, name = families.get(hid, (None, None))
        seen = bool(kel and user.covers(kel))
        ev.others.append(Other(seen, household_id=hid,
                               kelurahan=names.get(kel, kel) if seen else None,
                               name=(name or "(tanpa nama)") if seen else None,
                               link=_household_link(hid) if seen else None))


def _eligibility(session, c, ev: Evidence, labels: FormLabels, record: dict) -> None:
    detail = c.get("detail") or {}
    reason = detail.get("reason")
    desil = record.get("desil")
    if (c["kind"], reason) in (("inclusion_error", "desil"), ("exclusion_error", "no_aid")) \
            and isinstance(c.get("registry_value"), int):
        desil = c["registry_value"]  # the desil the rule read
    ev.facts.append(("Desil", str(desil) if desil is not None else "tidak diketahui"))
    programs = detail.get("programs") or ([detail["program"]] if detail.get("program") else [])
    if c["kind"] == "inclusion_error":
        ev.facts.append(("Alasan", INCLUSION_REASONS.get(reason, reason or "—")))
        ev.facts.append(("Program yang diterima", _programs(programs)))
        if reason == "desil" and detail.get("program") in LIMITS:
            ev.facts.append(("Batas desil program",
                             f"{PROGRAMS[detail['program']]}: desil 1-{LIMITS[detail['program']]}"))
        elif c.get("field"):
            ev.facts.append((labels.label(c["field"]) or c["field"],
                             labels.value(c["field"], c.get("visit_value"))))
    elif c["kind"] == "exclusion_error":
        ev.facts.append(("Alasan", EXCLUSION_REASONS.get(reason, reason or "—")))
        aid = [p for p, on in (record.get("program") or {}).items() if on is True]
        ev.facts.append(("Program yang diterima", _programs(aid)))
        if reason == "housing_worse" and c.get("field"):
            ev.facts.append((labels.label(c["field"]) or c["field"],
                             f"{labels.value(c['field'], c.get('registry_value'))} → "
                             f"{labels.value(c['field'], c.get('visit_value'))}"))
    else:  # deceased / moved receiving aid
        ev.facts.append(("Program yang masih diterima",
                         _programs(programs or c.get("registry_value"))))
        status = c.get("visit_value")
        if c.get("field"):
            ev.facts.append(("Keberadaan anggota",
                             labels.value("anggota[].status_keberadaan", status)))
        else:
            ev.facts.append(("Hasil kunjungan", labels.value("hasil_kunjungan", status)))


def _return_effect(session, c, ev: Evidence) -> None:
    """The visit's open conflicts that a return would dismiss, this one first."""
    from sync.models import Conflict

    visit = c.get("visit") or {}
    if not c.get("visit_uuid") or visit.get("status") not in ("needs_review", "verified"):
        return
    ev.can_return = True
    rows = session.execute(select(Conflict.id, Conflict.kind).where(
        Conflict.visit_uuid == c["visit_uuid"], Conflict.status == "open",
        Conflict.id != c["id"]).order_by(Conflict.id)).all()
    ev.return_effect = [{"id": i, "kind": KINDS.get(k, k)} for i, k in rows]


def build(session: Session, user: User, c: dict, labels: FormLabels) -> Evidence:
    """The evidence of conflict ``c`` (``conflict_detail``'s dict) as ``user`` may see it."""
    from sync.models import VerifiedRecord

    kind = c["kind"]
    detail = c.get("detail") or {}
    visit = c.get("visit") or {}
    ev = Evidence(kind, KINDS.get(kind, kind), buttons=BUTTONS.get(kind, VALUE_BUTTONS),
                  set_value=kind in SET_VALUE_KINDS and bool(c.get("field")),
                  show_values=kind in VALUE_KINDS or kind in ("invalid_identity",))
    row = session.get(VerifiedRecord, c["household_id"])
    record = (row.doc if row is not None else None) or {}
    if kind in ("field_mismatch", "concurrent_update"):
        ev.title = "Nilai registri dan kunjungan"
        if kind == "concurrent_update":
            ev.facts.append(("Terjadi", "registri berubah sejak data dibawa ke lapangan, dan "
                                        "kunjungan mengubah isian yang sama"))
    elif kind == "upstream_changed":
        ev.title = "Impor registri yang lebih baru"
        paths = detail.get("upstream_paths") or ()
        ev.facts.append(("Diubah oleh impor registri",
                         ", ".join(labels.label(p) or p for p in paths) or "—"))
    elif kind == "invalid_identity":
        ev.title = "Pemeriksaan NIK/KK"
        ev.facts.append(("Masalah", "; ".join(IDENTITY_CODES.get(x, x)
                                              for x in detail.get("codes") or ()) or "—"))
        if c.get("visit_value"):
            ev.facts.append(("Nomor yang diperiksa", str(c["visit_value"])))
    elif kind == "duplicate_identity":
        ev.title = "Nomor yang sama di keluarga lain"
        _duplicate_identity(session, user, c, ev, labels)
        nik = c.get("visit_value")
        same = [labels.member_name(m) for m in record.get("anggota") or ()
                if isinstance(m, dict) and nik and m.get("nik") == nik]
        if detail.get("code") == "nik_duplicate_in_family" and same:
            ev.facts.append(("Anggota dengan NIK ini", "; ".join(same)))
    elif kind in ("deceased_receiving_aid", "moved_receiving_aid", "inclusion_error",
                  "exclusion_error"):
        ev.title = "Desil dan program bantuan"
        _eligibility(session, c, ev, labels, record)
    elif kind in ("location_outside_area", "location_far"):
        ev.title = "Lokasi kunjungan"
        _location(session, c, ev, outside=kind == "location_outside_area")
    elif kind == "photo_reused":
        ev.title = "Foto yang sama di keluarga lain"
        ev.others_title = "Foto pembanding"
        _photo_reused(session, user, c, ev)
    elif kind == "photo_mismatch":
        ev.title = "Waktu dan tempat foto"
        _photo_mismatch(c, ev, labels)
    elif kind == "visit_too_short":
        ev.title = "Lama kunjungan"
        seconds, limit = detail.get("seconds"), detail.get("limit")
        ev.facts += [("Mulai", _date(visit.get("started_at")) or "—"),
                     ("Selesai", _date(visit.get("ended_at")) or "—"),
                     ("Lama", _duration(seconds)), ("Batas minimal", _duration(limit))]
    elif kind == "impossible_travel":
        ev.title = "Perjalanan antara dua kunjungan"
        _travel(session, user, c, ev)
    elif kind == "duplicate_visit":
        ev.title = "Kunjungan lain keluarga ini pada putaran yang sama"
        _duplicate_visits(session, user, c, ev)
    elif kind == "household_not_found":
        ev.title = "Hasil kunjungan"
        ev.facts.append(("Hasil kunjungan", labels.value("hasil_kunjungan",
                                                         c.get("visit_value"))))
        if record.get("alamat"):
            ev.facts.append(("Alamat terdaftar", str(record["alamat"])))
    if kind in RETURN_KINDS:
        _return_effect(session, c, ev)
    return ev


def _gap(seconds) -> str:
    """A long span in days or hours, a short one as ``_duration``."""
    if isinstance(seconds, int | float) and seconds >= 86400:
        return f"{number(round(seconds / 86400, 1))} hari"
    if isinstance(seconds, int | float) and seconds >= 3600:
        hours, rest = divmod(round(seconds), 3600)
        return f"{hours} jam {rest // 60} menit"
    return _duration(seconds)


def _duration(seconds) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    if seconds < 0:
        return f"{number(round(seconds))} detik (selesai sebelum mulai)"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} menit {secs} detik" if minutes else f"{secs} detik"


def _duplicate_visits(session, user, c, ev: Evidence) -> None:
    from server.services.conflicts import usernames
    from sync.models import Visit

    detail = c.get("detail") or {}
    uuids = [u for u in detail.get("other_visit_uuids") or c.get("registry_value") or ()
             if isinstance(u, str)]
    rows = session.scalars(select(Visit).where(Visit.uuid.in_(uuids))).all() if uuids else []
    names = usernames(session, [v.enumerator_id for v in rows])
    visit = c.get("visit") or {}
    ev.others_title = "Kunjungan keluarga ini"
    ev.others.append(Other(True, name="Kunjungan ini", lines=[
        ("Enumerator", visit.get("enumerator") or "—"),
        ("Mulai", _date(visit.get("started_at")) or "—")]))
    for v in sorted(rows, key=lambda v: (v.started_at or v.received_at, v.uuid)):
        ev.others.append(Other(True, name=f"Kunjungan {v.uuid[:8]}", link=_visit_link(v.uuid),
                               lines=[("Enumerator", names.get(v.enumerator_id) or "—"),
                                      ("Mulai", _date(v.started_at) or "—"),
                                      ("Status", VISIT_STATUSES.get(v.status, v.status))]))


def facts_text(ev: Evidence) -> dict[str, Any]:  # for tests and debugging
    return dict(ev.facts)
