"""Each measure of docs/monitoring.md recomputed from the raw tables, row by row in Python
(no code of the service), on a bootstrapped demo instance with reviews, and compared with
``server.services.monitoring.measures`` per kelurahan and with the API's sums."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from sqlalchemy import select

from server.services import monitoring as service
from sync.areas import PRIORITY_KECAMATAN
from sync.models import (
    Area,
    Conflict,
    Keluarga,
    KeluargaVersion,
    Round,
    VerifiedChange,
    VerifiedRecord,
    VerifiedVersion,
    Visit,
)

WIB = dt.timezone(dt.timedelta(hours=7))
KINDS = {"inclusion_errors": "inclusion_error", "exclusion_errors": "exclusion_error",
         "deceased_with_aid": "deceased_receiving_aid", "moved_with_aid": "moved_receiving_aid"}
MAX_DESIL = {"pkh": 4, "bpnt": 5, "pbi_jk": 5}


def _utc(t):
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


def _week(t) -> str:
    y, w, _ = _utc(t).astimezone(WIB).isocalendar()
    return f"{y}-W{w:02d}"


def _eligible(doc: dict, desil) -> dict[str, bool]:
    """docs/monitoring.md, written out: desil within the programme's threshold and none of
    Jakarta's exclusions (a car, a member working as PNS/TNI/Polri/BUMN, branded bottled
    water, NJOP above Rp 1 billion)."""
    excluded = ((doc.get("aset") or {}).get("mobil") is True
                or any(m.get("pekerjaan") == 5 for m in doc.get("anggota") or [])
                or (doc.get("rumah") or {}).get("air_minum") == 1
                or (doc.get("rumah") or {}).get("njop_di_atas_1m") is True)
    return {p: isinstance(desil, int) and desil <= limit and not excluded
            for p, limit in MAX_DESIL.items()}


def recompute(db, round_id: int) -> dict[str, dict]:
    fam = {k.id: k for k in db.scalars(select(Keluarga))}
    out = defaultdict(lambda: {
        "households": 0, "visited": 0, "verified": 0, "returned": 0,
        "targeting_errors": {m: {"flagged": 0, "upheld": 0} for m in KINDS},
        "eligibility_changes": {p: {"gains": 0, "losses": 0} for p in MAX_DESIL},
        "members": {"died": 0, "moved": 0, "added": 0},
        "weekly": defaultdict(lambda: {"visited": 0, "verified": 0, "returned": 0,
                                       "flagged": 0})})
    for k in fam.values():
        if k.removed_at is None:
            out[k.kode_kelurahan]["households"] += 1
    visits = db.scalars(select(Visit).where(Visit.round_id == round_id)).all()
    first = {"visited": {}, "verified": {}, "returned": {}}
    for v in visits:
        moments = {"visited": v.started_at or v.received_at}
        if v.status == "verified":
            moments["verified"] = v.processed_at
        if v.status == "approved":
            moments["verified"] = v.reviewed_at
        if v.status == "returned":
            moments["returned"] = v.reviewed_at
        for name, t in moments.items():
            t = _utc(t)
            if v.household_id not in first[name] or t < first[name][v.household_id]:
                first[name][v.household_id] = t
    for name, firsts in first.items():
        for hid, t in firsts.items():
            kel = fam[hid].kode_kelurahan
            out[kel][name] += 1
            out[kel]["weekly"][_week(t)][name] += 1
    flagged, upheld, any_flag = set(), set(), {}
    for c in db.scalars(select(Conflict).where(Conflict.round_id == round_id)):
        if c.kind not in KINDS.values():
            continue
        flagged.add((c.household_id, c.kind))
        t = _utc(c.created_at)
        any_flag[c.household_id] = min(t, any_flag.get(c.household_id, t))
        if c.status == "resolved" and c.resolution in ("accept_visit", "set_value"):
            upheld.add((c.household_id, c.kind))
    name_of = {kind: m for m, kind in KINDS.items()}
    for hid, kind in flagged:
        out[fam[hid].kode_kelurahan]["targeting_errors"][name_of[kind]]["flagged"] += 1
    for hid, kind in upheld:
        out[fam[hid].kode_kelurahan]["targeting_errors"][name_of[kind]]["upheld"] += 1
    for hid, t in any_flag.items():
        out[fam[hid].kode_kelurahan]["weekly"][_week(t)]["flagged"] += 1
    for hid in first["verified"]:
        record = db.get(VerifiedRecord, hid)
        snapshot = db.scalar(select(KeluargaVersion.snapshot).where(
            KeluargaVersion.keluarga_id == hid,
            KeluargaVersion.version == record.registry_version))
        before, after = _eligible(snapshot, fam[hid].desil), _eligible(record.doc, fam[hid].desil)
        for p in MAX_DESIL:
            if after[p] and not before[p]:
                out[fam[hid].kode_kelurahan]["eligibility_changes"][p]["gains"] += 1
            if before[p] and not after[p]:
                out[fam[hid].kode_kelurahan]["eligibility_changes"][p]["losses"] += 1
    round_visits = {v.uuid: v for v in visits}
    for change in db.scalars(select(VerifiedChange)):
        if not re.fullmatch(r"anggota\[[^\]]*\]", change.path):
            continue
        version = db.get(VerifiedVersion, change.version_id)
        visit = round_visits.get(version.visit_uuid)
        if visit is None:
            continue
        kel = fam[change.household_id].kode_kelurahan
        if change.old_value is None and change.new_value is not None:
            out[kel]["members"]["added"] += 1
        elif change.old_value is not None and change.new_value is None:
            # the member as the visit reported them: same NIK, else same name and birth date
            old = change.old_value
            status = None
            for m in visit.answers.get("anggota") or []:
                if m.get("nik") == old.get("nik") or (
                        m.get("nama") == old.get("nama")
                        and m.get("tanggal_lahir") == old.get("tanggal_lahir")):
                    status = m.get("status_keberadaan")
                    break
            if status == 2:
                out[kel]["members"]["died"] += 1
            elif status in (3, 4):
                out[kel]["members"]["moved"] += 1
    return out


def _plain(raw: dict) -> dict:
    return {**raw, "weekly": {w: dict(r) for w, r in raw["weekly"].items() if any(r.values())}}


def test_every_measure_equals_its_recomputation_from_the_tables(demo, db):
    rnd = db.scalar(select(Round))
    kelurahan = db.scalars(select(Area.code).where(Area.level == "kelurahan",
                                                   Area.parent_code.in_(PRIORITY_KECAMATAN)))
    kelurahan = sorted(kelurahan)
    assert len(kelurahan) == 58
    expected = recompute(db, rnd.id)
    got = service.measures(db, rnd.id, kelurahan)
    assert sorted(got) == kelurahan
    for code in kelurahan:
        assert _plain(got[code]) == _plain(expected[code]), code
    # The demo gives each kind of measure something to count, so the comparison means it.
    total = defaultdict(int)
    for code in kelurahan:
        raw = got[code]
        for key in ("households", "visited", "verified", "returned"):
            total[key] += raw[key]
        for m, pair in raw["targeting_errors"].items():
            total[f"{m}.flagged"] += pair["flagged"]
            total["upheld"] += pair["upheld"]
        for pair in raw["eligibility_changes"].values():
            total["gains"] += pair["gains"]
            total["losses"] += pair["losses"]
        for k, n in raw["members"].items():
            total[f"members.{k}"] += n
    for key in ("households", "visited", "verified", "returned", "upheld", "gains", "losses",
                "inclusion_errors.flagged", "exclusion_errors.flagged"):
        assert total[key] > 0, (key, dict(total))
    assert total["members.died"] > 0, dict(total)
    assert total["members.moved"] + total["members.added"] > 0, dict(total)


def test_the_api_sums_the_kelurahan_and_suppresses_in_the_output_only(demo, db, client,
                                                                        token):
    rnd = db.scalar(select(Round))
    headers = token("pemantau-bappeda")
    body = client.get("/api/v1/monitoring?level=kecamatan", headers=headers).get_json()
    assert [a["code"] for a in body["areas"]] == sorted(PRIORITY_KECAMATAN)
    raw = service.measures(db, rnd.id)
    for area in body["areas"]:
        mine = [r for code, r in raw.items() if code.startswith(area["code"] + ".")]
        verified = sum(r["verified"] for r in mine)
        for key in ("households", "visited", "verified", "returned"):
            n = sum(r[key] for r in mine)
            assert area[key] == (n if n >= 5 else "< 5"), (area["code"], key)
        for m in KINDS:
            n = sum(r["targeting_errors"][m]["flagged"] for r in mine)
            shown = area["targeting_errors"][m]
            assert shown["flagged"] == (n if n >= 5 else "< 5")
            if verified >= 20 and n >= 5:
                assert shown["flagged_per_1000"] == round(1000 * n / verified, 1)
            else:
                assert shown["flagged_per_1000"] is None
