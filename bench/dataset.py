"""Benchmark data, built fast: one helper for every benchmark's setup (issue 19).

A new user who ran ``bench.pull_feed`` on PostgreSQL saw families built at about 400 a second
(row-at-a-time inserts through SQLAlchemy, each firing its row triggers). Here every table is
written as the importer writes it (``sync.importer._Bulk``: ``COPY`` on PostgreSQL,
``executemany`` on SQLite), with the importer's own row helpers, so a family built here is the
family a first import would store (keluarga, anggota with NIK issues, keluarga_versions v1,
verified_records v1, verified_versions v1, shared_niks):

* ``prepare(url)``: migrations to head (Flask-Migrate, so the triggers are there), the areas,
  the shipped forms (as ``bootstrap`` publishes them), a Flask app on that database;
* ``build_families(engine, n)``: families of ``sync.generator.iter_families`` (every family is
  drawn, so NIKs stay unique as in a real extract). On PostgreSQL the row triggers of the
  tables written after ``keluarga`` are off for the load (``session_replication_role =
  replica``): their only work is the foreign keys, which hold by construction, and the
  monitoring marks of migration 0014, which mark nothing for a family that no round counts
  yet. ``keluarga`` keeps its statement triggers (the progress counters' households);
* ``build_users``, ``build_round``, ``build_assignments``: enumerators with a kecamatan each,
  supervisors, a round, and a geographic block of families for each enumerator, with the
  feed entries ``sync.assignments.assign`` would emit (the statement triggers keep the
  progress and enumerator-load counters);
* ``build_conflicts``, ``build_visits``: optional open conflicts and processed visits (their
  triggers mark the families for monitoring; ``monitoring.drain`` then counts them once);
* ``build_instance``: all of it; ``ensure_template(name, ...)``: a PostgreSQL database built
  once under ``<name>_building`` and renamed when complete, to be copied with ``CREATE DATABASE
  x TEMPLATE <name>``.

    .venv/bin/python -m bench.dataset --template tapak_bench_3m --families 3000000 \\
        [--enumerators 1000] [--per-enumerator 300] [--supervisors 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PASSWORD = "bench-password"
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BATCH = 20_000
ENUMERATOR = "benum-{:04d}"
SUPERVISOR = "bspv-{:02d}"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def server_url(database: str, server: str = SERVER) -> str:
    return f"{server}/{database}"


# --------------------------------------------------------------------------- schema


def make_app(url: str, workdir: Path | None = None):
    """A Flask app on ``url`` with benchmark settings (quiet, no login rate limit)."""
    import config
    from server import create_app

    workdir = workdir or Path(tempfile.mkdtemp(prefix="dataset-", dir=_out()))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    settings = config.for_testing(str(workdir), url, str(workdir / "photos"))
    settings.update(TESTING=False, LOG_LEVEL="WARNING", LOGIN_RATE_LIMIT="100000 per minute")
    return create_app(settings)


def _out() -> Path:
    OUT.mkdir(exist_ok=True)
    return OUT


def upgrade(app) -> None:
    """Migrations to head, as ``flask db upgrade`` runs them."""
    from flask_migrate import upgrade as flask_upgrade

    with app.app_context():
        flask_upgrade()


def dispose(app) -> None:
    """Close the app's pooled connections (a database with sessions cannot be renamed or
    copied)."""
    from server.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def prepare(url: str, workdir: Path | None = None):
    """Migrations, areas and the shipped forms on ``url``; return the app."""
    app = make_app(url, workdir)
    upgrade(app)
    with app.app_context():
        from server.cli.forms import FORMS_DIR, publish_path
        from server.extensions import db
        from sync.areas import load_areas
        from sync.db import write_transaction

        with write_transaction(db.session):
            load_areas(db.session)
        publish_path(FORMS_DIR)
    return app


# --------------------------------------------------------------------------- families


def _replica(session: Session, on: bool) -> None:
    """Row triggers (foreign keys, monitoring marks) off or on for this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(
            f"SET LOCAL session_replication_role = {'replica' if on else 'origin'}")


def build_families(engine, families: int, seed: int = 3, *, kecamatan=None,
                   label: str = "bench") -> dict:
    """``families`` generated families written as a first import writes them; returns counts
    and seconds. Ids are the generator's (``KLG-<kecamatan><seq>``)."""
    from sync.areas import PRIORITY_KECAMATAN
    from sync.db import utcnow
    from sync.generator import iter_families
    from sync.importer import NEW_FAMILY_TABLES, _Bulk, add_new_family, identity_rows
    from sync.registry import canonical_json, content_hash, normalize_family

    t0 = time.perf_counter()
    members = 0
    with Session(engine) as session:
        bulk = _Bulk(session)
        now = utcnow()
        now_db = bulk.ts(now)
        imp_id = session.execute(text(
            "INSERT INTO imports (label, source_path, format, status, started_at, finished_at, "
            "partial, n_read, n_inserted, n_updated, n_unchanged, n_rejected, n_removed, "
            "n_members, n_flagged) VALUES (:l, 'bench.dataset', 'jsonl', 'done', :now, :now, "
            "false, :n, :n, 0, 0, 0, 0, 0, 0) RETURNING id"),
            {"l": label, "now": now, "n": families}).scalar_one()
        session.commit()
        tables: dict[str, list[tuple]] = {name: [] for name in NEW_FAMILY_TABLES}
        today = now.date()

        def flush():
            bulk = _Bulk(session)
            bulk.insert("keluarga", NEW_FAMILY_TABLES["keluarga"], tables["keluarga"])
            _replica(session, True)
            for name, columns in NEW_FAMILY_TABLES.items():
                if name != "keluarga":
                    bulk.insert(name, columns, tables[name])
            session.commit()
            for rows in tables.values():
                rows.clear()

        for i, raw in enumerate(iter_families(families, seed=seed,
                                              kecamatan=kecamatan or PRIORITY_KECAMATAN)):
            rec = normalize_family(raw)
            snapshot = canonical_json(rec)
            rows, _flagged, kk_json = identity_rows(rec["id_keluarga"], rec, today)
            add_new_family(tables, rec, snapshot, content_hash(snapshot), rows, kk_json, imp_id,
                           now_db)
            members += len(rows)
            if len(tables["keluarga"]) >= BATCH:
                flush()
                if (i + 1) % 200_000 == 0:
                    log(f"  {i + 1:,} families in {time.perf_counter() - t0:.0f} s")
        flush()
        session.execute(text(
            "INSERT INTO shared_niks (nik) SELECT nik FROM anggota WHERE nik IS NOT NULL "
            "GROUP BY nik HAVING count(DISTINCT keluarga_id) > 1"))
        session.execute(text("UPDATE imports SET n_members = :m WHERE id = :i"),
                        {"m": members, "i": imp_id})
        session.commit()
    seconds = time.perf_counter() - t0
    log(f"  {families:,} families, {members:,} members in {seconds:.0f} s "
        f"({families / max(seconds, 1e-9):,.0f} a second)")
    return {"families": families, "members": members, "import_id": imp_id,
            "families_s": round(seconds, 1)}


# --------------------------------------------------------------------------- people, round


def build_users(engine, role: str, names: list[str], areas: list[list[str]],
                password: str = PASSWORD) -> list[int]:
    """Users of one role with a known password (one hash for all), each with its areas."""
    from werkzeug.security import generate_password_hash

    from sync.db import utcnow
    from sync.importer import _Bulk

    password_hash = generate_password_hash(password)
    with Session(engine) as session:
        bulk = _Bulk(session)
        now_db = bulk.ts(utcnow())
        bulk.insert("users", ["username", "role", "password_hash", "active", "created_at"],
                    [(name, role, password_hash, True, now_db) for name in names])
        ids = dict(session.execute(text("SELECT username, id FROM users WHERE role = :r"),
                                   {"r": role}).all())
        user_ids = [ids[name] for name in names]
        bulk.insert("user_areas", ["user_id", "area_code"],
                    [(uid, code) for uid, codes in zip(user_ids, areas, strict=True)
                     for code in codes])
        session.commit()
    return user_ids


def build_round(engine, name: str = "Bench", starts: dt.date = dt.date(2026, 1, 1),
                ends: dt.date = dt.date(2026, 12, 31)) -> int:
    from sync.assignments import create_round

    with Session(engine) as session:
        round_id = create_round(session, name, starts, ends).id
        session.commit()
    return round_id


def build_assignments(engine, round_id: int, enumerators: dict[int, str], per_enumerator: int,
                      seed: int = 7) -> dict:
    """Give each enumerator ``per_enumerator`` families of its kecamatan (a random sample of
    the kecamatan, dealt out in kelurahan/RW/RT order, so each gets a compact block), status
    ``pending``, with the feed entries ``assign`` emits (assignment, then household)."""
    from sync.db import utcnow
    from sync.feed import assignment_entity
    from sync.importer import _Bulk

    t0 = time.perf_counter()
    rng = random.Random(seed)
    by_kec: dict[str, list[int]] = defaultdict(list)
    for uid, kec in enumerators.items():
        by_kec[kec].append(uid)
    with Session(engine) as session:
        bulk = _Bulk(session)
        now_db = bulk.ts(utcnow())
        last = session.execute(text("SELECT last_seq FROM feed_state WHERE id = 1")).scalar()
        if last is None:
            session.execute(text("INSERT INTO feed_state (id, last_seq, compacted_seq, epoch) "
                                 "VALUES (1, 0, 0, 1)"))
            last = 0
        seq = last
        assigned = 0
        for kec in sorted(by_kec):
            users = sorted(by_kec[kec])
            want = len(users) * per_enumerator
            rows = session.execute(text(
                "SELECT id, kode_kelurahan, rw, rt FROM keluarga WHERE removed_at IS NULL AND "
                "kode_kelurahan LIKE :k"), {"k": kec + ".%"}).all()
            if len(rows) < want:
                raise ValueError(f"{kec}: {len(rows):,} families for {want:,} assignments")
            chosen = sorted(rng.sample(rows, want), key=lambda r: (r[1], r[2] or "", r[3] or "",
                                                                   r[0]))
            a_rows, f_rows = [], []
            for n, uid in enumerate(users):
                for hid, *_ in chosen[n * per_enumerator:(n + 1) * per_enumerator]:
                    a_rows.append((round_id, hid, uid, "pending", now_db, now_db))
                    for typ, entity in (("assignment", assignment_entity(round_id, hid)),
                                        ("household", hid)):
                        seq += 1
                        f_rows.append((seq, uid, typ, entity, "upsert", now_db))
            bulk.insert("assignments", ["round_id", "household_id", "enumerator_id", "status",
                                        "assigned_at", "updated_at"], a_rows)
            bulk.insert("feed_entries", ["seq", "user_id", "type", "entity_id", "op",
                                         "created_at"], f_rows)
            assigned += len(a_rows)
        session.execute(text("UPDATE feed_state SET last_seq = :s WHERE id = 1"), {"s": seq})
        session.commit()
    seconds = time.perf_counter() - t0
    log(f"  {assigned:,} assignments to {len(enumerators):,} enumerators in {seconds:.0f} s")
    return {"assigned": assigned, "assignments_s": round(seconds, 1)}


# --------------------------------------------------------------------------- visits, conflicts

CONFLICT_KINDS = ("photo_reused", "location_far", "location_outside_area", "visit_too_short",
                  "inclusion_error", "exclusion_error", "field_mismatch", "duplicate_identity")


def _assigned(session: Session, round_id: int) -> list[tuple[str, int, str]]:
    return [tuple(r) for r in session.execute(text(
        "SELECT a.household_id, a.enumerator_id, k.kode_kelurahan FROM assignments a JOIN "
        "keluarga k ON k.id = a.household_id WHERE a.round_id = :r ORDER BY a.id"),
        {"r": round_id})]


def build_conflicts(engine, round_id: int, conflicts: int, seed: int = 8) -> dict:
    """Open conflicts of mixed kinds on random families, created over the last 30 days."""
    from sync.db import utcnow
    from sync.importer import _Bulk

    t0 = time.perf_counter()
    rng = random.Random(seed)
    cols = ["household_id", "round_id", "kecamatan", "kelurahan", "key", "kind", "severity",
            "field", "registry_value", "visit_value", "message", "status", "created_at",
            "updated_at"]
    with Session(engine) as session:
        families = [tuple(r) for r in session.execute(text(
            "SELECT id, kode_kelurahan FROM keluarga WHERE removed_at IS NULL"))]
        now = utcnow()
        for start in range(0, conflicts, BATCH):
            bulk, rows = _Bulk(session), []
            for n in range(start, min(conflicts, start + BATCH)):
                hid, kel = families[rng.randrange(len(families))]
                created = bulk.ts(now - dt.timedelta(minutes=rng.randrange(60 * 24 * 30)))
                rows.append((hid, round_id, kel.rsplit(".", 1)[0], kel, f"b{n}",
                             rng.choice(CONFLICT_KINDS), rng.choice(("hard", "soft", "info")),
                             "rumah.lantai", '"3"', '"4"', "", "open", created, created))
            bulk.insert("conflicts", cols, rows)
            session.commit()
    seconds = time.perf_counter() - t0
    log(f"  {conflicts:,} open conflicts in {seconds:.0f} s")
    return {"conflicts": conflicts, "conflicts_s": round(seconds, 1)}


def build_visits(engine, round_id: int, seed: int = 9, *, review_states: bool = True,
                 limit: int | None = None) -> dict:
    """One processed visit per assigned family (the first ``limit`` assignments when given),
    received over the round's 52 weeks (verified, under review or returned), assignments set
    to match; then every marked family counted for monitoring once (``monitoring.drain``,
    the work a live instance spreads out)."""
    from sync import monitoring
    from sync.db import write_transaction
    from sync.importer import _Bulk

    t0 = time.perf_counter()
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 5, 3, tzinfo=dt.UTC)
    cols = ["uuid", "content_hash", "household_id", "form_id", "form_version", "enumerator_id",
            "device_id", "batch_id", "round_id", "started_at", "received_at", "answers", "raw",
            "status", "attempts", "processed_at", "reviewed_at"]
    with Session(engine) as session:
        assigned = _assigned(session, round_id)[:limit]
        bulk = _Bulk(session)
        bulk.insert("sync_batches", ["batch_id", "user_id", "device_id", "received_at", "body",
                                     "visits", "stored"],
                    [("bench", assigned[0][1], "bench", bulk.ts(start), b"", 0, 0)])
        batch_id = session.execute(text("SELECT id FROM sync_batches WHERE batch_id = 'bench'")
                                   ).scalar_one()
        session.commit()
        # visit status -> (assignment status, review state)
        status_of = {"verified": ("done", "verified"), "needs_review": ("visited",
                                                                       "needs_review"),
                     "returned": ("returned", None)}
        for first in range(0, len(assigned), BATCH):
            bulk, rows, updates = _Bulk(session), [], []
            for n, (hid, uid, _kel) in enumerate(assigned[first:first + BATCH], start=first):
                at = bulk.ts(start + dt.timedelta(minutes=rng.randrange(60 * 24 * 7 * 52)))
                status = rng.choice(("verified", "verified", "needs_review", "returned"))
                rows.append((f"bench-{n:09d}", "x", hid, "verifikasi_keluarga", 1, uid, "bench",
                             batch_id, round_id, at, at, "{}", "{}", status, 1, at, at))
                state, review = status_of[status]
                updates.append((state, review if review_states else None, round_id, hid))
            bulk.insert("visits", cols, rows)
            bulk.many("UPDATE assignments SET status = ?, review_state = ? WHERE round_id = ? "
                      "AND household_id = ?", updates)
            session.commit()
        visits_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        with write_transaction(session):
            counted = monitoring.drain(session)
        drain_s = time.perf_counter() - t1
    log(f"  {len(assigned):,} visits in {visits_s:.0f} s; monitoring drain {counted:,} "
        f"families in {drain_s:.0f} s")
    return {"visits": len(assigned), "visits_s": round(visits_s, 1), "counted": counted,
            "drain_s": round(drain_s, 1)}


def analyze(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


# --------------------------------------------------------------------------- an instance


def enumerator_plan(enumerators: int, families_by_kecamatan: dict[str, int]) -> dict[str, str]:
    """Username -> kecamatan: enumerators dealt to the kecamatan in proportion to their
    families (largest remainder), so a small kecamatan is not asked for more than it holds."""
    total = sum(families_by_kecamatan.values())
    quota = {k: enumerators * n / total for k, n in families_by_kecamatan.items()}
    share = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: share[k] - quota[k])[:enumerators - sum(share.values())]:
        share[k] += 1
    kecamatan = [k for k in sorted(share) for _ in range(share[k])]
    return {ENUMERATOR.format(e): kec for e, kec in enumerate(kecamatan)}


def families_by_kecamatan(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {kel: n for kel, n in conn.execute(text(
            "SELECT substr(kode_kelurahan, 1, 8), count(*) FROM keluarga "
            "WHERE removed_at IS NULL GROUP BY 1"))}


def build_instance(url: str, families: int, *, enumerators: int = 1000,
                   per_enumerator: int = 300, supervisors: int = 20, conflicts: int = 0,
                   visits: bool = False, seed: int = 3, app=None) -> dict:
    """Schema, areas, forms, families, users, a round and its assignments (and optionally
    open conflicts and a visit per assigned family) on the database at ``url``."""
    from sync.areas import PRIORITY_KECAMATAN
    from sync.db import configure_engine

    t0 = time.perf_counter()
    app = app or prepare(url)
    engine = create_engine(url)
    configure_engine(engine)
    out: dict = {"url": url, "families_requested": families, "enumerators": enumerators,
                 "per_enumerator": per_enumerator, "supervisors": supervisors}
    out.update(build_families(engine, families, seed))
    plan = enumerator_plan(enumerators, families_by_kecamatan(engine))
    ids = build_users(engine, "enumerator", list(plan), [[k] for k in plan.values()])
    spv = [SUPERVISOR.format(s) for s in range(supervisors)]
    build_users(engine, "supervisor", spv,
                [[PRIORITY_KECAMATAN[s % len(PRIORITY_KECAMATAN)]] for s in range(supervisors)])
    build_users(engine, "supervisor", ["bspv-all"], [["31"]])
    round_id = build_round(engine)
    out.update(build_assignments(engine, round_id, dict(zip(ids, plan.values(), strict=True)),
                                 per_enumerator, seed + 4))
    if conflicts:
        out.update(build_conflicts(engine, round_id, conflicts, seed + 5))
    if visits:
        out.update(build_visits(engine, round_id, seed + 6))
    analyze(engine)
    engine.dispose()
    dispose(app)
    out["round_id"] = round_id
    out["total_s"] = round(time.perf_counter() - t0, 1)
    return out


# --------------------------------------------------------------------------- templates


def _admin(server: str = SERVER):
    return create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")


def database_exists(name: str, server: str = SERVER) -> bool:
    engine = _admin(server)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                             {"n": name}).scalar() is not None
    engine.dispose()
    return found


def _in_use(name: str, server: str = SERVER) -> bool:
    engine = _admin(server)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name}).scalar()
    engine.dispose()
    return bool(n)


def drop_database(name: str, server: str = SERVER) -> None:
    engine = _admin(server)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def copy_database(template: str, name: str, server: str = SERVER) -> str:
    """``CREATE DATABASE name TEMPLATE template`` (dropping ``name`` first); its URL."""
    engine = _admin(server)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine.dispose()
    return server_url(name, server)


def ensure_template(name: str, families: int, *, server: str = SERVER, **kwargs) -> dict:
    """The database ``name`` built by ``build_instance`` unless it exists already: built as
    ``<name>_building`` (dropped and started again if a build was cut off), migrated to head
    once more at the end, and renamed, so that ``name`` only ever names a complete one."""
    if database_exists(name, server):
        log(f"{name} exists; kept")
        app = make_app(server_url(name, server))
        upgrade(app)  # a migration added since it was built
        dispose(app)
        return {"url": server_url(name, server), "built": False}
    building = f"{name}_building"
    while _in_use(building, server):  # another process is building it: wait for it
        if database_exists(name, server):
            break
        time.sleep(20)
    if database_exists(name, server):
        return ensure_template(name, families, server=server, **kwargs)
    drop_database(building, server)
    engine = _admin(server)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{building}"'))
    log(f"building {name}: {families:,} families ...")
    out = build_instance(server_url(building, server), families, **kwargs)
    app = make_app(server_url(building, server))
    upgrade(app)
    dispose(app)
    with engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
    engine.dispose()
    out.update(url=server_url(name, server), built=True)
    (_out() / f"dataset_{name}.json").write_text(json.dumps(out, indent=1))
    log(f"{name} built in {out['total_s']:.0f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", required=True, help="database name to build if missing")
    parser.add_argument("--families", type=int, required=True)
    parser.add_argument("--enumerators", type=int, default=1000)
    parser.add_argument("--per-enumerator", type=int, default=300)
    parser.add_argument("--supervisors", type=int, default=20)
    parser.add_argument("--conflicts", type=int, default=0)
    parser.add_argument("--visits", action="store_true")
    parser.add_argument("--server", default=SERVER)
    args = parser.parse_args()
    out = ensure_template(args.template, args.families, server=args.server,
                          enumerators=args.enumerators, per_enumerator=args.per_enumerator,
                          supervisors=args.supervisors, conflicts=args.conflicts,
                          visits=args.visits)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
