"""The golden JsonLogic cases through the Python engine (the browser runs the same file:
tests/lapangan/test_forms_parity.py)."""

from __future__ import annotations

import json

import pytest

from forms.jsonlogic import JsonLogicError, apply
from tests.forms.golden import build
from tests.forms.test_jsonlogic_suite import same

CASES = json.loads(build.CASES.read_text(encoding="utf-8"))["cases"]


def test_cases_file_is_current():
    """cases.json is what build.py makes from today's v1.json and forms/jsonlogic.py."""
    assert build.CASES.read_text(encoding="utf-8") == build.render(), (
        "run .venv/bin/python -m tests.forms.golden.build"
    )


def test_cases_cover_every_rule_of_the_form():
    definition = json.loads(build.FORM.read_text(encoding="utf-8"))
    rules = {json.dumps(r["rule"], sort_keys=True) for r in build.rules_of(definition)}
    assert rules == {json.dumps(c["rule"], sort_keys=True) for c in CASES}
    assert len(rules) >= 9 and len(CASES) == len(rules) * build.CONTEXTS
    results = {json.dumps(c.get("result")) for c in CASES}
    assert {"true", "false"} <= results  # every rule is exercised both ways somewhere


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_python_engine_gives_the_recorded_result(case):
    if case.get("error"):
        with pytest.raises(JsonLogicError):
            apply(case["rule"], case["data"])
    else:
        assert same(apply(case["rule"], case["data"]), case["result"])
