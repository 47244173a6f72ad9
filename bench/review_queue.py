"""Benchmark: the supervisor's review queue and progress dashboard at province scale (issue 8).

Setup (``bench.dataset``: the importer's rows, COPY on PostgreSQL; the progress triggers run
during it): 1,000,000 families over the ten priority kecamatan, 300,000 of them assigned in one
round (300 to an enumerator), and 200,000 open conflicts of mixed kinds. Measures in-process
through Flask's test client (only server time counts), as a supervisor holding all of Jakarta:
- the queue page ``GET /api/v1/conflicts?kelurahan=<code>&limit=50`` (random kelurahan);
- the dashboard ``GET /api/v1/progress?level=kecamatan`` and ``level=kelurahan&parent=``;
- the pages a supervisor works from (issue 18), with a page session: the queue
  ``/review/antrean?kelurahan=``, a conflict ``/review/konflik/<id>``, the assignment page
  ``/review/penugasan?kelurahan=`` and the monitoring view ``/review/pemantauan`` (with
  ``GET /api/v1/monitoring``), each with its size in HTML plus its stylesheets (<= 100 KB).
  The assigned families also get a visit each (verified, under review or returned, received
  over the round's 52 weeks; their assignments' statuses and review states follow), so that
  the monitoring counters hold a full year of weekly rows for every kelurahan; the time to
  count them all (``sync.monitoring.drain``) is printed.

    .venv/bin/python -m bench.review_queue [--households 1000000] [--conflicts 200000]
        [--assigned 300000] [--database-url URL] [--sample 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.pull_feed import OUT, percentile

SUPERVISOR = "bspv-all"  # bench.dataset's supervisor of all of Jakarta


def build(url: str, households: int, assigned: int, conflicts: int, app=None) -> dict:
    """Families, enumerators with 300 families each, open conflicts and a visit per assigned
    family, with ``bench.dataset`` (COPY on PostgreSQL); the monitoring counters drained once."""
    from bench import dataset

    out = dataset.build_instance(url, households, enumerators=max(1, assigned // 300),
                                 per_enumerator=300, supervisors=0, conflicts=conflicts,
                                 visits=True, app=app)
    return {**out, "kelurahan": kelurahan_of(app)}


def kelurahan_of(app) -> list[str]:
    """The kelurahan of the priority kecamatan (where the generator puts its families)."""
    from server.extensions import db
    from sync.areas import PRIORITY_KECAMATAN
    from sync.models import Area

    with app.app_context():
        return [a.code for a in db.session.query(Area).filter(Area.level == "kelurahan")
                if a.parent_code in PRIORITY_KECAMATAN]


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


def measure_pages(app, kelurahan: list[str], sample: int, username: str = SUPERVISOR) -> dict:
    """Server time of the supervisor's pages and the monitoring view (issue 18)."""
    from server.extensions import db
    from sync.models.conflict import Conflict

    rng = random.Random(18)
    client = _page_client(app, username)
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

        user = db.session.query(User).filter_by(username=username).one()
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


def measure(app, kelurahan: list[str], sample: int, username: str = SUPERVISOR) -> dict:
    from server.extensions import db
    from server.models import ApiToken, User
    from sync.areas import PRIORITY_KECAMATAN

    client = app.test_client()
    rng = random.Random(12)
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        plain, _token = ApiToken.issue(db.session, user, "bench", 3600)
        db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    first = client.get(f"/api/v1/conflicts?kelurahan={kelurahan[0]}&limit=50",
                       headers=headers).get_json()
    assert len(first["items"]) == min(50, first["total"]), first["total"]
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

    from bench import dataset

    OUT.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="review-", dir=OUT))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    app = dataset.prepare(url, workdir)
    backend = url.split(":")[0]
    print(f"building {args.households:,} families, {assigned:,} assigned, "
          f"{args.conflicts:,} open conflicts on {backend} ...", file=sys.stderr)
    setup = build(url, args.households, assigned, args.conflicts, app=app)
    print(f"  setup: families {setup['families_s']:.1f} s, assignments "
          f"{setup['assignments_s']:.1f} s, conflicts {setup['conflicts_s']:.1f} s, visits "
          f"{setup['visits_s']:.1f} s; monitoring drain: {setup['counted']:,} families counted "
          f"in {setup['drain_s']:.1f} s", file=sys.stderr)
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
