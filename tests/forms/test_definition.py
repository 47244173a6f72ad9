"""The definition checker, the content hash and the shipped forms registry."""

from __future__ import annotations

import copy
import json

import pytest

import forms
from forms.registry import FORMS_DIR
from tests.forms.conftest import mini_form


def problems(definition) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in forms.check_definition(definition)}


def test_shipped_forms_are_sound_and_found_by_id_and_version():
    found = forms.available_forms()
    assert ("verifikasi_keluarga", 1) in {(f.form_id, f.version) for f in found}
    for f in found:
        definition = json.loads(f.path.read_text(encoding="utf-8"))
        assert forms.check_definition(definition) == [], f.path
        assert (definition["form_id"], definition["version"]) == (f.form_id, f.version)
    form = forms.get_form("verifikasi_keluarga", 1)
    assert form is forms.get_form("verifikasi_keluarga")  # newest version, cached
    assert form.content_hash == forms.content_hash(form.definition)
    with pytest.raises(LookupError):
        forms.get_form("verifikasi_keluarga", 99)


def test_no_stray_json_beside_the_definitions():
    """The publish CLI reads every *.json under forms/: only definitions may live there."""
    assert sorted(FORMS_DIR.rglob("*.json")) == sorted(f.path for f in forms.available_forms())


def test_content_hash_is_stable_under_key_order_and_changes_with_content():
    definition = json.loads((FORMS_DIR / "verifikasi_keluarga" / "v1.json").read_text())

    def reorder(obj):
        if isinstance(obj, dict):
            return {k: reorder(obj[k]) for k in reversed(list(obj))}
        if isinstance(obj, list):
            return [reorder(x) for x in obj]
        return obj

    shuffled = reorder(definition)
    assert json.dumps(shuffled) != json.dumps(definition)
    assert forms.content_hash(shuffled) == forms.content_hash(definition)
    assert len(forms.content_hash(definition)) == 64
    changed = copy.deepcopy(definition)
    changed["fields"][0]["label"]["id"] += "!"
    assert forms.content_hash(changed) != forms.content_hash(definition)
    canonical = forms.canonical_json({"b": 1, "a": "é"})
    assert canonical == '{"a":"é","b":1}'


def test_checker_reports_every_problem_with_its_path():
    bad = mini_form(
        [
            {"name": "a", "type": "txt", "label": "A"},
            {"name": "b", "type": "select_one", "label": "B"},
            {"name": "c", "type": "select_one", "label": "C", "choices": "tidak_ada"},
            {"name": "b", "type": "integer", "label": "B2", "min": 5, "max": 1},
            {"name": "d", "type": "text", "label": "D", "pattern": "[0-9"},
            {"name": "e", "type": "text", "label": "E", "pattern": "(?i)abc"},
            {"name": "f", "type": "integer", "label": "F", "relevant": {"eval": "1+1"}},
            {"name": "g", "type": "integer", "label": "G", "constraint": {"var": "x", "y": 1}},
            {"name": "h", "type": "integer", "label": "H", "relevant": {"==": [{"var": "zz"}, 1]}},
            {"name": "Bad-Name", "type": "integer", "label": "I"},
            {"name": "value", "type": "integer", "label": "J"},
            {"name": "k", "type": "integer"},
            {"name": "l", "type": "integer", "label": "L", "colour": "red"},
            {"name": "m", "type": "group", "label": "M", "fields": []},
            {"name": "n", "type": "integer", "label": "N", "example": "satu"},
            {"name": "o", "type": "integer", "label": {"en": "only English"}},
            {"name": "p", "type": "text", "label": "P", "prefill": "rumah..lantai"},
        ],
        extra_key=1,
    )
    bad["version"] = 0
    found = problems(bad)
    expected = {
        ("extra_key", "unknown_key"),
        ("version", "type"),
        ("fields[0].type", "unknown_type"),
        ("fields[1].choices", "choices_missing"),
        ("fields[2].choices", "choices_missing"),
        ("fields[3].name", "duplicate_name"),
        ("fields[3].min", "bad_range"),
        ("fields[4].pattern", "bad_pattern"),
        ("fields[5].pattern", "bad_pattern"),
        ("fields[6].relevant", "bad_operator"),
        ("fields[7].constraint", "bad_rule"),
        ("fields[8].relevant.==[0].var", "unknown_var"),
        ("fields[9].name", "bad_name"),
        ("fields[10].name", "bad_name"),
        ("fields[11].label", "required"),
        ("fields[12].colour", "unknown_key"),
        ("fields[13].fields", "required"),
        ("fields[15].label.id", "required"),
        ("fields[16].prefill", "bad_path"),
    }
    assert expected <= found, expected - found
    # Examples are checked once the rest is sound.
    only_example = mini_form([{"name": "n", "type": "integer", "label": "N", "example": "satu"}])
    assert problems(only_example) == {("fields[0].example", "bad_example")}
    with pytest.raises(forms.FormDefinitionError) as exc:
        forms.load_form(bad)
    assert len(exc.value.errors) == len(forms.check_definition(bad))


def test_checker_knows_the_rule_scopes():
    repeat = {
        "name": "r",
        "type": "repeat",
        "label": "R",
        "fields": [
            {"name": "lahir", "type": "date", "label": "L", "age_helper": "umur"},
            {
                "name": "x",
                "type": "integer",
                "label": "X",
                "relevant": {
                    "and": [
                        {">": [{"var": "_item.umur"}, 5]},
                        {"var": "g.y"},
                        {"var": "_visit.date"},
                        {"some": [{"var": "r"}, {"var": "anything_goes_inside"}]},
                    ]
                },
                "constraint": {"<": [{"var": "value"}, 3]},
            },
            {"name": "bad", "type": "integer", "label": "B", "relevant": {"var": "_item.nope"}},
            {"name": "bad2", "type": "integer", "label": "B", "relevant": {"var": "value"}},
            {"name": "bad3", "type": "integer", "label": "B", "relevant": {"var": "_parent.x"}},
        ],
    }
    group = {"name": "g", "type": "group", "label": "G", "fields": [
        {"name": "y", "type": "boolean", "label": "Y"},
    ]}  # fmt: skip
    outside = {"name": "z", "type": "integer", "label": "Z", "relevant": {"var": "_item.x"}}
    assert problems(mini_form([group, repeat, outside])) == {
        ("fields[1].fields[2].relevant.var", "unknown_var"),
        ("fields[1].fields[3].relevant.var", "unknown_var"),
        ("fields[1].fields[4].relevant.var", "unknown_var"),
        ("fields[2].relevant.var", "unknown_var"),
    }


def test_checker_rejects_bad_choice_lists_and_labels():
    definition = mini_form(
        [{"name": "s", "type": "select_one", "label": "S", "choices": "a"}],
        choices={
            "a": [{"value": 1, "label": "Satu"}, {"value": 1, "label": "Lagi"}],
            "b": [{"value": 1, "label": "x"}, {"value": "2", "label": "y"}],
            "c": [],
            "d": [{"value": True, "label": "x"}, {"value": 2, "label": "", "extra": 1}],
        },
    )
    assert problems(definition) == {
        ("choices.a[1].value", "duplicate"),
        ("choices.b", "type"),
        ("choices.c", "type"),
        ("choices.d[0].value", "type"),
        ("choices.d[1].extra", "unknown_key"),
        ("choices.d[1].label", "bad_label"),
    }
    assert problems("not a form") == {("", "type")}
