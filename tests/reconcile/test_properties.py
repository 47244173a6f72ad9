"""Hypothesis properties of the three-way comparison."""

from __future__ import annotations

import copy
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.reconcile import Config, three_way
from sync.reconcile.compare import CONFIRMED
from sync.registry import apply_path, normalize_family
from tests.reconcile.conftest import answers_from, family

codes = st.integers(min_value=1, max_value=8)
names = st.text(alphabet="abcdefghijklmnoprstuwyéāÜ ", min_size=3, max_size=20)
dates = st.dates().map(lambda d: d.isoformat())


@st.composite
def members(draw):
    n = draw(st.integers(min_value=1, max_value=6))
    niks = draw(st.lists(st.integers(min_value=10**15, max_value=10**16 - 1), min_size=n,
                         max_size=n, unique=True))
    return [{"nik": str(nik), "nama": draw(names), "jenis_kelamin": draw(st.sampled_from("LP")),
             "tanggal_lahir": draw(dates), "hubungan": draw(codes), "status_kawin": draw(codes),
             "pekerjaan": draw(st.integers(0, 8)), "sekolah": draw(st.integers(0, 2)),
             "disabilitas": draw(st.booleans()), "penyakit_kronis": draw(st.booleans())}
            for nik in niks]


@st.composite
def records(draw):
    rec = family(anggota=draw(members()))
    for key in ("lantai", "dinding", "atap", "penerangan"):
        rec["rumah"][key] = draw(codes)
    rec["rumah"]["luas_lantai_m2"] = draw(st.integers(1, 500))
    for key in rec["aset"]:
        rec["aset"][key] = draw(st.booleans())
    for key in rec["program"]:
        rec["program"][key] = draw(st.booleans())
    return normalize_family(rec)


@st.composite
def mutated_answers(draw, rec):
    """A visit: some fields changed, members dying, leaving, arriving."""
    a = answers_from(rec)
    for key in ("lantai", "atap"):
        if draw(st.booleans()):
            a["rumah"][key] = draw(codes)
    if draw(st.booleans()):
        a["rumah"]["luas_lantai_m2"] = draw(st.floats(1, 600)).__round__(1)
    if draw(st.booleans()):
        a["aset"]["mobil"] = not a["aset"]["mobil"]
    for m in a["anggota"]:
        change = draw(st.sampled_from(["keep", "keep", "job", "died", "nik", "name"]))
        if change == "job":
            m["pekerjaan"] = draw(st.integers(0, 8))
        elif change == "died":
            m["status_keberadaan"] = 2
        elif change == "nik":
            m["nik"] = str(int(m["nik"]) + 1) if m["nik"][-1] != "9" else m["nik"][:-1] + "0"
        elif change == "name":
            m["nama"] = m["nama"].upper()
    if draw(st.booleans()):
        a["anggota"] = [m for m in a["anggota"] if draw(st.booleans())] or a["anggota"]
    if draw(st.booleans()):
        new = draw(members())[0]
        a["anggota"].append(dict(new, status_keberadaan=5))
    return a


def shuffled(obj, rnd: random.Random):
    """The same data with every dict's key order shuffled (lists keep their order)."""
    if isinstance(obj, dict):
        items = list(obj.items())
        rnd.shuffle(items)
        return {k: shuffled(v, rnd) for k, v in items}
    if isinstance(obj, list):
        return [shuffled(v, rnd) for v in obj]
    return obj


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_visit_equal_to_current_never_conflicts(data, form):
    base, current = data.draw(records()), data.draw(records())
    cmp = three_way(base, current, answers_from(current), form)
    assert all(o.outcome == CONFIRMED for o in cmp.outcomes)
    assert cmp.drafts() == [] and cmp.changes_to_apply == {}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_outcome_does_not_depend_on_key_or_member_order(data, seed, form):
    rec = data.draw(records())
    answers = data.draw(mutated_answers(rec))
    expected = three_way(rec, rec, answers, form)
    rnd = random.Random(seed)
    other = shuffled(answers, rnd)
    rnd.shuffle(other["anggota"])
    again = three_way(shuffled(rec, rnd), shuffled(rec, rnd), other, form)
    assert again == expected
    assert list(again.changes_to_apply) == list(expected.changes_to_apply)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_comparison_is_pure_and_idempotent(data, form):
    base, current = data.draw(records()), data.draw(records())
    answers = data.draw(mutated_answers(current))
    snapshot = copy.deepcopy((base, current, answers))
    first = three_way(base, current, answers, form)
    assert three_way(base, current, answers, form) == first
    assert (base, current, answers) == snapshot


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_applying_every_proposal_makes_the_visit_confirm_the_record(data, form):
    rec = data.draw(records())
    answers = data.draw(mutated_answers(rec))
    everything = Config(auto_accept=frozenset(
        {"anggota[]"} | {f"anggota[].{k}" for k in rec["anggota"][0]}
        | {"rumah.lantai", "rumah.atap", "rumah.luas_lantai_m2", "aset.mobil"}))
    cmp = three_way(rec, rec, answers, form, everything)
    doc = copy.deepcopy(rec)
    for path, value in cmp.changes_to_apply.items():
        apply_path(doc, path, value)
    after = three_way(doc, doc, answers, form, everything)
    assert all(o.outcome == CONFIRMED for o in after.outcomes), [
        o for o in after.outcomes if o.outcome != CONFIRMED]
