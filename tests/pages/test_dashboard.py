"""The dashboard opens on the round in progress (with work in it), not on the newest round
created; a round can be chosen; its charts carry no viewBox and no text inside SVG."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from server.web.labels import WIB
from sync.models import Round


def _today() -> dt.date:
    return dt.datetime.now(WIB).date()


def _rounds(db):
    """Round one (the ``field`` fixture's, with the two assignments) in progress; a round of
    next month; and, created last, an empty round that started today."""
    today = _today()
    one = db.scalar(select(Round).order_by(Round.id).limit(1))
    one.starts_on, one.ends_on = today - dt.timedelta(days=30), today + dt.timedelta(days=30)
    future = Round(name="Putaran depan", starts_on=today + dt.timedelta(days=31),
                   ends_on=today + dt.timedelta(days=90))
    db.add(future)
    db.flush()
    empty = Round(name="Putaran kosong", starts_on=today, ends_on=today + dt.timedelta(days=60))
    db.add(empty)
    db.commit()
    return one, empty, future


def test_the_dashboard_opens_on_the_round_in_progress(web, db, flagged):
    one, empty, future = _rounds(db)
    assert web.login("spv").status_code == 303
    html = web.get("/review/dasbor").get_data(as_text=True)
    assert 'id="round-name">Round one<' in html
    assert "selesai dari 2 ditugaskan" in html  # its two assignments
    # every round can be chosen; the choice is kept when going into a kecamatan
    assert html.count("<option") == 3 and "Putaran kosong" in html and "Putaran depan" in html
    html = web.get(f"/review/dasbor?putaran={empty.id}").get_data(as_text=True)
    assert 'id="round-name">Putaran kosong<' in html and "selesai dari 0 ditugaskan" in html
    assert f"/review/dasbor?kecamatan=31.73.01&amp;putaran={empty.id}" in html
    assert web.get("/review/dasbor?putaran=999999").status_code == 404


def test_default_round_prefers_work_then_running_then_newest(app, db, flagged):
    from server.web.views import default_round

    one, empty, future = _rounds(db)
    today = _today()
    with app.test_request_context():
        # running with assignments, though the empty one started later and is newer
        assert default_round(today).id == one.id
        assert default_round().id == one.id
        # past Round one's end two rounds run, neither with work: the latest started
        assert default_round(today + dt.timedelta(days=45)).id == future.id
        # nothing running: the newest round created
        assert default_round(today + dt.timedelta(days=400)).id == empty.id
        assert default_round(today - dt.timedelta(days=400)).id == empty.id
        # a closed round is over, whatever its dates: the dashboard opens on the one still open
        one.state = "closed"
        db.commit()
        assert default_round(today).id == empty.id


def test_dashboard_charts_have_no_viewbox_and_no_svg_text(web, db, flagged, make_user):
    make_user("boss", role="admin")
    assert web.login("boss").status_code == 303
    html = web.get("/review/dasbor").get_data(as_text=True)
    charts = re.findall(r"<svg[^>]*class=\"chart[^>]*>.*?</svg>", html, re.S)
    assert len(charts) >= 3
    for svg in charts:
        assert "viewBox" not in svg and "<text" not in svg and "style=" not in svg
    assert '<ul class="legend">' in html and "Selesai " in html
