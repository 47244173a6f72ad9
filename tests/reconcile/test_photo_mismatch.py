"""photo_mismatch: a photo taken long before (or after) the visit, or far from the family,
read from EXIF where the photo has it and else from the app's photos[] entry (issue 15)."""

from __future__ import annotations

import datetime as dt

from sync.reconcile import RULES, Config, Context, run_rules
from sync.reconcile import rules as r
from tests.reconcile.conftest import family, visit_from

SHA = "ab" * 32
WIB = dt.timezone(dt.timedelta(hours=7))


def ctx_with(photo: dict, rec=None) -> Context:
    rec = rec or family()
    entry = {"field": "foto_rumah", "sha256": SHA, **photo}
    return Context(visit=visit_from(rec, photos=[entry]), record=rec)


def mismatches(photo: dict, rec=None) -> list[dict]:
    return r.photo_mismatch(ctx_with(photo, rec), Config())


NEAR = {"lat": -6.136144, "lon": 106.72342, "accuracy_m": 5}   # the family's point
FAR = {"lat": -6.2, "lon": 106.85, "accuracy_m": 5}             # ~15 km away
DURING = "2026-01-05T09:10:00+07:00"                           # the visit: 09:00-09:25 WIB
DAYS_BEFORE = "2026-01-02T09:10:00+07:00"


def test_the_rule_is_registered_and_soft():
    assert "photo_mismatch" in RULES
    assert Config().severity["photo_mismatch"] == "soft"


def test_a_photo_taken_during_the_visit_at_the_family_raises_nothing():
    assert mismatches({"taken_at": DURING, "location": NEAR}) == []
    assert mismatches({}) == []  # nothing known of it: nothing to say
    assert mismatches({"exif_taken_at": dt.datetime(2026, 1, 5, 2, 10, tzinfo=dt.UTC),
                       "exif_lat": NEAR["lat"], "exif_lon": NEAR["lon"]}) == []


def test_the_apps_claim_alone_raises_taken_before_and_taken_far():
    found = mismatches({"taken_at": DAYS_BEFORE, "location": FAR})
    assert [(d["kind"], d["detail"]["reason"], d["detail"]["source"]) for d in found] == [
        ("photo_mismatch", "taken_before", "app"), ("photo_mismatch", "taken_far", "app")]
    before, far = found
    assert before["field"] == "foto_rumah" and before["detail"]["sha256"] == SHA
    assert before["detail"]["seconds"] == 3 * 86400 - 10 * 60
    assert "3 days before the visit started" in before["message"]
    assert far["detail"]["distance_m"] > 14_000 and far["detail"]["reference"] == "registered"
    assert far["visit_value"] == FAR


def test_exif_raises_the_same_findings():
    found = mismatches({"exif_taken_at": dt.datetime(2026, 1, 2, 2, 10, tzinfo=dt.UTC),
                        "exif_lat": FAR["lat"], "exif_lon": FAR["lon"]})
    assert [(d["kind"], d["detail"]["reason"], d["detail"]["source"]) for d in found] == [
        ("photo_mismatch", "taken_before", "exif"), ("photo_mismatch", "taken_far", "exif")]


def test_exif_wins_over_the_apps_claim_both_ways():
    # EXIF says days before and far away; the app claims now and here: EXIF is believed.
    found = mismatches({"exif_taken_at": dt.datetime(2026, 1, 2, 2, 10, tzinfo=dt.UTC),
                        "exif_lat": FAR["lat"], "exif_lon": FAR["lon"],
                        "taken_at": DURING, "location": NEAR})
    assert [d["detail"]["reason"] for d in found] == ["taken_before", "taken_far"]
    assert {d["detail"]["source"] for d in found} == {"exif"}
    # EXIF says now and here; the app claims days before and far away: nothing is raised.
    assert mismatches({"exif_taken_at": dt.datetime(2026, 1, 5, 2, 10, tzinfo=dt.UTC),
                       "exif_lat": NEAR["lat"], "exif_lon": NEAR["lon"],
                       "taken_at": DAYS_BEFORE, "location": FAR}) == []


def test_each_attribute_falls_back_on_its_own():
    # EXIF has a time but no GPS: the place is the app's.
    found = mismatches({"exif_taken_at": dt.datetime(2026, 1, 5, 2, 10, tzinfo=dt.UTC),
                        "location": FAR})
    assert [(d["detail"]["reason"], d["detail"]["source"]) for d in found] == [
        ("taken_far", "app")]


def test_a_naive_exif_time_is_read_as_wib_with_slack():
    assert mismatches({"exif_taken_at_local": "2026-01-05T09:10:00"}) == []
    # A phone set to WIT (+9) writes 11:10 for 09:10 WIB: within the slack.
    assert mismatches({"exif_taken_at_local": "2026-01-05T11:10:00"}) == []
    [d] = mismatches({"exif_taken_at_local": "2026-01-03T09:10:00"})
    assert (d["detail"]["reason"], d["detail"]["source"]) == ("taken_before", "exif")


def test_slack_and_after_the_visit():
    assert mismatches({"taken_at": "2026-01-05T04:00:00+07:00"}) == []  # 5 h before: slack
    [d] = mismatches({"taken_at": "2026-01-06T09:00:00+07:00"})
    assert d["detail"]["reason"] == "taken_after"
    assert r.photo_mismatch(ctx_with({"taken_at": "2026-01-05T04:00:00+07:00"}),
                            Config(photo_time_slack_seconds=3600))[0]["detail"]["reason"] \
        == "taken_before"


def test_accuracy_widens_the_distance_and_the_visit_point_stands_in():
    near_enough = {"lat": -6.136144 + 0.004, "lon": 106.72342, "accuracy_m": 5}  # ~445 m
    [d] = mismatches({"location": near_enough})
    assert d["detail"]["reason"] == "taken_far"
    assert mismatches({"location": dict(near_enough, accuracy_m=200)}) == []
    rec = family()
    visit = visit_from(rec, photos=[{"field": "foto_rumah", "sha256": SHA, "location": FAR}])
    rec["lat"] = rec["lon"] = None  # no registered point: the visit's own point stands in
    [d] = r.photo_mismatch(Context(visit=visit, record=rec), Config())
    assert d["detail"]["reference"] == "visit"


def test_run_rules_includes_it():
    found = run_rules(ctx_with({"taken_at": DAYS_BEFORE}))
    assert [d["kind"] for d in found] == ["photo_mismatch"]
