"""Benchmark: the pull feed at province scale (issue: assignments and delta pull).

Setup: 1,000,000 families, 3,000 enumerators with 300 assignments each, loaded with bulk SQL
(the importer has its own benchmark), families' records drawn from the synthetic generator.
Measures, in-process through Flask's test client so that only server time counts:
- the first full pull of an enumerator (every page, limit 500), median and p95 over a sample;
- an empty delta pull (the cursor from that pull), median and p95;
- bytes on the wire per family, gzip on and off.

    .venv/bin/python -m bench.pull_feed [--families 1000000] [--enumerators 3000]
        [--per-enumerator 300] [--database-url URL] [--sample 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

OUT = Path(__file__).resolve().parent / "out"


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def build(app, families: int, enumerators: int, per_enumerator: int, seed: int = 7) -> None:
    from server.extensions import db
    from sync.areas import PRIORITY_KECAMATAN
    from sync.generator import iter_families
    from sync.models import Area

    rng = random.Random(seed)
    started = time.perf_counter()
    with app.app_context():
        engine = db.engine
        kelurahan = [a.code for a in db.session.query(Area).filter(Area.level == "kelurahan")
                     if a.parent_code in PRIORITY_KECAMATAN]
        templates = list(iter_families(2000, seed=seed))
        from werkzeug.security import generate_password_hash

        password_hash = generate_password_hash("bench-password")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None) if engine.dialect.name == "sqlite" \
            else dt.datetime.now(dt.UTC)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO imports (label, source_path, format, status, "
                              "started_at, partial, n_read, n_inserted, n_updated, n_unchanged, "
                              "n_rejected, n_removed, n_members, n_flagged) VALUES ('bench', "
                              "'bench', 'jsonl', 'done', :now, false, 0, 0, 0, 0, 0, 0, 0, 0)"),
                         {"now": now})
        batch_k, batch_v = [], []

        def flush():
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO keluarga (id, kode_kelurahan, no_kk, rt, rw, desil, "
                    "content_hash, registry_version, first_import_id, last_import_id, "
                    "last_seen_import_id, created_at) VALUES (:id, :kel, :kk, :rt, :rw, :desil,"
                    " 'x', 1, 1, 1, 1, :now)"), batch_k)
                conn.execute(text(
                    "INSERT INTO verified_records (household_id, version, doc, registry_version,"
                    " local_changes, updated_at) VALUES (:id, 1, :doc, 1, false, :now)"), batch_v)
            batch_k.clear()
            batch_v.clear()

        for i in range(families):
            doc = dict(templates[i % len(templates)])
            hid = f"KLG-{i:09d}"
            kel = kelurahan[i % len(kelurahan)]
            doc["id_keluarga"], doc["kode_kelurahan"] = hid, kel
            batch_k.append({"id": hid, "kel": kel, "kk": doc.get("no_kk"), "rt": doc.get("rt"),
                            "rw": doc.get("rw"), "desil": doc.get("desil"), "now": now})
            batch_v.append({"id": hid, "doc": json.dumps(doc, ensure_ascii=False), "now": now})
            if len(batch_k) == 20_000:
                flush()
        if batch_k:
            flush()
        print(f"  families loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)

        with engine.begin() as conn:
            conn.execute(text("INSERT INTO rounds (name, starts_on, ends_on, created_at) VALUES "
                              "('bench', '2026-01-01', '2026-12-31', :now)"), {"now": now})
            conn.execute(text("INSERT INTO users (username, role, password_hash, active, "
                              "created_at) VALUES (:u, 'enumerator', :p, true, :now)"),
                         [{"u": f"enum-{e:04d}", "p": password_hash, "now": now}
                          for e in range(enumerators)])
            user_ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM users WHERE role = 'enumerator' ORDER BY id"))]
            conn.execute(text("INSERT INTO user_areas (user_id, area_code) VALUES (:u, '31')"),
                         [{"u": u} for u in user_ids])
        seq = 0
        order = list(range(families))
        rng.shuffle(order)
        for e, user_id in enumerate(user_ids):
            chunk = order[e * per_enumerator:(e + 1) * per_enumerator]
            assignments, entries = [], []
            for i in chunk:
                hid = f"KLG-{i:09d}"
                assignments.append({"h": hid, "u": user_id, "now": now})
                for typ, entity in (("assignment", f"1:{hid}"), ("household", hid)):
                    seq += 1
                    entries.append({"s": seq, "u": user_id, "t": typ, "e": entity, "now": now})
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO assignments (round_id, household_id, "
                                  "enumerator_id, status, assigned_at, updated_at) VALUES "
                                  "(1, :h, :u, 'pending', :now, :now)"), assignments)
                conn.execute(text("INSERT INTO feed_entries (seq, user_id, type, entity_id, op,"
                                  " created_at) VALUES (:s, :u, :t, :e, 'upsert', :now)"), entries)
        with engine.begin() as conn:
            conn.execute(text("UPDATE feed_state SET last_seq = :s WHERE id = 1"), {"s": seq})
            conn.execute(text("ANALYZE"))
        print(f"  setup done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def measure(app, sample: int, enumerators: int, per_enumerator: int) -> dict:
    from server.extensions import db
    from server.models import ApiToken, User

    client = app.test_client()
    rng = random.Random(11)
    chosen = rng.sample(range(enumerators), min(sample, enumerators))
    full_ms, empty_ms, plain_bytes, gzip_bytes = [], [], [], []
    with app.app_context():
        headers_for = {}
        for e in chosen:
            user = db.session.query(User).filter_by(username=f"enum-{e:04d}").one()
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

    import config
    from server import create_app

    OUT.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pull-", dir=OUT))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    settings = config.for_testing(str(workdir), url, str(workdir / "photos"))
    settings.update(TESTING=False, LOG_LEVEL="WARNING", LOGIN_RATE_LIMIT="100000 per minute")
    app = create_app(settings)
    with app.app_context():
        from flask_migrate import upgrade

        from server.extensions import db
        from sync.areas import load_areas

        upgrade()
        load_areas(db.session)
        db.session.commit()
    print(f"building {args.families:,} families, {args.enumerators:,} enumerators x "
          f"{args.per_enumerator} on {url.split(':')[0]} ...", file=sys.stderr)
    build(app, args.families, args.enumerators, args.per_enumerator)
    result = measure(app, args.sample, args.enumerators, args.per_enumerator)
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
