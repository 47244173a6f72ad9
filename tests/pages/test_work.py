"""The supervisor's work pages through Flask's test client: rounds (create, close) and
assigning families, with the real services underneath."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from sync.models import Assignment, Conflict, Round
from sync.privacy import mask_name, mask_number


@pytest.fixture
def crew(db, make_user, imported):
    """An admin, Cengkareng's supervisor and two enumerators, Penjaringan's supervisor and
    enumerator, and an open round."""
    from sync.assignments import create_round

    make_user("boss", role="admin")
    make_user("spv", role="supervisor", areas=("31.73.01",))
    make_user("ani", areas=("31.73.01",))
    make_user("budi", areas=("31.73.01",))
    make_user("spv-utara", role="supervisor", areas=("31.72.01",))
    make_user("citra", areas=("31.72.01",))
    row = create_round(db, "Putaran satu", dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    db.commit()
    return row.id


def _assignments(db, round_id=None):
    db.expire_all()
    stmt = select(Assignment.household_id, Assignment.enumerator_id, Assignment.status)
    if round_id is not None:
        stmt = stmt.where(Assignment.round_id == round_id)
    return {h: (e, s) for h, e, s in db.execute(stmt.order_by(Assignment.household_id))}


def _kk_and_head(db, household_id):
    from sync.models.registry import Anggota, Keluarga

    kk = db.scalar(select(Keluarga.no_kk).where(Keluarga.id == household_id))
    name = db.scalar(select(Anggota.nama).where(Anggota.keluarga_id == household_id,
                                                Anggota.hubungan == 1))
    return kk, name


def _uid(db, username):
    from server.models import User

    return db.scalar(select(User.id).where(User.username == username))


# --------------------------------------------------------------------------- rounds


def test_an_admin_creates_and_closes_a_round_and_its_open_assignments_end(web, db, crew):
    from server.services.assignments import assign

    assert web.login("boss").status_code == 303
    html = web.get("/review/putaran").get_data(as_text=True)
    assert "Putaran satu" in html and "Berjalan" in html and "Buat putaran" in html
    response = web.post("/review/putaran", {"name": "Putaran dua", "starts_on": "2027-01-01",
                                             "ends_on": "2027-03-31"},
                        form_page="/review/putaran")
    assert response.status_code == 303
    assert db.scalar(select(Round).where(Round.name == "Putaran dua")).state == "open"
    response = web.post("/review/putaran", {"name": "Putaran tiga", "starts_on": "2027-03-01",
                                             "ends_on": "2027-01-01"},
                        form_page="/review/putaran")
    assert response.status_code == 422 and "Tanggal selesai" in response.get_data(as_text=True)
    # two families assigned in round one, through the service the API calls
    from server.models import User

    spv = db.scalar(select(User).where(User.username == "spv"))
    assign(db, spv, crew, "ani", household_ids=["KLG-A1", "KLG-A2"])
    db.commit()
    # closing needs the confirmation box
    response = web.post(f"/review/putaran/{crew}/tutup", {}, form_page="/review/putaran")
    assert response.status_code == 422 and "Saya yakin" in response.get_data(as_text=True)
    assert db.get(Round, crew).state == "open"
    response = web.post(f"/review/putaran/{crew}/tutup", {"confirm": "ya"},
                        form_page="/review/putaran")
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Round, crew).state == "closed"
    assert {s for _e, s in _assignments(db, crew).values()} == {"closed"}
    html = web.get("/review/putaran").get_data(as_text=True)
    assert "2 penugasan terbuka diakhiri" in html and "Ditutup" in html
    # closing twice: 409 with words
    response = web.post(f"/review/putaran/{crew}/tutup", {"confirm": "ya"},
                        form_page="/review/putaran")
    assert response.status_code == 409 and "sudah ditutup" in response.get_data(as_text=True)
    # the next round takes the same families
    second = db.scalar(select(Round.id).where(Round.name == "Putaran dua"))
    result = assign(db, spv, second, "budi", household_ids=["KLG-A1", "KLG-A2"])
    db.commit()
    assert result.assigned == 2


def test_supervisors_see_rounds_but_only_admins_create_or_close(web, db, crew):
    assert web.login("spv").status_code == 303
    html = web.get("/review/putaran").get_data(as_text=True)
    assert "Putaran satu" in html and "Buat putaran" not in html and "Tutup putaran" not in html
    response = web.post(f"/review/putaran/{crew}/tutup", {"confirm": "ya"},
                        form_page="/review/putaran")
    assert response.status_code == 403
    response = web.post("/review/putaran", {"name": "Curang", "starts_on": "2027-01-01",
                                             "ends_on": "2027-03-31"},
                        form_page="/review/putaran")
    assert response.status_code == 403
    db.expire_all()
    assert db.get(Round, crew).state == "open"
    assert db.scalar(select(Round).where(Round.name == "Curang")) is None


# --------------------------------------------------------------------------- assignments


def test_a_supervisor_assigns_reassigns_and_unassigns_from_the_page(web, db, crew):
    assert web.login("spv").status_code == 303
    html = web.get("/review/penugasan").get_data(as_text=True)
    assert "Putaran satu" in html and "Cengkareng" in html and "Penjaringan" not in html
    page = f"/review/penugasan?putaran={crew}&kelurahan=31.73.01.1001"
    html = web.get(page).get_data(as_text=True)
    assert 'value="KLG-A1"' in html and "KLG-A2" not in html  # another kelurahan
    assert "Belum ditugaskan" in html and 'id="load-ani"' in html and 'id="load-citra"' not in html
    kk, name = _kk_and_head(db, "KLG-A1")
    assert mask_number(kk) in html and kk not in html  # the KK, masked
    assert mask_name(name) in html and name not in html
    # every family of the kelurahan's RW 007 / RT 003 to ani
    response = web.post("/review/penugasan/wilayah", {
        "putaran": crew, "kelurahan": "31.73.01.1001", "rw": "007", "rt": "003",
        "enumerator": "ani"}, form_page=page)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/review/penugasan?")
    assert _assignments(db, crew) == {"KLG-A1": (_uid(db, "ani"), "pending")}
    html = web.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ditugaskan 1, dipindahkan 0" in html
    assert re.search(r'id="load-ani">.*?Ditugaskan <b class="n">1</b> · dikunjungi '
                     r'<b class="n">0</b> · dikembalikan <b class="n">0</b>', html, re.S)
    # reassign the ticked family to budi: it moves
    response = web.post("/review/penugasan/keluarga", {
        "putaran": crew, "kelurahan": "31.73.01.1001", "keluarga": ["KLG-A1"],
        "enumerator": "budi", "aksi": "tugaskan"}, form_page=page)
    assert response.status_code == 303
    assert _assignments(db, crew) == {"KLG-A1": (_uid(db, "budi"), "pending")}
    assert "dipindahkan 1" in web.get(page).get_data(as_text=True)
    # unassign it
    response = web.post("/review/penugasan/keluarga", {
        "putaran": crew, "kelurahan": "31.73.01.1001", "keluarga": ["KLG-A1"],
        "aksi": "lepas"}, form_page=page)
    assert response.status_code == 303
    assert _assignments(db, crew) == {}
    assert "Dilepas 1 keluarga" in web.get(page).get_data(as_text=True)
    # an enumerator of another kecamatan is refused by the service: skipped, nothing changes
    response = web.post("/review/penugasan/keluarga", {
        "putaran": crew, "kelurahan": "31.73.01.1001", "keluarga": ["KLG-A1"],
        "enumerator": "citra", "aksi": "tugaskan"}, form_page=page)
    assert response.status_code == 303 and _assignments(db, crew) == {}
    assert "di luar wilayah enumerator" in web.get(page).get_data(as_text=True)


def test_a_closed_round_takes_no_more_assignments_from_the_page(web, db, crew):
    from sync.assignments import close_round

    close_round(db, crew)
    db.commit()
    assert web.login("spv").status_code == 303
    page = f"/review/penugasan?putaran={crew}&kelurahan=31.73.01.1001"
    html = web.get(page).get_data(as_text=True)
    assert "sudah ditutup" in html and 'id="assign-area"' not in html
    response = web.post("/review/penugasan/wilayah", {
        "putaran": crew, "kelurahan": "31.73.01.1001", "enumerator": "ani"}, form_page=page)
    assert response.status_code == 303 and _assignments(db, crew) == {}
    assert "Putaran ini sudah ditutup" in web.get(page).get_data(as_text=True)


def test_another_kecamatans_supervisor_is_refused(web, db, crew):
    assert web.login("spv-utara").status_code == 303
    page = f"/review/penugasan?putaran={crew}&kelurahan=31.73.01.1001"
    assert web.get(page).status_code == 404
    assert web.get(f"/review/penugasan?putaran={crew}&kecamatan=31.73.01").status_code == 404
    ok = f"/review/penugasan?putaran={crew}&kelurahan=31.72.01.1001"
    assert web.get(ok).status_code == 200
    response = web.post("/review/penugasan/wilayah", {
        "putaran": crew, "kelurahan": "31.73.01.1001", "enumerator": "citra"}, form_page=ok)
    assert response.status_code == 403
    response = web.post("/review/penugasan/keluarga", {
        "putaran": crew, "kelurahan": "31.72.01.1001", "keluarga": ["KLG-A1"],
        "enumerator": "ani", "aksi": "tugaskan"}, form_page=ok)
    assert response.status_code == 303
    assert _assignments(db, crew) == {}  # KLG-A1 is outside: skipped


def test_enumerators_never_reach_the_work_pages(web, db, crew):
    assert web.login("ani").status_code == 403
    for path in ("/review/putaran", "/review/penugasan"):
        assert web.get(path).status_code == 302


def test_a_visit_of_a_closed_round_is_not_sent_back(web, db, flagged):
    from sync.assignments import close_round

    round_id = db.scalar(select(Round.id))
    assert close_round(db, round_id) == 2
    db.commit()
    assert web.login("spv").status_code == 303
    page = f"/review/kunjungan/{flagged['KLG-A2']}"
    response = web.post(f"{page}/tinjau", {"decision": "return", "note": "Ulangi."},
                        form_page=page)
    assert response.status_code == 409
    assert _assignments(db, round_id)["KLG-A2"][1] == "closed"


# --------------------------------------------------------------------------- exports, escalations


def test_the_exports_page_downloads_both_csv_files_with_filters(web, db, flagged):
    import csv
    import io

    assert web.login("spv").status_code == 303
    html = web.get("/review/ekspor?kecamatan=31.73.01").get_data(as_text=True)
    assert "Unduh changes.csv" in html and "Unduh outcomes.csv" in html
    assert 'name="kecamatan" value="31.73.01"' in html

    conflict = db.scalar(select(Conflict).where(Conflict.household_id == "KLG-A1",
                                                Conflict.kind == "field_mismatch"))
    page = f"/review/konflik/{conflict.id}"
    assert web.post(f"{page}/putuskan", {"decision": "accept_visit"},
                    form_page=page).status_code == 303
    response = web.get("/review/ekspor/changes.csv?kecamatan=31.73.01&sejak=2020-01-01")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="changes.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["household_id", "kecamatan", "kelurahan", "field"]
    assert [r[0] for r in rows[1:]] == ["KLG-A1"] and rows[1][3] == "rumah.lantai"
    response = web.get("/review/ekspor/changes.csv?kelurahan=31.73.01.1002")
    assert len(list(csv.reader(io.StringIO(response.get_data(as_text=True))))) == 1
    round_id = db.scalar(select(Round.id))
    response = web.get(f"/review/ekspor/outcomes.csv?putaran={round_id}")
    assert response.status_code == 200
    assert 'filename="outcomes.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["household_id"] for r in rows) == ["KLG-A1", "KLG-A2"]
    assert {r["visit_uuid"] for r in rows} == set(flagged.values())
    response = web.get(f"/review/ekspor/outcomes.csv?putaran={round_id + 1}")
    assert len(response.get_data(as_text=True).splitlines()) == 1
    assert web.get("/review/ekspor/outcomes.csv?kelurahan=bogus").status_code == 422


def test_exports_of_another_kecamatan_are_refused(web, db, flagged, make_user):
    make_user("spv-utara", role="supervisor", areas=("31.72.01",))
    assert web.login("spv-utara").status_code == 303
    assert web.get("/review/ekspor/changes.csv?kecamatan=31.73.01").status_code == 403
    assert web.get("/review/ekspor/outcomes.csv?kelurahan=31.73.01.1001").status_code == 403
    response = web.get("/review/ekspor/outcomes.csv")  # their own areas: no row of Cengkareng
    assert response.status_code == 200
    assert len(response.get_data(as_text=True).splitlines()) == 1


def test_admins_list_escalated_conflicts_masked(web, db, flagged, make_user):
    from sync.progress import escalate

    make_user("boss", role="admin")
    assert escalate(db, dt.timedelta(0)) == len(db.scalars(select(Conflict)).all())
    db.commit()
    assert web.login("spv").status_code == 303
    assert web.get("/review/eskalasi").status_code == 403
    assert "/review/eskalasi" not in web.get("/review/ekspor").get_data(as_text=True)
    web.post("/review/keluar")
    assert web.login("boss").status_code == 303
    html = web.get("/review/eskalasi").get_data(as_text=True)
    assert "Konflik dieskalasi" in html and "KLG-A1" in html and "KLG-A2" in html
    assert "Nilai berbeda" in html and "hari" in html
    assert not re.search(r"\d{16}", html)  # NIKs and KK numbers masked


# --------------------------------------------------------------------------- find a family


def _member(db, household_id):
    from sync.models.registry import Anggota

    return db.execute(select(Anggota.nik, Anggota.nama).where(
        Anggota.keluarga_id == household_id).order_by(Anggota.no_urut)).first()


def test_finding_a_family_by_nik_kk_or_name_shows_it_masked(web, db, crew):
    assert web.login("spv").status_code == 303
    assert "Cari keluarga" in web.get("/review/cari").get_data(as_text=True)
    nik, name = _member(db, "KLG-A2")
    kk, _head = _kk_and_head(db, "KLG-A2")
    response = web.post("/review/cari", {"q": nik}, form_page="/review/cari")
    assert response.status_code == 200  # answered in place: the NIK never reaches a URL
    html = response.get_data(as_text=True)
    assert "/review/keluarga/KLG-A2" in html and "KLG-A1" not in html
    assert nik not in html and mask_number(nik) in html and name not in html
    assert mask_name(name) in html and "NIK" in html
    html = web.post("/review/cari", {"q": kk}, form_page="/review/cari").get_data(as_text=True)
    assert "/review/keluarga/KLG-A2" in html and kk not in html and "No. KK" in html
    word = name.split()[-1].lower()  # part of a name, any case
    html = web.post("/review/cari", {"q": word}, form_page="/review/cari").get_data(as_text=True)
    assert "/review/keluarga/KLG-A2" in html and name not in html
    response = web.post("/review/cari", {"q": "ab"}, form_page="/review/cari")
    assert response.status_code == 422 and "paling sedikit 3 huruf" in response.get_data(
        as_text=True)
    # a GET with a query searches nothing
    assert "/review/keluarga/" not in web.get(f"/review/cari?q={nik}").get_data(as_text=True)


def test_another_kecamatans_supervisor_finds_nothing_there(web, db, crew):
    assert web.login("spv-utara").status_code == 303
    nik, _name = _member(db, "KLG-A2")
    html = web.post("/review/cari", {"q": nik}, form_page="/review/cari").get_data(as_text=True)
    assert "Tidak ada keluarga yang cocok" in html and "KLG-A2" not in html
    nik_b1, _ = _member(db, "KLG-B1")
    html = web.post("/review/cari", {"q": nik_b1},
                    form_page="/review/cari").get_data(as_text=True)
    assert "/review/keluarga/KLG-B1" in html


# --------------------------------------------------------------------------- a lost phone


def test_a_supervisor_revokes_a_lost_phone_and_resets_the_password(web, db, crew, client,
                                                                   login):
    lost = login("ani", device_id="ani-hilang")
    spare = login("ani", device_id="ani-cadangan")
    assert web.login("spv").status_code == 303
    html = web.get("/review/petugas").get_data(as_text=True)
    assert 'id="member-ani"' in html and 'id="member-citra"' not in html
    assert 'id="member-boss"' not in html  # a supervisor manages enumerators only
    page = "/review/petugas/ani"
    html = web.get(page).get_data(as_text=True)
    assert "ani-hilang" in html and "ani-cadangan" in html
    response = web.post(f"{page}/cabut", {"device": "ani-hilang"}, form_page=page)
    assert response.status_code == 303
    assert client.get("/api/v1/me", headers=lost).status_code == 401
    assert client.get("/api/v1/me", headers=spare).status_code == 200
    html = web.get(page).get_data(as_text=True)
    assert "Perangkat ani-hilang dicabut (1 token)" in html and 'value="ani-hilang"' not in html
    # a new password: both must match, 8 characters at least
    response = web.post(f"{page}/sandi", {"password": "baru-sekali", "password2": "lain"},
                        form_page=page)
    assert response.status_code == 422 and "tidak sama" in response.get_data(as_text=True)
    response = web.post(f"{page}/sandi", {"password": "pendek", "password2": "pendek"},
                        form_page=page)
    assert response.status_code == 422 and "8 karakter" in response.get_data(as_text=True)
    response = web.post(f"{page}/sandi", {"password": "sandi-baru-ani",
                                          "password2": "sandi-baru-ani"}, form_page=page)
    assert response.status_code == 303
    assert client.get("/api/v1/me", headers=spare).status_code == 401  # every device out
    assert client.post("/api/v1/auth/token", json={
        "username": "ani", "password": "password123", "device_id": "x"}).status_code == 401
    login("ani", "sandi-baru-ani", device_id="ani-baru")
    assert "Tidak ada perangkat" not in web.get(page).get_data(as_text=True)


def test_another_kecamatans_supervisor_cannot_touch_the_enumerator(web, db, crew, client,
                                                                    login):
    phone = login("ani", device_id="ani-phone")
    assert web.login("spv-utara").status_code == 303
    assert 'id="member-ani"' not in web.get("/review/petugas").get_data(as_text=True)
    assert web.get("/review/petugas/ani").status_code == 404
    ok = "/review/petugas/citra"
    assert web.get(ok).status_code == 200
    assert web.post("/review/petugas/ani/cabut", {"device": "ani-phone"},
                    form_page=ok).status_code == 404
    assert web.post("/review/petugas/ani/sandi", {"password": "sandi-curian",
                                                  "password2": "sandi-curian"},
                    form_page=ok).status_code == 404
    assert web.get("/review/petugas/spv").status_code == 404  # another supervisor
    assert client.get("/api/v1/me", headers=phone).status_code == 200
    assert client.post("/api/v1/auth/token", json={
        "username": "ani", "password": "password123", "device_id": "y"}).status_code == 201


# --------------------------------------------------------------------------- quality


def test_quality_per_enumerator_shows_the_signals_of_fabrication(web, db, flagged):
    from sqlalchemy import update

    from sync.models import Visit

    a1 = db.get(Visit, flagged["KLG-A1"])
    minutes = (a1.ended_at - a1.started_at).total_seconds() / 60
    first = min(db.scalars(select(Conflict.id).where(
        Conflict.visit_uuid == flagged["KLG-A1"])))
    db.execute(update(Conflict).where(Conflict.id == first).values(kind="photo_reused"))
    db.commit()
    assert web.login("spv").status_code == 303
    html = web.get("/review/mutu").get_data(as_text=True)
    assert html.index('id="q-ani"') < html.index('id="q-budi"')  # the suspicious one first
    assert 'id="q-ani-visits">1<' in html and 'id="q-budi-visits">1<' in html
    assert f'id="q-ani-median">{minutes:.1f}<'.replace(".", ",") in html
    assert 'id="q-ani-photo">1<' in html and 'id="q-budi-photo">0<' in html
    assert 'id="q-ani-travel">0<' in html
    assert "Perlu diperiksa" in html and "Foto dipakai ulang 1" in html
    assert "Nilai berbeda 1" in html  # budi's conflicts by kind
    round_id = db.scalar(select(Round.id))
    html = web.get(f"/review/mutu?putaran={round_id}").get_data(as_text=True)
    assert 'id="q-ani-visits">1<' in html
    assert web.get(f"/review/mutu?putaran={round_id + 5}").status_code == 404


def test_quality_of_another_kecamatan_is_not_shown(web, db, flagged, make_user):
    make_user("spv-utara", role="supervisor", areas=("31.72.01",))
    assert web.login("spv-utara").status_code == 303
    html = web.get("/review/mutu").get_data(as_text=True)
    assert 'id="q-ani"' not in html and "Tidak ada enumerator" in html
