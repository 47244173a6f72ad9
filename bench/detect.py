"""Benchmark: detection quality of reconciliation on a simulated round (issue 7).

    .venv/bin/python -m bench.detect [--families 3000] [--seed 7] [--database-url URL]
        [--per-enumerator 40] [--per-day 8] [--keep]

Setup, all through the real code: migrations, areas, form v1 published; ``--families``
families of the priority kecamatan from ``sync.generator`` (with its answer file of planted
anomalies) imported by the real importer into a fresh SQLite file (or, with ``--database-url
postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, a scratch database created and
dropped on that server); one enumerator per ``--per-enumerator`` families of a kecamatan, a
round, the assignments.

Run: ``sync.simulator`` plans the round's visits (honest confirmations, honest changes,
fabrications, each with the conflict kinds it should raise), then plays it day by day: the
photos through the photo store (``server.services.photos.receive``: real JPEGs, perceptual hash
computed on upload), the visits through ``sync.ingest.ingest_batch``, then the reconciliation
worker (``sync.reconcile.worker.drain``) over the day's queue.

Printed: per planted or fabricated kind its count, how many were detected and the recall
(target >= 0.95 each), the share of clean visits (honest, family without a planted anomaly)
with a conflict they should not have (target <= 2%), precision per conflict kind, PASS/FAIL.
Exit status 1 when a target fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.push_load import ROOT, scratch_database

OUT = Path(__file__).resolve().parent / "out"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def extract(families: int, seed: int) -> Path:
    """The synthetic extract and its answer file, generated once under bench/out/ (per
    version of the generator: the folder is named by a digest of its source)."""
    import hashlib

    from sync import generator
    from sync.generator import generate

    digest = hashlib.sha256(Path(generator.__file__).read_bytes()).hexdigest()[:8]
    folder = OUT / f"detect_extract_{families}_{seed}_{digest}"
    if not (folder / ".complete").exists():
        generate(folder, families, seed, "jsonl")
        (folder / ".complete").write_text("")
    return folder


def setup_round(session, extract_dir: Path, per_enumerator: int,
                per_day: int, seed: int, form_path: Path):
    """Import, form, users, round, assignments, and the simulated plan. Shared with tests."""
    from sqlalchemy import select

    from server.services.users import create_user
    from sync import assignments as core
    from sync import forms as form_store
    from sync import simulator
    from sync.db import write_transaction
    from sync.importer import import_extract
    from sync.models.registry import VerifiedRecord

    summary = import_extract(session, extract_dir / "keluarga.jsonl", label="detect",
                             rejects=extract_dir.parent / f"{extract_dir.name}.rejects.jsonl")
    form_def = json.loads(form_path.read_text())
    with write_transaction(session):
        form_store.publish_form(session, form_def)
    row = form_store.latest_open_version(session, form_def["form_id"])
    form = form_store.compiled_form(row)
    records, versions = [], {}
    for doc, version in session.execute(select(VerifiedRecord.doc, VerifiedRecord.version)
                                        .order_by(VerifiedRecord.household_id)):
        doc = json.loads(doc) if isinstance(doc, str) else doc
        records.append(doc)
        versions[doc["id_keluarga"]] = version
    anomalies = [json.loads(line) for line in
                 (extract_dir / "anomalies.jsonl").read_text().splitlines() if line]
    plan = simulator.plan_visits(form, records, anomalies, seed=seed,
                                 per_enumerator=per_enumerator, per_day=per_day,
                                 versions=versions)
    kel = {r["id_keluarga"]: r["kode_kelurahan"] for r in records}
    with write_transaction(session):
        rnd = core.create_round(session, f"Deteksi {seed}", dt.date(2026, 1, 1),
                                dt.date(2026, 12, 31))
        users = []
        for e, route in enumerate(plan.routes):
            user = create_user(session, f"enum-{e:04d}", "enumerator", "detect-password",
                               areas=(plan.kecamatan[e],))
            session.flush()
            core.assign(session, rnd.id, user.id, [(h, kel[h]) for h in route], actor_id=None,
                        actor_covers=lambda _k: True, enumerator_covers=lambda _k: True)
            users.append(user.id)
    return plan, users, summary


def uploader(session):
    """Upload through the server's photo service (store, phash, Photo row, queue)."""
    from server.models import User
    from server.services.photos import receive
    from sync.simulator import _sha

    cache: dict[int, User] = {}

    def upload(data: bytes, user_id: int) -> None:
        user = cache.get(user_id) or cache.setdefault(user_id, session.get(User, user_id))
        receive(session, user, _sha(data), io.BytesIO(data), "image/jpeg", len(data))

    return upload


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--per-enumerator", type=int, default=40)
    ap.add_argument("--per-day", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)

    import config
    from server import create_app
    from server.extensions import db
    from sync import simulator

    workdir = Path(tempfile.mkdtemp(prefix="detect-", dir=OUT))
    url, drop = scratch_database(args.database_url, workdir)
    try:
        settings = config.for_testing(str(workdir / "instance"), url, str(workdir / "photos"))
        settings.update(TESTING=False, LOG_LEVEL="WARNING")
        app = create_app(settings)
        runner = app.test_cli_runner()
        for cmd in (["db", "upgrade"], ["areas", "load"]):
            result = runner.invoke(args=cmd)
            if result.exit_code != 0:
                raise SystemExit(f"{' '.join(cmd)} failed: {result.output}")
        t0 = time.perf_counter()
        folder = extract(args.families, args.seed)
        with app.app_context():
            plan, users, summary = setup_round(
                db.session, folder, args.per_enumerator, args.per_day,
                args.seed, ROOT / "forms/verifikasi_keluarga/v1.json")
            t1 = time.perf_counter()
            log(f"setup: {summary.inserted:,} families imported, {len(users)} enumerators, "
                f"{len(plan.visits):,} visits over {len(plan.days())} days "
                f"({t1 - t0:.0f} s)")
            stats = simulator.run(db.session, plan, users=users, upload=uploader(db.session))
            log(f"run: {stats.pushed:,} pushed ({dict(stats.statuses)}), {stats.photos:,} "
                f"photos, {stats.reconciled:,} reconciled; seconds "
                + ", ".join(f"{k} {v:.0f}" for k, v in stats.seconds.items()))
            report = simulator.score(db.session, plan)
            db.session.remove()
            db.engine.dispose()
        backend = "PostgreSQL" if args.database_url else "SQLite"
        print(f"Detection quality: {args.families:,} families, seed {args.seed}, {backend}, "
              f"{len(plan.visits):,} visits")
        print(simulator.format_report(report))
        if report.examples:
            print("\nunexpected findings (first few):")
            for ex in report.examples[:10]:
                print("  " + json.dumps(ex))
        verdicts = simulator.passed(report)
        failed = [k for k, ok in verdicts.items() if not ok]
        print(f"\n{'PASS' if not failed else 'FAIL'}: {len(verdicts) - len(failed)} of "
              f"{len(verdicts)} targets met" + (f"; failed: {', '.join(failed)}" if failed
                                                else ""))
        return 1 if failed else 0
    finally:
        drop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
