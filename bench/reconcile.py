"""Benchmark: the reconciliation worker draining 100,000 visits against 1,000,000 families.

    .venv/bin/python -m bench.reconcile [--households 1000000] [--visits 100000] [--workers 1]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--batch 500]
        [--cache] [--profile]

Setup (untimed): the models' tables, areas, form v1 and a round through the real code; then bulk SQL
(the importer's row helpers, ``executemany`` on SQLite, ``COPY`` on PostgreSQL): ``--households``
families drawn from ``sync.generator`` (keluarga, anggota with its NIK index, verified_records,
verified_versions; registry snapshots in keluarga_versions are left out, the worker reads them
only for visits made on an older version), one enumerator per 100 visits, an assignment
(``visited``) per visited family, and ``--visits`` visits, each of a different family, built
with ``forms.example_visit`` from the family's record and cleaned by ``forms.validate_visit``
as a push would, inserted ``queued`` with three photos each (unique SHA-256s and perceptual
hashes), arriving in pushes of an enumerator's day (10 visits sharing their ``queued_at``), in
random order. A share of the visits carries changes and anomalies, so that conflicts are stored and
auto-accepted changes applied: see ``SHARES``. An enumerator's visits are of one kelurahan,
45 minutes apart.

Timed: the worker alone (``sync.reconcile.worker.drain``), in ``--workers`` child processes,
each with its own engine and session, from a full queue to an empty one. SQLite runs on a
fresh copy of the built file (``--cache`` keeps the built file under bench/out/ and reuses it);
PostgreSQL on a scratch database ``bench_reconcile_<pid>`` created on the server and dropped
afterwards. Afterwards, from the database: every visit processed exactly once (status
verified or needs_review, attempts 1, claimed by one worker), conflicts stored. ``--profile``
runs one more SQLite worker under cProfile on a fresh copy, over ``--profile-visits`` visits,
and prints where the time goes. Target: >= 2,000 visits/s per worker on SQLite.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TARGET = 2000
PER_ENUMERATOR = 100
ANALYZED = ("keluarga", "anggota", "verified_records", "users", "assignments", "visits",
            "photos", "visit_photos")
STARTED = dt.datetime(2026, 2, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))

# What a visit does besides confirming the record (the rest confirm it exactly).
SHARES = {
    "address_changed": 0.10,     # alamat differs: auto-accepted, a new verified version
    "floor_area_changed": 0.08,  # luas_lantai_m2 +50%: field_mismatch (soft)
    "member_died": 0.04,         # a member's status_keberadaan 2
    "too_short": 0.03,           # 2 minutes
    "gps_far": 0.03,             # 4 km off the registered point
    "photo_reused": 0.02,        # foto_depan: the same bytes as another family's visit
    "photo_similar": 0.02,       # foto_dalam: a phash 2 bits from another family's
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- build


def _kind(rng: random.Random) -> str | None:
    x = rng.random()
    for kind, share in SHARES.items():
        if x < share:
            return kind
        x -= share
    return None


def _phash(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _flip(ph: str, bits: int, rng: random.Random) -> str:
    v = int(ph, 16)
    for b in rng.sample(range(64), bits):
        v ^= 1 << b
    return f"{v:016x}"


def setup_schema(url: str, workdir: Path) -> None:
    """The models' tables (as bench.registry_import builds them), areas, form v1, a round."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    import server.models  # noqa: F401  (every table on the metadata)
    from sync.areas import load_areas
    from sync.db import Base, configure_engine
    from sync.forms import publish_form
    from sync.models.assignment import Round

    engine = create_engine(url)
    configure_engine(engine)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        load_areas(session)
        publish_form(session, json.loads(
            (ROOT / "forms/verifikasi_keluarga/v1.json").read_text(encoding="utf-8")))
        session.add(Round(name="Bench", starts_on=dt.date(2026, 1, 1),
                          ends_on=dt.date(2026, 12, 31)))
        session.commit()
    engine.dispose()


def build(url: str, households: int, visits: int, seed: int) -> dict:
    """Families (``bench.dataset.build_families``: the importer's rows, by bulk SQL), then
    ``queue_visits``; return counts and seconds."""
    from sqlalchemy import create_engine

    from bench.dataset import build_families
    from sync.db import configure_engine

    engine = create_engine(url)
    configure_engine(engine)
    families = build_families(engine, households, seed)
    engine.dispose()
    out = queue_visits(url, visits, seed)
    return {"families_seconds": families["families_s"], "members": families["members"], **out}


def queue_visits(url: str, visits: int, seed: int, prefix: str = "renum-") -> dict:
    """``visits`` queued visits of as many families that have no assignment yet (a random
    sample), by new enumerators ``<prefix>NNNNN`` of 100 visits each, with their photos and
    a ``visited`` assignment in the round "Bench"; see the module's docstring."""
    from sqlalchemy import bindparam, create_engine, select, text
    from sqlalchemy.orm import Session
    from werkzeug.security import generate_password_hash

    import forms
    import server.models  # noqa: F401  (every table on the metadata)
    from sync.db import configure_engine, utcnow
    from sync.forms import compiled_form, latest_open_version
    from sync.importer import _Bulk
    from sync.ingest import content_hash as visit_hash
    from sync.models.assignment import Round

    rng = random.Random(seed)
    engine = create_engine(url)
    configure_engine(engine)
    with Session(engine) as session:
        free = [r[0] for r in session.execute(text(
            "SELECT k.id FROM keluarga k WHERE k.removed_at IS NULL AND NOT EXISTS (SELECT 1 "
            "FROM assignments a WHERE a.household_id = k.id) ORDER BY k.id"))]
        chosen = rng.sample(free, visits)
        del free
        records: list[dict] = []
        query = text("SELECT doc FROM verified_records WHERE household_id IN :ids").bindparams(
            bindparam("ids", expanding=True))
        for i in range(0, len(chosen), 5000):
            records += [json.loads(doc) if isinstance(doc, str) else doc
                        for (doc,) in session.execute(query, {"ids": chosen[i:i + 5000]})]
        bulk = _Bulk(session)
        now = utcnow()
        now_db = bulk.ts(now)
        # Enumerators: each gets 100 visited families of one kelurahan, 45 minutes apart.
        records.sort(key=lambda r: (r["kode_kelurahan"], r["id_keluarga"]))
        n_enum = -(-visits // PER_ENUMERATOR)
        password_hash = generate_password_hash("bench-password", method="pbkdf2:sha256:1000")
        bulk = _Bulk(session)
        bulk.insert("users", ["username", "role", "password_hash", "active", "created_at"],
                    [(f"{prefix}{e:05d}", "enumerator", password_hash, True, now_db)
                     for e in range(n_enum)])
        users = server.models.User
        user_ids = list(session.scalars(select(users.id).where(users.username.like(f"{prefix}%"))
                                        .order_by(users.username)))
        round_id = session.scalar(select(Round.id).where(Round.name == "Bench"))
        bulk.insert("sync_batches", ["batch_id", "user_id", "device_id", "received_at", "body",
                                     "visits", "stored"],
                    [(f"{prefix}{u}", u, f"dev-{u}", now_db, b"{}", PER_ENUMERATOR,
                      PER_ENUMERATOR) for u in user_ids])
        session.commit()
        sb = server.models.Base.metadata.tables["sync_batches"]
        batch_of = dict(session.execute(select(sb.c.user_id, sb.c.id).where(
            sb.c.user_id.in_(user_ids))).all())
        form = compiled_form(latest_open_version(session, "verifikasi_keluarga"))

        visit_cols = ["uuid", "content_hash", "household_id", "form_id", "form_version",
                      "enumerator_id", "device_id", "batch_id", "round_id", "base_version",
                      "branch_id", "trunk_version", "started_at", "ended_at",
                      "started_at_device", "received_at", "lat", "lon", "accuracy_m",
                      "answers", "raw", "status", "queued_at", "attempts"]
        photo_cols = ["sha256", "size_bytes", "mime_type", "width", "height", "phash",
                      "uploaded_by", "received_at"]
        link_cols = ["visit_uuid", "field", "sha256", "filename"]
        assign_cols = ["round_id", "household_id", "enumerator_id", "status", "assigned_at",
                       "updated_at"]
        rows: dict[str, list] = {"visits": [], "photos": [], "visit_photos": [],
                                 "assignments": []}
        kinds: Counter = Counter()
        earlier: list[tuple[str, str]] = []  # (sha256, phash) of earlier visits' photos
        # Each enumerator pushes a day's visits (10) at once; the pushes arrive shuffled, one a
        # second, and a push's visits share their queued_at, as ingest_batch gives them.
        pushes = list(range(-(-len(records) // 10)))
        rng.shuffle(pushes)
        t1 = time.perf_counter()
        for n, rec in enumerate(records):
            e = n // PER_ENUMERATOR
            user = user_ids[e]
            slot = n % PER_ENUMERATOR
            start = STARTED + dt.timedelta(days=slot // 10, minutes=45 * (slot % 10))
            uuid = f"{rng.getrandbits(128):032x}"
            uuid = f"{uuid[:8]}-{uuid[8:12]}-4{uuid[13:16]}-8{uuid[17:20]}-{uuid[20:]}"
            v = forms.example_visit(form, rec, uuid=uuid, started_at=start.isoformat())
            kind = _kind(rng)
            kinds[kind or "clean"] += 1
            a = v["answers"]
            if kind == "address_changed":
                a["alamat"] = f"{rec['alamat']} Blok {rng.randint(1, 9)}"
            elif kind == "floor_area_changed" and isinstance(a.get("rumah"), dict):
                area = a["rumah"].get("luas_lantai_m2") or 30
                a["rumah"]["luas_lantai_m2"] = round(area * 1.5 + 5)
            elif kind == "member_died" and a.get("anggota"):
                a["anggota"][-1]["status_keberadaan"] = 2
            elif kind == "too_short":
                v["ended_at"] = (start + dt.timedelta(minutes=2)).isoformat()
            elif kind == "gps_far" and v.get("location"):
                v["location"] = dict(v["location"], lat=v["location"]["lat"] + 0.036)
            photos = []
            for p in v["photos"]:
                sha = hashlib.sha256(f"{uuid}:{p['field']}".encode()).hexdigest()
                ph, stored = _phash(rng), False
                if kind == "photo_reused" and p["field"] == "foto_depan" and earlier:
                    (sha, ph), stored = rng.choice(earlier), True
                elif kind == "photo_similar" and p["field"] == "foto_dalam" and earlier:
                    ph = _flip(rng.choice(earlier)[1], 2, rng)
                p["sha256"] = sha
                if a.get(p["field"]):
                    a[p["field"]] = sha
                photos.append((p["field"], sha, ph, stored))
            answers, errors = forms.validate_visit(form, v)
            if errors:
                raise SystemExit(f"an example visit is invalid: {errors[:2]}")
            loc = v.get("location") or {}
            queued = bulk.ts(now + dt.timedelta(seconds=pushes[n // 10]))
            rows["visits"].append((
                uuid, visit_hash(v), rec["id_keluarga"], form.form_id, form.version, user,
                f"dev-{user}", batch_of[user], round_id, v["base_version"], v["branch_id"],
                v["trunk_version"], bulk.ts(start.astimezone(dt.UTC)),
                bulk.ts(dt.datetime.fromisoformat(v["ended_at"]).astimezone(dt.UTC)),
                v["started_at"][:40], queued, loc.get("lat"), loc.get("lon"),
                loc.get("accuracy_m"), json.dumps(answers, ensure_ascii=False),
                json.dumps(v, ensure_ascii=False), "queued", queued, 0))
            for field, sha, ph, stored in photos:
                rows["visit_photos"].append((uuid, field, sha, None))
                if not stored:  # uploaded with the push that brought the visit
                    rows["photos"].append((sha, 150_000, "image/jpeg", 1280, 960, ph, user,
                                           queued))
                    earlier.append((sha, ph))
            rows["assignments"].append((round_id, rec["id_keluarga"], user, "visited", now_db,
                                        now_db))
            if len(rows["visits"]) >= 5000 or n == len(records) - 1:
                bulk = _Bulk(session)
                for table, cols in (("assignments", assign_cols), ("visits", visit_cols),
                                    ("photos", photo_cols), ("visit_photos", link_cols)):
                    bulk.insert(table, cols, rows[table])
                    rows[table].clear()
                session.commit()
        t_visits = time.perf_counter() - t1
        log(f"  {visits:,} visits ({dict(kinds)}) in {t_visits:.0f} s")
        # Statistics of the tables as built; not of those the run fills (feed, conflicts,
        # versions): on SQLite a table analyzed nearly empty is scanned ever after, and each
        # feed emit would scan the growing feed_entries.
        for table in ANALYZED:
            session.connection().exec_driver_sql(f"ANALYZE {table}")
        session.commit()
    engine.dispose()
    return {"visits_seconds": round(t_visits, 1), "enumerators": n_enum,
            "kinds": dict(kinds)}


# --------------------------------------------------------------------------- run


def child_drain(url: str, worker: str, batch: int, profile_visits: int) -> None:
    """Drain the queue in this process; print a JSON line: processed, start and end times."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    import server.models  # noqa: F401
    from sync.db import ENGINE_OPTIONS, configure_engine
    from sync.reconcile.worker import drain, run_once

    engine = create_engine(url, **ENGINE_OPTIONS)
    configure_engine(engine)
    with Session(engine) as session:
        if profile_visits:
            prof = cProfile.Profile()
            done = 0
            started = time.time()
            prof.enable()
            while done < profile_visits:
                got = run_once(session, worker, batch)
                if not got:
                    break
                done += len(got)
            prof.disable()
            ended = time.time()
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(45)
            print(buf.getvalue(), file=sys.stderr)
            print(json.dumps({"worker": worker, "processed": done, "started": started,
                              "ended": ended}))
            return
        started = time.time()
        cpu0 = time.process_time()
        done = drain(session, worker=worker, limit=batch)
        ended = time.time()
        cpu = time.process_time() - cpu0
    print(json.dumps({"worker": worker, "processed": done, "started": started, "ended": ended,
                      "cpu": cpu}))


def run_workers(url: str, workers: int, batch: int, profile_visits: int = 0,
                prefix: str = "bench-") -> list[dict]:
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.reconcile", "--child-drain", url, f"{prefix}w{i}",
         str(batch), str(profile_visits)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for i in range(workers)]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a worker failed ({p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def check(url: str, visits: int, workers: int) -> dict:
    """Every visit processed exactly once; conflicts and outcomes counted."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)

    def pairs(result):
        return {row[0]: row[1] for row in result}

    with engine.connect() as conn:
        status = pairs(conn.execute(text("SELECT status, count(*) FROM visits GROUP BY status")))
        attempts = pairs(conn.execute(text(
            "SELECT attempts, count(*) FROM visits GROUP BY attempts")))
        by_worker = pairs(conn.execute(text(
            "SELECT claimed_by, count(*) FROM visits GROUP BY claimed_by")))
        conflicts = conn.execute(text("SELECT count(*) FROM conflicts")).scalar()
        kinds = pairs(conn.execute(text(
            "SELECT kind, count(*) FROM conflicts GROUP BY kind ORDER BY 2 DESC")))
        dup_keys = conn.execute(text(
            "SELECT count(*) FROM (SELECT visit_uuid, key FROM conflicts GROUP BY visit_uuid, "
            "key HAVING count(*) > 1) d")).scalar()
        applied = conn.execute(text(
            "SELECT count(*) FROM verified_versions WHERE source = 'visit'")).scalar()
        unfinished = conn.execute(text(
            "SELECT count(*) FROM visits WHERE processed_at IS NULL")).scalar()
    engine.dispose()
    done = status.get("verified", 0) + status.get("needs_review", 0)
    ok = (done == visits and attempts == {1: visits} and dup_keys == 0 and unfinished == 0
          and sum(by_worker.values()) == visits and len(by_worker) <= workers)
    return {"ok": ok, "status": status, "attempts": attempts, "by_worker": by_worker,
            "conflicts": conflicts, "kinds": kinds, "applied_versions": applied}


# shared_niks filled from anggota, as migration 0011 does (the importer keeps it after).
SHARED_NIKS = ("INSERT INTO shared_niks (nik) SELECT nik FROM anggota WHERE nik IS NOT NULL "
               "GROUP BY nik HAVING count(DISTINCT keluarga_id) > 1")


def sqlite_copy(src: Path, dst: Path) -> str:
    """A copy of the built file, with the tables and indexes of the models as they are now
    (a table added since the file was built is made and, for ``shared_niks``, filled)."""
    from sqlalchemy import create_engine
    from sqlalchemy.schema import CreateIndex

    import server.models  # noqa: F401
    from sync.db import Base

    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    engine = create_engine(f"sqlite:///{dst}")
    with engine.begin() as conn:
        present = {name for (name,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'").all()}
        for table in Base.metadata.sorted_tables:
            if table.name not in present:
                table.create(conn)
                if table.name == "shared_niks":
                    conn.exec_driver_sql(SHARED_NIKS)
        wanted = {index.name for table in Base.metadata.sorted_tables for index in table.indexes}
        for (name,) in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").all():
            if name not in wanted:  # dropped by a migration since the file was built
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                conn.execute(CreateIndex(index, if_not_exists=True))
    engine.dispose()
    return f"sqlite:///{dst}"


def report(label: str, results: list[dict], checked: dict, visits: int) -> dict:
    total_s = max(r["ended"] for r in results) - min(r["started"] for r in results)
    per = [r["processed"] / (r["ended"] - r["started"]) for r in results]
    out = {"label": label, "seconds": round(total_s, 2), "total_per_s": round(visits / total_s),
           "per_worker_per_s": [round(x) for x in per],
           "processed": [r["processed"] for r in results],
           "cpu": [round(r.get("cpu", 0), 1) for r in results],
           "conflicts_per_visit": round(checked["conflicts"] / visits, 3), **checked}
    print(f"\n{label}: {visits:,} visits in {total_s:.1f} s = {visits / total_s:,.0f} visits/s "
          f"total; per worker {', '.join(f'{x:,.0f}' for x in per)} visits/s "
          f"(processed {out['processed']}, cpu {out['cpu']} s)")
    print(f"  statuses {checked['status']}, attempts {checked['attempts']}, by worker "
          f"{checked['by_worker']}")
    print(f"  conflicts {checked['conflicts']:,} ({out['conflicts_per_visit']} a visit): "
          f"{checked['kinds']}; verified versions from visits {checked['applied_versions']:,}")
    print("  exactly once: " + ("yes" if checked["ok"] else "NO"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--visits", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default 1 on SQLite, 2 on PostgreSQL)")
    parser.add_argument("--batch", type=int, default=500, help="visits claimed per batch")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server; a scratch database is made on it")
    parser.add_argument("--cache", action="store_true",
                        help="keep the built SQLite file under bench/out/ and reuse it")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one SQLite worker over --profile-visits visits")
    parser.add_argument("--profile-visits", type=int, default=5000)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--build-only", action="store_true",
                        help="with --cache: build the SQLite file and stop")
    parser.add_argument("--child-drain", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_drain:
        url, worker, batch, prof = args.child_drain
        child_drain(url, worker, int(batch), int(prof))
        return 0
    if args.visits > args.households:
        parser.error("more visits than families")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    OUT.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="reconcile-", dir=OUT))
    results: dict = {"households": args.households, "visits": args.visits, "seed": args.seed,
                     "batch": args.batch}
    ok = True
    try:
        if not args.skip_sqlite or args.profile:
            cached = OUT / f"reconcile_{args.households}_{args.visits}_{args.seed}.db"
            pristine = cached if args.cache else workdir / "built.db"
            if not (args.cache and cached.exists()):
                log(f"building {args.households:,} families and {args.visits:,} visits on "
                    "SQLite ...")
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{pristine}{suffix}").unlink(missing_ok=True)
                setup_schema(f"sqlite:///{pristine}", workdir)
                results["sqlite_build"] = build(f"sqlite:///{pristine}", args.households,
                                                args.visits, args.seed)
                from sqlalchemy import create_engine
                eng = create_engine(f"sqlite:///{pristine}")
                with eng.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                eng.dispose()
            else:
                log(f"using the cached {cached.name}")
            if not args.skip_sqlite and not args.build_only:
                workers = args.workers or 1
                url = sqlite_copy(pristine, workdir / "run.db")
                os.sync()
                runs = run_workers(url, workers, args.batch)
                checked = check(url, args.visits, workers)
                results["sqlite"] = report(f"SQLite, {workers} worker(s)", runs, checked,
                                           args.visits)
                ok &= checked["ok"]
                ok &= min(results["sqlite"]["per_worker_per_s"]) >= TARGET
            if args.profile and not args.build_only:
                url = sqlite_copy(pristine, workdir / "profile.db")
                log(f"profiling one SQLite worker over {args.profile_visits:,} visits ...")
                run_workers(url, 1, args.batch, args.profile_visits)
        if args.database_url:
            url, drop = _scratch(args.database_url)
            try:
                log(f"building {args.households:,} families and {args.visits:,} visits on "
                    "PostgreSQL ...")
                setup_schema(url, workdir)
                results["postgresql_build"] = build(url, args.households, args.visits,
                                                    args.seed)
                workers = args.workers or 2
                runs = run_workers(url, workers, args.batch)
                checked = check(url, args.visits, workers)
                results["postgresql"] = report(f"PostgreSQL, {workers} worker(s)", runs,
                                               checked, args.visits)
                ok &= checked["ok"]
            finally:
                drop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"reconcile_{args.households}_{args.visits}_{stamp}.json").write_text(
        json.dumps(results, indent=2, default=str))
    if "sqlite" in results:
        print("\ntarget met" if ok else "\nTARGET MISSED (or a check failed)")
    else:
        print("\nchecks passed (no SQLite run: the target was not measured)" if ok
              else "\nA CHECK FAILED")
    return 0 if ok else 1


def _scratch(server_url: str):
    """A scratch database bench_reconcile_<pid> on the server: (url, drop)."""
    from sync.db import scratch_postgres

    return scratch_postgres(server_url, f"bench_reconcile_{os.getpid()}")


if __name__ == "__main__":
    sys.exit(main())
