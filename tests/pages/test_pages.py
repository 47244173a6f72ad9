"""The review pages through Flask's test client: login and logout, CSRF, roles and areas,
decisions on real conflicts made by the real worker, and masking."""

from __future__ import annotations

import re

from sqlalchemy import select

from sync.models import Assignment, Conflict, VerifiedRecord, Visit
from tests.pages.conftest import csrf_token


def _conflict(db, household_id: str, kind: str = "field_mismatch") -> Conflict:
    db.commit()
    return db.scalar(select(Conflict).where(Conflict.household_id == household_id,
                                            Conflict.kind == kind))


# --------------------------------------------------------------------------- login


def test_login_page_is_small_indonesian_and_self_contained(client):
    response = client.get("/review/masuk")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="id">' in html and "Kata sandi" in html and "Masuk" in html
    assert csrf_token(html)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from outside
    assert len(response.data) < 4000
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_pages_need_a_login_and_come_back_after_it(web, make_user):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    response = web.get("/review/antrean?status=all")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/review/masuk?next=")
    page = web.get(response.headers["Location"]).get_data(as_text=True)
    response = web.client.post("/review/masuk", data={
        "username": "spv", "password": "password123", "csrf_token": csrf_token(page),
        "next": "/review/antrean?status=all"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/review/antrean?status=all"
    assert web.get("/review/antrean").status_code == 200


def test_login_never_redirects_to_another_site(web, make_user):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    token = csrf_token(web.get("/review/masuk").get_data(as_text=True))
    for target in ("//evil.example/x", "https://evil.example/review/", "/api/v1/me",
                   "/\\evil.example"):
        web.get("/review/keluar")  # a GET does nothing
        response = web.client.post("/review/masuk", data={
            "username": "spv", "password": "password123", "csrf_token": token,
            "next": target})
        assert response.status_code == 303
        assert response.headers["Location"] == "/review/antrean", target
        token = csrf_token(web.get("/review/antrean").get_data(as_text=True))


def test_wrong_password_and_unknown_user_answer_alike(web, make_user):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    wrong = web.login("spv", "not-the-password")
    unknown = web.login("nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        assert "Nama pengguna atau kata sandi salah." in response.get_data(as_text=True)
    assert web.get("/review/antrean").status_code == 302


def test_an_enumerator_gets_a_clear_indonesian_refusal(web, make_user, client):
    ani = make_user("ani", role="enumerator", areas=("31.73.01",))
    response = web.login("ani")
    assert response.status_code == 403
    assert "hanya untuk supervisor dan admin" in response.get_data(as_text=True)
    assert web.get("/review/antrean").status_code == 302  # no session was started
    # a session cookie naming an enumerator (e.g. demoted since) is refused too
    with client.session_transaction() as s:
        from server.web.auth import SESSION_KEY, _fingerprint
        s[SESSION_KEY] = {"id": ani.id, "fp": _fingerprint(ani)}
    response = web.get("/review/antrean")
    assert response.status_code == 403
    assert "Enumerator memakai aplikasi Tapak di ponsel" in response.get_data(as_text=True)


def test_logout_ends_the_session(web, make_user):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    assert web.login("spv").status_code == 303
    response = web.post("/review/keluar")
    assert response.status_code == 303 and response.headers["Location"] == "/review/masuk"
    assert web.get("/review/antrean").status_code == 302


def test_changing_the_password_ends_page_sessions(web, make_user, db):
    spv = make_user("spv", role="supervisor", areas=("31.73.01",))
    assert web.login("spv").status_code == 303
    spv.set_password("another-password")
    db.commit()
    assert web.get("/review/antrean").status_code == 302


def test_login_is_rate_limited(web, make_user):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    statuses = [web.login("spv", "wrong-password").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    assert "Terlalu banyak percobaan" in web.login("spv").get_data(as_text=True)


# --------------------------------------------------------------------------- CSRF


def test_a_post_without_the_csrf_token_is_refused(web, make_user, client):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    response = client.post("/review/masuk", data={"username": "spv",
                                                  "password": "password123"})
    assert response.status_code == 400
    assert "Muat ulang" in response.get_data(as_text=True)
    assert web.login("spv").status_code == 303
    response = web.post("/review/keluar", token=False)
    assert response.status_code == 400
    response = client.post("/review/keluar", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert web.get("/review/antrean").status_code == 200  # still logged in


def test_a_decision_without_the_token_changes_nothing(web, db, flagged):
    assert web.login("spv").status_code == 303
    c = _conflict(db, "KLG-A1")
    response = web.post(f"/review/konflik/{c.id}/putuskan", {"decision": "accept_visit"},
                        token=False)
    assert response.status_code == 400
    assert _conflict(db, "KLG-A1").status == "open"


def test_the_api_takes_no_csrf_token_even_beside_a_page_session(web, make_user, client):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    assert web.login("spv").status_code == 303  # the client now holds a session cookie
    response = client.post("/api/v1/auth/token", json={
        "username": "spv", "password": "password123", "device_id": "laptop"})
    assert response.status_code == 201
    token = response.get_json()["token"]
    response = client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204


def test_every_api_blueprint_is_exempt_and_the_pages_are_not(app):
    from server.web import api_blueprint_names, csrf

    exempt = {b.name for b in csrf._exempt_blueprints}
    posting = {rule.endpoint.rpartition(".")[0] for rule in app.url_map.iter_rules()
               if rule.rule.startswith("/api/") and "POST" in rule.methods}
    assert posting and posting <= exempt == api_blueprint_names(app) | (exempt - posting)
    assert "pages" not in exempt


# --------------------------------------------------------------------------- areas and roles


def test_a_supervisor_outside_the_area_gets_404(web, db, make_user, flagged):
    make_user("spv-utara", role="supervisor", areas=("31.72.01",))
    assert web.login("spv-utara").status_code == 303
    c = _conflict(db, "KLG-A1")
    assert web.get(f"/review/konflik/{c.id}").status_code == 404
    assert web.get(f"/review/kunjungan/{flagged['KLG-A1']}").status_code == 404
    response = web.get("/review/keluarga/KLG-A1")
    assert response.status_code == 404
    assert "di luar wilayah Anda" in response.get_data(as_text=True)
    response = web.post(f"/review/konflik/{c.id}/putuskan", {"decision": "accept_visit"})
    assert response.status_code == 404
    assert _conflict(db, "KLG-A1").status == "open"
    # and the queue does not list it
    assert f"/review/konflik/{c.id}" not in web.get("/review/antrean").get_data(as_text=True)


# --------------------------------------------------------------------------- the queue


def _nik_in(c: Conflict) -> str:
    return re.search(r"NIK=(\d{16})", c.field).group(1)


def test_the_queue_filters_counts_per_kind_and_masks_niks(web, db, flagged):
    assert web.login("spv").status_code == 303
    html = web.get("/review/antrean").get_data(as_text=True)
    a1, a2 = _conflict(db, "KLG-A1"), _conflict(db, "KLG-A2")
    assert f"/review/konflik/{a1.id}" in html and f"/review/konflik/{a2.id}" in html
    assert "Nilai berbeda" in html  # the kind in Indonesian, with its count
    nik = _nik_in(a2)
    # the member by relationship and masked name, never by NIK or path
    assert nik not in html and "NIK=" not in html and "Budi Santoso" not in html
    assert "Kepala keluarga, B*** S****** · Status kedudukan dalam pekerjaan utama" in html
    html = web.get("/review/antrean?kelurahan=31.73.01.1001").get_data(as_text=True)
    assert f"/review/konflik/{a1.id}" in html and f"/review/konflik/{a2.id}" not in html
    html = web.get("/review/antrean?household=KLG-A2").get_data(as_text=True)
    assert f"/review/konflik/{a2.id}" in html and f"/review/konflik/{a1.id}" not in html
    html = web.get("/review/antrean?kind=photo_reused").get_data(as_text=True)
    assert "Tidak ada konflik" in html
    html = web.get("/review/antrean?kelurahan=bogus&status=closed").get_data(as_text=True)
    assert "tidak valid dan diabaikan" in html


def test_the_queue_pages_with_a_cursor(web, db, flagged):
    assert web.login("spv").status_code == 303
    total = len(db.scalars(select(Conflict)).all())
    assert total >= 2
    seen, url = [], "/review/antrean?sort=oldest"
    from unittest import mock

    import server.services.conflicts as service

    real = service.list_conflicts
    with mock.patch.object(service, "list_conflicts",
                           lambda *a, **kw: real(*a, **{**kw, "limit": 1})):
        for _ in range(total + 1):
            html = web.get(url).get_data(as_text=True)
            seen += re.findall(r'href="/review/konflik/(\d+)"', html)
            more = re.search(r'rel="next" href="([^"]+)"', html)
            if not more:
                break
            url = more.group(1).replace("&amp;", "&")
    assert sorted(map(int, seen)) == sorted(c.id for c in db.scalars(select(Conflict)))


# --------------------------------------------------------------------------- decisions


def test_accepting_the_visit_value_writes_a_new_verified_version(web, db, flagged):
    assert web.login("spv").status_code == 303
    c = _conflict(db, "KLG-A1")
    detail = web.get(f"/review/konflik/{c.id}").get_data(as_text=True)
    assert "Terima nilai kunjungan" in detail and "Pertahankan data registri" in detail
    assert "<svg" in detail  # the map
    assert re.search(r'<img src="/api/v1/media/[0-9a-f]{64}\?size=thumb', detail)
    response = web.post(f"/review/konflik/{c.id}/putuskan",
                        {"decision": "accept_visit", "note": "Lantai tanah, dicek foto."},
                        form_page=f"/review/konflik/{c.id}")
    assert response.status_code == 303
    assert _conflict(db, "KLG-A1").status == "resolved"
    record = db.get(VerifiedRecord, "KLG-A1")
    assert record.version == 2 and record.doc["rumah"]["lantai"] == 8
    page = web.get(f"/review/konflik/{c.id}").get_data(as_text=True)
    assert "Keputusan disimpan" in page and "Buka kembali" in page
    history = web.get("/review/keluarga/KLG-A1").get_data(as_text=True)
    assert "Lantai tanah, dicek foto." in history
    assert "Jenis lantai terluas: Semen/bata merah → <b>Tanah</b>" in history
    # a second decision on the now stale view: 409, nothing changes
    response = web.post(f"/review/konflik/{c.id}/putuskan", {"decision": "keep_registry"},
                        form_page=f"/review/konflik/{c.id}")
    assert response.status_code == 409
    assert "Sudah diputuskan orang lain" in response.get_data(as_text=True)
    assert db.get(VerifiedRecord, "KLG-A1").version == 2


def test_set_value_needs_a_value_and_reopen_works(web, db, flagged):
    assert web.login("spv").status_code == 303
    c = _conflict(db, "KLG-A1")
    page = f"/review/konflik/{c.id}"
    response = web.post(f"{page}/putuskan", {"decision": "set_value"}, form_page=page)
    assert response.status_code == 422 and "Isi nilai baru" in response.get_data(as_text=True)
    response = web.post(f"{page}/putuskan", {"decision": "set_value", "value": "7",
                                             "note": "Keramik sebagian"}, form_page=page)
    assert response.status_code == 303
    db.commit()
    assert db.get(VerifiedRecord, "KLG-A1").doc["rumah"]["lantai"] == 7
    response = web.post(f"{page}/buka", {"note": "Salah ketik"}, form_page=page)
    assert response.status_code == 303
    assert _conflict(db, "KLG-A1").status == "open"


def test_the_detail_shows_the_whole_nik_to_the_supervisor(web, db, flagged):
    assert web.login("spv").status_code == 303
    c = _conflict(db, "KLG-A2")
    assert _nik_in(c) in web.get(f"/review/konflik/{c.id}").get_data(as_text=True)


def test_returning_a_visit_sends_the_family_back(web, db, flagged):
    assert web.login("spv").status_code == 303
    uuid = flagged["KLG-A2"]
    page = f"/review/kunjungan/{uuid}"
    html = web.get(page).get_data(as_text=True)
    assert "Kembalikan ke enumerator" in html
    response = web.post(f"{page}/tinjau", {"decision": "return"}, form_page=page)
    assert response.status_code == 422 and "Tulis catatan" in response.get_data(as_text=True)
    response = web.post(f"{page}/tinjau", {"decision": "return",
                                           "note": "Foto KTP kepala keluarga buram."},
                        form_page=page)
    assert response.status_code == 303
    db.commit()
    assert db.get(Visit, uuid).status == "returned"
    a = db.scalar(select(Assignment).where(Assignment.household_id == "KLG-A2"))
    assert (a.status, a.note) == ("returned", "Foto KTP kepala keluarga buram.")
    html = web.get(page).get_data(as_text=True)
    assert "Dikembalikan" in html and 'id="review"' not in html  # no form any more


def test_the_dashboard_draws_svg_bars_for_the_priority_kecamatan(web, db, flagged,
                                                                   make_user):
    make_user("boss", role="admin")
    assert web.login("boss").status_code == 303
    html = web.get("/review/dasbor").get_data(as_text=True)
    assert "Kemajuan 10 kecamatan prioritas" in html
    assert html.count("<svg") >= 3 and "Cengkareng" in html and "Penjaringan" in html
    assert 'id="open-total">2<' in html or 'id="open-total">' in html
    html = web.get("/review/dasbor?kecamatan=31.73.01").get_data(as_text=True)
    assert "Kemajuan Cengkareng" in html and "/review/antrean?kelurahan=31.73.01." in html


def test_the_dashboard_outside_a_supervisors_area_is_404(web, make_user):
    make_user("spv", role="supervisor", areas=("31.73.01",))
    assert web.login("spv").status_code == 303
    assert web.get("/review/dasbor").status_code == 200
    assert web.get("/review/dasbor?kecamatan=31.72.01").status_code == 404


def test_pages_are_small_gzipped_and_use_one_small_stylesheet(web, db, flagged):
    assert web.login("spv").status_code == 303
    plain = web.get("/review/antrean")
    assert len(plain.data) < 12_000
    links = re.findall(r'<(?:link|script|img)[^>]+(?:href|src)="([^"]+)"',
                       plain.get_data(as_text=True))
    assert links == ["data:,", "/static/tapak.css"]  # no script, no font, nothing else
    gzipped = web.get("/review/antrean", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip" and len(gzipped.data) < 3_000
    css = web.get("/static/tapak.css")
    assert css.status_code == 200 and len(css.data) < 5_000
