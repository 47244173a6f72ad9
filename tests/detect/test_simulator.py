"""The simulator's ground truth, without a database: realistic times and places, distinct
photos, reused ones where planned, valid visits, and the expected conflicts of each scenario."""

import io
import itertools
from collections import defaultdict

import pytest

import forms
from sync.generator import ANOMALY_CONFLICTS, iter_families
from sync.photos import analyse_image, phash_distance
from sync.reconcile.config import DEFAULT
from sync.reconcile.rules import _timestamp, distance_outside_m, haversine_m
from sync.simulator import FABRICATED, SCENARIO_SHARES, plan_visits
from tests.reconcile.conftest import FORM_PATH

N = 400


@pytest.fixture(scope="module")
def form():
    return forms.load_form(FORM_PATH)


@pytest.fixture(scope="module")
def world(form):
    anomalies = []
    records = list(iter_families(N, 5, anomalies=anomalies))
    return records, anomalies, plan_visits(form, records, anomalies, seed=5)


def test_the_same_seed_gives_the_same_round(form, world):
    records, anomalies, plan = world
    again = plan_visits(form, records, anomalies, seed=5)
    assert [(v.uuid, v.visit["started_at"], v.scenario, sorted(v.images)) for v in plan.visits] \
        == [(v.uuid, v.visit["started_at"], v.scenario, sorted(v.images)) for v in again.visits]


def test_one_valid_visit_per_family_and_every_scenario_planned(form, world):
    records, _, plan = world
    assert sorted(v.household_id for v in plan.visits) == sorted(r["id_keluarga"]
                                                                for r in records)
    for v in plan.visits:
        assert forms.validate_visit(form, v.visit).errors == [], v.scenario
    scenarios = {v.scenario for v in plan.visits}
    assert set(SCENARIO_SHARES) <= scenarios


def test_planted_families_confirm_their_record_and_expect_its_conflict(world):
    records, anomalies, plan = world
    by_id = {v.household_id: v for v in plan.visits}
    for a in anomalies:
        v = by_id[a["id_keluarga"]]
        assert v.scenario == "planted" and v.planted == a["kind"] and not v.clean
        if a.get("code") in ("nik_wrong_length", "nik_not_digits"):
            assert v.expected == {"field_mismatch"}  # the form takes only 16 digits
        else:
            assert v.expected == {ANOMALY_CONFLICTS[a["kind"]]}
        if a.get("other_id_keluarga"):  # the earlier family of a duplicate pair
            source = by_id[a["other_id_keluarga"]]
            assert source.duplicate_source and "duplicate_identity" in source.expected
    confirm = [v for v in plan.visits if v.scenario == "confirm" and not v.duplicate_source]
    assert confirm and all(v.expected == frozenset() and v.clean for v in confirm)


def test_honest_routes_are_travelled_at_believable_speeds(world):
    _, _, plan = world
    by_enum = defaultdict(list)
    for v in plan.visits:
        by_enum[v.enumerator].append(v)
    checked = 0
    for visits in by_enum.values():
        visits.sort(key=lambda v: v.visit["started_at"])
        for prev, v in itertools.pairwise(visits):
            start, end = _timestamp(v.visit["started_at"]), _timestamp(v.visit["ended_at"])
            prev_end = _timestamp(prev.visit["ended_at"])
            assert start > prev_end
            seconds = (end - start).total_seconds()
            if v.scenario == "fab_too_short":
                assert seconds < DEFAULT.min_interview_seconds
            else:
                assert seconds >= DEFAULT.min_visit_seconds
                if v.visit["answers"].get("persetujuan"):
                    assert seconds >= DEFAULT.min_interview_seconds
            a, b = prev.visit["location"], v.visit["location"]
            km = haversine_m(a["lat"], a["lon"], b["lat"], b["lon"]) / 1000
            kmh = km / ((start - prev_end).total_seconds() / 3600)
            if v.scenario == "fab_impossible_travel":
                assert kmh > 1.5 * DEFAULT.max_speed_kmh
            else:
                assert kmh < DEFAULT.max_speed_kmh / 2
                checked += 1
    assert checked > N / 2


def test_gps_points_are_near_home_unless_fabricated(world):
    records, _, plan = world
    rec = {r["id_keluarga"]: r for r in records}
    honest = beyond = 0
    for v in plan.visits:
        r, loc = rec[v.household_id], v.visit["location"]
        dist = haversine_m(r["lat"], r["lon"], loc["lat"], loc["lon"])
        outside = distance_outside_m(r["kode_kelurahan"], loc["lat"], loc["lon"])
        if v.scenario == "fab_gps_elsewhere":
            assert outside > loc["accuracy_m"] + DEFAULT.area_margin_m
            assert {"location_outside_area", "location_far"} <= v.expected
        elif v.scenario == "fab_gps_far":
            assert dist > DEFAULT.far_distance_m + loc["accuracy_m"]
            assert "location_far" in v.expected
        else:  # a Gaussian fix: about 68% within the accuracy, practically all within 4x
            assert dist <= 4 * loc["accuracy_m"]
            honest += 1
            beyond += dist > loc["accuracy_m"]
            assert outside <= loc["accuracy_m"] + DEFAULT.area_margin_m
    assert 0.2 < beyond / honest < 0.45


def test_honest_photos_are_distinct_and_reused_ones_come_from_earlier_days(world):
    _, _, plan = world
    owner = {}
    for v in plan.visits:
        if v.honest:
            for sha in v.images:
                assert sha not in owner
                owner[sha] = v
    sample = [data for v in plan.visits[:120] if v.honest for data in v.images.values()]
    hashes = [analyse_image(io.BytesIO(d)).phash for d in sample]
    assert min(phash_distance(a, b) for a, b in itertools.combinations(hashes, 2)) \
        > DEFAULT.phash_max_distance
    reused = [v for v in plan.visits
              if v.scenario in ("fab_photo_same", "fab_photo_similar", "fab_photo_cropped")]
    assert reused
    for v in reused:
        front = next(p for p in v.visit["photos"] if p["field"] == "foto_depan")
        data = v.images[front["sha256"]]
        if v.scenario == "fab_photo_same":
            source = owner[front["sha256"]]
        elif v.scenario == "fab_photo_cropped":
            assert front["sha256"] not in owner
            source = next(o for o in owner.values() if o.day < v.day)
        else:
            assert front["sha256"] not in owner
            mine = analyse_image(io.BytesIO(data)).phash
            source = next(o for sha, o in owner.items() if any(
                p["sha256"] == sha and p["field"] == "foto_depan" for p in o.visit["photos"])
                and phash_distance(analyse_image(io.BytesIO(o.images[sha])).phash, mine)
                <= DEFAULT.phash_max_distance and o.day < v.day)
        assert source.household_id != v.household_id and source.day < v.day
        assert v.expected == {"photo_reused"}


def test_changes_expect_their_conflicts(world):
    records, _, plan = world
    rec = {r["id_keluarga"]: r for r in records}
    for v in plan.visits:
        aid = any(rec[v.household_id]["program"].values())
        if v.scenario == "change_died":
            assert v.expected == {"field_mismatch"} | ({"deceased_receiving_aid"} if aid
                                                         else set())
        elif v.scenario == "change_moved":
            assert v.expected == {"field_mismatch"} | ({"moved_receiving_aid"} if aid else set())
        elif v.scenario == "change_roof_worse":
            assert v.expected == {"field_mismatch", "exclusion_error"}
        elif v.scenario == "change_address":
            assert v.expected == frozenset() and v.clean
        elif v.scenario in FABRICATED:
            assert not v.honest and not v.clean
