"""Benchmark: the supervisor's review queue and progress dashboard at province scale (issue 8).

Setup (bulk SQL, as bench/pull_feed.py does; the progress triggers run during it): 1,000,000
families over the ten priority kecamatan, 300,000 of them assigned in one round with mixed
statuses and review states, and 200,000 open conflicts of mixed kinds. Measures in-process
through Flask's test client (only server time counts), as a supervisor holding all of Jakarta:
- the queue page ``GET /api/v1/conflicts?kelurahan=<code>&limit=50`` (random kelurahan);
- the dashboard ``GET /api/v1/progress?level=kecamatan`` and ``level=kelurahan&parent=``;
- the pages a supervisor works from (issue 18), with a page session: the queue
  ``/review/antrean?kelurahan=``, a conflict ``/review/konflik/<id>``, the assignment page
  ``/review/penugasan?kelurahan=`` and the monitoring view ``/review/pemantauan`` (with
  ``GET /api/v1/monitoring``), each with its size in HTML plus its stylesheets (<= 100 KB).
  The assigned families also get a visit each (verified, under review or returned, received
  over the round's 52 weeks), so that the monitoring counters hold a full year of weekly rows
  for every kelurahan; the time to count them all (``sync.monitoring.drain``) is printed.

    .venv/bin/python -m bench.review_queue [--households 1000000] [--conflicts 200000]
        [--assigned 300000] [--database-url URL] [--sample 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench.pull_feed import OUT, percentile

KINDS = ("photo_reused", "location_far", "location_outside_area", "visit_too_short",
         "inclusion_error", "exclusion_error", "field_mismatch", "duplicate_identity")
STATUSES = ("pending", "visited", "returned", "done")
REVIEW = (None, "verified", "needs_review", "rejected")


def build(app, households: int, assigned: int, conflicts: int, seed: int = 8) -> dict:
    from server.extensions import db
    from sync.areas import PRIORITY_KECAMATAN
    from sync.models import Area

    rng = random.Random(seed)
    timings = {}
    with app.app_context():
        engine = db.engine
        kelurahan = [a.code for a in db.session.query(Area).filter(Area.level == "kelurahan")
                     if a.parent_code in PRIORITY_KECAMATAN]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None) if engine.dialect.name == "sqlite" \
            else dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO imports (label, source_path, format, status, "
                              "started_at, partial, n_read, n_inserted, n_updated, n_unchanged, "
                              "n_rejected, n_removed, n_members, n_flagged) VALUES ('bench', "
                              "'bench', 'jsonl', 'done', :now, false, 0, 0, 0, 0, 0, 0, 0, 0)"),
                         {"now": now})
            conn.execute(text("INSERT INTO rounds (name, starts_on, ends_on, created_at) VALUES "
                              "('bench', '2026-01-01', '2026-12-31', :now)"), {"now": now})
            conn.execute(text("INSERT INTO users (username, role, password_hash, active, "
                              "created_at) VALUES ('enum', 'enumerator', 'x', true, :now), "
                              "('spv', 'supervisor', 'x', true, :now)"), {"now": now})
            conn.execute(text("INSERT INTO user_areas (user_id, area_code) "
                              "SELECT id, '31' FROM users"))
        kel_of = [kelurahan[i % len(kelurahan)] for i in range(households)]
        for start in range(0, households, 20_000):
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO keluarga (id, kode_kelurahan, rt, rw, desil, content_hash, "
                    "registry_version, first_import_id, last_import_id, last_seen_import_id, "
                    "created_at) VALUES (:id, :kel, '001', '001', 3, 'x', 1, 1, 1, 1, :now)"),
                    [{"id": f"KLG-{i:09d}", "kel": kel_of[i], "now": now}
                     for i in range(start, min(households, start + 20_000))])
        timings["families_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        order = rng.sample(range(households), assigned)
        for start in range(0, assigned, 20_000):
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO assignments (round_id, household_id, enumerator_id, status, "
                    "review_state, assigned_at, updated_at) VALUES (1, :h, 1, :s, :r, :now, :now)"),
                    [{"h": f"KLG-{i:09d}", "s": rng.choice(STATUSES), "r": rng.choice(REVIEW),
                      "now": now} for i in order[start:start + 20_000]])
        timings["assignments_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for start in range(0, conflicts, 20_000):
            rows = []
            for n in range(start, min(conflicts, start + 20_000)):
                i = rng.randrange(households)
                kel = kel_of[i]
                created = now - dt.timedelta(minutes=rng.randrange(60 * 24 * 30))
                rows.append({"h": f"KLG-{i:09d}", "kec": kel.rsplit(".", 1)[0], "kel": kel,
                             "key": f"b{n}", "kind": rng.choice(KINDS),
                             "sev": rng.choice(("hard", "soft", "info")), "rv": '"3"',
                             "vv": '"4"', "c": created})
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO conflicts (household_id, round_id, kecamatan, kelurahan, key, "
                    "kind, severity, field, registry_value, visit_value, message, status, "
                    "created_at, updated_at) VALUES (:h, 1, :kec, :kel, :key, :kind, :sev, "
                    "'rumah.lantai', :rv, :vv, '', 'open', :c, :c)"), rows)
        timings["conflicts_s"] = time.perf_counter() - t0
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return {"kelurahan": kelurahan, **timings}


def build_visits(app, households: int, assigned: int, seed: int = 9) -> dict:
    """One visit per assigned family, received over the round's 52 weeks, then every marked
    family counted for monitoring (the drain a live instance spreads over its writers)."""
    from server.extensions import db
    from sync import monitoring
    from sync.db import write_transaction

    rng = random.Random(seed)
    out = {}
    with app.app_context():
        engine = db.engine
        sqlite_db = engine.dialect.name == "sqlite"
        start = dt.datetime(2026, 1, 5, 3, tzinfo=dt.UTC)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO sync_batches (batch_id, user_id, device_id, "
                              "received_at, body, visits, stored) VALUES ('bench', 1, 'bench', "
                              ":now, :body, 0, 0)"), {"now": start.replace(tzinfo=None)
                                                       if sqlite_db else start, "body": b""})
        order = random.Random(8).sample(range(households), assigned)  # build()'s families
        for first in range(0, assigned, 20_000):
            rows = []
            for n, i in enumerate(order[first:first + 20_000], start=first):
                at = start + dt.timedelta(minutes=rng.randrange(60 * 24 * 7 * 52))
                status = rng.choice(("verified", "verified", "needs_review", "returned"))
                at = at.replace(tzinfo=None) if sqlite_db else at
                rows.append({"u": f"bench-{n:09d}", "h": f"KLG-{i:09d}", "s": status,
                             "t": at})
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO visits (uuid, content_hash, household_id, form_id, "
                    "form_version, enumerator_id, device_id, batch_id, round_id, started_at, "
                    "received_at, answers, raw, status, attempts, processed_at, reviewed_at) "
                    "VALUES (:u, 'x', :h, 'verifikasi_keluarga', 1, 1, 'bench', 1, 1, :t, :t, "
                    "'{}', '{}', :s, 1, :t, :t)"), rows)
        out["visits_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with write_transaction(db.session):
            out["counted"] = monitoring.drain(db.session)
        out["drain_s"] = time.perf_counter() - t0
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return out


def _time(client, url, headers, n) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.get_json()
    return out


def _page_client(app, username: str):
    """A test client holding a review-page session of ``username`` (as a login would set)."""
    from server.extensions import db
    from server.models import User
    from server.web.auth import SESSION_KEY, _fingerprint

    client = app.test_client()
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        data = {"id": user.id, "fp": _fingerprint(user)}
    with client.session_transaction() as session:
        session[SESSION_KEY] = data
    return client


def _page_weight(client, html: str) -> int:
    """Bytes of the page's HTML and of every stylesheet it links."""
    import re

    css = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', html)
    return len(html.encode()) + sum(len(client.get(href).data) for href in css)


def measure_pages(app, kelurahan: list[str], sample: int) -> dict:
    """Server time of the supervisor's pages and the monitoring view (issue 18)."""
    from server.extensions import db
    from sync.models.conflict import Conflict

    rng = random.Random(18)
    client = _page_client(app, "spv")
    with app.app_context():
        top = db.session.query(db.func.max(Conflict.id)).scalar()
    urls = {
        "queue": lambda: f"/review/antrean?kelurahan={rng.choice(kelurahan)}",
        "conflict": lambda: f"/review/konflik/{rng.randint(1, top)}",
        "assignment": lambda: f"/review/penugasan?putaran=1&kelurahan={rng.choice(kelurahan)}",
        "monitoring": lambda: "/review/pemantauan?putaran=1",
        "monitoring_api": lambda: "/api/v1/monitoring?level=kecamatan&round_id=1",
    }
    out: dict[str, list[float]] = {name: [] for name in urls}
    weight: dict[str, int] = {}
    headers = {}
    with app.app_context():
        from server.models import ApiToken, User

        user = db.session.query(User).filter_by(username="spv").one()
        plain, _token = ApiToken.issue(db.session, user, "bench-pages", 3600)
        db.session.commit()
    for name, make in urls.items():
        for i in range(sample):
            url = make()
            t0 = time.perf_counter()
            response = client.get(url, headers={"Authorization": f"Bearer {plain}"}
                                  if name.endswith("_api") else headers)
            out[name].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            if i == 0 and not name.endswith("_api"):
                weight[name] = _page_weight(client, response.get_data(as_text=True))
    return {"times": out, "weight": weight}


def measure(app, kelurahan: list[str], sample: int) -> dict:
    from server.extensions import db
    from server.models import ApiToken, User
    from sync.areas import PRIORITY_KECAMATAN

    client = app.test_client()
    rng = random.Random(12)
    with app.app_context():
        user = db.session.query(User).filter_by(username="spv").one()
        plain, _token = ApiToken.issue(db.session, user, "bench", 3600)
        db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    first = client.get(f"/api/v1/conflicts?kelurahan={kelurahan[0]}&limit=50",
                       headers=headers).get_json()
    assert len(first["items"]) == 50, first
    queue, kec, kel = [], [], []
    for _ in range(sample):
        queue += _time(client, f"/api/v1/conflicts?kelurahan={rng.choice(kelurahan)}&limit=50",
                       headers, 1)
        kec += _time(client, "/api/v1/progress?level=kecamatan", headers, 1)
        kel += _time(client, "/api/v1/progress?level=kelurahan&parent="
                     f"{rng.choice(PRIORITY_KECAMATAN)}", headers, 1)
    body = client.get("/api/v1/progress?level=kecamatan&priority=1", headers=headers).get_json()
    return {"queue": queue, "kecamatan": kec, "kelurahan": kel, "totals": body["totals"],
            "per_kelurahan_conflicts": first["total"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--conflicts", type=int, default=200_000)
    parser.add_argument("--assigned", type=int, default=None,
                        help="assigned families (default 30%% of households)")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    assigned = args.assigned if args.assigned is not None else int(args.households * 0.3)

    import config
    from server import create_app

    OUT.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="review-", dir=OUT))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    settings = config.for_testing(str(workdir), url, str(workdir / "photos"))
    settings.update(TESTING=False, LOG_LEVEL="WARNING")
    app = create_app(settings)
    with app.app_context():
        from flask_migrate import upgrade

        from server.extensions import db
        from sync.areas import load_areas

        upgrade()
        load_areas(db.session)
        db.session.commit()
    backend = url.split(":")[0]
    print(f"building {args.households:,} families, {assigned:,} assigned, "
          f"{args.conflicts:,} open conflicts on {backend} ...", file=sys.stderr)
    setup = build(app, args.households, assigned, args.conflicts)
    print(f"  setup (triggers on): families {setup['families_s']:.1f} s, assignments "
          f"{setup['assignments_s']:.1f} s, conflicts {setup['conflicts_s']:.1f} s",
          file=sys.stderr)
    visits = build_visits(app, args.households, assigned)
    print(f"  visits {visits['visits_s']:.1f} s; monitoring drain: {visits['counted']:,} "
          f"families counted in {visits['drain_s']:.1f} s "
          f"({visits['counted'] / max(visits['drain_s'], 1e-9):,.0f} a second)", file=sys.stderr)
    result = measure(app, setup["kelurahan"], args.sample)
    with app.app_context():
        from server.extensions import db
        from sync.progress import differences

        t0 = time.perf_counter()
        diff = differences(db.session)
        recount_s = time.perf_counter() - t0
    print()
    print(f"review queue and dashboard, {args.households:,} families, {args.conflicts:,} open "
          f"conflicts (~{result['per_kelurahan_conflicts']:,} in a kelurahan), {backend}")
    print(f"{'measure (server time, ms)':<44} {'median':>8} {'p95':>8} {'target':>8}")
    ok = True
    for name, key in (("queue page, 50 rows by kelurahan", "queue"),
                      ("dashboard, level=kecamatan", "kecamatan"),
                      ("dashboard, level=kelurahan&parent=", "kelurahan")):
        values = result[key]
        median = statistics.median(values)
        ok &= median <= 50
        print(f"{name:<44} {median:>8.2f} {percentile(values, 95):>8.2f} {'<= 50':>8}")
    totals = result["totals"]
    print(f"priority totals: households {totals['households']:,}, assigned "
          f"{totals['assigned']:,}, open conflicts {totals['conflicts_open_total']:,}")
    print(f"full recount for comparison: {recount_s * 1000:.0f} ms, differences: {len(diff)}")
    ok &= not diff
    pages = measure_pages(app, setup["kelurahan"], max(20, args.sample // 4))
    print()
    print(f"{'page (server time, ms)':<44} {'median':>8} {'p95':>8} {'target':>8} {'KB':>6}")
    for name, label in (("queue", "queue page /review/antrean?kelurahan="),
                        ("conflict", "conflict page /review/konflik/<id>"),
                        ("assignment", "assignment page /review/penugasan"),
                        ("monitoring", "monitoring view /review/pemantauan"),
                        ("monitoring_api", "GET /api/v1/monitoring?level=kecamatan")):
        values = pages["times"][name]
        median = statistics.median(values)
        size = pages["weight"].get(name)
        ok &= median <= 50 and (size is None or size <= 100_000)
        print(f"{label:<44} {median:>8.2f} {percentile(values, 95):>8.2f} {'<= 50':>8} "
              f"{'' if size is None else f'{size / 1000:.1f}':>6}")
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
