"""Every field type and constraint, relevance (also inside repeats), error paths and photos."""

from __future__ import annotations

import pytest

import forms
from tests.forms.conftest import codes, mini_form, mini_visit

SHA = "a" * 64


def validate(fields, answers, photos=None, choices=None, **visit_extra):
    form = forms.load_form(mini_form(fields, choices))
    return forms.validate_visit(form, mini_visit(answers, photos, **visit_extra))


def field(name, type_, **kw):
    return {"name": name, "type": type_, "label": {"id": name.title()}, **kw}


@pytest.mark.parametrize(
    "spec, good, bad",
    [
        (field("t", "text"), ["abc", "é"], [(1, "type"), (True, "type"), (["a"], "type")]),
        (
            field("t", "text", min_length=2, max_length=3),
            ["ab", "abc"],
            [("a", "min_length"), ("abcd", "max_length")],
        ),
        (
            field("t", "text", pattern="[0-9]{3}"),
            ["003"],
            [("03", "pattern"), ("0034", "pattern"), ("a03", "pattern"), ("٠٠٣", "pattern")],
        ),
        (
            field("n", "integer", min=0, max=10),
            [0, 10, 5.0],
            [(-1, "min"), (11, "max"), (1.5, "type"), ("3", "type"), (True, "type")],
        ),
        (
            field("d", "decimal", min=0.5, max=2),
            [0.5, 1, 2.0],
            [(0.4, "min"), (2.01, "max"), ("1.0", "type"), (False, "type")],
        ),
        (field("b", "boolean"), [True, False], [(1, "type"), ("true", "type")]),
        (
            field("tgl", "date", min="2000-01-01", max="2025-12-31"),
            ["2000-01-01", "2024-02-29"],
            [
                ("2023-02-29", "type"),
                ("01-01-2020", "type"),
                ("2020-1-1", "type"),
                ("1999-12-31", "min"),
                ("2026-01-01", "max"),
                (20200101, "type"),
            ],
        ),
        (
            field("w", "datetime"),
            ["2026-01-05T09:12:00+07:00", "2026-01-05T02:12:00Z", "2026-01-05T09:12+07:00"],
            [("2026-01-05T09:12:00", "type"), ("2026-01-05", "type"), ("kemarin", "type")],
        ),
        (
            field("s", "select_one", choices="warna"),
            [1, 3],
            [(4, "choice"), ("1", "choice"), (True, "choice"), (1.0, "choice")],
        ),
        (
            field("s", "select_one", choices="jk"),
            ["L", "P"],
            [("l", "choice"), (1, "choice")],
        ),
        (
            field("m", "select_multiple", choices="warna", max_count=2),
            [[1], [1, 3]],
            [(1, "type"), ([1, 9], "choice"), ([1, 1], "duplicate"), ([1, 2, 3], "max_count")],
        ),
        (
            field("g", "geopoint"),
            [{"lat": -6.14, "lon": 106.73}, {"lat": 0, "lon": 0, "accuracy_m": 8}],
            [
                ({"lat": 91, "lon": 0}, "type"),
                ({"lat": 0}, "type"),
                ({"lat": 0, "lon": 0, "accuracy_m": -1}, "type"),
                ({"lat": 0, "lon": 0, "x": 1}, "type"),
                ([0, 0], "type"),
            ],
        ),
    ],
)
def test_types_accept_good_values_and_reject_bad_ones(spec, good, bad):
    for value in good:
        result = validate([spec], {spec["name"]: value})
        assert result.errors == [], value
        assert result.answers == {spec["name"]: value}
    for value, code in bad:
        result = validate([spec], {spec["name"]: value})
        assert codes(result) == {(f"answers.{spec['name']}", code)}, value
        assert result.errors[0]["message"]


def test_required_and_blank_answers():
    spec = [field("a", "text", required=True), field("b", "integer"), field("c", "boolean")]
    result = validate(spec, {"a": "", "b": None})
    assert codes(result) == {("answers.a", "required")}
    assert result.answers == {}  # blanks are dropped
    assert validate(spec, {"a": "x", "c": False}).answers == {"a": "x", "c": False}


def test_constraint_sees_the_value_and_other_answers():
    spec = [
        field("umur", "integer"),
        field(
            "tahun_sekolah",
            "integer",
            constraint={"<=": [{"var": "value"}, {"var": "umur"}]},
            constraint_message={"id": "Tidak boleh melebihi umur.", "en": "Cannot exceed age."},
        ),
    ]
    assert validate(spec, {"umur": 10, "tahun_sekolah": 4}).errors == []
    result = validate(spec, {"umur": 10, "tahun_sekolah": 12})
    assert codes(result) == {("answers.tahun_sekolah", "constraint")}
    assert "Tidak boleh melebihi umur." in result.errors[0]["message"]


def test_not_relevant_answers_are_dropped_not_rejected():
    spec = [
        field("punya_hp", "boolean", required=True),
        field("no_hp", "text", required=True, relevant={"var": "punya_hp"}),
    ]
    result = validate(spec, {"punya_hp": False, "no_hp": "0812"})
    assert result.errors == []
    assert result.answers == {"punya_hp": False}
    assert codes(validate(spec, {"punya_hp": True})) == {("answers.no_hp", "required")}


def test_rules_see_earlier_non_relevant_answers_as_gone():
    spec = [
        field("a", "boolean"),
        field("b", "integer", relevant={"var": "a"}),
        field("c", "text", required=True, relevant={">": [{"var": "b"}, 5]}),
    ]
    # b is dropped (a is false), so c is not relevant either, even though b=9 was sent.
    result = validate(spec, {"a": False, "b": 9})
    assert result.errors == [] and result.answers == {"a": False}


def test_unknown_fields_are_errors_at_their_path():
    spec = [field("g", "group", fields=[field("x", "integer")])]
    result = validate(spec, {"zz": 1, "g": {"x": 1, "y": 2}, "_visit": 3})
    assert codes(result) == {
        ("answers.zz", "unknown_field"),
        ("answers.g.y", "unknown_field"),
        ("answers._visit", "unknown_field"),
    }
    assert result.answers == {"g": {"x": 1}}


def test_a_note_takes_no_answer():
    spec = [field("info", "note"), field("x", "integer")]
    assert validate(spec, {"x": 1}).errors == []
    assert codes(validate(spec, {"info": "hi"})) == {("answers.info", "unknown_field")}


NESTED = [
    field("ada", "boolean", required=True),
    field(
        "orang",
        "repeat",
        required=True,
        min_count=1,
        max_count=3,
        relevant={"var": "ada"},
        fields=[
            field("nik", "text", required=True, pattern="[0-9]{16}"),
            field("jk", "select_one", choices="jk", required=True),
            field("lahir", "date", required=True, age_helper="umur"),
            field(
                "hamil",
                "boolean",
                required=True,
                relevant={
                    "and": [
                        {"==": [{"var": "_item.jk"}, "P"]},
                        {"<=": [10, {"var": "_item.umur"}, 54]},
                        {"var": "ada"},
                    ]
                },
            ),
            field(
                "kerja",
                "group",
                relevant={">=": [{"var": "_item.umur"}, 15]},
                fields=[
                    field("status", "select_one", choices="warna", required=True),
                    field(
                        "jam",
                        "integer",
                        min=0,
                        max=100,
                        relevant={"===": [{"var": "_item.kerja.status"}, 1]},
                    ),
                ],
            ),
            field(
                "anak",
                "repeat",
                fields=[
                    field("nama", "text", required=True),
                    field(
                        "ibu_hamil",
                        "boolean",
                        relevant={"===": [{"var": "_parent.jk"}, "P"]},
                    ),
                ],
            ),
        ],
    ),
]

WOMAN = {"nik": "3173014508850003", "jk": "P", "lahir": "1995-06-15"}  # 30 on the visit date
MAN = {"nik": "3173010101900001", "jk": "L", "lahir": "1995-03-10"}


def test_repeat_items_see_their_own_fields_top_level_answers_and_age_helpers():
    woman = {**WOMAN, "hamil": False, "kerja": {"status": 1, "jam": 40}}
    man = {**MAN, "hamil": True, "kerja": {"status": 2, "jam": 40}}
    result = validate(NESTED, {"ada": True, "orang": [woman, man]})
    assert result.errors == []
    # Not relevant, so dropped: a man's pregnancy, hours when status is not 1.
    assert result.answers["orang"][1] == {**MAN, "kerja": {"status": 2}}
    assert result.answers["orang"][0] == woman
    assert "umur" not in result.answers["orang"][0]  # helpers never leak into answers


def test_errors_inside_nested_repeats_and_groups_have_full_paths_and_all_come_at_once():
    bad_woman = {**WOMAN, "nik": "123", "kerja": {"status": 9}}
    child = {"jk": "L", "lahir": "2020-01-01", "anak": [{"nama": "A"}, {"ibu_hamil": "ya"}]}
    too_young = {**MAN, "lahir": "2020-01-01", "kerja": {"status": 1}}
    result = validate(NESTED, {"ada": True, "orang": [bad_woman, child, too_young]})
    assert codes(result) == {
        ("answers.orang[0].nik", "pattern"),
        ("answers.orang[0].hamil", "required"),
        ("answers.orang[0].kerja.status", "choice"),
        ("answers.orang[1].nik", "required"),
        ("answers.orang[1].anak[1].nama", "required"),
    }
    # A child's kerja group is not relevant (umur 6): dropped; ibu_hamil not relevant (parent L).
    assert "kerja" not in result.answers["orang"][2]
    assert result.answers["orang"][1]["anak"][1] == {}


def test_repeat_counts_and_shapes():
    assert codes(validate(NESTED, {"ada": True, "orang": []})) == {("answers.orang", "required")}
    many = [{**MAN, "kerja": {"status": 2}}] * 4
    assert codes(validate(NESTED, {"ada": True, "orang": many})) == {("answers.orang", "max_count")}
    assert codes(validate(NESTED, {"ada": True, "orang": {"a": 1}})) == {("answers.orang", "type")}
    assert codes(validate(NESTED, {"ada": True, "orang": [5]})) == {("answers.orang[0]", "type")}
    # Not relevant at all: the whole repeat is dropped.
    assert validate(NESTED, {"ada": False, "orang": many}).answers == {"ada": False}


def test_pregnancy_age_window_edges():
    def hamil_relevant(lahir):
        item = {**WOMAN, "lahir": lahir, "kerja": {"status": 2}}
        result = validate(NESTED, {"ada": True, "orang": [item]})
        return ("answers.orang[0].hamil", "required") in codes(result)

    assert hamil_relevant("2016-01-05")  # 10 on the visit date
    assert not hamil_relevant("2016-01-06")  # 9, 10 tomorrow
    assert hamil_relevant("1971-01-06")  # 54
    assert not hamil_relevant("1971-01-05")  # 55 today


def test_repeat_constraint_sees_the_list_as_value():
    spec = [
        field(
            "x",
            "repeat",
            constraint={
                "<=": [
                    {
                        "reduce": [
                            {"var": "value"},
                            {"+": [{"var": "accumulator"}, {"var": "current.n"}]},
                            0,
                        ]
                    },
                    10,
                ]
            },
            fields=[field("n", "integer")],
        )
    ]
    assert validate(spec, {"x": [{"n": 4}, {"n": 6}]}).errors == []
    assert codes(validate(spec, {"x": [{"n": 4}, {"n": 7}]})) == {("answers.x", "constraint")}


def test_photos_come_from_the_visit_photos_list():
    spec = [
        field("foto", "photo", required=True),
        field("opsional", "photo"),
        field("g", "group", fields=[field("foto", "photo")]),
        field("r", "repeat", fields=[field("foto", "photo", required=True)]),
    ]
    photos = [
        {"field": "foto", "sha256": SHA, "filename": "IMG_1.jpg"},
        {"field": "g.foto", "sha256": "b" * 64},
        {"field": "r[0].foto", "sha256": "c" * 64},
    ]
    result = validate(spec, {"foto": "IMG_1.jpg", "r": [{}]}, photos)
    assert result.errors == []
    assert result.answers == {"foto": SHA, "g": {"foto": "b" * 64}, "r": [{"foto": "c" * 64}]}

    result = validate(
        spec,
        {"opsional": "IMG_9.jpg", "r": [{}, {}]},
        [
            {"field": "foto", "sha256": "XYZ"},
            {"field": "bukan_foto", "sha256": SHA},
            {"field": "r[0].foto", "sha256": SHA},
            {"field": "r[0].foto", "sha256": SHA},
            "junk",
        ],
    )
    assert codes(result) == {
        ("photos[0].sha256", "type"),
        ("photos[1].field", "unknown_field"),
        ("photos[3].field", "duplicate"),
        ("photos[4]", "type"),
        ("answers.foto", "required"),
        ("answers.opsional", "photo_missing"),
        ("answers.r[1].foto", "required"),
    }


def test_photos_of_questions_that_are_not_relevant_are_ignored():
    spec = [field("b", "boolean"), field("foto", "photo", required=True, relevant={"var": "b"})]
    result = validate(spec, {"b": False}, [{"field": "foto", "sha256": SHA}])
    assert result.errors == [] and result.answers == {"b": False}


def test_envelope_errors():
    spec = [field("x", "integer")]
    form = forms.load_form(mini_form(spec))
    result = forms.validate_visit(
        form, mini_visit({"x": 1}, form_id="lain", form_version=2, started_at="05/01/2026")
    )
    assert codes(result) == {
        ("form_id", "form_mismatch"),
        ("form_version", "form_mismatch"),
        ("started_at", "type"),
    }
    no_answers = mini_visit({})
    del no_answers["answers"]
    assert codes(forms.validate_visit(form, no_answers)) == {("answers", "required")}
    assert codes(forms.validate_visit(form, [])) == {("", "type")}
    ok = forms.validate_visit(form, mini_visit({"x": 1}))
    assert ok.ok and ok == ({"x": 1}, [])  # also unpacks as (answers, errors)


def test_a_rule_that_fails_to_evaluate_is_reported():
    spec = [field("x", "integer", constraint={"tidak_ada_operasi": [{"var": "x"}]})]
    form = forms.Form(mini_form(spec))  # bypass the checker, which would flag tidak_ada
    result = forms.validate_visit(form, mini_visit({"x": 1}))
    assert codes(result) == {("answers.x", "rule_error")}


def test_the_input_visit_is_not_modified():
    visit = mini_visit({"ada": True, "orang": [{**WOMAN, "hamil": False, "x": 1}]})
    before = repr(visit)
    form = forms.load_form(mini_form(NESTED))
    forms.validate_visit(form, visit)
    assert repr(visit) == before
