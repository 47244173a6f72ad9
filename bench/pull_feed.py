"""Benchmark: the pull feed at province scale (issue: assignments and delta pull).

Setup (``bench.dataset``: the importer's rows, COPY on PostgreSQL): 1,000,000 families of the
synthetic generator, 3,000 enumerators with 300 assignments each (a block of their kecamatan)
and the feed entries an assignment emits.
Measures, in-process through Flask's test client so that only server time counts:
- the first full pull of an enumerator (every page, limit 500), median and p95 over a sample;
- an empty delta pull (the cursor from that pull), median and p95;
- bytes on the wire per family, gzip on and off.

    .venv/bin/python -m bench.pull_feed [--families 1000000] [--enumerators 3000]
        [--per-enumerator 300] [--database-url URL] [--sample 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def build(url: str, families: int, enumerators: int, per_enumerator: int, seed: int = 7,
          app=None) -> list[str]:
    """Families, enumerators and their assignments with ``bench.dataset`` (COPY on
    PostgreSQL); the enumerators' usernames."""
    from bench import dataset

    started = time.perf_counter()
    dataset.build_instance(url, families, enumerators=enumerators,
                           per_enumerator=per_enumerator, supervisors=0, seed=seed, app=app)
    print(f"  setup done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return [dataset.ENUMERATOR.format(e) for e in range(enumerators)]


def measure(app, sample: int, usernames: list[str], per_enumerator: int) -> dict:
    """First full pull and empty delta pull of ``sample`` of these enumerators."""
    from server.extensions import db
    from server.models import ApiToken, User

    client = app.test_client()
    rng = random.Random(11)
    chosen = rng.sample(usernames, min(sample, len(usernames)))
    full_ms, empty_ms, plain_bytes, gzip_bytes = [], [], [], []
    with app.app_context():
        headers_for = {}
        for e in chosen:
            user = db.session.query(User).filter_by(username=e).one()
            plain, _token = ApiToken.issue(db.session, user, "bench", 3600)
            headers_for[e] = {"Authorization": f"Bearer {plain}"}
        db.session.commit()
    for e in chosen:
        headers = headers_for[e]
        cursor, total, families, size, zsize = None, 0.0, 0, 0, 0
        while True:
            url = "/api/v1/sync/pull?limit=500" + (f"&cursor={cursor}" if cursor else "")
            t0 = time.perf_counter()
            response = client.get(url, headers=headers)
            total += time.perf_counter() - t0
            body = response.get_json()
            size += len(response.data)
            zipped = client.get(url, headers={**headers, "Accept-Encoding": "gzip"})
            zsize += len(zipped.data)
            families += sum(1 for c in body["changes"] if c["type"] == "household")
            cursor = body["next_cursor"]
            if not body["more"]:
                break
        assert families == per_enumerator, families
        full_ms.append(total * 1000)
        plain_bytes.append(size / families)
        gzip_bytes.append(zsize / families)
        for _ in range(10):
            t0 = time.perf_counter()
            response = client.get(f"/api/v1/sync/pull?cursor={cursor}", headers=headers)
            empty_ms.append((time.perf_counter() - t0) * 1000)
            assert response.get_json()["changes"] == []
    return {
        "full_median_ms": statistics.median(full_ms), "full_p95_ms": percentile(full_ms, 95),
        "empty_median_ms": statistics.median(empty_ms),
        "empty_p95_ms": percentile(empty_ms, 95),
        "bytes_per_family_plain": statistics.mean(plain_bytes),
        "bytes_per_family_gzip": statistics.mean(gzip_bytes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=1_000_000)
    parser.add_argument("--enumerators", type=int, default=3000)
    parser.add_argument("--per-enumerator", type=int, default=300)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.enumerators * args.per_enumerator > args.families:
        parser.error("not enough families for that many assignments")

    from bench import dataset

    OUT.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pull-", dir=OUT))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    app = dataset.prepare(url, workdir)
    print(f"building {args.families:,} families, {args.enumerators:,} enumerators x "
          f"{args.per_enumerator} on {url.split(':')[0]} ...", file=sys.stderr)
    usernames = build(url, args.families, args.enumerators, args.per_enumerator, app=app)
    result = measure(app, args.sample, usernames, args.per_enumerator)
    print()
    print(f"pull feed, {args.families:,} families, {args.enumerators:,} enumerators x "
          f"{args.per_enumerator}, {url.split(':')[0]}")
    print(f"{'measure':<42} {'median':>9} {'p95':>9} {'target':>9}")
    print(f"{'first full pull, server time (ms)':<42} {result['full_median_ms']:>9.1f} "
          f"{result['full_p95_ms']:>9.1f} {'<= 100':>9}")
    print(f"{'empty delta pull, server time (ms)':<42} {result['empty_median_ms']:>9.2f} "
          f"{result['empty_p95_ms']:>9.2f} {'<= 5':>9}")
    print(f"bytes on the wire per family: {result['bytes_per_family_plain']:.0f} plain, "
          f"{result['bytes_per_family_gzip']:.0f} gzip")
    ok = result["full_median_ms"] <= 100 and result["empty_median_ms"] <= 5
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
