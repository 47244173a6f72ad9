"""The JsonLogic -> XPath translator, operator by operator, blanks included."""

from __future__ import annotations

import pytest

from forms.xpath import FormScope, XPathError, age_xpath, literal, to_xpath

DEF = {
    "form_id": "t",
    "version": 1,
    "title": "T",
    "choices": {
        "n": [{"value": 1, "label": "a"}, {"value": 2, "label": "b"}],
        "s": [{"value": "L", "label": "L"}, {"value": "P", "label": "P"}],
    },
    "fields": [
        {"name": "kode", "type": "select_one", "choices": "n", "label": "k"},
        {"name": "jk", "type": "select_one", "choices": "s", "label": "j"},
        {"name": "multi", "type": "select_multiple", "choices": "n", "label": "m"},
        {"name": "ok", "type": "boolean", "label": "o"},
        {"name": "nama", "type": "text", "label": "n"},
        {"name": "jumlah", "type": "integer", "label": "j"},
        {"name": "luas", "type": "decimal", "label": "l"},
        {"name": "tgl", "type": "date", "label": "t", "age_helper": "umur"},
        {"name": "gps", "type": "geopoint", "label": "g"},
        {
            "name": "g",
            "type": "group",
            "label": "g",
            "fields": [{"name": "x", "type": "integer", "label": "x"}],
        },
        {
            "name": "r",
            "type": "repeat",
            "label": "r",
            "fields": [
                {"name": "a", "type": "integer", "label": "a"},
                {"name": "lahir", "type": "date", "label": "l", "age_helper": "usia"},
                {
                    "name": "sub",
                    "type": "group",
                    "label": "s",
                    "fields": [{"name": "b", "type": "boolean", "label": "b"}],
                },
                {
                    "name": "inner",
                    "type": "repeat",
                    "label": "i",
                    "fields": [{"name": "c", "type": "integer", "label": "c"}],
                },
            ],
        },
    ],
}
S = FormScope(DEF)


def xp(rule, at="nama", **kw):
    return to_xpath(rule, S, at, **kw)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"var": "kode"}, "(string-length(/data/kode) > 0 and /data/kode != 0)"),
        ({"!!": {"var": "nama"}}, "string-length(/data/nama) > 0"),
        ({"!": {"var": "nama"}}, "not(string-length(/data/nama) > 0)"),
        ({"var": "ok"}, "/data/ok = 'yes'"),
        ({"===": [{"var": "ok"}, True]}, "/data/ok = 'yes'"),
        ({"===": [{"var": "ok"}, False]}, "/data/ok = 'no'"),
        ({"==": [{"var": "kode"}, 1]}, "/data/kode = 1"),
        ({"===": [{"var": "jk"}, "P"]}, "/data/jk = 'P'"),
        ({"!==": [{"var": "jk"}, "P"]}, "not(/data/jk = 'P')"),
        ({"!=": [{"var": "kode"}, 2]}, "not(/data/kode = 2)"),
        ({"==": [{"var": "nama"}, None]}, "string-length(/data/nama) = 0"),
        ({"===": [None, {"var": "nama"}]}, "string-length(/data/nama) = 0"),
        ({"in": [{"var": "kode"}, [1, 2]]}, "(/data/kode = 1 or /data/kode = 2)"),
        ({"in": [{"var": "kode"}, []]}, "false()"),
        ({"in": [1, {"var": "multi"}]}, "selected(/data/multi, '1')"),
        ({"in": ["Jl", {"var": "nama"}]}, "contains(/data/nama, 'Jl')"),
        ({"<": [{"var": "jumlah"}, 5]}, "coalesce(/data/jumlah, 0) < 5"),
        ({">=": [{"var": "luas"}, 1.5]}, "coalesce(/data/luas, 0) >= 1.5"),
        (
            {"<=": [1, {"var": "jumlah"}, 9]},
            "(1 <= coalesce(/data/jumlah, 0) and coalesce(/data/jumlah, 0) <= 9)",
        ),
        (
            {"<=": [{"var": "tgl"}, {"var": "_visit.date"}]},
            "decimal-date-time(/data/tgl) <= decimal-date-time(today())",
        ),
        (
            {">": [{"var": "tgl"}, "2000-01-01"]},
            "decimal-date-time(/data/tgl) > decimal-date-time('2000-01-01')",
        ),
        ({">": [{"var": "umur"}, 17]}, "coalesce(/data/umur, 0) > 17"),
        (
            {"and": [{"var": "ok"}, {"var": "nama"}]},
            "(/data/ok = 'yes' and string-length(/data/nama) > 0)",
        ),
        (
            {"or": [{"var": "ok"}, {"var": "g.x"}]},
            "(/data/ok = 'yes' or (string-length(/data/g/x) > 0 and /data/g/x != 0))",
        ),
        (
            {"if": [{"var": "ok"}, {"var": "nama"}, False]},
            "if(/data/ok = 'yes', string-length(/data/nama) > 0, false())",
        ),
        ({"==": [{"+": [{"var": "jumlah"}, 1]}, 3]}, "(number(/data/jumlah) + 1) = 3"),
        ({"==": [{"-": [{"var": "jumlah"}, 1]}, 3]}, "(coalesce(/data/jumlah, 0) - 1) = 3"),
        ({"==": [{"*": [{"var": "jumlah"}, 2]}, 4]}, "(number(/data/jumlah) * 2) = 4"),
        ({"==": [{"/": [{"var": "jumlah"}, 2]}, 4]}, "(coalesce(/data/jumlah, 0) div 2) = 4"),
        ({"==": [{"%": [{"var": "jumlah"}, 2]}, 1]}, "(coalesce(/data/jumlah, 0) mod 2) = 1"),
        ({"===": [{"cat": ["a", {"var": "nama"}]}, "ab"]}, "concat('a', /data/nama) = 'ab'"),
        ({"===": [{"substr": [{"var": "nama"}, 1, 2]}, "ab"]}, "substr(/data/nama, 1, 3) = 'ab'"),
        (
            {"missing": ["nama", "kode"]},
            "(string-length(/data/nama) = 0 or string-length(/data/kode) = 0)",
        ),
        (
            {"missing_some": [1, ["nama", "kode"]]},
            "(if(string-length(/data/nama) > 0, 1, 0) + "
            "if(string-length(/data/kode) > 0, 1, 0)) < 1",
        ),
        ({">": [{"var": "r.length"}, 2]}, "count(/data/r) > 2"),
        ({"some": [{"var": "r"}, {"===": [{"var": "a"}, 1]}]}, "count(/data/r[a = 1]) > 0"),
        (
            {"all": [{"var": "r"}, {"var": "sub.b"}]},
            "(count(/data/r) > 0 and count(/data/r[not(sub/b = 'yes')]) = 0)",
        ),
        (
            {"none": [{"var": "r"}, {"===": [{"var": "a"}, 1]}]},
            "count(/data/r[a = 1]) = 0",
        ),
        (
            {
                "<=": [
                    {
                        "reduce": [
                            {"filter": [{"var": "r"}, {"var": "a"}]},
                            {"+": [{"var": "accumulator"}, 1]},
                            0,
                        ]
                    },
                    1,
                ]
            },
            "count(/data/r[(string-length(a) > 0 and a != 0)]) <= 1",
        ),
        (
            {
                "<": [
                    {
                        "reduce": [
                            {"var": "r"},
                            {"+": [{"var": "accumulator"}, {"var": "current.a"}]},
                            0,
                        ]
                    },
                    9,
                ]
            },
            "if(count(/data/r) = 0, 0, sum(/data/r/a)) < 9",
        ),
        (True, "true()"),
        (0, "false()"),
    ],
)
def test_operators(rule, expected):
    assert xp(rule) == expected


def test_item_and_parent_are_relative_to_the_bound_node():
    assert xp({"var": "_item.a"}, at="r.lahir") == "(string-length(../a) > 0 and ../a != 0)"
    assert xp({"var": "_item.a"}, at="r.sub.b") == "(string-length(../../a) > 0 and ../../a != 0)"
    assert xp({"<": [{"var": "_item.usia"}, 5]}, at="r.a") == "coalesce(../usia, 0) < 5"
    assert xp({"var": "_item.c"}, at="r.inner.c") == "(string-length(../c) > 0 and ../c != 0)"
    assert (
        xp({"var": "_parent.a"}, at="r.inner.c") == "(string-length(../../a) > 0 and ../../a != 0)"
    )
    # a repeat's own relevance: _item is the enclosing entry
    assert xp({"var": "_item.a"}, at="r.inner") == "(string-length(../a) > 0 and ../a != 0)"


def test_constraint_value():
    assert xp({"<=": [{"var": "value"}, 5]}, at="jumlah", constraint=True) == "coalesce(., 0) <= 5"
    assert (
        xp({"<=": [{"var": "value.accuracy_m"}, 100]}, at="gps", constraint=True)
        == "coalesce(selected-at(., 3), 0) <= 100"
    )
    assert (
        xp({"<=": [{"var": "value.length"}, 3]}, at="r", constraint=True) == "count(/data/r) <= 3"
    )
    assert xp({"var": "value"}, at="ok", constraint=True, value="../ok") == "../ok = 'yes'"


@pytest.mark.parametrize(
    "rule",
    [
        {"<": [{"var": "nama"}, "b"]},  # text order
        {"===": [{"var": "kode"}, "1"]},  # number against text
        {"===": [{"var": "nama"}, ""]},  # '' is a blank: use ! or missing
        {"map": [{"var": "r"}, {"var": "a"}]},
        {"merge": [[1], [2]]},
        {"var": "r.0.a"},
        {"var": ["nama", "x"]},
        {"var": "nope"},
        {"var": "value"},  # not a constraint
        {"var": "_item.a"},  # outside a repeat
        {"substr": [{"var": "nama"}, -2]},
        {"==": [{"and": [{"var": "ok"}, 1]}, 1]},
        {"+": [{"var": "ok"}, 1]},
        {"eval": ["x"]},
    ],
)
def test_untranslatable_rules_raise(rule):
    with pytest.raises(XPathError, match="cannot translate"):
        xp(rule)


def test_literals():
    assert literal("it's") == '"it\'s"'
    assert literal(1.0) == "1"
    assert literal(2.5) == "2.5"
    assert literal("a'b\"c") == "concat('a', \"'\", 'b\"c')"


def test_age_xpath_is_blank_without_a_date():
    assert age_xpath("../lahir").startswith("if(string-length(../lahir) = 0, ''")
