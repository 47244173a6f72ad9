"""XLSForm import (forms/xlsform.py, `flask forms import-xlsform`): the v1 round trip, a
hand-built workbook, every refusal with its row, and the command."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import Workbook, load_workbook

import forms
from forms.xform import build_xform
from forms.xlsform import (
    XLSFormError,
    definition_from_xlsform,
    save_xlsform,
    xlsform_from_definition,
)


def workbook(survey: list, choices: list, settings: list) -> bytes:
    """An .xlsx of the three sheets; each a list of rows, the first the header."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in (("survey", survey), ("choices", choices), ("settings", settings)):
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_of(definition: dict) -> bytes:
    buf = io.BytesIO()
    save_xlsform(definition, buf)
    return buf.getvalue()


# -- the v1 round trip ---------------------------------------------------------


def test_v1_round_trip_gives_an_equal_definition(v1):
    back, warnings = definition_from_xlsform(xlsx_of(v1))
    assert warnings == []
    assert json.loads(json.dumps(back)) == json.loads(json.dumps(v1))
    assert forms.content_hash(back) == forms.content_hash(v1)


def test_v1_workbook_is_an_xlsform_with_tapak_columns(v1, tmp_path):
    path = tmp_path / "v1.xlsx"
    save_xlsform(v1, path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["survey", "choices", "settings"]
    header = [c.value for c in wb["survey"][1]]
    assert header[:4] == ["type", "name", "label::Bahasa Indonesia (id)", "label::English (en)"]
    assert {"tapak::prefill", "tapak::verifies", "tapak::example", "tapak::pattern"} <= set(header)
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in wb["survey"].iter_rows(2)]
    persetujuan = next(r for r in rows if r["name"] == "persetujuan")
    assert persetujuan["type"] == "select_one tapak_ya_tidak"
    assert persetujuan["relevant"].startswith("(/data/hasil_kunjungan = 1")
    # a rule whose XPath reads back as an equivalent (not identical) rule keeps its JsonLogic
    bottled = next(r for r in rows if r["name"] == "air_kemasan_bermerek")
    assert json.loads(bottled["tapak::constraint"])["or"][0] == {"var": "value"}
    # pyxform (ODK's XLSForm converter) takes the workbook as it is
    from pyxform.xls2xform import convert

    assert "<h:html" in convert(xlsform=str(path), validate=False).xform


def test_an_edited_xpath_wins_over_a_stale_tapak_rule(v1):
    wb = xlsform_from_definition(v1)
    ws = wb["survey"]
    header = [c.value for c in ws[1]]
    for r in ws.iter_rows(2):
        if r[header.index("name")].value == "air_kemasan_bermerek":
            r[header.index("constraint")].value = ". = 'yes' or ${air_minum} = 2"
    buf = io.BytesIO()
    wb.save(buf)
    back, warnings = definition_from_xlsform(buf.getvalue())
    field = back["fields"][-2]["fields"][0]
    assert field["constraint"] == {
        "or": [{"===": [{"var": "value"}, True]}, {"===": [{"var": "rumah.air_minum"}, 2]}]
    }
    assert any("tapak::constraint no longer matches" in w["message"] for w in warnings)


# every key and type of the definition format survives the trip, not only v1's
EXOTIC = {
    "form_id": "lengkap",
    "version": 7,
    "title": "Semua jenis",
    "description": "Setiap kunci definisi",
    "choices": {
        "kode_teks": [{"value": "1", "label": "Satu"}, {"value": "2", "label": "Dua"}],
        "warna": [
            {"value": "merah", "label": {"id": "Merah", "en": "Red"}},
            {"value": "biru", "label": {"id": "Biru", "en": "Blue"}},
        ],
    },
    "fields": [
        {
            "name": "waktu",
            "type": "datetime",
            "label": "Waktu",
            "example": "2026-01-05T09:12:00+07:00",
        },
        {
            "name": "berat",
            "type": "decimal",
            "label": "Berat",
            "min": 0.5,
            "max": 99.5,
            "example": 12.25,
        },
        {
            "name": "kode",
            "type": "select_one",
            "choices": "kode_teks",
            "label": "Kode",
            "example": "2",
        },
        {
            "name": "warna",
            "type": "select_multiple",
            "choices": "warna",
            "label": "Warna",
            "min_count": 1,
            "max_count": 2,
            "example": ["merah", "biru"],
            "required": False,
        },
        {
            "name": "titik",
            "type": "geopoint",
            "label": "Titik",
            "example": {"lat": -6.2, "lon": 106.8, "accuracy_m": 5},
        },
        {
            "name": "tanggal",
            "type": "date",
            "label": "Tanggal",
            "min": "2020-01-01",
            "max": "2030-12-31",
            "age_helper": "usia",
            "example": "2021-02-03",
        },
        {
            "name": "kode_pos",
            "type": "text",
            "label": "Kode pos",
            "pattern": "[0-9]{5}",
            "min_length": 5,
            "max_length": 5,
            "example": "01234",
            "hint": "Lima angka",
        },
        {
            "name": "blok",
            "type": "group",
            "label": "Blok",
            "constraint": {"!!": {"var": "blok.isi"}},
            "constraint_message": "Isi dulu",
            "fields": [{"name": "isi", "type": "integer", "label": "Isi", "min": 0, "example": 0}],
        },
        {
            "name": "luar",
            "type": "repeat",
            "label": "Luar",
            "max_count": 5,
            "fields": [
                {
                    "name": "n",
                    "type": "integer",
                    "label": "N",
                    "relevant": {">=": [{"var": "usia"}, 18]},
                },
                {
                    "name": "dalam",
                    "type": "repeat",
                    "label": "Dalam",
                    "fields": [
                        {
                            "name": "m",
                            "type": "integer",
                            "label": "M",
                            "relevant": {">": [{"var": "_parent.n"}, 0]},
                        }
                    ],
                },
            ],
        },
        {
            "name": "catatan",
            "type": "note",
            "label": "Selesai",
            "relevant": {">": [{"var": "luar.length"}, 0]},
        },
    ],
}


def test_every_key_and_type_survives_the_round_trip():
    assert forms.check_definition(EXOTIC) == []
    back, warnings = definition_from_xlsform(xlsx_of(EXOTIC))
    assert warnings == []
    assert back == EXOTIC
    assert forms.content_hash(back) == forms.content_hash(EXOTIC)


# -- a hand-built workbook -----------------------------------------------------

SURVEY = [
    (
        "type",
        "name",
        "label::Indonesian (id)",
        "label::English (en)",
        "hint",
        "relevant",
        "constraint",
        "constraint_message::Indonesian (id)",
        "required",
        "required_message",
        "tapak::prefill",
        "tapak::example",
        "appearance",
    ),
    ("start", "mulai"),
    ("select_one hasil", "hasil", "Hasil", "Result", None, None, None, None, "yes"),
    (
        "select_one tapak_ya_tidak",
        "setuju",
        "Setuju",
        "Consent",
        None,
        "${hasil} = 1",
        None,
        None,
        "yes",
        "Wajib",
    ),
    ("begin group", "rumah", "Rumah", "House", None, "${setuju} = 'yes'"),
    (
        "integer",
        "kamar",
        "Jumlah kamar",
        "Rooms",
        None,
        None,
        ". >= 1 and . <= 20",
        "Antara 1 dan 20",
        "yes",
        None,
        "rumah.kamar",
        2,
    ),
    (
        "select_multiple fasilitas",
        "fasilitas",
        "Fasilitas",
        "Facilities",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "minimal",
    ),
    ("end group",),
    ("begin_repeat", "anggota", "Anggota", "Members", None, "${setuju} = 'yes'"),
    (
        "text",
        "nik",
        "NIK",
        "NIK",
        "16 angka",
        None,
        "regex(., '^[0-9]{16}$')",
        None,
        "yes",
        None,
        "nik",
        "3173010101010001",
    ),
    ("select_one jk", "jk", "Jenis kelamin", "Sex", None, None, None, None, "yes"),
    (
        "date",
        "lahir",
        "Tanggal lahir",
        "Birth date",
        None,
        None,
        "decimal-date-time(.) <= decimal-date-time(today())",
        "Tidak boleh setelah hari ini",
    ),
    ("select_one tapak_ya_tidak", "hamil", "Hamil", "Pregnant", None, "${jk} = 'P'"),
    ("end_repeat",),
    ("geopoint", "lokasi", "Lokasi", "Location"),
    ("image", "foto", "Foto rumah", "House photo", None, "${setuju} = 'yes'", None, None, "yes"),
    ("note", "terima_kasih", "Terima kasih", "Thank you"),
]
CHOICES = [
    ("list_name", "name", "label::Indonesian (id)", "label::English (en)"),
    ("hasil", 1, "Ditemukan", "Found"),
    ("hasil", 2, "Tidak ditemukan", "Not found"),
    ("jk", "L", "Laki-laki", "Male"),
    ("jk", "P", "Perempuan", "Female"),
    ("fasilitas", "air", "Air", "Water"),
    ("fasilitas", "listrik", "Listrik", "Power"),
    ("tapak_ya_tidak", "yes", "Ya", "Yes"),
    ("tapak_ya_tidak", "no", "Tidak", "No"),
]
SETTINGS = [("form_id", "version", "form_title"), ("survei_kecil", "3", "Survei kecil")]
CONSENT = {"===": [{"var": "setuju"}, True]}
EXPECTED = {
    "form_id": "survei_kecil",
    "version": 3,
    "title": "Survei kecil",
    "choices": {
        "hasil": [
            {"value": 1, "label": {"id": "Ditemukan", "en": "Found"}},
            {"value": 2, "label": {"id": "Tidak ditemukan", "en": "Not found"}},
        ],
        "jk": [
            {"value": "L", "label": {"id": "Laki-laki", "en": "Male"}},
            {"value": "P", "label": {"id": "Perempuan", "en": "Female"}},
        ],
        "fasilitas": [
            {"value": "air", "label": {"id": "Air", "en": "Water"}},
            {"value": "listrik", "label": {"id": "Listrik", "en": "Power"}},
        ],
    },
    "fields": [
        {
            "name": "hasil",
            "type": "select_one",
            "choices": "hasil",
            "label": {"id": "Hasil", "en": "Result"},
            "required": True,
        },
        {
            "name": "setuju",
            "type": "boolean",
            "label": {"id": "Setuju", "en": "Consent"},
            "required": True,
            "relevant": {"===": [{"var": "hasil"}, 1]},
        },
        {
            "name": "rumah",
            "type": "group",
            "label": {"id": "Rumah", "en": "House"},
            "relevant": CONSENT,
            "fields": [
                {
                    "name": "kamar",
                    "type": "integer",
                    "label": {"id": "Jumlah kamar", "en": "Rooms"},
                    "required": True,
                    "prefill": "rumah.kamar",
                    "example": 2,
                    "constraint": {
                        "and": [{">=": [{"var": "value"}, 1]}, {"<=": [{"var": "value"}, 20]}]
                    },
                    "constraint_message": {"id": "Antara 1 dan 20"},
                },
                {
                    "name": "fasilitas",
                    "type": "select_multiple",
                    "choices": "fasilitas",
                    "label": {"id": "Fasilitas", "en": "Facilities"},
                },
            ],
        },
        {
            "name": "anggota",
            "type": "repeat",
            "label": {"id": "Anggota", "en": "Members"},
            "relevant": CONSENT,
            "fields": [
                {
                    "name": "nik",
                    "type": "text",
                    "label": {"id": "NIK", "en": "NIK"},
                    "hint": "16 angka",
                    "required": True,
                    "prefill": "nik",
                    "example": "3173010101010001",
                    "pattern": "[0-9]{16}",
                },
                {
                    "name": "jk",
                    "type": "select_one",
                    "choices": "jk",
                    "label": {"id": "Jenis kelamin", "en": "Sex"},
                    "required": True,
                },
                {
                    "name": "lahir",
                    "type": "date",
                    "label": {"id": "Tanggal lahir", "en": "Birth date"},
                    "constraint": {"<=": [{"var": "value"}, {"var": "_visit.date"}]},
                    "constraint_message": {"id": "Tidak boleh setelah hari ini"},
                },
                {
                    "name": "hamil",
                    "type": "boolean",
                    "label": {"id": "Hamil", "en": "Pregnant"},
                    "relevant": {"===": [{"var": "_item.jk"}, "P"]},
                },
            ],
        },
        {"name": "lokasi", "type": "geopoint", "label": {"id": "Lokasi", "en": "Location"}},
        {
            "name": "foto",
            "type": "photo",
            "label": {"id": "Foto rumah", "en": "House photo"},
            "required": True,
            "relevant": CONSENT,
        },
        {
            "name": "terima_kasih",
            "type": "note",
            "label": {"id": "Terima kasih", "en": "Thank you"},
        },
    ],
}


def test_hand_built_workbook_becomes_the_expected_definition():
    definition, warnings = definition_from_xlsform(workbook(SURVEY, CHOICES, SETTINGS))
    assert definition == EXPECTED
    assert forms.check_definition(definition) == []
    assert build_xform(definition).startswith(b"<?xml")  # it can be served to Collect
    said = {(w["row"], w["message"].split(":")[0]) for w in warnings}
    assert (2, "'start' is not kept") in said
    assert (4, "required_message is not kept") in said
    assert any("'appearance' is not kept (rows 7)" in w["message"] for w in warnings)
    # and back: the exporter writes a workbook that reads as the same definition
    assert definition_from_xlsform(xlsx_of(definition))[0] == definition


def test_yes_no_list_marked_boolean_and_plain_labels():
    survey = [
        ("type", "name", "label", "tapak::type", "relevant"),
        ("select_one yn", "ada", "Ada?", "boolean"),
        ("text", "apa", "Apa?", None, "${ada} = 'yes'"),
    ]
    choices = [("list_name", "name", "label"), ("yn", "yes", "Ya"), ("yn", "no", "Tidak")]
    settings = [("form_id", "version", "form_title"), ("kecil", 1, "Kecil")]
    definition, _ = definition_from_xlsform(workbook(survey, choices, settings))
    assert definition["fields"] == [
        {"name": "ada", "type": "boolean", "label": "Ada?"},
        {
            "name": "apa",
            "type": "text",
            "label": "Apa?",
            "relevant": {"===": [{"var": "ada"}, True]},
        },
    ]
    # the list stays (a designer may use it elsewhere); its codes are text
    assert definition["choices"]["yn"][0] == {"value": "yes", "label": "Ya"}


# -- refusals ------------------------------------------------------------------


def _errors(survey: list, choices: list = None, settings: list = None) -> list[tuple]:
    choices = choices or [("list_name", "name", "label"), ("hasil", 1, "Ya"), ("hasil", 2, "No")]
    settings = settings or [("form_id", "version", "form_title"), ("kecil", 1, "Kecil")]
    with pytest.raises(XLSFormError) as exc:
        definition_from_xlsform(workbook(survey, choices, settings))
    return [(e["sheet"], e["row"], e["message"]) for e in exc.value.errors]


def _has(errors: list[tuple], sheet: str, row: int | None, words: str) -> bool:
    return any(s == sheet and r == row and words in m for s, r, m in errors)


def test_every_refusal_is_reported_at_once_with_its_row():
    survey = [
        ("type", "name", "label", "relevant", "constraint", "required", "default"),
        ("select_one hasil", "hasil", "Hasil", None, None, "yes"),  # 2
        ("calculate", "hitung", "Hitung"),  # 3
        ("text", "nama", "Nama", "pulldata('households', 'x', 'name', ${hasil})"),  # 4
        ("select_one tidak_ada", "pilih", "Pilih"),  # 5
        ("end_group",),  # 6
        ("begin_repeat", "anggota", "Anggota"),  # 7
        ("text", "nik", "NIK", None, "${nope} = 1"),  # 8
        ("integer", "umur", "Umur", None, None, "${hasil} = 1"),  # 9
        ("text", "x", "X", None, None, None, "abc"),  # 10
        ("text", "y", "Y", None, "regex(., '[0-9]+')"),  # 11
        ("select_one hasil or_other", "z", "Z"),  # 12
    ]
    errors = _errors(survey)
    assert _has(errors, "survey", 3, "unknown or unsupported type 'calculate'")
    assert _has(errors, "survey", 4, "relevant: cannot translate")
    assert _has(errors, "survey", 4, "pulldata")
    assert _has(errors, "survey", 5, "choice list 'tidak_ada' does not exist")
    assert _has(errors, "survey", 6, "'end_group' closes no begin_group")
    assert _has(errors, "survey", 7, "begin_repeat 'anggota' is never closed")
    assert _has(errors, "survey", 8, "no question is named 'nope'")
    assert _has(errors, "survey", 9, "Tapak has no conditional requirement")
    assert _has(errors, "survey", 10, "column 'default' cannot be translated")
    assert _has(errors, "survey", 11, "anchored as '^...$'")
    assert _has(errors, "survey", 12, "or_other")
    assert len(errors) == 10  # one a row (row 4 says both)


def test_mismatched_end_names_the_open_row():
    survey = [
        ("type", "name", "label"),
        ("begin_repeat", "anggota", "Anggota"),  # 2
        ("begin_group", "g", "G"),  # 3
        ("text", "t", "T"),
        ("end_repeat",),  # 5
        ("end_group",),  # 6
    ]
    errors = _errors(survey)
    assert _has(errors, "survey", 5, "cannot close begin_group 'g' of row 3")
    assert _has(errors, "survey", 2, "begin_repeat 'anggota' is never closed")


def test_settings_choices_and_definition_checks_point_at_rows():
    survey = [
        ("type", "name", "label", "tapak::pattern", "tapak::prefil"),
        ("text", "Nama Lengkap", "Nama"),  # 2: not snake_case (from check_definition)
        ("text", "kode", "Kode", "(?i)abc"),  # 3: not a portable pattern
    ]
    choices = [("list_name", "name", "label"), ("hasil", 1, "Ya"), ("hasil", 1, "Dua")]
    settings = [("form_id", "version", "form_title"), ("Bukan Id", "v1", None)]
    errors = _errors(survey, choices, settings)
    assert _has(errors, "settings", 2, "'version' must be a whole number")
    assert _has(errors, "settings", 2, "'form_id' is lowercase snake_case")
    assert _has(errors, "settings", 2, "'form_title' is required")
    assert _has(errors, "choices", 3, "Option value 1 repeats")
    assert _has(errors, "survey", 1, "unknown Tapak column 'tapak::prefil'")
    assert _has(errors, "survey", 2, "snake_case")
    assert _has(errors, "survey", 3, "pattern")


def test_a_label_without_indonesian_is_refused_with_the_column_to_add():
    survey = [("type", "name", "label::English (en)"), ("text", "nama", "Name")]
    settings = [("form_id", "version", "form_title::English (en)"), ("kecil", 1, "Small")]
    errors = _errors(survey, settings=settings)
    assert _has(errors, "survey", 2, "a plain 'label' column or 'label::Bahasa Indonesia (id)'")
    assert _has(errors, "settings", 2, "a plain 'form_title' column")


def test_a_file_that_is_no_workbook_is_refused(tmp_path):
    with pytest.raises(XLSFormError) as exc:
        definition_from_xlsform(b"not a zip")
    assert "not an .xlsx workbook" in str(exc.value)


# -- the command -----------------------------------------------------------------


def test_cli_writes_the_json_beside_the_file(runner, tmp_path, v1):
    path = tmp_path / "verifikasi.xlsx"
    path.write_bytes(xlsx_of(v1))
    result = runner.invoke(args=["forms", "import-xlsform", str(path)])
    assert result.exit_code == 0, result.output
    assert "verifikasi_keluarga v1: 47 questions, 0 notes, 4 groups, 1 repeats" in result.output
    assert json.loads((tmp_path / "verifikasi.json").read_text(encoding="utf-8")) == v1
    out = tmp_path / "elsewhere.json"
    result = runner.invoke(args=["forms", "import-xlsform", str(path), "--out", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text(encoding="utf-8")) == v1


def test_cli_publishes_through_the_publish_path(runner, tmp_path):
    path = tmp_path / "kecil.xlsx"
    path.write_bytes(workbook(SURVEY, CHOICES, SETTINGS))
    result = runner.invoke(args=["forms", "import-xlsform", str(path), "--publish"])
    assert result.exit_code == 0, result.output
    assert "survei_kecil v3: 10 questions, 1 notes, 1 groups, 1 repeats" in result.output
    assert "survei_kecil v3 published" in result.output
    assert not (tmp_path / "kecil.json").exists()
    listed = runner.invoke(args=["forms", "list"])
    assert "survei_kecil" in listed.output
    again = runner.invoke(args=["forms", "import-xlsform", str(path), "--publish"])
    assert "already published, unchanged" in again.output


def test_cli_lists_every_problem_and_writes_nothing(runner, tmp_path):
    path = tmp_path / "rusak.xlsx"
    path.write_bytes(
        workbook(
            [("type", "name", "label"), ("calculate", "a", "A"), ("select_one x", "b", "B")],
            [("list_name", "name", "label"), ("hasil", 1, "Ya")],
            [("form_id", "version", "form_title"), ("rusak", 1, "Rusak")],
        )
    )
    result = runner.invoke(args=["forms", "import-xlsform", str(path), "--publish"])
    assert result.exit_code != 0
    assert "sheet 'survey' row 2: unknown or unsupported type 'calculate'" in result.output
    assert "sheet 'survey' row 3: choice list 'x' does not exist" in result.output
    assert "2 problem(s); nothing converted" in result.output
    assert not (tmp_path / "rusak.json").exists()
