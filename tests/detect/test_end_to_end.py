"""End to end on a small generated registry: the simulated round is pushed, its photos
uploaded through the photo service, the worker run; every planted and fabricated kind is
detected and no clean visit gets a conflict it should not have."""

import pytest

from bench.detect import setup_round, uploader
from server.cli.forms import FORMS_DIR
from sync import simulator
from sync.generator import generate

FAMILIES = 200  # the smallest size at which every planted kind occurs at least once


@pytest.fixture
def report(app, db, tmp_path):
    folder = tmp_path / "extract"
    generate(folder, FAMILIES, 3)
    plan, users, summary = setup_round(db, folder, 40, 8, 3,
                                       FORMS_DIR / "verifikasi_keluarga" / "v1.json")
    assert summary.inserted == FAMILIES
    stats = simulator.run(db, plan, users=users, upload=uploader(db))
    assert stats.statuses == {"accepted": FAMILIES}
    assert stats.reconciled == FAMILIES
    return simulator.score(db, plan)


def test_every_kind_is_detected_and_no_clean_visit_is_flagged(report):
    text = simulator.format_report(report)
    for row in report.rows:
        if row["group"] in ("planted", "fabricated"):
            assert row["planted"] >= 1, (row, text)
        if row["planted"] and row["group"] != "probe":
            assert row["detected"] == row["planted"], (row, text)
    assert report.clean > FAMILIES * 0.8
    assert report.clean_flagged == 0, (report.examples, text)
    assert all(simulator.passed(report).values())
    assert all(r["precision"] == 1.0 for r in report.precision), text  # nothing unexpected
    assert set(report.statuses) == {"verified", "needs_review"}
