"""The floor under the reconciliation worker on SQLite: its reads and writes alone, no logic.

    .venv/bin/python -m bench.reconcile_floor [--db bench/out/reconcile_1000000_100000_3.db]
        [--visits 20000] [--batch 500] [--skip-lookups]

What no design of the worker can leave out, done with the driver (``sqlite3``) and orjson only,
on a copy of the file ``bench.reconcile --cache`` builds, with the worker's connection settings
(``sync.db.configure_engine``): per batch of ``--batch`` visits, in one ``BEGIN IMMEDIATE``
transaction, take the queue's head, read the visits (answers parsed), their verified records
(parsed), their families, the NIK holders (of the records' own NIKs only those in
``shared_niks``, as the worker asks) and KK holders of their members, their photos and the photos
referenced twice, each enumerator's previous visits, the families' visits of the round; then
end every visit (status, a comparison record the size of the real one, claimed), insert as many
conflict rows as the real run stores (0.38 a visit) and finish the assignments; commit. No
comparison, no rules, no SQLAlchemy. Whatever the worker does on top costs more than this, so
this bounds its speed from above. ``--skip-lookups`` leaves out everything but the visits' read
and write (the least a queue of visits can cost).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = ROOT / "bench" / "out" / "reconcile_1000000_100000_3.db"
CONFLICTS_PER_VISIT = 0.38


def _in(n: int) -> str:
    return ", ".join("?" * n)


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_batch(conn: sqlite3.Connection, limit: int, spent: Counter, lookups: bool,
              now: str, seq: list[int]) -> int:
    def step(label: str, t: float) -> float:
        t2 = time.perf_counter()
        spent[label] += t2 - t
        return t2

    t = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    uuids = [r[0] for r in conn.execute(
        "SELECT uuid FROM visits WHERE status = 'queued' ORDER BY queued_at LIMIT ?", (limit,))]
    if not uuids:
        conn.execute("ROLLBACK")
        return 0
    t = step("queue head", t)
    visits = []
    for row in conn.execute(
            "SELECT uuid, household_id, enumerator_id, round_id, started_at, lat, lon, answers "
            f"FROM visits WHERE uuid IN ({_in(len(uuids))})", uuids):
        visits.append((*row[:7], orjson.loads(row[7])))
    t = step("read visits", t)
    hids = sorted({v[1] for v in visits})
    if lookups:
        records = {r[0]: (r[1], orjson.loads(r[2])) for r in conn.execute(
            "SELECT household_id, version, doc FROM verified_records "
            f"WHERE household_id IN ({_in(len(hids))})", hids)}
        t = step("records", t)
        conn.execute("SELECT id, kode_kelurahan, desil, lat, lon, no_kk FROM keluarga "
                     f"WHERE id IN ({_in(len(hids))})", hids).fetchall()
        t = step("facts", t)
        # As the worker does: a record's own NIKs through shared_niks, the rest by the index.
        own, niks, kks = set(), set(), set()
        for _version, doc in records.values():
            for m in doc.get("anggota") or ():
                if m.get("nik"):
                    own.add(m["nik"])
            if doc.get("no_kk"):
                kks.add(doc["no_kk"])
        for v in visits:
            for m in v[7].get("anggota") or ():
                if m.get("nik") and m["nik"] not in own:
                    niks.add(m["nik"])
            if v[7].get("no_kk"):
                kks.add(str(v[7]["no_kk"]))
        for chunk in _chunks(sorted(own)):
            niks.update(r[0] for r in conn.execute(
                f"SELECT nik FROM shared_niks WHERE nik IN ({_in(len(chunk))})", chunk))
        holders = defaultdict(set)
        for chunk in _chunks(sorted(niks)):
            for nik, hid in conn.execute(
                    f"SELECT nik, keluarga_id FROM anggota WHERE nik IN ({_in(len(chunk))})",
                    chunk):
                holders[nik].add(hid)
        t = step("NIK holders", t)
        for chunk in _chunks(sorted(kks)):
            conn.execute(f"SELECT no_kk, id FROM keluarga WHERE no_kk IN ({_in(len(chunk))})",
                         chunk).fetchall()
        t = step("KK holders", t)
        photos = conn.execute(
            "SELECT vp.visit_uuid, vp.field, vp.sha256, p.phash FROM visit_photos vp "
            "LEFT JOIN photos p ON p.sha256 = vp.sha256 "
            f"WHERE vp.visit_uuid IN ({_in(len(uuids))})", uuids).fetchall()
        t = step("photos", t)
        shas = sorted({p[2] for p in photos})
        for chunk in _chunks(shas):
            conn.execute(f"SELECT sha256 FROM visit_photos WHERE sha256 IN ({_in(len(chunk))}) "
                         "GROUP BY sha256 HAVING count(*) > 1", chunk).fetchall()
        t = step("photos referenced twice", t)
        by_enumerator = defaultdict(list)
        for v in visits:
            by_enumerator[v[2]].append(v[4])
        for e, starts in by_enumerator.items():
            conn.execute(
                "SELECT started_at, uuid, ended_at, lat, lon, accuracy_m FROM visits "
                "WHERE enumerator_id = ? AND started_at >= coalesce((SELECT max(started_at) "
                "FROM visits p WHERE p.enumerator_id = ? AND p.started_at < ?), ?) "
                "AND started_at < ?", (e, e, min(starts), min(starts), max(starts))).fetchall()
        t = step("previous visits", t)
        conn.execute("SELECT uuid, household_id, round_id, enumerator_id FROM visits "
                     f"WHERE household_id IN ({_in(len(hids))})", hids).fetchall()
        t = step("round visits", t)
    # The real comparison record: about 70 confirmed paths, few proposed.
    ends = []
    for v in visits:
        confirmed = [f"{k}" for k in v[7] if k != "anggota"]
        confirmed += [f"anggota[{i}].{k}" for i, m in enumerate(v[7].get("anggota") or ())
                      for k in m]
        comparison = orjson.dumps({"confirmed": confirmed, "proposed": {}, "concurrent": {},
                                   "applied": {}, "skipped": [], "base_version": 1}).decode()
        ends.append(("verified", 1, 1, comparison, now, "floor", now, v[0]))
    t = step("comparison records", t)
    conn.executemany(
        "UPDATE visits SET status = ?, compared_version = ?, result_version = ?, "
        "comparison = ?, hold_reason = NULL, error = NULL, processed_at = ?, claimed_by = ?, "
        "claimed_at = ?, attempts = attempts + 1 WHERE uuid = ?", ends)
    t = step("write visits", t)
    if lookups:
        rows = []
        for i, v in enumerate(visits):
            seq[0] += CONFLICTS_PER_VISIT
            while seq[0] >= 1:
                seq[0] -= 1
                rows.append((v[1], v[0], v[3], "3171010001", "31710100", f"k{i}-{seq[1]}",
                             "field_mismatch", "soft", "luas_lantai_m2", "36", "54", None,
                             "differs from the registry", None, 1, "open", now, now))
                seq[1] += 1
        conn.executemany(
            "INSERT INTO conflicts (household_id, visit_uuid, round_id, kelurahan, kecamatan, "
            "key, kind, severity, field, registry_value, visit_value, base_value, message, "
            "detail, record_version, status, created_at, updated_at) VALUES "
            f"({_in(18)}) ON CONFLICT (visit_uuid, key) DO NOTHING", rows)
        t = step("conflict inserts", t)
        by_round = defaultdict(list)
        for v in visits:
            by_round[v[3]].append(v[1])
        for round_id, rhids in by_round.items():
            conn.execute(
                "UPDATE assignments SET status = 'done', review_state = 'verified', "
                f"updated_at = ? WHERE round_id = ? AND household_id IN ({_in(len(rhids))}) "
                "AND status IN ('pending', 'visited', 'returned') "
                "RETURNING enumerator_id, household_id", (now, round_id, *rhids)).fetchall()
        t = step("assignments", t)
    conn.execute("COMMIT")
    step("commit", t)
    return len(uuids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--visits", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--skip-lookups", action="store_true")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} is missing: build it with python -m bench.reconcile --cache "
                     "--build-only")

    from sqlalchemy import create_engine

    from bench.reconcile import sqlite_copy
    from sync.db import ENGINE_OPTIONS, background_checkpoints, configure_engine

    work = Path(tempfile.mkdtemp(prefix="floor-", dir=ROOT / "bench" / "out"))
    spent: Counter = Counter()
    try:
        url = sqlite_copy(args.db, work / "floor.db")
        engine = create_engine(url, **ENGINE_OPTIONS)
        configure_engine(engine)  # the worker's pragmas, on the connection taken below
        fairy = engine.raw_connection()
        conn = fairy.driver_connection
        conn.isolation_level = None  # transactions as written above
        now = dt.datetime.now(dt.UTC).isoformat(" ", "microseconds")
        done, seq, t0 = 0, [0.0, 0], time.perf_counter()
        with background_checkpoints(engine):
            while done < args.visits:
                got = run_batch(conn, args.batch, spent, not args.skip_lookups, now, seq)
                if not got:
                    break
                done += got
        wall = time.perf_counter() - t0
        fairy.close()
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{done:,} visits in {wall:.2f} s: {done / wall:,.0f} visits/s, "
          f"{wall / done * 1e6:.0f} µs a visit (batches of {args.batch}"
          f"{', visits only' if args.skip_lookups else ''})")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {label:28s} {seconds / done * 1e6:7.0f} µs a visit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
