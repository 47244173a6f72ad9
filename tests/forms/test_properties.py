"""Property tests: the validator never crashes on arbitrary JSON, hashes ignore key order."""

from __future__ import annotations

import copy
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forms
from forms.jsonlogic import JsonLogicError, apply

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    junk=st.dictionaries(
        st.sampled_from(
            ["hasil_kunjungan", "persetujuan", "anggota", "rumah", "lokasi", "no_kk", "x"]
        ),
        json_values,
    )
)
def test_validator_reports_instead_of_crashing_on_arbitrary_answers(v1, visit, junk):
    broken = copy.deepcopy(visit)
    broken["answers"].update(junk)
    result = forms.validate_visit(v1, broken)
    for error in result.errors:
        assert error["path"] and error["code"] and error["message"]


@settings(max_examples=100, deadline=None)
@given(doc=json_values, seed=st.integers(0, 1000))
def test_content_hash_ignores_key_order(doc, seed):
    rng = random.Random(seed)

    def shuffle(obj):
        if isinstance(obj, dict):
            items = list(obj.items())
            rng.shuffle(items)
            return {k: shuffle(v) for k, v in items}
        if isinstance(obj, list):
            return [shuffle(x) for x in obj]
        return obj

    wrapped = {"doc": doc}
    assert forms.content_hash(shuffle(wrapped)) == forms.content_hash(wrapped)


OPS = ["==", "===", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "!", "!!", "and",
       "or", "if", "in", "cat", "substr", "min", "max", "merge", "var", "missing"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(OPS), args=st.lists(json_values, max_size=3), data=json_values)
def test_evaluator_returns_or_raises_its_own_error_only(op, args, data):
    try:
        apply({op: args}, data)
    except JsonLogicError:
        pass
