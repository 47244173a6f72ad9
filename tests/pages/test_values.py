"""Values in the supervisor's words (server.web.values): unit tests of the formatter over the
published form, then the queue and conflict pages over conflicts made by the real worker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import event, select

from server.web.values import (
    BLANK,
    Card,
    FormLabels,
    indonesian_date,
    indonesian_datetime,
    members_by_nik,
    number,
)

FORM = Path(__file__).resolve().parents[2] / "forms" / "verifikasi_keluarga" / "v1.json"
WIFE = {"nik": "3173014508850003", "nama": "Yuliani Hartati", "jenis_kelamin": "P",
        "tanggal_lahir": "1985-08-05", "hubungan": 2, "status_kawin": 2, "pekerjaan": 4,
        "sekolah": 2, "disabilitas": False}
HEAD = {"nik": "3173010201800051", "nama": "Budi Santoso", "jenis_kelamin": "L",
        "tanggal_lahir": "1980-01-02", "hubungan": 1, "pekerjaan": 7}


@pytest.fixture(scope="module")
def labels() -> FormLabels:
    return FormLabels(json.loads(FORM.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- the formatter


def test_a_choice_reads_with_the_questions_and_the_choices_labels(labels):
    c = labels.change("rumah.atap", 4, 4, 2)
    assert (c.label, c.registry, c.base, c.visit) == ("Jenis atap terluas", "Asbes", "Asbes",
                                                      "Genteng")
    assert c.known and c.member is None
    assert labels.value("rumah.daya_va", 5500) == "5.500 VA atau lebih"
    # a code the list does not have is shown as it is, never dropped
    assert labels.value("rumah.atap", 99) == "99"
    # and how to write one when setting a value
    assert c.hint.startswith("Isi kodenya: 1 = Beton; 2 = Genteng; 3 = Seng; 4 = Asbes")
    assert labels.hint("aset.mobil") == "Isi Ya atau Tidak."
    assert "TTTT-BB-HH" in labels.hint("anggota[NIK=3173014508850003].tanggal_lahir")
    assert labels.hint("alamat") is None and labels.hint("nothing.here") is None


def test_booleans_blanks_numbers_and_dates(labels):
    c = labels.change("aset.mobil", False, None, True)
    assert (c.label, c.registry, c.base, c.visit) == ("Memiliki mobil", "Tidak", BLANK, "Ya")
    for blank in (None, "", []):
        assert labels.value("alamat", blank) == "(kosong)"
    assert labels.value("rumah.luas_lantai_m2", 42.5) == "42,5"
    assert labels.value("rumah.luas_lantai_m2", 1250) == "1.250"
    assert labels.value("anggota[].tanggal_lahir", "2026-01-05") == "5 Januari 2026"
    assert indonesian_date("1985-12-31") == "31 Desember 1985"
    assert indonesian_date("not a date") == "not a date"
    assert indonesian_datetime("2026-01-05T02:12:00Z") == "5 Januari 2026 09.12 WIB"
    assert number(1234567) == "1.234.567" and number(0.25) == "0,25"
    assert labels.value("lokasi", {"lat": -6.136144, "lon": 106.72342, "accuracy_m": 8.4}) == \
        "-6.13614, 106.72342 (±8 m)"


def test_a_member_field_names_the_member_by_relationship_and_name(labels):
    members = members_by_nik({"anggota": [HEAD, WIFE]})
    path = f"anggota[NIK={WIFE['nik']}].pekerjaan"
    masked = labels.change(path, 4, 4, 5, members=members, masked=True)
    assert masked.member == "Istri, Y****** H******"
    assert masked.label == "Status kedudukan dalam pekerjaan utama"
    assert (masked.registry, masked.visit) == ("Buruh/karyawan/pegawai swasta",
                                              "PNS/TNI/Polri/BUMN/BUMD/anggota legislatif")
    assert masked.member_nik == "317301********03"
    whole = labels.change(path, 4, 4, 5, members=members)
    assert whole.member == "Istri, Yuliani Hartati" and whole.member_nik == WIFE["nik"]
    # a husband is "Suami"; a member by position; a member the record no longer has
    assert labels.member_name({"hubungan": 2, "jenis_kelamin": "L", "nama": "Adi"}) == \
        "Suami, Adi"
    assert labels.change("anggota[1].nama", "Yuliani", None, "Yuliana",
                         members=members).member == "Istri, Yuliani Hartati"
    gone = labels.change("anggota[NIK=3173019999999999].hubungan", 3, 3, 4, masked=True)
    assert gone.member == "NIK 317301********99" and (gone.registry, gone.visit) == (
        "Anak", "Menantu")
    # names and NIKs as values are masked in lists
    assert labels.change(f"anggota[NIK={WIFE['nik']}].nama", "Yuliani Hartati", None,
                         "Yuliana Hartati", members=members, masked=True).visit == \
        "Y****** H******"


def test_an_added_or_removed_member_is_a_card_not_json(labels):
    baby = {"nik": "3173015501260001", "nama": "Putri Ayu", "jenis_kelamin": "P",
            "tanggal_lahir": "2026-01-15", "hubungan": 3, "pekerjaan": 0,
            "status_keberadaan": 5}
    added = labels.change("anggota[+]", None, None, baby, masked=True)
    assert added.presence and added.label == "Anggota keluarga ditambahkan"
    assert added.registry == BLANK and isinstance(added.visit, Card)
    assert added.visit.title == "Anak, P**** A**"
    lines = dict(added.visit.lines)
    assert lines["Jenis kelamin"] == "Perempuan"
    assert lines["Tanggal lahir"] == "15 Januari 2026"
    assert lines["Status kedudukan dalam pekerjaan utama"] == "Tidak bekerja"
    assert lines["Keberadaan anggota keluarga"] == "Anggota keluarga baru"
    assert lines["NIK"] == "317301********01"
    assert "{" not in str(added.visit) + repr(added.visit.lines)
    removed = labels.change(f"anggota[NIK={WIFE['nik']}]", WIFE, WIFE, None)
    assert removed.label == "Anggota keluarga dihapus" and removed.visit == BLANK
    assert removed.registry.title == "Istri, Yuliani Hartati"
    assert dict(removed.registry.lines)["NIK"] == WIFE["nik"]


def test_rule_findings_read_in_words_too(labels):
    """Rules put context in a conflict's field and values: a member's status and the aid
    it still receives, a group, a GPS point, a photo's hash, the visit's result."""
    members = members_by_nik({"anggota": [HEAD, WIFE]})
    died = labels.change(f"anggota[NIK={HEAD['nik']}]", ["pkh", "bpnt"], None, 2,
                         members=members, masked=True)
    assert died.member == "Kepala keluarga, B*** S******"
    assert (died.label, died.registry, died.visit) == (
        "Anggota keluarga", "Penerima PKH, Penerima BPNT/Program Sembako", "Meninggal")
    assert labels.change("program", 2, None, None).label == "Bantuan yang diterima"
    outside = labels.change("kode_kelurahan", "31.73.01.1001", None,
                            {"lat": -6.1, "lon": 106.7, "accuracy_m": 12.3})
    assert (outside.label, outside.visit) == ("Kode kelurahan", "-6.10000, 106.70000 (±12 m)")
    photo = labels.change("foto_depan", ["KLG-1", "KLG-2"], None, "ab" * 32)
    assert (photo.label, photo.registry, photo.visit) == (
        "Foto tampak depan rumah", "KLG-1, KLG-2", "foto ababababab…")
    assert labels.change("hasil_kunjungan", None, None, 3).visit == "Tidak ditemukan"
    # a NIK shared with other families: their ids are not NIKs, and stay readable
    shared = labels.change(f"anggota[NIK={WIFE['nik']}].nik", ["KLG-3172050000008"], None,
                           WIFE["nik"], members=members, masked=True)
    assert (shared.registry, shared.visit) == ("KLG-3172050000008", "317301********03")


def test_paths_the_form_does_not_have_fall_back_to_the_raw_path(labels):
    assert labels.change(None, 1, 1, 2) is None  # a rule finding with no field
    c = labels.change("rumah.kolam_renang", True, None, False, shown_path="rumah.kolam_renang")
    assert not c.known and c.label == "rumah.kolam_renang" and c.visit == "Tidak"
    assert labels.change("desil", 3, 3, 4).label == "Desil"  # a registry field no question asks
    # a structured value with no question: key: value pairs, NIKs masked, never JSON
    text = labels.change("x.y", {"nik": "3173014508850003", "ok": True}, None, None,
                         masked=True).registry
    assert text == "nik: 317301********03; ok: Ya"
    # an empty definition still reads values
    empty = FormLabels(None)
    assert empty.change("rumah.atap", 4, None, 2).label == "rumah.atap"
    assert empty.value("aset.mobil", True) == "Ya"


# --------------------------------------------------------------------------- the pages


@pytest.fixture
def worded(db, field, located, deliver, reconcile):  # noqa: F811
    """KLG-A1 visited with its roof Asbes → Genteng, a car found (Tidak → Ya), the wife's birth
    date corrected and a newborn added. Returns the visit's uuid."""
    from sync.models import VerifiedRecord
    from sync.registry import apply_changes

    apply_changes(db, "KLG-A1", {"rumah.atap": 4}, source="review", actor_id=None)
    db.commit()
    v, images = located("KLG-A1")
    a = v["answers"]
    a["rumah"]["atap"] = 2
    a["aset"]["mobil"] = True
    wife = next(m for m in a["anggota"] if m["hubungan"] == 2)
    wife["tanggal_lahir"] = "1985-08-06"
    a["anggota"].append({"status_keberadaan": 5, "nik": "3173015501260001",
                         "nama": "Putri Ayu", "jenis_kelamin": "P",
                         "tanggal_lahir": "2026-01-15", "hubungan": 3, "status_kawin": 1,
                         "sekolah": 0, "pekerjaan": 0, "disabilitas": False,
                         "penyakit_kronis": False})
    deliver((v, images))
    assert reconcile() == 1
    db.commit()
    assert db.get(VerifiedRecord, "KLG-A1").doc["rumah"]["atap"] == 4
    return v["uuid"]


def _conflict_id(db, field_like: str) -> int:
    from sync.models import Conflict

    db.commit()
    return db.scalar(select(Conflict.id).where(Conflict.household_id == "KLG-A1",
                                               Conflict.field.like(field_like))
                     .order_by(Conflict.id))


def _text(html: str) -> str:
    """The page's text, tags dropped and spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_queue_shows_labels_names_and_cards_not_machine_words(web, db, worded):
    assert web.login("spv").status_code == 303
    html = web.get("/review/antrean?household=KLG-A1").get_data(as_text=True)
    text = _text(html)
    assert "Jenis atap terluas: Asbes → Genteng" in text
    assert "Memiliki mobil: Tidak → Ya" in text
    assert "Istri, S*** A***** · Tanggal lahir: 5 Agustus 1985 → 6 Agustus 1985" in text
    assert "Anggota keluarga ditambahkan: Anak, P**** A**" in text
    assert "Tanggal lahir: 15 Januari 2026" in text and "Perempuan" in text
    # no raw paths, codes, NIKs or JSON
    for machine in ("rumah.atap", "aset.mobil", "anggota[", "NIK=", "{", "&#34;", "&quot;",
                    "Siti Aminah", "3173015501260001"):
        assert machine not in html, machine


def test_the_conflict_page_shows_whole_values_in_words(web, db, worded):
    assert web.login("spv").status_code == 303
    atap = _conflict_id(db, "rumah.atap")
    text = _text(web.get(f"/review/konflik/{atap}").get_data(as_text=True))
    assert "Jenis atap terluas: Asbes → Genteng" in text
    assert "Isi kodenya: 1 = Beton; 2 = Genteng" in text  # for "Tetapkan nilai"
    mobil = _conflict_id(db, "aset.mobil")
    text = _text(web.get(f"/review/konflik/{mobil}").get_data(as_text=True))
    assert "Memiliki mobil: Tidak → Ya" in text
    birth = _conflict_id(db, "anggota[NIK=%].tanggal_lahir")
    html = web.get(f"/review/konflik/{birth}").get_data(as_text=True)
    text = _text(html)
    assert "Istri, Siti Aminah" in text  # whole name on the detail
    assert "Tanggal lahir: 5 Agustus 1985 → 6 Agustus 1985" in text
    assert re.search(r"NIK \d{16}", text)  # and the whole NIK
    added = _conflict_id(db, "anggota[%]")
    html = web.get(f"/review/konflik/{added}").get_data(as_text=True)
    text = _text(html)
    assert "Anggota keluarga ditambahkan" in text and "Anak, Putri Ayu" in text
    assert "Registri sekarang (kosong)" in text and "Status perkawinan: Belum kawin" in text
    assert "15 Januari 2026" in text and 'class="mcard"' in html
    assert "{" not in html.split('id="values"')[1].split("</table>")[0]


def test_the_queue_reads_each_form_once_and_no_query_per_row(web, db, worded, app):
    """Constant queries whatever the rows: the form definition is cached per version."""
    from server.extensions import db as flask_db

    assert web.login("spv").status_code == 303

    def count(url: str) -> tuple[int, int]:
        statements = []
        with app.app_context():
            engine = flask_db.engine
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            html = web.get(url).get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        forms = sum(1 for s in statements if "FROM form_versions" in s)
        return len(statements), forms, html.count('href="/review/konflik/')

    from unittest import mock

    import server.services.conflicts as service

    url = "/review/antrean?kind=field_mismatch"  # newest first: the added member
    app.extensions.pop("tapak.form_labels", None)
    assert count(url)[1] == 1  # the definition, read once for the page
    assert count(url)[1] == 0  # then cached for the app
    real = service.list_conflicts
    with mock.patch.object(service, "list_conflicts",
                           lambda *a, **kw: real(*a, **{**kw, "limit": 1})):
        one_total, one_forms, one_rows = count(url)
    all_total, all_forms, all_rows = count(url)
    assert (one_rows, all_rows) == (1, 4)
    assert all_total == one_total and all_forms == one_forms == 0


def test_the_visit_and_household_pages_read_answers_and_history_in_words(web, db, worded):
    assert web.login("spv").status_code == 303
    html = web.get(f"/review/kunjungan/{worded}").get_data(as_text=True)
    text = _text(html)
    assert "Jenis atap terluas: Asbes → Genteng" in text  # the visit's conflicts
    answers = _text(html.split('id="answers"')[1].split("</table>")[0])
    assert "Jenis atap terluas Genteng" in answers and "Memiliki mobil Ya" in answers
    assert "Responden bersedia diwawancarai Ya" in answers
    assert "rumah." not in answers and "aset." not in answers
    members = _text(html.split('id="members"')[1].split("</details>")[0])
    assert "Istri, Siti Aminah" in members and "Tanggal lahir: 6 Agustus 1985" in members
    assert "Keberadaan anggota keluarga: Anggota keluarga baru" in members
    assert "status_keberadaan" not in members and "{" not in members
    # a decision, then the family's history says it in words
    atap = _conflict_id(db, "rumah.atap")
    page = f"/review/konflik/{atap}"
    assert web.post(f"{page}/putuskan", {"decision": "accept_visit"},
                    form_page=page).status_code == 303
    text = _text(web.get("/review/keluarga/KLG-A1").get_data(as_text=True))
    assert "Jenis atap terluas: Asbes → Genteng" in text
    assert "Istri, Siti Aminah" in text  # the record's members by relationship and name
    assert "rumah.atap" not in text
