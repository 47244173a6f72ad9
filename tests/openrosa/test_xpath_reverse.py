"""XPath -> JsonLogic (for XLSForm import), on the subset forms.xpath.to_xpath writes."""

from __future__ import annotations

import copy

import pytest

from forms.xpath import FormScope, XPathError, to_jsonlogic, to_xpath
from tests.openrosa.parity import python_truths, rules_of
from tests.openrosa.test_parity import EXTRA


@pytest.fixture(scope="module")
def rules(v1):
    return rules_of(v1, EXTRA)


def test_every_rule_comes_back_to_the_same_xpath(v1, rules):
    scope = FormScope(v1)
    for r in rules:
        c = r["kind"] == "constraint"
        xp = to_xpath(r["rule"], scope, r["at"], constraint=c)
        back = to_jsonlogic(xp, scope, r["at"], constraint=c)
        assert to_xpath(back, scope, r["at"], constraint=c) == xp, (r["rule"], back)


def test_rules_back_from_xpath_give_the_same_verdicts(v1, rules, answer_sets):
    scope = FormScope(v1)
    back = copy.deepcopy(rules)
    for r in back:
        c = r["kind"] == "constraint"
        r["rule"] = to_jsonlogic(
            to_xpath(r["rule"], scope, r["at"], constraint=c), scope, r["at"], constraint=c
        )
    for case in answer_sets:
        args = (case["answers"], case["visit_date"])
        assert python_truths(v1, back, *args) == python_truths(v1, rules, *args)


@pytest.mark.parametrize(
    ("xpath", "at", "expected"),
    [
        (
            "${hasil_kunjungan} = 1 or ${hasil_kunjungan} = 2",
            "persetujuan",
            {"in": [{"var": "hasil_kunjungan"}, [1, 2]]},
        ),
        ("${persetujuan} = 'yes'", "catatan", {"===": [{"var": "persetujuan"}, True]}),
        (
            "../status_keberadaan = 5",
            "anggota.hamil",
            {"===": [{"var": "_item.status_keberadaan"}, 5]},
        ),
        (
            "${status_keberadaan} != 2",
            "anggota.hamil",
            {"!==": [{"var": "_item.status_keberadaan"}, 2]},
        ),
        ("string-length(${nama_responden}) > 0", "catatan", {"!!": {"var": "nama_responden"}}),
        ("coalesce(${penerangan}, 0) >= 2", "catatan", {">=": [{"var": "rumah.penerangan"}, 2]}),
        ("count(${anggota}) > 3", "catatan", {">": [{"var": "anggota.length"}, 3]}),
        (
            "decimal-date-time(.) <= decimal-date-time(today())",
            "anggota.tanggal_lahir",
            {"<=": [{"var": "value"}, {"var": "_visit.date"}]},
        ),
    ],
)
def test_xlsform_style_expressions(v1, xpath, at, expected):
    constraint = xpath.startswith("decimal-date-time(.)")
    assert to_jsonlogic(xpath, v1, at, constraint=constraint) == expected


@pytest.mark.parametrize(
    "xpath",
    [
        "regex(., '^[0-9]+$')",  # a pattern, not a rule (the importer maps it to `pattern`)
        "${nope} = 1",
        "/other/x = 1",
        "pulldata('households', 'rt', 'name', ${_keluarga})",
        "${hasil_kunjungan} = ",
        ". = 1",  # '.' outside a constraint
    ],
)
def test_what_has_no_jsonlogic_is_refused(v1, xpath):
    with pytest.raises(XPathError):
        to_jsonlogic(xpath, v1, "catatan")
