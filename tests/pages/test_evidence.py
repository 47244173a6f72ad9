"""Every conflict kind's page shows the evidence it rests on (server/web/evidence.py), the
decision buttons fit the kind, a reused photo of another kecamatan stays hidden, and the
queue's bulk form decides conflicts of one kind with one note.

Visits are pushed through the API with real photos and reconciled by the real worker: the
``photo_reused`` conflicts are the worker's (one photo taken again from a family of the same
kecamatan, one from a family of another kecamatan). The other kinds are stored as the worker
stores them, with the ``detail`` each rule writes (``sync/reconcile/rules.py``), by
``add_cases``, which the browser test (test_evidence_browser.py) uses too.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from sync.db import utcnow
from sync.models import Conflict, Keluarga, VerifiedRecord, Visit
from tests.pages.conftest import csrf_token

KINDS = ("field_mismatch", "concurrent_update", "invalid_identity", "duplicate_identity",
         "deceased_receiving_aid", "moved_receiving_aid", "inclusion_error", "exclusion_error",
         "location_outside_area", "location_far", "photo_reused", "visit_too_short",
         "impossible_travel", "duplicate_visit", "household_not_found", "upstream_changed",
         "photo_mismatch")
BAD_NIK = "9999990101800001"  # region 99.99.99: unknown


def _rename_head(session, household_id: str, name: str) -> None:
    row = session.get(VerifiedRecord, household_id)
    doc = dict(row.doc)
    doc["anggota"] = [dict(m) for m in doc["anggota"]]
    doc["anggota"][0]["nama"] = name
    row.doc = doc


def add_cases(session, visit_uuid: str, other_uuid: str) -> dict[str, tuple[int, list[str]]]:
    """Store one conflict of every kind but ``photo_reused`` on ``visit_uuid``, each with
    the detail its rule writes, and return ``{kind: (id, strings its page must show)}``.
    ``other_uuid`` is another visit in the user's area (another family): the previous visit
    of an impossible journey, the other visit of a duplicate, the other family of a shared
    NIK. The visit is moved about 2.2 km north of the registered point, as a fabricated
    location would be."""
    from server.web.evidence import head_name
    from sync.reconcile.rules import distance_outside_m, haversine_m

    visit = session.get(Visit, visit_uuid)
    other = session.get(Visit, other_uuid)
    family = session.get(Keluarga, visit.household_id)
    record = session.get(VerifiedRecord, visit.household_id).doc
    other_family = session.get(Keluarga, other.household_id)
    other_name = head_name(session.get(VerifiedRecord, other.household_id).doc)
    head, wife = record["anggota"][0], record["anggota"][1]
    visit.lat, visit.lon, visit.accuracy_m = family.lat + 0.02, family.lon, 12.0
    far = round(haversine_m(family.lat, family.lon, visit.lat, visit.lon), 1)
    outside = round(distance_outside_m(family.kode_kelurahan, visit.lat, visit.lon) or 0, 1)
    point = {"lat": visit.lat, "lon": visit.lon, "accuracy_m": 12.0}

    def metres(x: float) -> str:
        return f"{round(x):,}".replace(",", ".") + " m"

    specs = {
        "field_mismatch": (dict(field="rumah.lantai", registry_value=6, base_value=6,
                                visit_value=8), {},
                           ["Jenis lantai terluas", "Semen/bata merah", "Tanah"]),
        "concurrent_update": (dict(field="rumah.atap", registry_value=2, base_value=4,
                                   visit_value=3, severity="hard"), {},
                              ["Genteng", "Asbes", "Seng", "registri berubah sejak data"]),
        "invalid_identity": (dict(field=f"anggota[NIK={head['nik']}].nik",
                                  visit_value=BAD_NIK, severity="hard"),
                             {"codes": ["nik_region_unknown"]},
                             ["Kode wilayah NIK (digit 1-6) tidak dikenal", BAD_NIK]),
        "duplicate_identity": (dict(field=f"anggota[NIK={wife['nik']}].nik",
                                    visit_value=wife["nik"], registry_value=[other.household_id],
                                    severity="hard"),
                               {"other_household_ids": [other.household_id],
                                "code": "nik_other_family"},
                               ["NIK yang sama terdaftar di keluarga lain", wife["nik"],
                                other.household_id, other_name,
                                f'href="/review/keluarga/{other.household_id}"']),
        "deceased_receiving_aid": (dict(field=f"anggota[NIK={head['nik']}]", visit_value=2,
                                        registry_value=["pkh", "bpnt"], severity="hard"),
                                   {"programs": ["pkh", "bpnt"]},
                                   ["Program yang masih diterima PKH, BPNT/Sembako",
                                    "Keberadaan anggota Meninggal"]),
        "moved_receiving_aid": (dict(field=None, visit_value=4, registry_value=["pbi_jk"]),
                                {"programs": ["pbi_jk"]},
                                ["Program yang masih diterima PBI-JK",
                                 "Hasil kunjungan Pindah ke wilayah lain di Indonesia"]),
        "inclusion_error": (dict(field="program.pkh", registry_value=7, visit_value=True),
                            {"reason": "desil", "program": "pkh"},
                            ["Desil 7", "Desil di atas batas program",
                             "Program yang diterima PKH", "PKH: desil 1-4"]),
        "exclusion_error": (dict(field="program", registry_value=2), {"reason": "no_aid"},
                            ["Desil 2", "Desil rendah tetapi tidak menerima bantuan"]),
        "location_outside_area": (dict(field="kode_kelurahan",
                                       registry_value=family.kode_kelurahan,
                                       visit_value=point), {"distance_m": outside},
                                  ["Jarak ke batas kelurahan " + metres(outside),
                                   "Batas kelurahan terdaftar", "Titik terdaftar",
                                   "Titik kunjungan", "Lingkar akurasi GPS", 'class="akurasi"',
                                   'class="titik-terdaftar"', 'class="batas"']),
        "location_far": (dict(field="lat", registry_value={"lat": family.lat,
                                                           "lon": family.lon},
                              visit_value=point), {"distance_m": far},
                         ["Jarak titik kunjungan ke titik terdaftar " + metres(far),
                          "Akurasi GPS kunjungan ±12 m", 'class="jarak"',
                          'class="titik-kunjungan"', "Jarak antara kedua titik"]),
        "visit_too_short": (dict(visit_value=95.0), {"seconds": 95.0, "limit": 300.0},
                            ["Lama 1 menit 35 detik", "Batas minimal 5 menit 0 detik"]),
        "impossible_travel": (dict(visit_value=other.uuid, severity="hard"),
                              {"previous_visit_uuid": other.uuid, "distance_m": 8400.0,
                               "speed_kmh": 126.0},
                              ["Jarak antara kedua kunjungan 8.400 m",
                               "Kecepatan yang dibutuhkan 126 km/jam", "Kunjungan sebelumnya",
                               f'href="/review/kunjungan/{other.uuid}"']),
        "duplicate_visit": (dict(visit_value=visit.uuid, registry_value=[other.uuid]),
                            {"other_visit_uuids": [other.uuid]},
                            [f"Kunjungan {other.uuid[:8]}",
                             f'href="/review/kunjungan/{other.uuid}"']),
        "household_not_found": (dict(field="hasil_kunjungan", visit_value=3, severity="hard"),
                                {}, ["Hasil kunjungan Tidak ditemukan"]),
        "photo_mismatch": (dict(field="foto_depan",
                                visit_value="2026-11-28T02:00:00+00:00",
                                registry_value="2026-12-01T03:00:00+00:00"),
                           {"reason": "taken_before", "source": "app", "seconds": 262800,
                            "sha256": "ab" * 32},
                           ["Foto tampak depan rumah", "Foto diambil sebelum kunjungan dimulai",
                            "keterangan aplikasi (foto tanpa EXIF)", "Selisih 3 hari",
                            "Foto sah"]),
        "upstream_changed": (dict(field="rumah.atap", registry_value=1, visit_value=3,
                                  severity="hard"), {"upstream_paths": ["rumah.atap"]},
                             ["Diubah oleh impor registri Jenis atap terluas", "Beton"]),
    }
    out = {}
    for i, (kind, (cols, detail, shows)) in enumerate(specs.items()):
        cols = {"severity": "soft", "field": None, "registry_value": None,
                "visit_value": None, "base_value": None, **cols}
        c = Conflict(household_id=visit.household_id, visit_uuid=visit.uuid,
                     round_id=visit.round_id, kecamatan=family.kode_kelurahan[:8],
                     kelurahan=family.kode_kelurahan, key=f"evidence-{i}", kind=kind,
                     message=f"{kind} (test)", detail=detail, record_version=1,
                     status="open", created_at=utcnow(), updated_at=utcnow(), **cols)
        session.add(c)
        session.flush()
        out[kind] = (c.id, shows)
    assert other_family is not None
    return out


def text_of(html: str) -> str:
    """The page's text, tags dropped and spaces collapsed (attributes kept apart)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def shows(html: str, wanted: str) -> bool:
    return wanted in html if ("=" in wanted and '"' in wanted) else wanted in text_of(html)


# --------------------------------------------------------------------------- the scene


@pytest.fixture
def scene(db, field, located, deliver, reconcile, make_user, login, client):
    """Visits of three families, reconciled by the real worker: KLG-B1 (kecamatan 31.72.01)
    by cici and KLG-A2 (31.73.01) by budi first; then KLG-A1's visit by ani, whose front
    photo is B1's and whose inside photo is A2's: two ``photo_reused`` conflicts."""
    make_user("cici", areas=("31.72.01",))
    make_user("spv-utara", role="supervisor", areas=("31.72.01",))
    make_user("boss", role="admin")
    field.headers["cici"] = login("cici", device_id="cici-phone")
    field.headers["boss"] = login("boss", device_id="boss-laptop")
    response = client.post("/api/v1/assignments", headers=field.headers["boss"], json={
        "round_id": field.round_id, "enumerator": "cici", "household_ids": ["KLG-B1"]})
    assert response.status_code in (200, 201), response.get_json()
    _rename_head(db, "KLG-A2", "Agus Salim")
    _rename_head(db, "KLG-B1", "Bambang Utara")
    db.commit()
    b1, b1_images = located("KLG-B1")
    deliver((b1, b1_images), who="cici")
    a2, a2_images = located("KLG-A2")
    deliver((a2, a2_images), who="budi")
    reconcile()
    a1, a1_images = located("KLG-A1")
    front, inside = a1["photos"][0], a1["photos"][1]
    del a1_images[front["field"]], a1_images[inside["field"]]
    front["sha256"] = b1["photos"][0]["sha256"]  # the same bytes as B1's (another kecamatan)
    inside["sha256"] = a2["photos"][0]["sha256"]  # the same bytes as A2's (this kecamatan)
    deliver((a1, a1_images))
    reconcile()
    db.commit()
    reused = {c.registry_value[0]: c.id for c in db.scalars(
        select(Conflict).where(Conflict.visit_uuid == a1["uuid"],
                               Conflict.kind == "photo_reused"))}
    assert set(reused) == {"KLG-A2", "KLG-B1"}, reused
    assert db.get(Visit, a1["uuid"]).status == "needs_review"
    return {"a1": a1, "a2": a2, "b1": b1, "reused": reused,
            "shas": {"b1": b1["photos"][0]["sha256"], "a2": a2["photos"][0]["sha256"]}}


# --------------------------------------------------------------------------- every kind


def test_every_kind_shows_the_evidence_it_rests_on(web, db, scene):
    cases = add_cases(db, scene["a1"]["uuid"], scene["a2"]["uuid"])
    cases["photo_reused"] = (scene["reused"]["KLG-A2"],
                             ["Foto kunjungan ini", "Agus Salim", "Jarak hash: 0 dari 64 bit",
                              f'href="/review/kunjungan/{scene["a2"]["uuid"]}"'])
    db.commit()
    assert set(cases) == set(KINDS)
    assert web.login("spv").status_code == 303
    for kind, (conflict_id, wanted) in cases.items():
        response = web.get(f"/review/konflik/{conflict_id}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200, kind
        assert 'id="evidence"' in html, kind
        missing = [w for w in wanted if not shows(html, w)]
        assert not missing, (kind, missing)
        assert " style=" not in html and "<script" not in html, kind


def test_the_buttons_fit_the_kind(web, db, scene):
    cases = add_cases(db, scene["a1"]["uuid"], scene["a2"]["uuid"])
    db.commit()
    assert web.login("spv").status_code == 303
    html = web.get(f"/review/konflik/{scene['reused']['KLG-A2']}").get_data(as_text=True)
    decide = html.split('id="decide"')[1].split("</form>")[0]
    assert "Foto sah" in decide and 'value="dismiss"' in decide
    assert "Terima nilai kunjungan" not in decide and "set_value" not in decide
    back = html.split('id="return"')[1].split("</form>")[0]
    assert "Kembalikan kunjungan" in back and 'name="decision" value="return"' in back
    assert f'action="/review/kunjungan/{scene["a1"]["uuid"]}/tinjau"' in html
    html = web.get(f"/review/konflik/{cases['field_mismatch'][0]}").get_data(as_text=True)
    decide = html.split('id="decide"')[1].split("</form>")[0]
    assert "Terima nilai kunjungan" in decide and "Pertahankan data registri" in decide
    assert 'value="set_value"' in decide and 'id="return"' not in html
    html = web.get(f"/review/konflik/{cases['inclusion_error'][0]}").get_data(as_text=True)
    assert "Benar, teruskan temuan" in html and "Temuan tidak berlaku" in html


def test_the_page_says_what_returning_does_before_it_is_pressed(web, db, scene):
    uuid = scene["a1"]["uuid"]
    conflict_id = scene["reused"]["KLG-A2"]
    others = db.scalars(select(Conflict.id).where(Conflict.visit_uuid == uuid,
                                                  Conflict.status == "open",
                                                  Conflict.id != conflict_id)).all()
    assert others  # at least the other reused photo
    assert web.login("spv").status_code == 303
    page = f"/review/konflik/{conflict_id}"
    html = web.get(page).get_data(as_text=True)
    effect = text_of(html.split('id="return-effect"')[1].split("</ul>")[0])
    assert f"Konflik ini dan {len(others)} konflik terbuka lain dari kunjungan ini ikut " \
           "ditutup (diabaikan)" in effect
    assert all(f"#{i} " in effect for i in others)
    assert "dikunjungi ulang" in effect and "ani" in effect
    response = web.post(f"/review/kunjungan/{uuid}/tinjau",
                        {"decision": "return", "note": "Foto depan rumah milik keluarga lain."},
                        form_page=page)
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Visit, uuid).status == "returned"
    assert set(db.scalars(select(Conflict.status).where(Conflict.visit_uuid == uuid))) == \
        {"dismissed"}


def test_foto_sah_dismisses_the_finding_without_changing_the_record(web, db, scene):
    conflict_id = scene["reused"]["KLG-A2"]
    version = db.get(VerifiedRecord, "KLG-A1").doc
    assert web.login("spv").status_code == 303
    page = f"/review/konflik/{conflict_id}"
    response = web.post(f"{page}/putuskan", {"decision": "dismiss"}, form_page=page)
    assert response.status_code == 303
    db.expire_all()
    c = db.get(Conflict, conflict_id)
    assert (c.status, c.resolution) == ("dismissed", "dismiss")
    assert db.get(VerifiedRecord, "KLG-A1").doc == version


# --------------------------------------------------------------------------- photo visibility


def test_a_photo_from_another_kecamatan_is_only_a_sentence(web, db, scene):
    """spv (31.73.01) sees A1's conflict whose photo was taken at B1 (31.72.01): only the
    sentence, the distance and the date; no photo, name, family id, kelurahan or link."""
    conflict_id = scene["reused"]["KLG-B1"]
    b1_visit = scene["b1"]["uuid"]
    assert web.login("spv").status_code == 303
    html = web.get(f"/review/konflik/{conflict_id}").get_data(as_text=True)
    evidence = html.split('id="evidence"')[1].split("</section>")[0]
    text = text_of(evidence)
    assert "foto di keluarga lain, di luar wilayah Anda" in text
    assert "Jarak hash: 0 dari 64 bit" in text and "Tanggal: 3 Februari 2026" in text
    for hidden in ("Bambang Utara", "KLG-B1", b1_visit, "Kelurahan", "Foto pembanding dari"):
        assert hidden not in html, hidden
    # the only image of the other family's photo is this visit's own (the same bytes):
    # no second signed URL, and no link to the other visit
    assert html.count(f"/api/v1/media/{scene['shas']['b1']}?size=thumb") == 2  # pair + thumbs
    assert f"/review/kunjungan/{b1_visit}" not in html
    # nor do the lists name the other family: the queue, the visit's and the family's pages
    for path in ("/review/antrean?kind=photo_reused", f"/review/kunjungan/{scene['a1']['uuid']}",
                 "/review/keluarga/KLG-A1"):
        html = web.get(path).get_data(as_text=True)
        assert "foto yang sama ada di 1 keluarga lain" in text_of(html), path
        assert "KLG-B1" not in html and "Bambang Utara" not in html, path


def test_a_photo_the_user_may_see_is_shown_with_the_family_and_a_link(web, db, scene):
    # an admin sees B1's visit: its photo, its family's name, its kelurahan and a link
    assert web.login("boss").status_code == 303
    html = web.get(f"/review/konflik/{scene['reused']['KLG-B1']}").get_data(as_text=True)
    evidence = html.split('id="evidence"')[1].split("</section>")[0]
    assert "Bambang Utara" in evidence and "KLG-B1" in evidence
    assert f'href="/review/kunjungan/{scene["b1"]["uuid"]}"' in evidence
    assert 'alt="Foto pembanding dari keluarga Bambang Utara"' in evidence
    assert "di luar wilayah Anda" not in evidence
    # and spv sees A2's (own kecamatan) the same way
    web.post("/review/keluar")
    assert web.login("spv").status_code == 303
    html = web.get(f"/review/konflik/{scene['reused']['KLG-A2']}").get_data(as_text=True)
    evidence = html.split('id="evidence"')[1].split("</section>")[0]
    assert "Agus Salim" in evidence and "Kelurahan" in evidence
    assert f"/api/v1/media/{scene['shas']['a2']}?size=thumb" in evidence


def test_the_api_names_no_family_outside_the_callers_areas(client, field, scene):
    """GET /api/v1/conflicts/<id> (and the lists) for spv (31.73.01): the photo taken at B1
    (31.72.01) keeps its distance and date, never B1's id, visit or name; A2 (own kecamatan)
    and, for an admin, B1 are named."""
    import json

    spv, boss = field.headers["spv"], field.headers["boss"]
    b1_visit = scene["b1"]["uuid"]
    response = client.get(f"/api/v1/conflicts/{scene['reused']['KLG-B1']}", headers=spv)
    assert response.status_code == 200
    body = response.get_json()
    raw = json.dumps(body)
    for hidden in ("KLG-B1", b1_visit, "Bambang Utara", "31.72.01"):
        assert hidden not in raw, hidden
    assert body["registry_value"] == [] and body["detail"]["other_household_ids"] == []
    [other] = body["detail"]["others"]
    assert other == {"visible": False, "distance_bits": 0, "exact": True,
                     "at": other["at"]} and other["at"].startswith("2026-02-03")
    # the lists: the queue and the visit's conflicts
    for url in ("/api/v1/conflicts?kind=photo_reused&limit=500",
                f"/api/v1/visits/{scene['a1']['uuid']}"):
        response = client.get(url, headers=spv)
        assert response.status_code == 200, url
        text = response.get_data(as_text=True)
        assert "KLG-B1" not in text and b1_visit not in text, url
        assert "KLG-A2" in text, url
    # inside the caller's areas, and for an admin, the other family is named
    own = client.get(f"/api/v1/conflicts/{scene['reused']['KLG-A2']}", headers=spv).get_json()
    assert own["registry_value"] == ["KLG-A2"]
    [other] = own["detail"]["others"]
    assert other["visible"] and other["household_id"] == "KLG-A2"
    assert other["visit_uuid"] == scene["a2"]["uuid"] and other["kelurahan"].startswith("31.73.01")
    admin = client.get(f"/api/v1/conflicts/{scene['reused']['KLG-B1']}", headers=boss).get_json()
    assert admin["registry_value"] == ["KLG-B1"]
    assert admin["detail"]["others"][0]["visit_uuid"] == b1_visit


def test_near_copies_are_matched_by_perceptual_hash(db, scene, app):
    """A phash match (no shared bytes: A2's visit now holds a near copy of A1's photo)
    names the bit distance between the two hashes."""
    from server.models import User
    from server.services.conflicts import conflict_detail
    from server.web.evidence import build
    from server.web.values import FormLabels
    from sync.models.visit import Photo, VisitPhoto

    conflict_id = scene["reused"]["KLG-A2"]
    c = db.get(Conflict, conflict_id)
    mine = db.get(Photo, c.visit_value)
    flipped = format(int(mine.phash, 16) ^ 0b101, "016x")  # 2 bits apart
    db.add(Photo(sha256="e" * 64, size_bytes=1, mime_type="image/jpeg", width=1, height=1,
                 phash=flipped, received_at=utcnow()))
    c.detail = {"other_household_ids": ["KLG-A2"], "match": "phash", "distance": 2}
    db.flush()
    db.execute(VisitPhoto.__table__.delete().where(
        VisitPhoto.visit_uuid == scene["a2"]["uuid"]))
    db.add(VisitPhoto(visit_uuid=scene["a2"]["uuid"], field="foto_depan", sha256="e" * 64))
    db.commit()
    with app.test_request_context():
        spv = db.scalar(select(User).where(User.username == "spv"))
        ev = build(db, spv, conflict_detail(db, spv, conflict_id), FormLabels(None))
    assert [o.distance for o in ev.others] == ["2 dari 64 bit"]
    assert dict(ev.facts)["Cara cocok"] == "foto hampir sama (hash perseptual)"


# --------------------------------------------------------------------------- bulk decisions


def _bulk_post(web, data: dict, kind: str):
    page = web.get(f"/review/antrean?kind={kind}").get_data(as_text=True)
    return page, web.client.post("/review/antrean/putuskan",
                                 data={**data, "csrf_token": csrf_token(page)})


def test_bulk_decisions_on_conflicts_of_one_kind(web, db, scene):
    cases = add_cases(db, scene["a1"]["uuid"], scene["a2"]["uuid"])
    a1 = db.get(Visit, scene["a1"]["uuid"])
    extra = []
    for i in range(2):  # two more of one kind
        c = Conflict(household_id="KLG-A1", visit_uuid=a1.uuid, round_id=a1.round_id,
                     kecamatan="31.73.01", kelurahan="31.73.01.1001", key=f"bulk-{i}",
                     kind="visit_too_short", severity="soft", message="m",
                     detail={"seconds": 20.0 + i, "limit": 30.0}, visit_value=20.0 + i,
                     record_version=1, status="open", created_at=utcnow(),
                     updated_at=utcnow())
        db.add(c)
        db.flush()
        extra.append(c.id)
    db.commit()
    short = [cases["visit_too_short"][0], *extra]
    assert web.login("spv").status_code == 303
    # without a kind, no form: a hint
    html = web.get("/review/antrean").get_data(as_text=True)
    assert 'id="bulk"' not in html and 'id="bulk-hint"' in html
    page, response = _bulk_post(web, {"ids": short[:2], "kind": "visit_too_short",
                                      "decision": "keep_registry",
                                      "note": "Wawancara singkat, keluarga dikenal RT."},
                                "visit_too_short")
    form = page.split('id="bulk"')[1].split("</form>")[0]
    for i in short:
        assert f'name="ids" value="{i}"' in form
    assert 'name="kind" value="visit_too_short"' in form and 'name="csrf_token"' in form
    assert 'value="accept_visit"' in form and 'value="keep_registry"' in form
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/review/antrean")
    db.expire_all()
    for i in short[:2]:
        c = db.get(Conflict, i)
        assert (c.status, c.resolution, c.note) == ("resolved", "keep_registry",
                                                    "Wawancara singkat, keluarga dikenal RT.")
    assert db.get(Conflict, short[2]).status == "open"
    html = web.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 dari 2 konflik diputuskan" in html and f"#{short[0]}" in html
    # a decided one, an open one and one outside the area: reported id by id
    outside = db.scalar(select(Conflict.id).where(Conflict.household_id == "KLG-B1"))
    ids = [short[0], short[2]] + ([outside] if outside else [])
    _, response = _bulk_post(web, {"ids": ids, "kind": "visit_too_short",
                                   "decision": "accept_visit"}, "visit_too_short")
    assert response.status_code == 303
    html = web.get(response.headers["Location"]).get_data(as_text=True)
    assert f"1 dari {len(ids)} konflik diputuskan (#{short[2]})" in html
    assert f"#{short[0]} tidak diputuskan: sudah diputuskan" in html
    db.expire_all()
    assert db.get(Conflict, short[2]).resolution == "accept_visit"


def test_bulk_refuses_mixed_kinds_and_needs_a_selection_and_the_token(web, db, scene):
    cases = add_cases(db, scene["a1"]["uuid"], scene["a2"]["uuid"])
    db.commit()
    assert web.login("spv").status_code == 303
    mixed = [cases["visit_too_short"][0], cases["location_far"][0]]
    _, response = _bulk_post(web, {"ids": mixed, "kind": "visit_too_short",
                                   "decision": "keep_registry"}, "visit_too_short")
    assert response.status_code == 303
    html = web.get(response.headers["Location"]).get_data(as_text=True)
    assert "Tidak ada yang diputuskan" in html and f"#{mixed[1]}" in html
    db.expire_all()
    assert {db.get(Conflict, i).status for i in mixed} == {"open"}
    _, response = _bulk_post(web, {"kind": "visit_too_short", "decision": "keep_registry"},
                             "visit_too_short")
    assert "Belum ada konflik yang dipilih" in web.get(
        response.headers["Location"]).get_data(as_text=True)
    response = web.client.post("/review/antrean/putuskan", data={
        "ids": mixed[:1], "kind": "visit_too_short", "decision": "keep_registry"})
    assert response.status_code == 400  # no CSRF token
    _, response = _bulk_post(web, {"ids": mixed[:1], "kind": "visit_too_short",
                                   "decision": "set_value"}, "visit_too_short")
    assert response.status_code == 422
    db.expire_all()
    assert db.get(Conflict, mixed[0]).status == "open"


def test_a_nik_twice_in_one_family_names_its_members(web, db, scene):
    visit = db.get(Visit, scene["a1"]["uuid"])
    wife = db.get(VerifiedRecord, "KLG-A1").doc["anggota"][1]
    c = Conflict(household_id="KLG-A1", visit_uuid=visit.uuid, round_id=visit.round_id,
                 kecamatan="31.73.01", kelurahan="31.73.01.1001", key="twice",
                 kind="duplicate_identity", severity="hard",
                 field=f"anggota[NIK={wife['nik']}].nik", visit_value=wife["nik"],
                 message="the same NIK is on 2 members of this family",
                 detail={"code": "nik_duplicate_in_family"}, record_version=1, status="open",
                 created_at=utcnow(), updated_at=utcnow())
    db.add(c)
    db.commit()
    assert web.login("spv").status_code == 303
    text = text_of(web.get(f"/review/konflik/{c.id}").get_data(as_text=True))
    assert "NIK yang sama dipakai lebih dari satu anggota keluarga ini" in text
    assert "Anggota dengan NIK ini Istri, Siti Aminah" in text
