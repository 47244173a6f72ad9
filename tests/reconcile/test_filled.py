"""A field the verified record holds blank, filled by a visit: outcome ``filled``, not a conflict
(unless its path is in ``Config.review_fills``)."""

from __future__ import annotations

import copy

import pytest

from sync.reconcile import Config, three_way
from sync.reconcile.compare import CONCURRENT, CONFIRMED, FILLED, PROPOSED
from sync.reconcile.config import from_settings, parse_paths
from sync.registry import apply_path, normalize_family
from tests.reconcile.conftest import CHILD_NIK, HEAD_NIK, WIFE_NIK, answers_from, family

NIKS = (HEAD_NIK, WIFE_NIK, CHILD_NIK)
# What an extract often lacks: optional fields, blank in the verified record.
OPTIONAL_FAMILY = {"aset": ("lahan", "rumah_lain"), "rumah": ("njop_di_atas_1m",)}
OPTIONAL_MEMBER = ("disabilitas", "penyakit_kronis")


def without_optional(rec: dict) -> dict:
    """An extract's family record with its optional fields taken out (in place)."""
    for group, keys in OPTIONAL_FAMILY.items():
        for key in keys:
            del rec[group][key]
    for m in rec["anggota"]:
        for key in OPTIONAL_MEMBER:
            del m[key]
    return rec


def sparse_record() -> dict:
    """The fixture family as an extract without its optional fields (blank in the record)."""
    return normalize_family(without_optional(family()))


def clean_visit(record: dict) -> dict:
    """A visit that confirms the record and answers every optional question (No)."""
    a = answers_from(record)
    for group, keys in OPTIONAL_FAMILY.items():
        for key in keys:
            a[group][key] = False
    for m in a["anggota"]:
        for key in OPTIONAL_MEMBER:
            m[key] = False
    return a


FILLED_PATHS = (["rumah.njop_di_atas_1m", "aset.lahan", "aset.rumah_lain"]
                + [f"anggota[NIK={n}].{k}" for n in NIKS for k in OPTIONAL_MEMBER])


def test_the_sparse_record_holds_the_optional_fields_blank():
    rec = sparse_record()
    assert rec["aset"].get("lahan") in (None, "") and rec["anggota"][0].get("disabilitas") in (
        None, "")


def test_a_clean_visit_filling_blank_fields_raises_no_conflict(form):
    record = sparse_record()
    cmp = three_way(None, record, clean_visit(record), form, Config())
    filled = {o.path: o for o in cmp.outcomes if o.outcome == FILLED}
    assert sorted(filled) == sorted(FILLED_PATHS)
    assert all(o.current_value is None and o.visit_value is False and o.severity is None
               and not o.auto_accept for o in filled.values())
    assert {o.outcome for o in cmp.outcomes} == {CONFIRMED, FILLED}
    assert cmp.drafts() == []
    assert cmp.proposed_changes == {} and cmp.concurrent_values == {}
    assert cmp.filled_values == dict.fromkeys(FILLED_PATHS, False)
    # Applied as auto-accepted changes are, and still guarded by upstream_changed.
    assert cmp.changes_to_apply == cmp.filled_values
    assert sorted(cmp.changed_fields) == sorted(FILLED_PATHS)
    assert "aset.lahan" not in cmp.confirmed_paths


def test_filled_values_apply_to_the_record(form):
    record = sparse_record()
    cmp = three_way(None, record, clean_visit(record), form, Config())
    doc = copy.deepcopy(record)
    for path, value in cmp.changes_to_apply.items():
        apply_path(doc, path, value)
    assert doc["aset"]["lahan"] is False and doc["rumah"]["njop_di_atas_1m"] is False
    assert all(m["disabilitas"] is False and m["penyakit_kronis"] is False
               for m in doc["anggota"])
    again = three_way(None, doc, clean_visit(record), form, Config())
    assert {o.outcome for o in again.outcomes} == {CONFIRMED}


def test_a_fill_of_a_path_under_review_is_still_a_field_mismatch(form):
    record = sparse_record()
    config = Config(review_fills=frozenset({"aset.lahan", "anggota[].disabilitas"}))
    cmp = three_way(None, record, clean_visit(record), form, config)
    reviewed = ["aset.lahan"] + [f"anggota[NIK={n}].disabilitas" for n in NIKS]
    assert sorted(cmp.proposed_changes) == sorted(reviewed)
    drafts = cmp.drafts(config)
    assert sorted(d["field"] for d in drafts) == sorted(reviewed)
    assert {(d["kind"], d["severity"], d["registry_value"]) for d in drafts} == {
        ("field_mismatch", "soft", None)}
    assert sorted(cmp.filled_values) == sorted(set(FILLED_PATHS) - set(reviewed))
    assert sorted(cmp.changes_to_apply) == sorted(cmp.filled_values)


def test_a_value_is_no_fill_when_the_record_holds_one(form, record):
    # False and 0 are values, not blanks: changing them is a proposal as before.
    answers = answers_from(record)
    answers["aset"]["lahan"] = True
    cmp = three_way(None, record, answers, form, Config())
    [o] = [o for o in cmp.outcomes if o.path == "aset.lahan"]
    assert (o.outcome, o.current_value, o.visit_value) == (PROPOSED, False, True)
    assert cmp.filled_values == {} and [d["field"] for d in cmp.drafts()] == ["aset.lahan"]


def test_a_field_blanked_since_the_base_is_still_a_concurrent_update(form, record):
    # The record held a value at the visit's base and was cleared since: not a fill.
    current = copy.deepcopy(record)
    current["aset"]["lahan"] = None
    answers = answers_from(record)
    cmp = three_way(record, current, answers, form, Config())
    [o] = [o for o in cmp.outcomes if o.path == "aset.lahan"]
    assert (o.outcome, o.severity) == (CONCURRENT, "soft")
    answers["aset"]["lahan"] = True
    cmp = three_way(record, current, answers, form, Config())
    [o] = [o for o in cmp.outcomes if o.path == "aset.lahan"]
    assert (o.outcome, o.severity) == (CONCURRENT, "hard")


def test_blank_text_in_the_record_is_filled_too(form, record):
    current = copy.deepcopy(record)
    current["alamat"] = "  "
    current["anggota"][2]["sekolah"] = None
    answers = answers_from(record)
    cmp = three_way(None, current, answers, form, Config())
    assert cmp.filled_values == {"alamat": record["alamat"],
                                 f"anggota[NIK={CHILD_NIK}].sekolah": 1}
    assert cmp.drafts() == []


def test_review_fills_from_settings():
    assert parse_paths(" aset.lahan, ,anggota[].disabilitas ") == frozenset(
        {"aset.lahan", "anggota[].disabilitas"})
    assert from_settings({}) == Config() and from_settings({"REVIEW_FILLS": ()}) == Config()
    assert from_settings({"REVIEW_FILLS": ("aset.lahan",)}).review_fills == {"aset.lahan"}
    assert from_settings({"REVIEW_FILLS": "aset.lahan,anggota[].disabilitas"}).review_fills \
        == {"aset.lahan", "anggota[].disabilitas"}
    with pytest.raises(ValueError, match="aset.lahn"):
        from_settings({"REVIEW_FILLS": "aset.lahn"})
